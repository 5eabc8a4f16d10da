// `muxd serve` as an operator meets it: starts whole or not at all, Unix sockets for both faces,
// real signals against a real process, and a file-descriptor limit it must survive.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MUXD_BIN, REPO_ROOT, runMuxd } from '../helpers/muxd-process.js';

const SITE = path.join(REPO_ROOT, 'public');
const HAVE_CURL = spawnSync('curl', ['--version']).status === 0;

interface Proc {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null if killed by a signal). */
  exited: Promise<number | null>;
}

/** Spawns `muxd serve ARGS` (through bash when `shell` prefixes it, e.g. a ulimit). */
function spawnServe(args: string[], shell?: string): Proc {
  const proc =
    shell === undefined
      ? spawn(process.execPath, [MUXD_BIN, 'serve', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('bash', ['-c', `${shell}; exec "$0" "$@"`, process.execPath, MUXD_BIN, 'serve', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

/** Waits for both ready lines; returns the TCP ports they name (0 for a Unix socket). */
async function ready(p: Proc): Promise<{ http: number; binary: number }> {
  const end = Date.now() + 15_000;
  for (;;) {
    const out = p.output();
    const http = /^muxd http listening on (\S+)$/m.exec(out);
    const binary = /^muxd binary listening on (\S+)$/m.exec(out);
    if (http && binary) {
      const port = (s: string): number => Number(/:(\d+)$/.exec(s)?.[1] ?? 0);
      return { http: port(http[1]!), binary: port(binary[1]!) };
    }
    if (p.proc.exitCode !== null || Date.now() > end) throw new Error(`muxd did not get ready:\n${out}`);
    await sleep(20);
  }
}

/** Resolves with the exit code, or rejects after ms. */
async function exitWithin(p: Proc, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([p.exited, new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)))]);
  clearTimeout(timer);
  if (code === 'late') throw new Error(`muxd still running after ${ms} ms:\n${p.output()}`);
  return code;
}

function kill(p: Proc): void {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
}

/** A free TCP port on loopback (bound, then let go). */
async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** One raw HTTP/1.1 exchange on `socket`; resolves with the response head. */
function getHead(socket: net.Socket, target = '/'): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const len = Number(/content-length: (\d+)/i.exec(buf)?.[1] ?? 0);
      if (buf.length >= end + 4 + len) {
        socket.off('data', onData);
        resolve(buf.slice(0, end));
      }
    };
    socket.on('data', onData);
    socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

function curl(args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sS', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => chunks.push(d));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout: Buffer.concat(chunks), stderr }));
  });
}

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-life-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const base = (name: string): string[] => ['--root', SITE, '--files-dir', path.join(tmp, name)];
/** With MX/1 on a Unix socket, UDP would take the default port 9000: a fixed port that other test files and other checkouts' suites on this machine use too. */
const ANY_UDP = ['--udp-port', '0'];

