// The listener's per-address cap, its refusal reasons and the shutdown side of the Connection
// contract (drain, idle, abort), with a dummy protocol: src/loop knows no real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { addressKey, listen, type Connection, type Listener, type ListenOptions, type Refusal } from '../../src/loop/listener.js';
import { Metrics } from '../../src/loop/metrics.js';
import type { BytePipe } from '../../src/loop/pipe.js';
import { drainListeners } from '../../src/loop/shutdown.js';
import { prepareSocketPath } from '../../src/loop/unix-socket.js';
import { waitFor } from '../helpers/wait.js';

const until = async (cond: () => boolean, what: string): Promise<void> => {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** A client that resolves with everything it read once the server closes it. */
function client(port: number, host = '127.0.0.1', localAddress?: string): { socket: Socket; text: Promise<string>; connected: Promise<void> } {
  const socket = net.connect({ port, host, localAddress });
  let s = '';
  socket.on('data', (c: Buffer) => (s += c.toString()));
  const text = new Promise<string>((resolve) => {
    socket.on('close', () => resolve(s));
    socket.on('error', () => undefined);
  });
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, text, connected };
}

async function demo(over: Partial<ListenOptions> = {}): Promise<{ listener: Listener; metrics: Metrics; refusals: Refusal[] }> {
  const metrics = new Metrics();
  const refusals: Refusal[] = [];
  const listener = await listen({
    name: 'demo',
    endpoint: { host: '127.0.0.1', port: 0 },
    maxConnections: 100,
    metrics,
    log: () => undefined,
    onConnection: () => {},
    onRefuse: (s, r) => {
      refusals.push(r);
      s.end(`refused ${r.reason} ${r.limit}`);
    },
    ...over,
  });
  return { listener, metrics, refusals };
}

test('addressKey: an IPv4-mapped IPv6 address is its IPv4 address; others are themselves', () => {
  const table: [string, string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['::1', '::1'],
    ['2001:db8::ffff:1', '2001:db8::ffff:1'],
    ['::ffff:abcd', '::ffff:abcd'],
  ];
  for (const [input, key] of table) assert.equal(addressKey(input), key, input);
});

test('per-address cap: the next connection from that address is refused with its reason, others are served', async () => {
  const { listener, metrics, refusals } = await demo({ maxConnectionsPerIp: 2 });
  const a = client(listener.port);
  const b = client(listener.port);
  await Promise.all([a.connected, b.connected]);
  await until(() => metrics.open.demo === 2, 'two open');
  const c = client(listener.port);
  assert.equal(await c.text, 'refused max-connections-per-ip 2');
  assert.deepEqual(refusals, [{ reason: 'max-connections-per-ip', limit: 2 }]);
  // Loopback is not exempt, but 127.0.0.2 is another address.
  const other = client(listener.port, '127.0.0.1', '127.0.0.2');
  await other.connected;
  await until(() => metrics.open.demo === 3, 'other address accepted');
  assert.equal(metrics.refused.demo, 1);
  assert.equal(metrics.counters['demo.refused.maxConnectionsPerIp'], 1);
  assert.equal(metrics.counters['demo.refused.maxConnections'], 0);
  // Closing one gives its slot back.
  a.socket.destroy();
  await until(() => metrics.open.demo === 2, 'slot back');
  const d = client(listener.port);
  await d.connected;
  await until(() => metrics.open.demo === 3, 'accepted again');
  for (const x of [b, other, d]) x.socket.destroy();
  await listener.close();
  metrics.close();
});

test('per-address cap counts IPv4-mapped IPv6 peers as their IPv4 address (dual-stack listener)', async (t) => {
  let probe: Awaited<ReturnType<typeof demo>>;
  try {
    probe = await demo({ endpoint: { host: '::', port: 0 }, maxConnectionsPerIp: 1 });
  } catch {
    t.skip('no IPv6 on this machine');
    return;
  }
  const { listener, metrics } = probe;
  const seen: string[] = [];
  const a = client(listener.port, '127.0.0.1');
  await a.connected;
  await until(() => metrics.open.demo === 1, 'first open');
  for (const s of listener.sockets) seen.push(s.remoteAddress!);
  assert.deepEqual(seen, ['::ffff:127.0.0.1']);
  const b = client(listener.port, '127.0.0.1');
  assert.equal(await b.text, 'refused max-connections-per-ip 1');
  a.socket.destroy();
  await listener.close();
  metrics.close();
});

