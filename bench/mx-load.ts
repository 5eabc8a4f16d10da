// An MX/1 load generator in the spirit of redis-benchmark. The parent spawns `procs` worker
// processes pinned to the generator core, each with its share of the connections; all workers
// measure the same wall-clock window (--start-at) and send back counts and a sparse latency
// histogram as one JSON line, which the parent merges.
//
//   node dist/bench/mx-load.js --port 9000 --connections 50 --depth 16 --payload 1024 --duration 5
//   node dist/bench/mx-load.js --port 9000 --mode fanout --members 100 --duration 5
//   node dist/bench/mx-load.js --port 9000 --mode transfer --size 67108864
//   node dist/bench/mx-load.js --port 8080 --transport ws --depth 16 --duration 5
//   node dist/bench/mx-load.js --port 9443 --transport tls --duration 5
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Histogram } from './lib/stats.js';
import { LoadMeter, type LoadSample } from './lib/sample.js';
import { spawnPinned, stopChild } from './lib/proc.js';
import { patterned } from './lib/fixtures.js';
import { MX, MX_HEADER, FrameScanner, describeError, encodeFrame, readU64, writeHeader, writeU64 } from './lib/mx.js';
import { DEFAULT_WS_PATH, WS_OP, WsDeframer, clientEncoder, wsHandshake } from './lib/ws.js';

export type MxMode = 'ping' | 'fanout' | 'transfer';
/** How MX/1 travels: plain TCP, TLS (ALPN mx1), or one frame per WebSocket message (ws, or wss over TLS). */
export type MxTransport = 'tcp' | 'tls' | 'ws' | 'wss';
export const TRANSPORTS: readonly MxTransport[] = ['tcp', 'tls', 'ws', 'wss'];

export interface MxLoadOptions {
  host: string;
  port: number;
  mode: MxMode;
  /** ping: total connections, split across processes. */
  connections: number;
  /** Requests in flight per connection (ping), or SAYs in flight for the fan-out sender. */
  depth: number;
  /** PING payload bytes, or SAY text bytes. */
  payload: number;
  durationSeconds: number;
  procs: number;
  /** fanout: joined members, the sender included. */
  members: number;
  /** fanout: members connect to these ports in turn (the sender to the first); default [port]. */
  ports?: number[];
  /** transfer: bytes PUT then GET. */
  size: number;
  /**
   * transfer: 'once' PUTs then GETs one file once; 'put' repeats PUTs of `size` bytes and 'get'
   * repeats GETs of one file (PUT first, untimed) for `durationSeconds` (at least one each).
   */
  transfer?: 'once' | 'put' | 'get';
  warmupMs: number;
  transport: MxTransport;
  /** ws/wss: the request target of the upgrade. */
  wsPath: string;
}

export const DEFAULTS: MxLoadOptions = {
  host: '127.0.0.1',
  port: 9000,
  mode: 'ping',
  connections: 50,
  depth: 1,
  payload: 0,
  durationSeconds: 5,
  procs: 1,
  members: 100,
  size: 64 * 1024 * 1024,
  warmupMs: 500,
  transport: 'tcp',
  wsPath: DEFAULT_WS_PATH,
};

/** What one worker prints (one JSON line). */
interface WorkerReport {
  completed: number;
  errors: number;
  windowMs: number;
  /** Sparse histogram: [bucket, count] pairs. */
  hist: [number, number][];
  /** fanout: sparse histogram of SAY-to-MESSAGE delivery latency (µs), over every receiver. */
  deliveryHist: [number, number][];
  delivered: number;
  putSeconds: number;
  getSeconds: number;
  /** transfer: bytes moved in putSeconds / getSeconds (several transfers when repeated). */
  putBytes?: number;
  getBytes?: number;
  /** transfer: the timed part, in Date.now() milliseconds (for the CPU sample's window). */
  windowFrom?: number;
  windowTo?: number;
  firstError: string;
}

