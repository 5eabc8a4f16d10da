// Two muxd servers behind a real HAProxy (TCP mode for MX/1, HTTP mode for the site, health checks
// against the stats route), sharing one Redis (--chat-redis) and one files dir, driven with the
// muxd CLI as users would. docs/deploy.md shows the same configuration with production timings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, MuxError } from '../../src/client/index.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { decodeMessage, decodeText } from '../../src/wire/payloads.js';
import { WsMxClient } from '../helpers/ws-mx.js';
import { MUXD_BIN, runMuxd, startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { freePort, redisSkipReason, startRedis, type RedisServer } from '../helpers/redis-server.js';

const HAPROXY = process.env.HAPROXY_PATH ?? (existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy');
const haproxyFound = spawnSync(HAPROXY, ['-v'], { stdio: 'ignore' }).status === 0;
const skip = redisSkipReason() || (!haproxyFound && process.env.CI !== 'true' ? `no ${HAPROXY} on this machine (apt-get install haproxy)` : false);
const UPLOAD_TOKEN = 'haproxy-upload-token';

interface Ports {
  mx: number;
  http: number;
  a: MuxdProcess;
  b: MuxdProcess;
  socket: string;
}

/** docs/deploy.md's configuration, with the test's ports and faster checks. */
function haproxyConfig(p: Ports): string {
  return `global
    maxconn 4096
    stats socket ${p.socket} mode 600 level user

defaults
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    timeout tunnel 1h
    retries 2
    option redispatch

frontend mx1
    mode tcp
    bind 127.0.0.1:${p.mx}
    default_backend muxd_mx1

backend muxd_mx1
    mode tcp
    balance roundrobin
    option httpchk
    http-check send meth GET uri /.well-known/muxd/stats ver HTTP/1.1 hdr Host muxd
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2 on-marked-down shutdown-sessions
    server a 127.0.0.1:${p.a.binaryPort} check port ${p.a.httpPort}
    server b 127.0.0.1:${p.b.binaryPort} check port ${p.b.httpPort}

frontend site
    mode http
    bind 127.0.0.1:${p.http}
    default_backend muxd_http

backend muxd_http
    mode http
    balance roundrobin
    option httpchk
    http-check send meth GET uri /.well-known/muxd/stats ver HTTP/1.1 hdr Host muxd
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
    server a 127.0.0.1:${p.a.httpPort} check
    server b 127.0.0.1:${p.b.httpPort} check
`;
}

let tmp = '';
let redis: RedisServer;
let a: MuxdProcess;
let b: MuxdProcess;
let haproxy: ChildProcess;
let ports: Ports;
let haproxyLog = '';
const children: ChildProcess[] = [];

async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** "show stat" on HAProxy's socket: server name -> status, per backend. */
async function serverStates(): Promise<Record<string, string>> {
  const csv = await new Promise<string>((resolve, reject) => {
    const s = net.connect(ports.socket);
    let out = '';
    s.on('connect', () => s.write('show stat\n'));
    s.on('data', (c) => (out += c.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
  const states: Record<string, string> = {};
  for (const line of csv.split('\n')) {
    const f = line.split(',');
    if (f.length > 17 && (f[1] === 'a' || f[1] === 'b')) states[`${f[0]}/${f[1]}`] = f[17]!;
  }
  return states;
}

/** A piped `muxd chat` process through HAProxy: its stdout, and stdin to say lines. */
function chat(name: string): { proc: ChildProcess; out: () => string; say: (line: string) => void } {
  const proc = spawn(process.execPath, [MUXD_BIN, 'chat', '--name', name, '--port', String(ports.mx)], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return { proc, out: () => out, say: (line) => proc.stdin!.write(line + '\n') };
}

/** Names each server holds in Redis (its own STATS, straight to the server). */
async function held(server: MuxdProcess): Promise<number> {
  const c = await connect({ port: server.binaryPort });
  try {
    return Number(((await c.stats()).chatRelay as Record<string, unknown>).names);
  } finally {
    c.close();
  }
}

async function httpGet(port: number, target: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('connect', () => s.write(`GET ${target} HTTP/1.1\r\nHost: muxd\r\nConnection: close\r\n\r\n`));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      resolve({ status: Number(all.subarray(9, 12).toString()), body: all.subarray(end + 4) });
    });
  });
}

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-haproxy-'));
  redis = await startRedis();
  const common = ['--chat-redis', redis.url, '--files-dir', path.join(tmp, 'files'), '--upload-token', UPLOAD_TOKEN];
  [a, b] = await Promise.all([startMuxd(common), startMuxd(common)]);
  ports = { mx: await freePort(), http: await freePort(), a, b, socket: path.join(tmp, 'haproxy.sock') };
  const cfg = path.join(tmp, 'haproxy.cfg');
  await writeFile(cfg, haproxyConfig(ports));
  haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.on('data', (c: Buffer) => (haproxyLog += c.toString()));
  haproxy.stderr!.on('data', (c: Buffer) => (haproxyLog += c.toString()));
  await waitFor(`HAProxy up with both servers healthy\n${haproxyLog}`, async () => {
    if (!existsSync(ports.socket)) return undefined;
    const states = await serverStates().catch(() => ({}) as Record<string, string>);
    return Object.values(states).length === 4 && Object.values(states).every((s) => s === 'UP') ? true : undefined;
  });
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  haproxy?.kill('SIGTERM');
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('CLI chat clients that land on different servers behind HAProxy talk to each other', { skip }, async () => {
  const ann = chat('ann');
  await waitFor('ann joined', () => (/joined as ann/.test(ann.out()) ? true : undefined));
  const bob = chat('bob');
  await waitFor('bob joined', () => (/joined as bob; present: ann, bob/.test(bob.out()) ? true : undefined));
  // Round-robin put them on different servers: each holds one name.
  assert.deepEqual([await held(a), await held(b)], [1, 1]);
  await waitFor('ann sees bob join', () => (/\* bob joined/.test(ann.out()) ? true : undefined));
  ann.say('hello from server a or b');
  bob.say('and hello back');
  await waitFor('bob hears ann', () => (/<ann> hello from server a or b/.test(bob.out()) ? true : undefined));
  await waitFor('ann hears bob', () => (/<bob> and hello back/.test(ann.out()) ? true : undefined));
  ann.proc.stdin!.end();
  bob.proc.stdin!.end();
  await waitFor('both left', async () => ((await held(a)) + (await held(b)) === 0 ? true : undefined));
});

test("MX/1 over WebSocket through HAProxy's HTTP frontend: the upgrade passes, members on both servers chat", { skip }, async () => {
  // A browser on the proxy's own origin: Host and Origin name the proxy, which muxd sees as its own.
  const origin = `http://127.0.0.1:${ports.http}`;
  const ann = await WsMxClient.connect(ports.http, { origin });
  const bob = await WsMxClient.connect(ports.http, { origin });
  try {
    assert.equal(ann.ws.protocol, 'mx1');
    await ann.request(Type.JOIN, 1, Buffer.from('ws-ann'));
    await bob.request(Type.JOIN, 1, Buffer.from('ws-bob'));
    // Round-robin put them on different servers: each holds one name.
    assert.deepEqual([await held(a), await held(b)], [1, 1]);
    assert.equal(decodeText((await ann.push(Type.USER_JOINED)).payload), 'ws-bob');
    await bob.request(Type.SAY, 2, Buffer.from('through the proxy'));
    assert.deepEqual(decodeMessage((await ann.push(Type.MESSAGE)).payload), { from: 'ws-bob', text: 'through the proxy' });
  } finally {
    ann.close();
    bob.close();
  }
  await waitFor('both left', async () => ((await held(a)) + (await held(b)) === 0 ? true : undefined));
});

test('a file uploaded through HAProxy (one server) downloads through HAProxy and from both servers', { skip }, async () => {
  const file = path.join(tmp, 'upload.bin');
  const content = randomBytes(300 * 1024);
  await writeFile(file, content);
  const put = await runMuxd(['put', file, '--as', 'shared.bin', '--port', String(ports.mx), '--token', UPLOAD_TOKEN]);
  assert.equal(put.code, 0, put.stderr + put.stdout);
  // MX/1 GET through HAProxy twice (round-robin: one per server), and from each server directly.
  for (const port of [ports.mx, ports.mx, a.binaryPort, b.binaryPort]) {
    const out = path.join(tmp, `got-${port}-${Math.random()}.bin`);
    const got = await runMuxd(['get', 'shared.bin', '-o', out, '--port', String(port)]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok((await readFile(out)).equals(content), `via port ${port}`);
  }
  // The site through HAProxy's HTTP frontend, both servers in turn.
  for (let i = 0; i < 2; i++) {
    const res = await httpGet(ports.http, '/files/shared.bin');
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(content));
  }
});

test('a server that dies: HAProxy sends its members to the other, and they get their names back once the hold expires', { skip }, async () => {
  const ann = chat('ann');
  await waitFor('ann joined', () => (/joined as ann/.test(ann.out()) ? true : undefined));
  const bob = chat('bob');
  await waitFor('bob joined', () => (/joined as bob/.test(bob.out()) ? true : undefined));
  assert.deepEqual([await held(a), await held(b)], [1, 1]);
  // Server a dies; whichever member was on it loses its connection (its chat process ends).
  const victim = a;
  const survivor = b;
  victim.proc.kill('SIGKILL');
  const lost = await waitFor('the member on the dead server cut off', () => [ann, bob].find((c) => c.proc.exitCode !== null));
  const onA = { name: lost === ann ? 'ann' : 'bob' };
  const watcher = lost === ann ? bob : ann;
  await waitFor('HAProxy marks it down', async () => (Object.entries(await serverStates()).filter(([k, s]) => k.endsWith('/a') && s.startsWith('DOWN')).length === 2 ? true : undefined));

  // The member reconnects through HAProxy (now always to the survivor) and asks for its name.
  const refusals: number[] = [];
  const started = Date.now();
  const client = await waitFor(
    'the name back',
    async () => {
      const c = await connect({ port: ports.mx, timeoutMs: 5000 });
      try {
        await c.join(onA.name);
        return c;
      } catch (err) {
        c.close();
        if (err instanceof MuxError) refusals.push(err.code);
        else throw err;
        await sleep(500);
        return undefined;
      }
    },
    40000,
  );
  // Until the dead server's hold expired, the name was still its member's.
  assert.ok(refusals.length > 0 && refusals.every((code) => code === ErrorCode.NAME_TAKEN), `refusals: ${refusals.join(',')}`);
  assert.ok(Date.now() - started < 30000);
  assert.equal(await held(survivor), 2);
  // The other member sees it leave (with its dead server) and come back.
  await waitFor('the watcher sees it back', () => (new RegExp(`\\* ${onA.name} joined`).test(watcher.out()) ? true : undefined));
  client.close();
  watcher.proc.stdin!.end();
});