test('the total cap is checked first and says so; 0 means no per-address limit', async () => {
  const { listener, metrics, refusals } = await demo({ maxConnections: 1, maxConnectionsPerIp: 0 });
  const a = client(listener.port);
  await a.connected;
  await until(() => metrics.open.demo === 1, 'one open');
  const b = client(listener.port);
  assert.equal(await b.text, 'refused max-connections 1');
  assert.deepEqual(refusals, [{ reason: 'max-connections', limit: 1 }]);
  assert.equal(metrics.counters['demo.refused.maxConnections'], 1);
  a.socket.destroy();
  await listener.close();
  metrics.close();
});

/** A dummy protocol: each connection "works" until told it is done. */
class Dummy implements Connection {
  deadline = 0;
  drained = false;
  busy = true;
  constructor(readonly socket: BytePipe) {}
  onDeadline(): void {}
  drain(): void {
    this.drained = true;
    if (!this.busy) this.socket.end();
  }
  finish(): void {
    this.busy = false;
    if (this.drained) this.socket.end();
  }
  abort(): boolean {
    const cut = this.busy;
    this.socket.destroy();
    return cut;
  }
}

test('shutdown: stop accepting, drain every connection, wait for them, then report a clean stop', async () => {
  const conns: Dummy[] = [];
  const { listener, metrics } = await demo({
    allowHalfOpen: true,
    onConnection: (s) => {
      const d = new Dummy(s);
      conns.push(d);
      return d;
    },
  });
  const a = client(listener.port);
  const b = client(listener.port);
  await until(() => conns.length === 2, 'two connections');
  conns[0]!.finish();
  const lines: string[] = [];
  const done = drainListeners([listener], 10_000, (l) => lines.push(l));
  assert.deepEqual(lines, ['muxd stopping: 2 connections draining']);
  assert.ok(conns.every((c) => c.drained));
  // No new connections once shutdown began.
  const late = net.connect(listener.port, '127.0.0.1');
  const lateError = await new Promise<string>((resolve) => {
    late.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
    late.once('connect', () => resolve('connected'));
  });
  assert.equal(lateError, 'ECONNREFUSED');
  // The finished one closed at once; the busy one holds the shutdown until it finishes.
  a.socket.end();
  await until(() => metrics.open.demo === 1, 'idle one closed');
  conns[1]!.finish();
  b.socket.end();
  assert.deepEqual(await done, { draining: 2, cut: 0, leftAtTimeout: 0 });
  await listener.close();
  metrics.close();
});

test('shutdown: at the timeout what is left is aborted and counted as cut; a protocol without drain() is closed at once', async () => {
  const conns: Dummy[] = [];
  const { listener, metrics } = await demo({
    onConnection: (s) => {
      const d = new Dummy(s);
      conns.push(d);
      return d;
    },
  });
  const plain = await demo({});
  const busy = client(listener.port);
  const bare = client(plain.listener.port);
  await until(() => conns.length === 1 && plain.metrics.open.demo === 1, 'connections');
  const started = Date.now();
  const report = await drainListeners([listener, plain.listener], 300, () => undefined);
  assert.ok(Date.now() - started >= 250, 'waited for the timeout');
  assert.deepEqual(report, { draining: 2, cut: 1, leftAtTimeout: 1 });
  await busy.text;
  await bare.text;
  assert.equal(metrics.open.demo, 0);
  await listener.close();
  await plain.listener.close();
  metrics.close();
  plain.metrics.close();
});