export interface MxLoadResult extends LoadSample {
  /** Replies per second (ping), SAYs acknowledged per second (fanout). */
  opsPerSecond: number;
  /** fanout: MESSAGE pushes received per second by all members together. */
  deliveredPerSecond: number;
  p50Micros: number;
  p99Micros: number;
  /** fanout: from the sender writing a SAY to a member reading its MESSAGE, all members. */
  deliveryP50Micros: number;
  deliveryP99Micros: number;
  errors: number;
  firstError: string;
  /** transfer: MB/s (10^6 bytes) of the PUT and of the GET. */
  putMBps: number;
  getMBps: number;
}

// ---------------------------------------------------------------- worker side

/**
 * One connection of any transport. `wrap` turns an MX/1 frame into what goes on the wire (itself,
 * or a masked WebSocket message); `read` takes the socket's chunks and feeds the MX/1 bytes in
 * them to the scanner given to `attach`.
 */
interface Conn {
  socket: Socket;
  wrap(frame: Buffer): Buffer;
  attach(scanner: FrameScanner): void;
  read(chunk: Buffer): void;
}

function connectSocket(o: MxLoadOptions, port: number): Promise<Socket> {
  const secure = o.transport === 'tls' || o.transport === 'wss';
  return new Promise((resolve, reject) => {
    // A bench certificate is self-signed for 127.0.0.1: the load measures the server, not verification.
    const s: Socket = secure
      ? tlsConnect({ host: o.host, port, rejectUnauthorized: false, ALPNProtocols: [o.transport === 'tls' ? 'mx1' : 'http/1.1'] })
      : connect(port, o.host);
    s.setNoDelay(true);
    s.once(secure ? 'secureConnect' : 'connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function open(o: MxLoadOptions, port: number = o.port): Promise<Conn> {
  const socket = await connectSocket(o, port);
  if (o.transport === 'tcp' || o.transport === 'tls') {
    let scanner: FrameScanner | null = null;
    return { socket, wrap: (f) => f, attach: (s) => void (scanner = s), read: (chunk) => scanner!.push(chunk) };
  }
  const leftover = await wsHandshake(socket, o.host, port, o.wsPath);
  const encoder = clientEncoder();
  let scanner: FrameScanner | null = null;
  const deframer = new WsDeframer({
    data: (bytes) => scanner!.push(bytes),
    control(opcode, payload) {
      if (opcode === WS_OP.PING) socket.write(encoder.pong(payload));
      else if (opcode === WS_OP.CLOSE) socket.emit('error', new Error(`the server closed the WebSocket${payload.length >= 2 ? ` with ${payload.readUInt16BE(0)} ${payload.toString('utf8', 2)}` : ''}`));
    },
  });
  return {
    socket,
    wrap: (f) => encoder.binary(f),
    attach(s) {
      scanner = s;
      if (leftover.length > 0) deframer.push(leftover);
    },
    read: (chunk) => deframer.push(chunk),
  };
}

/** Waits until Date.now() reaches `at` (the shared start across worker processes). */
const until = (at: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

class Window {
  measuring = false;
  constructor(readonly from: number, readonly to: number) {}
}

async function pingWorker(o: MxLoadOptions, connections: number, startAt: number): Promise<WorkerReport> {
  const hist = new Histogram();
  const payload = Buffer.alloc(o.payload, 0x61);
  const report: WorkerReport = { completed: 0, errors: 0, windowMs: o.durationSeconds * 1000, hist: [], deliveryHist: [], delivered: 0, putSeconds: 0, getSeconds: 0, firstError: '' };
  const conns = await Promise.all(Array.from({ length: connections }, () => open(o)));
  await until(startAt);
  const win = new Window(startAt + o.warmupMs, startAt + o.warmupMs + o.durationSeconds * 1000);
  let running = true;
  for (const conn of conns) {
    const socket = conn.socket;
    // Encoded once: slot k always carries id k, so a reply's id says which send time to use. Over
    // WebSocket the masked message is made once per slot too (its key drawn then), so the
    // generator's cost per frame is the TCP mode's; the server unmasks every message all the same.
    const frames = Array.from({ length: o.depth }, (_, k) => conn.wrap(encodeFrame(MX.PING, k + 1, payload)));
    const sentAt = new Float64Array(o.depth + 1);
    const resend: Buffer[] = [];
    let now = 0;
    const scanner = new FrameScanner({
      frame(type, id, _len, body) {
        if (win.measuring) {
          if (type === MX.PING_OK) {
            report.completed++;
            hist.record((now - sentAt[id]!) * 1000);
          } else {
            report.errors++;
            if (report.firstError === '') report.firstError = describeError(body);
          }
        }
        if (running && id >= 1 && id <= o.depth) {
          sentAt[id] = now;
          resend.push(frames[id - 1]!);
        }
      },
    }, 0);
    conn.attach(scanner);
    socket.on('data', (chunk: Buffer) => {
      now = performance.now();
      conn.read(chunk);
      if (resend.length === 1) socket.write(resend[0]!);
      else if (resend.length > 1) {
        socket.cork();
        for (const f of resend) socket.write(f);
        socket.uncork();
      }
      resend.length = 0;
    });
    socket.on('error', (e) => {
      report.errors++;
      if (report.firstError === '') report.firstError = e.message;
    });
    const t = performance.now();
    sentAt.fill(t);
    socket.write(Buffer.concat(frames));
  }
  await measure(win);
  running = false;
  for (const c of conns) c.socket.destroy();
  report.hist = sparse(hist);
  return report;
}

/** Sleeps through warm-up, flips `measuring` on for the window, then off. */
async function measure(win: Window): Promise<void> {
  await until(win.from);
  win.measuring = true;
  await until(win.to);
  win.measuring = false;
}

function sparse(h: Histogram): [number, number][] {
  const out: [number, number][] = [];
  h.counts.forEach((c, i) => {
    if (c > 0) out.push([i, c]);
  });
  return out;
}

/** Sends one frame and resolves with the first reply of `id` (errors reject). */
function request(conn: Conn, scannerReplies: Map<number, (type: number, body: Buffer | null) => void>, frame: Buffer, id: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    scannerReplies.set(id, (type, body) => {
      scannerReplies.delete(id);
      if (type === MX.ERROR) reject(new Error(describeError(body)));
      else resolve(body);
    });
    conn.socket.write(conn.wrap(frame));
  });
}

/**
 * One worker hosts `members` joined connections; the worker with `sender` also runs the sender
 * (its first member), which keeps `depth` SAYs in flight. Receivers count MESSAGE pushes.
 */
async function fanoutWorker(o: MxLoadOptions, members: number, sender: boolean, workerIndex: number, startAt: number): Promise<WorkerReport> {
  const report: WorkerReport = { completed: 0, errors: 0, windowMs: o.durationSeconds * 1000, hist: [], deliveryHist: [], delivered: 0, putSeconds: 0, getSeconds: 0, firstError: '' };
  const hist = new Histogram();
  const tag = randomBytes(3).toString('hex');
  const win = new Window(startAt + o.warmupMs, startAt + o.warmupMs + o.durationSeconds * 1000);
  let running = true;
  const sockets: Socket[] = [];
  const deliveryHist = new Histogram();
  // The text starts with the send time in µs since the epoch (ASCII: SAY text is UTF-8), so any
  // receiver, in any process, can tell how long delivery took; 'b's pad it to the payload size.
  const textBytes = Math.max(17, o.payload);
  const say = (k: number, at: number): Buffer => {
    const text = Buffer.alloc(textBytes, 0x62);
    text.write(String(Math.round((performance.timeOrigin + at) * 1000)).padStart(16, '0'), 0, 'latin1');
    return encodeFrame(MX.SAY, 1000 + k, text);
  };
  const sentAt = new Float64Array(o.depth);
  const ports = o.ports ?? [o.port];
  for (let i = 0; i < members; i++) {
    // Members take the ports in turn, counting across worker processes.
    const conn = await open(o, ports[(workerIndex * members + i) % ports.length]!);
    const socket = conn.socket;
    sockets.push(socket);
    const waiting = new Map<number, (type: number, body: Buffer | null) => void>();
    const isSender = sender && i === 0;
    let now = 0;
    const resend: Buffer[] = [];
    const scanner = new FrameScanner({
      frame(type, id, _len, body) {
        const waiter = waiting.get(id);
        if (waiter) return waiter(type, body);
        if (type === MX.MESSAGE) {
          if (win.measuring) {
            report.delivered++;
            if (body !== null && body.length >= 18) {
              const from = body.readUInt16BE(0);
              const sent = Number(body.toString('latin1', 2 + from, 2 + from + 16));
              if (Number.isFinite(sent)) deliveryHist.record(Math.max(0, (performance.timeOrigin + now) * 1000 - sent));
            }
          }
        } else if (type === MX.SAY_OK && isSender) {
          const k = id - 1000;
          if (win.measuring) {
            report.completed++;
            hist.record((now - sentAt[k]!) * 1000);
          }
          if (running) {
            sentAt[k] = now;
            resend.push(conn.wrap(say(k, now)));
          }
        } else if (type === MX.ERROR) {
          report.errors++;
          if (report.firstError === '') report.firstError = describeError(body);
        }
      },
    });
    conn.attach(scanner);
    socket.on('data', (chunk: Buffer) => {
      now = performance.now();
      conn.read(chunk);
      if (resend.length > 0) {
        socket.cork();
        for (const f of resend) socket.write(f);
        socket.uncork();
        resend.length = 0;
      }
    });
    socket.on('error', (e) => {
      report.errors++;
      if (report.firstError === '') report.firstError = e.message;
    });
    // JOIN rest:name; names must be unique, so each worker tags its own.
    await request(conn, waiting, encodeFrame(MX.JOIN, 1, Buffer.from(`b${tag}w${workerIndex}m${i}`)), 1);
    if (isSender) {
      void until(startAt).then(() => {
        const t = performance.now();
        sentAt.fill(t);
        socket.write(Buffer.concat(Array.from({ length: o.depth }, (_, k) => conn.wrap(say(k, t)))));
      });
    }
  }
  await measure(win);
  running = false;
  for (const s of sockets) s.destroy();
  report.hist = sparse(hist);
  report.deliveryHist = sparse(deliveryHist);
  return report;
}

/**
 * PUT `size` bytes then GET them back over one connection; seconds for each. With
 * `transfer: 'put' | 'get'`, repeats that one operation for `durationSeconds` (GET first PUTs
 * its file, untimed) and reports the bytes and seconds of all of them.
 */
async function transferWorker(o: MxLoadOptions): Promise<WorkerReport> {
  const report: WorkerReport = { completed: 0, errors: 0, windowMs: 0, hist: [], deliveryHist: [], delivered: 0, putSeconds: NaN, getSeconds: NaN, firstError: '' };
  const content = patterned(o.size);
  const digest = createHash('sha256').update(content).digest();
  const name = Buffer.from(`bench-${randomBytes(4).toString('hex')}.bin`);
  if (o.transport === 'ws' || o.transport === 'wss') throw new Error('transfer runs over tcp or tls only');
  const conn = await open(o);
  const socket = conn.socket;
  const waiting = new Map<number, (type: number, body: Buffer | null) => void>();
  let getId = 0;
  let getBytes = 0;
  let onGetData: (() => void) | null = null;
  const scanner = new FrameScanner({
    frame(type, id, _len, body) {
      const waiter = waiting.get(id);
      if (waiter && type !== MX.DATA) waiter(type, body);
      else if (type === MX.ERROR) {
        report.errors++;
        if (report.firstError === '') report.firstError = describeError(body);
      }
    },
    data(id, bytes) {
      if (id === getId) {
        getBytes += bytes;
        onGetData?.();
      }
    },
  });
  conn.attach(scanner);
  socket.on('data', (chunk: Buffer) => conn.read(chunk));
  let nextId = 1;
  // PUT: u64 size + 32-byte SHA-256 + rest:name, then DATA frames with the same id.
  const putOnce = async (): Promise<number> => {
    const id = nextId++;
    const put = Buffer.alloc(8 + 32 + name.length);
    writeU64(put, 0, o.size);
    digest.copy(put, 8);
    name.copy(put, 40);
    const t0 = performance.now();
    const done = request(conn, waiting, encodeFrame(MX.PUT, id, put), id);
    const CHUNK = 256 * 1024;
    for (let off = 0; off < o.size; off += CHUNK) {
      const part = content.subarray(off, Math.min(o.size, off + CHUNK));
      const head = Buffer.allocUnsafe(MX_HEADER);
      writeHeader(head, 0, MX.DATA, id, part.length);
      socket.write(head);
      if (!socket.write(part)) await new Promise<void>((r) => socket.once('drain', r));
    }
    await done;
    return (performance.now() - t0) / 1000;
  };
  // GET: u64 offset + rest:name -> GET_OK (u64 size + SHA-256), then DATA frames with its id.
  const getOnce = async (): Promise<number> => {
    const id = (getId = nextId++);
    getBytes = 0;
    const get = Buffer.alloc(8 + name.length);
    writeU64(get, 0, 0);
    name.copy(get, 8);
    const t1 = performance.now();
    const info = await request(conn, waiting, encodeFrame(MX.GET, id, get), id);
    const size = info && info.length >= 8 ? readU64(info, 0) : o.size;
    if (size !== o.size) throw new Error(`GET_OK announced ${size} bytes, PUT sent ${o.size}`);
    if (getBytes < size) await new Promise<void>((r) => (onGetData = () => getBytes >= size && r()));
    onGetData = null;
    return (performance.now() - t1) / 1000;
  };
  try {
    const op = o.transfer ?? 'once';
    if (op === 'once') {
      report.putSeconds = await putOnce();
      report.getSeconds = await getOnce();
      report.completed = 2;
    } else {
      if (op === 'get') await putOnce();
      const run = op === 'put' ? putOnce : getOnce;
      const until = Date.now() + o.durationSeconds * 1000;
      let seconds = 0;
      report.windowFrom = Date.now();
      do {
        seconds += await run();
        report.completed++;
      } while (Date.now() < until);
      report.windowTo = Date.now();
      if (op === 'put') {
        report.putSeconds = seconds;
        report.putBytes = report.completed * o.size;
      } else {
        report.getSeconds = seconds;
        report.getBytes = report.completed * o.size;
      }
    }
  } catch (e) {
    report.errors++;
    report.firstError = (e as Error).message;
  } finally {
    socket.destroy();
  }
  return report;
}

// ---------------------------------------------------------------- parent side

const SELF = fileURLToPath(import.meta.url);

/** Spreads `total` over `parts` as evenly as possible. */
export function share(total: number, parts: number, index: number): number {
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0);
}

/**
 * Runs one load: spawns the workers on `core`, samples `serverPid` (when given) during the
 * measured window, merges the reports.
 */
export async function runMxLoad(o: MxLoadOptions, core: number, serverPid?: number): Promise<MxLoadResult> {
  const procs = o.mode === 'transfer' ? 1 : Math.max(1, Math.min(o.procs, o.mode === 'fanout' ? o.members : o.connections));
  // Time to connect (and join) before the shared start.
  const prepMs = 800 + (o.mode === 'fanout' ? o.members * 10 : o.connections * 2);
  const startAt = Date.now() + prepMs;
  const fromPerf = performance.now() + prepMs + o.warmupMs;
  const meter = serverPid !== undefined ? new LoadMeter(serverPid) : null;
  const workers = Array.from({ length: procs }, (_, i) => {
    const n = o.mode === 'fanout' ? share(o.members, procs, i) : share(o.connections, procs, i);
    const args = [SELF, '--worker', JSON.stringify({ ...o, share: n, index: i, startAt })];
    const pc = spawnPinned(process.execPath, args, { core, keepAllStdout: true });
    meter?.addGenerator(pc.pid);
    return pc;
  });
  const limitMs = prepMs + o.warmupMs + o.durationSeconds * 1000 + (o.mode === 'transfer' ? 300_000 : 30_000);
  const killer = setTimeout(() => workers.forEach((w) => void stopChild(w)), limitMs);
  await Promise.all(workers.map((w) => w.exited));
  clearTimeout(killer);
  // A repeated transfer reports its timed part in Date.now() time; the meter counts in performance.now().
  const reports = workers.map((w) => parseReport(w.stdout()));
  const first = reports[0];
  const timed = o.mode === 'transfer' && first?.windowFrom !== undefined && first.windowTo !== undefined ? { from: first.windowFrom - performance.timeOrigin, to: first.windowTo - performance.timeOrigin } : undefined;
  const sample = meter?.stop(o.mode === 'transfer' ? timed : { from: fromPerf, to: fromPerf + o.durationSeconds * 1000 }) ?? { serverCpu: NaN, generatorCpu: NaN, serverPeakRss: NaN, wallSeconds: NaN };
  const hist = new Histogram();
  const deliveryHist = new Histogram();
  let completed = 0;
  let delivered = 0;
  let errors = 0;
  let firstError = '';
  let put = NaN;
  let get = NaN;
  for (const [i, w] of workers.entries()) {
    const r = reports[i];
    if (r === undefined) {
      errors++;
      firstError ||= `worker printed no report: ${w.stderr().slice(0, 300)}`;
      continue;
    }
    completed += r.completed;
    delivered += r.delivered;
    errors += r.errors;
    firstError ||= r.firstError;
    const counts: number[] = [];
    for (const [b, c] of r.hist) counts[b] = c;
    hist.merge(Array.from(counts, (c) => c ?? 0));
    const delivery: number[] = [];
    for (const [b, c] of r.deliveryHist ?? []) delivery[b] = c;
    deliveryHist.merge(Array.from(delivery, (c) => c ?? 0));
    if (o.mode === 'transfer') {
      // The operation a repeated transfer did not time reports no seconds (NaN reaches JSON as null): n/a, not Infinity.
      const rate = (bytes: number | undefined, seconds: number | null): number => (seconds !== null && seconds > 0 ? (bytes ?? o.size) / 1e6 / seconds : NaN);
      put = rate(r.putBytes, r.putSeconds);
      get = rate(r.getBytes, r.getSeconds);
    }
  }
  const secs = o.durationSeconds;
  return {
    ...sample,
    opsPerSecond: completed / secs,
    deliveredPerSecond: delivered / secs,
    p50Micros: hist.quantile(0.5),
    p99Micros: hist.quantile(0.99),
    deliveryP50Micros: deliveryHist.quantile(0.5),
    deliveryP99Micros: deliveryHist.quantile(0.99),
    errors,
    firstError,
    putMBps: put,
    getMBps: get,
  };
}

/** A worker's last stdout line as its report; undefined when it printed none. */
function parseReport(stdout: string): WorkerReport | undefined {
  try {
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as WorkerReport;
  } catch {
    return undefined;
  }
}

async function worker(spec: string): Promise<void> {
  const o = JSON.parse(spec) as MxLoadOptions & { share: number; index: number; startAt: number };
  let r: WorkerReport;
  if (o.mode === 'ping') r = await pingWorker(o, o.share, o.startAt);
  else if (o.mode === 'fanout') r = await fanoutWorker(o, o.share, o.index === 0, o.index, o.startAt);
  else r = await transferWorker(o);
  process.stdout.write(JSON.stringify(r) + '\n');
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: 'string' },
      host: { type: 'string', default: DEFAULTS.host },
      port: { type: 'string', default: String(DEFAULTS.port) },
      mode: { type: 'string', default: DEFAULTS.mode },
      connections: { type: 'string', default: String(DEFAULTS.connections) },
      depth: { type: 'string', default: String(DEFAULTS.depth) },
      payload: { type: 'string', default: String(DEFAULTS.payload) },
      duration: { type: 'string', default: String(DEFAULTS.durationSeconds) },
      procs: { type: 'string', default: String(DEFAULTS.procs) },
      members: { type: 'string', default: String(DEFAULTS.members) },
      size: { type: 'string', default: String(DEFAULTS.size) },
      transfer: { type: 'string', default: 'once' },
      core: { type: 'string', default: '1' },
      transport: { type: 'string', default: DEFAULTS.transport },
      'ws-path': { type: 'string', default: DEFAULTS.wsPath },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: node dist/bench/mx-load.js [--host H] [--port P] [--mode ping|fanout|transfer] [--connections N] [--depth N]\n' +
        '         [--payload BYTES] [--duration S] [--procs N] [--members N] [--size BYTES] [--transfer once|put|get] [--core C]\n' +
        '         [--transport tcp|tls|ws|wss] [--ws-path PATH]\n' +
        'The MX/1 load generator against a server already running: ping (PING ops/s and latency),\n' +
        'fanout (SAY to --members joined members, delivered messages/s) or transfer (PUT and GET of\n' +
        '--size bytes, MB/s; --transfer put or get repeats that one for --duration). Pinned to core\n' +
        '--core (taskset); --procs splits the connections.\n' +
        `Defaults: ${DEFAULTS.host}:${DEFAULTS.port}, ${DEFAULTS.mode}, ${DEFAULTS.connections} connections, depth ${DEFAULTS.depth}, ` +
        `${DEFAULTS.payload} B, ${DEFAULTS.durationSeconds} s, ${DEFAULTS.procs} process, ${DEFAULTS.members} members, ${DEFAULTS.size} B, core 1.\n`,
    );
    return;
  }
  if (values.worker !== undefined) return worker(values.worker);
  if (!TRANSPORTS.includes(values.transport as MxTransport)) throw new Error(`--transport must be one of ${TRANSPORTS.join(', ')}`);
  if (values.mode !== 'ping' && values.mode !== 'fanout' && values.mode !== 'transfer') throw new Error('--mode must be ping, fanout or transfer');
  if (values.transfer !== 'once' && values.transfer !== 'put' && values.transfer !== 'get') throw new Error('--transfer must be once, put or get');
  const o: MxLoadOptions = {
    ...DEFAULTS,
    host: values.host,
    port: Number(values.port),
    mode: values.mode,
    connections: Number(values.connections),
    depth: Number(values.depth),
    payload: Number(values.payload),
    durationSeconds: Number(values.duration),
    procs: Number(values.procs),
    members: Number(values.members),
    size: Number(values.size),
    transfer: values.transfer,
    transport: values.transport as MxTransport,
    wsPath: values['ws-path'],
  };
  const r = await runMxLoad(o, Number(values.core));
  const us = (x: number): string => (Number.isFinite(x) ? `${(x / 1000).toFixed(3)} ms` : 'n/a');
  const mbps = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(1)} MB/s` : 'n/a');
  if (o.mode === 'transfer') process.stdout.write(`PUT ${mbps(r.putMBps)}, GET ${mbps(r.getMBps)}${Number.isFinite(r.serverCpu) ? ` (server CPU ${(r.serverCpu * 100).toFixed(0)}%)` : ''}\n`);
  else if (o.mode === 'fanout') process.stdout.write(`SAY ${r.opsPerSecond.toFixed(0)}/s, delivered ${r.deliveredPerSecond.toFixed(0)} messages/s (delivery p99 ${us(r.deliveryP99Micros)}), SAY p50 ${us(r.p50Micros)} p99 ${us(r.p99Micros)}\n`);
  else process.stdout.write(`PING ${r.opsPerSecond.toFixed(0)} ops/s, p50 ${us(r.p50Micros)}, p99 ${us(r.p99Micros)}\n`);
  if (r.errors > 0) process.stdout.write(`errors: ${r.errors} (first: ${r.firstError})\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  cli().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`mx-load: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