describe('graceful shutdown (real signals)', () => {
  test('SIGTERM with an idle keep-alive connection: both lines, exit 0, quickly', async () => {
    const p = spawnServe([...base('f-idle'), '--http-port', '0', '--binary-port', '0']);
    try {
      const { http } = await ready(p);
      const socket = net.connect(http, '127.0.0.1');
      assert.match(await getHead(socket), /^HTTP\/1\.1 200 /);
      const closed = new Promise((r) => socket.once('close', r));
      socket.on('error', () => undefined);
      const sent = Date.now();
      p.proc.kill('SIGTERM');
      assert.equal(await exitWithin(p, 10_000), 0);
      await closed;
      assert.ok(Date.now() - sent < 10_000);
      assert.match(p.output(), /^muxd stopping: 1 connection draining$/m);
      assert.match(p.output(), /^muxd stopped$/m);
    } finally {
      kill(p);
    }
  });

  test('SIGINT stops the same way', async () => {
    const p = spawnServe([...base('f-int'), '--http-port', '0', '--binary-port', '0']);
    try {
      await ready(p);
      p.proc.kill('SIGINT');
      assert.equal(await exitWithin(p, 10_000), 0);
      assert.match(p.output(), /^muxd stopping: 0 connections draining$/m);
      assert.match(p.output(), /^muxd stopped$/m);
    } finally {
      kill(p);
    }
  });

  test('a second SIGTERM exits at once, removing temp and socket files', async (t) => {
    const files = path.join(tmp, 'f-twice');
    const sock = path.join(tmp, 'twice-binary.sock');
    const hsock = path.join(tmp, 'twice-http.sock');
    await mkdir(files, { recursive: true });
    await writeFile(path.join(files, 'big.bin'), randomBytes(8 << 20));
    const p = spawnServe(['--root', SITE, '--files-dir', files, '--http-socket', hsock, '--binary-socket', sock, ...ANY_UDP, '--shutdown-timeout', '60s']);
    try {
      await ready(p);
      // A download nobody reads holds the drain (once the HTTP face implements drain()).
      const reader = net.connect(hsock);
      reader.on('error', () => undefined);
      reader.write('GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
      reader.pause();
      await sleep(300);
      // A temp file as an upload in progress leaves it (the MX/1 face creates them this way).
      await writeFile(path.join(files, '.upload-test-1'), 'partial');
      p.proc.kill('SIGTERM');
      await sleep(500);
      if (p.proc.exitCode !== null) {
        reader.destroy();
        // Without a protocol drain() nothing holds the first stop; the second signal never comes.
        t.todo('needs HttpConnection.drain from the http branch to hold the first stop');
        assert.ok(!existsSync(sock) && !existsSync(hsock));
        return;
      }
      const sent = Date.now();
      p.proc.kill('SIGTERM');
      assert.equal(await exitWithin(p, 5000), 1);
      assert.ok(Date.now() - sent < 5000);
      reader.destroy();
      assert.match(p.output(), /SIGTERM again: stopping now/);
      assert.ok(!existsSync(sock), 'MX/1 socket file removed');
      assert.ok(!existsSync(hsock), 'HTTP socket file removed');
      assert.deepEqual((await readdir(files)).filter((n) => n.startsWith('.upload-')), []);
    } finally {
      kill(p);
    }
  });

  test('SIGHUP reopens the access log (logrotate renamed it)', async () => {
    const log = path.join(tmp, 'hup.log');
    const p = spawnServe([...base('f-hup'), '--http-port', '0', '--binary-port', '0', '--access-log', log]);
    try {
      const { http } = await ready(p);
      const get = async (tag: string): Promise<void> => {
        const s = net.connect(http, '127.0.0.1');
        await getHead(s, `/?${tag}`);
        s.destroy();
      };
      const waitFor = async (file: string, tag: string): Promise<void> => {
        for (let i = 0; i < 100; i++) {
          if ((await readFile(file, 'utf8').catch(() => '')).includes(tag)) return;
          await sleep(50);
        }
        throw new Error(`${tag} never reached ${file}`);
      };
      await get('before');
      await waitFor(log, 'before');
      await rename(log, log + '.1');
      p.proc.kill('SIGHUP');
      await sleep(200);
      await get('after');
      await waitFor(log, 'after');
      assert.doesNotMatch(await readFile(log + '.1', 'utf8'), /after/);
      assert.equal(p.proc.exitCode, null, 'SIGHUP does not stop the server');
      p.proc.kill('SIGTERM');
      assert.equal(await exitWithin(p, 10_000), 0);
    } finally {
      kill(p);
    }
  });

  test('a rate-limited download started before SIGTERM completes: curl exit 0, right bytes, server exit 0', { skip: HAVE_CURL ? false : 'no curl' }, async (t) => {
    const files = path.join(tmp, 'f-download');
    await mkdir(files, { recursive: true });
    // Larger than what loopback socket buffers hold (a few MiB), or a cut connection would
    // still deliver everything already queued in the kernel and the test could not fail.
    const body = randomBytes(24 << 20);
    await writeFile(path.join(files, 'big.bin'), body);
    const p = spawnServe(['--root', SITE, '--files-dir', files, '--http-port', '0', '--binary-port', '0']);
    try {
      const { http } = await ready(p);
      // 24 MiB at 6 MiB/s: about four seconds, so SIGTERM lands mid-transfer.
      let curlDone = 0;
      const download = curl(['--limit-rate', '6M', '-o', '-', `http://127.0.0.1:${http}/files/big.bin`]).then((r) => ((curlDone = Date.now()), r));
      await sleep(1000);
      const signalled = Date.now();
      p.proc.kill('SIGTERM');
      const [res, code] = await Promise.all([download, exitWithin(p, 30_000)]);
      assert.ok(curlDone > signalled, 'the download was still running at SIGTERM');
      assert.match(p.output(), /^muxd stopping: 1 connection draining$/m);
      if (res.code === 18) {
        t.todo('needs HttpConnection.drain from the http branch');
        return;
      }
      assert.equal(res.code, 0, res.stderr);
      assert.equal(createHash('sha256').update(res.stdout).digest('hex'), createHash('sha256').update(body).digest('hex'));
      assert.equal(code, 0, p.output());
    } finally {
      kill(p);
    }
  });
});

describe('all-or-nothing start', () => {
  test('a port in use: exit 2, one line naming the flag, nothing left listening, no socket file', async () => {
    const taken = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    const takenPort = (taken.address() as net.AddressInfo).port;
    try {
      const httpPort = await freePort();
      const res = await runMuxd(['serve', ...base('f-port'), '--http-port', String(httpPort), '--binary-port', String(takenPort)]);
      assert.equal(res.code, 2);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, new RegExp(`^muxd serve: --binary-port ${takenPort}: 127\\.0\\.0\\.1:${takenPort} is already in use`));
      assert.doesNotMatch(res.stdout, /listening/);
      assert.ok(await canBind(httpPort), 'the HTTP port is free again');
      // With the HTTP face on a Unix socket: no socket file is left behind.
      const sock = path.join(tmp, 'port-http.sock');
      const res2 = await runMuxd(['serve', ...base('f-port'), '--http-socket', sock, '--binary-port', String(takenPort)]);
      assert.equal(res2.code, 2);
      assert.ok(!existsSync(sock), 'no socket file left');
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  test('both faces on one port is caught before anything starts', async () => {
    const port = await freePort();
    const res = await runMuxd(['serve', ...base('f-same'), '--http-port', String(port), '--binary-port', String(port)]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /already in use/);
    assert.ok(await canBind(port));
  });

  test('a stale socket file (kill -9) is removed and the start succeeds; SIGTERM removes the files', async () => {
    const hsock = path.join(tmp, 'stale-http.sock');
    const bsock = path.join(tmp, 'stale-binary.sock');
    const args = [...base('f-stale'), '--http-socket', hsock, '--binary-socket', bsock, ...ANY_UDP];
    const first = spawnServe(args);
    await ready(first);
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok((await stat(hsock)).isSocket() && (await stat(bsock)).isSocket(), 'kill -9 leaves both socket files');
    const second = spawnServe(args);
    try {
      await ready(second);
      const s = net.connect(hsock);
      assert.match(await getHead(s), /^HTTP\/1\.1 200 /);
      s.destroy();
      second.proc.kill('SIGTERM');
      assert.equal(await exitWithin(second, 10_000), 0);
      assert.ok(!existsSync(hsock) && !existsSync(bsock), 'socket files removed at exit');
    } finally {
      kill(second);
    }
  });

  test('a live socket at the path: exit 2 with a clear line; the running server is untouched', async () => {
    const bsock = path.join(tmp, 'live-binary.sock');
    const running = spawnServe([...base('f-live'), '--http-port', '0', '--binary-socket', bsock, ...ANY_UDP]);
    try {
      await ready(running);
      const res = await runMuxd(['serve', ...base('f-live2'), '--http-port', '0', '--binary-socket', bsock, ...ANY_UDP]);
      assert.equal(res.code, 2);
      assert.match(res.stderr, /^muxd serve: --binary-socket .*live-binary\.sock: another server is listening on this socket$/m);
      assert.ok((await stat(bsock)).isSocket());
      const ping = await runMuxd(['ping', '--socket', bsock, '--count', '1']);
      assert.equal(ping.code, 0, ping.stderr);
    } finally {
      running.proc.kill('SIGTERM');
      await running.exited;
    }
  });

  test('a file that is not a socket at the path: exit 2, the file untouched', async () => {
    const file = path.join(tmp, 'not-a-socket');
    await writeFile(file, 'precious');
    const res = await runMuxd(['serve', ...base('f-file'), '--http-socket', file, '--binary-port', '0']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--http-socket .*not-a-socket: exists and is not a socket/);
    assert.equal(await readFile(file, 'utf8'), 'precious');
  });

  test('directory problems: every one reported, one line each, exit 2, no stack trace', async () => {
    const asFile = path.join(tmp, 'files-is-a-file');
    await writeFile(asFile, 'x');
    const res = await runMuxd(['serve', '--root', path.join(tmp, 'no-such-site'), '--files-dir', asFile, '--http-port', '0', '--binary-port', '0']);
    assert.equal(res.code, 2);
    const lines = res.stderr.trim().split('\n');
    assert.equal(lines.length, 2, res.stderr);
    assert.match(res.stderr, /^muxd serve: --root .*no-such-site: no such directory$/m);
    assert.match(res.stderr, /^muxd serve: --files-dir .*files-is-a-file: not a directory$/m);
    assert.doesNotMatch(res.stderr, /\n\s+at /);
    assert.doesNotMatch(res.stdout, /listening/);
    // --root naming a file.
    const rootFile = await runMuxd(['serve', '--root', asFile, ...base('f-rootfile').slice(2), '--http-port', '0', '--binary-port', '0']);
    assert.equal(rootFile.code, 2);
    assert.match(rootFile.stderr, /--root .*: not a directory/);
  });

  test('an unwritable files dir: exit 2 with a clear line', async (t) => {
    // Running as root, chmod does not stop writes; /proc refuses new files to everyone.
    let dir = '/proc';
    if (process.getuid?.() !== 0) {
      dir = path.join(tmp, 'readonly-files');
      await mkdir(dir, { mode: 0o555 });
    } else if (!existsSync('/proc/self')) {
      t.skip('running as root without /proc: no directory refuses writes');
      return;
    }
    const res = await runMuxd(['serve', '--root', SITE, '--files-dir', dir, '--http-port', '0', '--binary-port', '0']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /^muxd serve: --files-dir \S+: not writable \(\w+\): uploads could not be stored$/m);
    assert.doesNotMatch(res.stderr, /\n\s+at /);
  });

  test('no stack trace for operator mistakes in other commands', async () => {
    const compress = await runMuxd(['compress', path.join(tmp, 'nonexistent')]);
    assert.equal(compress.code, 2);
    assert.match(compress.stderr, /^muxd compress: .*nonexistent: no such directory$/m);
    assert.doesNotMatch(compress.stderr, /\n\s+at /);
    const put = await runMuxd(['put', path.join(tmp, 'nonexistent-file'), '--port', '1']);
    assert.notEqual(put.code, 0);
    assert.doesNotMatch(put.stderr, /\n\s+at /);
    const get = await runMuxd(['get', 'x', '-o', path.join(tmp, 'no-dir', 'x'), '--port', '1']);
    assert.notEqual(get.code, 0);
    assert.doesNotMatch(get.stderr, /\n\s+at /);
  });

  test('a reader that closes our stdout early (muxd stats | head) ends the command, not in a stack trace', async () => {
    const dir = path.join(tmp, 'epipe');
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(path.join(dir, `f${i}.txt`), 'muxd '.repeat(4000));
    const child = spawn(process.execPath, [MUXD_BIN, 'compress', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The read end is gone before the first line is written: every write is EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|\n\s+at /);
  });
});

describe('Unix sockets for both faces', () => {
  test('curl --unix-socket gets the landing page; mode 0660 by default; the access log says unix:', { skip: HAVE_CURL ? false : 'no curl' }, async () => {
    const hsock = path.join(tmp, 'curl-http.sock');
    const log = path.join(tmp, 'unix-access.log');
    const p = spawnServe([...base('f-curl'), '--http-socket', hsock, '--binary-port', '0', '--access-log', log]);
    try {
      await ready(p);
      assert.match(p.output(), new RegExp(`^muxd http listening on ${hsock.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
      assert.equal((await stat(hsock)).mode & 0o777, 0o660);
      const res = await curl(['--unix-socket', hsock, '-A', 'unix-agent', 'http://localhost/']);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout.toString(), readFileSync(path.join(SITE, 'index.html'), 'utf8'));
      let text = '';
      for (let i = 0; i < 100 && !text.includes('unix-agent'); i++) {
        await sleep(50);
        text = await readFile(log, 'utf8').catch(() => '');
      }
      assert.match(text, /^unix: - - \[[^\]]+\] "GET \/ HTTP\/1\.1" 200 \d+ "-" "unix-agent"$/m);
      p.proc.kill('SIGTERM');
      assert.equal(await exitWithin(p, 10_000), 0);
      assert.ok(!existsSync(hsock));
    } finally {
      kill(p);
    }
  });

  test('--socket-mode sets the permissions of both socket files', async () => {
    const hsock = path.join(tmp, 'mode-http.sock');
    const bsock = path.join(tmp, 'mode-binary.sock');
    const p = spawnServe([...base('f-mode'), '--http-socket', hsock, '--binary-socket', bsock, ...ANY_UDP, '--socket-mode', '0600']);
    try {
      await ready(p);
      assert.equal((await stat(hsock)).mode & 0o777, 0o600);
      assert.equal((await stat(bsock)).mode & 0o777, 0o600);
    } finally {
      p.proc.kill('SIGTERM');
      await p.exited;
    }
  });
});

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

describe('file-descriptor exhaustion', () => {
  test('under ulimit -n 256, 600 connections neither kill the server nor spin it; it serves again once they close', { skip: existsSync('/proc/self/stat') ? false : 'needs /proc' }, async () => {
    const p = spawnServe([...base('f-emfile'), '--http-port', '0', '--binary-port', '0'], 'ulimit -n 256');
    const clients: net.Socket[] = [];
    try {
      const { http, binary } = await ready(p);
      let closedByServer = 0;
      for (let i = 0; i < 600; i++) {
        const c = net.connect(i % 2 === 0 ? http : binary, '127.0.0.1');
        c.on('error', () => undefined);
        c.on('close', () => closedByServer++);
        clients.push(c);
      }
      await sleep(1500);
      // Held at the limit: measure CPU over two seconds. A spinning accept loop burns ~2 s.
      const before = cpuSeconds(p.proc.pid!);
      await sleep(2000);
      const used = cpuSeconds(p.proc.pid!) - before;
      assert.ok(used < 1, `CPU seconds used while at the fd limit: ${used}`);
      assert.equal(p.proc.exitCode, null, `the server is alive:\n${p.output()}`);
      assert.ok(closedByServer > 0, 'connections past the limit were shed, not left hanging');
      for (const c of clients) c.destroy();
      await sleep(500);
      const s = net.connect(http, '127.0.0.1');
      assert.match(await getHead(s), /^HTTP\/1\.1 200 /);
      s.destroy();
      const ping = await runMuxd(['ping', '--port', String(binary), '--count', '1']);
      assert.equal(ping.code, 0, ping.stderr);
      p.proc.kill('SIGTERM');
      assert.equal(await exitWithin(p, 10_000), 0);
    } finally {
      for (const c of clients) c.destroy();
      kill(p);
    }
  });
});