test('Unix socket: socket mode applied, the file removed on close; removeSocketFile spares a later server\'s socket', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'muxd-loop-'));
  const sock = path.join(dir, 'demo.sock');
  const { listener, metrics } = await demo({ endpoint: { path: sock }, socketMode: 0o600, maxConnectionsPerIp: 1 });
  assert.equal((await stat(sock)).mode & 0o777, 0o600);
  assert.equal(listener.path, sock);
  // Unix peers have no address and are not counted per address.
  const a = client(0);
  a.socket.destroy();
  const c1 = net.connect(sock);
  const c2 = net.connect(sock);
  await until(() => metrics.open.demo === 2, 'two Unix peers');
  c1.destroy();
  c2.destroy();
  await listener.close();
  await assert.rejects(stat(sock), { code: 'ENOENT' });
  // Another server's socket now at the path: not ours to remove.
  const other = net.createServer().listen(sock);
  await new Promise((r) => other.once('listening', r));
  listener.removeSocketFile();
  assert.ok((await stat(sock)).isSocket());
  await new Promise((r) => other.close(r));
  // While it listens, the file is ours: removeSocketFile takes it away at once (for exits that cannot wait).
  const again = await demo({ endpoint: { path: sock } });
  again.listener.removeSocketFile();
  await assert.rejects(stat(sock), { code: 'ENOENT' });
  await again.listener.close();
  again.metrics.close();
  metrics.close();
  await rm(dir, { recursive: true, force: true });
});

test('prepareSocketPath: missing is fine, a stale socket is removed, a live one or a non-socket is a problem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'muxd-loop-'));
  const p = path.join(dir, 's.sock');
  assert.equal(await prepareSocketPath('--x', p), null);
  // A stale socket: bound by a server that never closed it (as after kill -9).
  const { spawnSync } = await import('node:child_process');
  const made = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.equal(made.signal, 'SIGKILL');
  assert.ok((await stat(p)).isSocket(), 'stale socket file left behind');
  assert.equal(await prepareSocketPath('--x', p), null);
  await assert.rejects(stat(p), { code: 'ENOENT' });
  // A live one.
  const live = net.createServer().listen(p);
  await new Promise((r) => live.once('listening', r));
  assert.match((await prepareSocketPath('--x', p))!, /^--x .*s\.sock: another server is listening/);
  await new Promise((r) => live.close(r));
  // Not a socket: never removed.
  await writeFile(p, 'precious');
  assert.match((await prepareSocketPath('--x', p))!, /exists and is not a socket/);
  assert.ok((await stat(p)).isFile());
  await rm(dir, { recursive: true, force: true });
});

test('backlog: a burst deeper than a short accept queue waits for TCP retries; a long queue takes it at once', async () => {
  // 300 connect() calls in one synchronous run: on loopback the kernel completes each handshake
  // within the call, so all 300 land in the accept queue before the listener can take any.
  const burst = 300;
  // A handshake the full queue dropped is retried after TCP's initial retransmission timeout
  // (1 s on Linux). The short queue is counted at a fixed 150 ms (a slow machine only lowers
  // its count); the long one may take until 700 ms, so that a loaded machine accepting 300
  // connections slowly is not mistaken for a queue that dropped them.
  const acceptedSoon = async (backlog: number, waitAll: boolean): Promise<number> => {
    let accepted = 0;
    const { listener } = await demo({ backlog, maxConnections: 1000, onConnection: () => void accepted++ });
    const clients: Socket[] = [];
    for (let i = 0; i < burst; i++) clients.push(net.connect({ port: listener.port, host: '127.0.0.1' }).on('error', () => undefined));
    if (waitAll) await waitFor(() => accepted === burst, { what: 'the whole burst accepted', timeoutMs: 700 }).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, 150));
    const n = accepted;
    for (const c of clients) c.destroy();
    await listener.close();
    return n;
  };
  const long = await acceptedSoon(1024, true);
  const short = await acceptedSoon(16, false);
  assert.equal(long, burst, 'a 1024-deep queue holds the whole burst');
  assert.ok(short < burst / 2, `a 16-deep queue: ${short} of ${burst} accepted within 150 ms`);
});
