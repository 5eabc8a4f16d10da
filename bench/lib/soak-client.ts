// The soak's clients on raw sockets: the "normal client" probe (a fresh HTTP GET and a fresh MX/1
// PING, in turn, every few ms, each with a timeout) and small one-shot helpers. Every operation
// has a timeout, so nothing here can hang the soak.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { FrameScanner, MX, encodeFrame } from './mx.js';

export interface Target {
  host?: string;
  /** Source address to bind (a normal client on 127.0.0.1, attackers on 127.0.0.2). */
  localAddress?: string;
  timeoutMs?: number;
  /** Filled in as they happen (ms since the call): connected, first byte of the answer. */
  marks?: { connect?: number; firstByte?: number };
  /** httpGet over TLS (a full handshake each time; the bench certificate is not verified). */
  tls?: boolean;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Splits an HTTP response head; returns null until the blank line is in. */
export function parseHead(buf: Buffer): { status: number; headers: Record<string, string>; length: number } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? -1);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  return { status, headers, length: end + 4 };
}

/** One GET over a fresh connection (Connection: close); rejects on timeout, reset or close before the whole body. */
export function httpGet(port: number, path: string, t: Target = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    // tls.connect passes socket.connect() options such as localAddress on (Node docs); its types omit them.
    const tlsOptions: ConnectionOptions & { localAddress?: string } = { port, host: t.host ?? '127.0.0.1', localAddress: t.localAddress, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] };
    const sock: Socket = t.tls ? tlsConnect(tlsOptions) : connect({ port, host: t.host ?? '127.0.0.1', localAddress: t.localAddress });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (e: Error | null, a?: HttpAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolve(a!);
    };
    const timer = setTimeout(() => finish(new Error('timeout')), t.timeoutMs ?? 2000);
    const t0 = performance.now();
    // Over TLS "connected" is the end of the handshake.
    sock.on(t.tls ? 'secureConnect' : 'connect', () => {
      if (t.marks) t.marks.connect = performance.now() - t0;
      sock.write(`GET ${path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (c: Buffer) => {
      if (t.marks && chunks.length === 0) t.marks.firstByte = performance.now() - t0;
      chunks.push(c);
    });
    sock.on('error', (e) => finish(e));
    sock.on('close', () => {
      const all = Buffer.concat(chunks);
      const head = parseHead(all);
      if (head === null) return finish(new Error(all.length === 0 ? 'closed without an answer' : 'truncated head'));
      const body = all.subarray(head.length);
      const cl = head.headers['content-length'];
      if (cl !== undefined && body.length !== Number(cl)) return finish(new Error(`short body ${body.length}/${cl}`));
      finish(null, { status: head.status, headers: head.headers, body });
    });
  });
}

/** One PING over a fresh MX/1 connection; resolves on PING_OK, rejects on ERROR, close or timeout. */
export function mxPing(port: number, t: Target = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: t.host ?? '127.0.0.1', localAddress: t.localAddress });
    let done = false;
    const finish = (e: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error('timeout')), t.timeoutMs ?? 2000);
    const scanner = new FrameScanner({
      frame(type, _id, _len, payload) {
        if (type === MX.PING_OK) finish(null);
        else if (type === MX.ERROR) finish(new Error(`ERROR ${payload !== null && payload.length >= 2 ? payload.readUInt16BE(0) : '?'}`));
      },
    });
    sock.on('connect', () => sock.write(encodeFrame(MX.PING, 1)));
    sock.on('data', (c: Buffer) => {
      try {
        scanner.push(c);
      } catch (e) {
        finish(e as Error);
      }
    });
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error('closed without PING_OK')));
  });
}

export interface ProbeResult {
  requests: number;
  errors: number;
  /** The first distinct error messages (for the report). */
  errorKinds: Map<string, number>;
  p50: number;
  p99: number;
  max: number;
  /** The five slowest operations: which kind, when (s after the probe started), how long (ms). */
  slowest: { kind: 'http' | 'mx' | 'https'; at: number; ms: number; error?: string; connectMs?: number; firstByteMs?: number }[];
}

/**
 * The normal client: from 127.0.0.1, a fresh HTTP GET of `path` and a fresh MX/1 PING in turn,
 * one at a time, pausing `gapMs` between them, until stop(). A 2 s timeout counts as an error.
 */
export class Probe {
  private stopped = false;
  private readonly latencies: number[] = [];
  private errors = 0;
  private readonly kinds = new Map<string, number>();
  private readonly slowest: ProbeResult['slowest'] = [];
  private readonly loop: Promise<void>;

  /** With `httpsPort` every turn is an HTTPS GET there (a fresh connection and full handshake each). */
  constructor(httpPort: number, binaryPort: number, path: string, gapMs = 20, target: Target = { localAddress: '127.0.0.1' }, httpsPort?: number) {
    this.loop = (async () => {
      let turn = 0;
      const start = performance.now();
      while (!this.stopped) {
        const t0 = performance.now();
        const kind = httpsPort !== undefined ? 'https' : turn % 2 === 0 ? 'http' : 'mx';
        let error: string | undefined;
        const marks: { connect?: number; firstByte?: number } = {};
        try {
          if (httpsPort !== undefined) {
            const a = await httpGet(httpsPort, path, { ...target, marks, tls: true });
            if (a.status !== 200) throw new Error(`HTTPS ${a.status}`);
          } else if (turn++ % 2 === 0) {
            const a = await httpGet(httpPort, path, { ...target, marks });
            if (a.status !== 200) throw new Error(`HTTP ${a.status}`);
          } else {
            await mxPing(binaryPort, target);
          }
          this.latencies.push(performance.now() - t0);
        } catch (e) {
          this.errors++;
          const k = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
          this.kinds.set(k, (this.kinds.get(k) ?? 0) + 1);
          this.latencies.push(performance.now() - t0);
          error = k;
        }
        const ms = performance.now() - t0;
        this.slowest.push({
          kind,
          at: Math.round((t0 - start) / 100) / 10,
          ms,
          ...(error !== undefined ? { error } : {}),
          ...(marks.connect !== undefined ? { connectMs: marks.connect } : {}),
          ...(marks.firstByte !== undefined ? { firstByteMs: marks.firstByte } : {}),
        });
        this.slowest.sort((a, b) => b.ms - a.ms);
        this.slowest.length = Math.min(this.slowest.length, 5);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
  }

  async stop(): Promise<ProbeResult> {
    this.stopped = true;
    await this.loop;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const q = (p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
    return { requests: sorted.length, errors: this.errors, errorKinds: this.kinds, p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? NaN, slowest: this.slowest };
  }
}

/** Opens `count` sockets with `open`, at most `batch` connecting at once; resolves with the ones that connected. */
export async function openMany(count: number, batch: number, open: (i: number) => Socket): Promise<{ sockets: Socket[]; failed: number }> {
  const sockets: Socket[] = [];
  let failed = 0;
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    await Promise.all(
      Array.from({ length: n }, (_, k) => new Promise<void>((resolve) => {
        const s = open(i + k);
        s.on('error', () => undefined); // a reset later (the server shedding it) is expected
        const t = setTimeout(() => {
          failed++;
          s.destroy();
          resolve();
        }, 5000);
        s.once('connect', () => {
          clearTimeout(t);
          sockets.push(s);
          resolve();
        });
        s.once('error', () => {
          clearTimeout(t);
          failed++;
          resolve();
        });
      })),
    );
  }
  return { sockets, failed };
}

/**
 * Opens `count` sockets at `perSecond` (in 10 ms steps), or as fast as openMany's batches allow
 * when perSecond is Infinity. Resolves once every socket connected or failed (5 s timeout each).
 */
export async function openPaced(count: number, perSecond: number, open: (i: number) => Socket): Promise<{ sockets: Socket[]; failed: number }> {
  if (!Number.isFinite(perSecond)) return openMany(count, 500, open);
  const step = 10;
  const perStep = Math.max(1, Math.round((perSecond * step) / 1000));
  const pending: Promise<{ sockets: Socket[]; failed: number }>[] = [];
  const t0 = performance.now();
  for (let i = 0, k = 0; i < count; i += perStep, k++) {
    const n = Math.min(perStep, count - i);
    const first = i;
    pending.push(openMany(n, n, (j) => open(first + j)));
    const wait = t0 + (k + 1) * step - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const all = await Promise.all(pending);
  return { sockets: all.flatMap((r) => r.sockets), failed: all.reduce((n, r) => n + r.failed, 0) };
}
