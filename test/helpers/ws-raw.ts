// A WebSocket client on a raw TCP socket, for the tests that must send what no library sends
// (unmasked frames, RSV bits, bad close codes) and see every byte the server answers: the
// handshake is written by hand, frames are built by test/ws/build.ts, and the server's frames
// are read back with the codec's client-role receiver. Plus serve() in this process on free ports.
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WsReceiver, type WsEvent } from '../../src/ws/receiver.js';
import { parseServeOptions, type ServeOptions } from '../../src/server/options.js';
import { serve, type Running } from '../../src/server/serve.js';
import { REPO_ROOT } from './muxd-process.js';
import { waitFor } from './wait.js';

export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
/** RFC 6455 §1.3's example key and its accept value. */
export const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export function upgradeRequest(opts: { path?: string; method?: string; version?: string; headers?: Record<string, string | null> } = {}): string {
  const fields: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Protocol': 'mx1',
    ...opts.headers,
  };
  let out = `${opts.method ?? 'GET'} ${opts.path ?? '/.well-known/muxd/mx'} HTTP/${opts.version ?? '1.1'}\r\n`;
  for (const [n, v] of Object.entries(fields)) if (v !== null) out += `${n}: ${v}\r\n`;
  return out + '\r\n';
}

export class RawWs {
  /** Everything received, as it arrived. */
  bytes = Buffer.alloc(0);
  ended = false;
  closed = false;
  private readonly receiver = new WsReceiver({ role: 'client', maxMessage: 64 << 20 });
  private headEnd = -1;
  private fed = 0;
  readonly events: WsEvent[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.bytes = Buffer.concat([this.bytes, c]);
      this.feed();
    });
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async open(port: number, first: string | Buffer): Promise<RawWs> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawWs(socket);
    socket.write(first);
    return c;
  }

  /** Opens and waits for a 101; fails with the response otherwise. */
  static async upgraded(port: number, extra: Buffer = Buffer.alloc(0), request = upgradeRequest()): Promise<RawWs> {
    const c = await RawWs.open(port, Buffer.concat([Buffer.from(request, 'latin1'), extra]));
    const head = await c.head();
    if (!head.startsWith('HTTP/1.1 101 ')) throw new Error(`no 101: ${head}`);
    return c;
  }

  private feed(): void {
    if (this.headEnd < 0) {
      const i = this.bytes.indexOf('\r\n\r\n');
      if (i < 0) return;
      this.headEnd = i + 4;
      if (!this.bytes.subarray(0, 13).toString('latin1').startsWith('HTTP/1.1 101')) return;
      this.fed = this.headEnd;
    }
    if (!this.bytes.subarray(0, 13).toString('latin1').startsWith('HTTP/1.1 101')) return;
    if (this.fed < this.bytes.length) {
      this.receiver.push(Buffer.from(this.bytes.subarray(this.fed)));
      this.fed = this.bytes.length;
      for (let e = this.receiver.next(); e !== null; e = this.receiver.next()) this.events.push(e);
    }
  }

  /** The response head (status line to the blank line). */
  async head(): Promise<string> {
    await waitFor(() => this.headEnd >= 0 || this.closed, { what: 'the response head', detail: () => JSON.stringify(this.bytes.toString('latin1')) });
    if (this.headEnd < 0) throw new Error(`closed before a response head: ${JSON.stringify(this.bytes.toString('latin1'))}`);
    return this.bytes.subarray(0, this.headEnd).toString('latin1');
  }

  /** The whole response of a refusal: waits for the server to close. */
  async response(): Promise<string> {
    await waitFor(() => this.ended || this.closed, { what: 'the server to end the connection', detail: () => JSON.stringify(this.bytes.toString('latin1')) });
    return this.bytes.toString('latin1');
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits for the n-th event (0-based) from the server. */
  async event(n: number, what = `server event ${n}`): Promise<WsEvent> {
    await waitFor(() => this.events.length > n || this.closed, { what, detail: () => JSON.stringify(this.events.map((e) => e.kind)) });
    const e = this.events[n];
    if (e === undefined) throw new Error(`connection closed after ${this.events.length} events, waiting for ${what}`);
    return e;
  }

  /** Waits for a close frame from the server and then the TCP end; returns the close. */
  async closeFrame(): Promise<{ code: number | null; reason: string; before: WsEvent[] }> {
    await waitFor(() => this.events.some((e) => e.kind === 'close') || this.closed, { what: 'a close frame', detail: () => JSON.stringify(this.events.map((e) => e.kind)) });
    const i = this.events.findIndex((e) => e.kind === 'close');
    if (i < 0) throw new Error(`closed without a close frame after ${JSON.stringify(this.events.map((e) => e.kind))}`);
    const c = this.events[i] as Extract<WsEvent, { kind: 'close' }>;
    return { code: c.code, reason: c.reason, before: this.events.slice(0, i) };
  }

  async waitEnded(): Promise<void> {
    await waitFor(() => this.ended || this.closed, { what: 'the server to end the TCP connection' });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface InProcess {
  running: Running;
  httpPort: number;
  binaryPort: number;
  stop(): Promise<void>;
}

/** serve() in this process on free ports, UDP off, a fresh files dir; `argv` adds flags. */
export async function serveInProcess(argv: string[] = []): Promise<InProcess> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'muxd-ws-'));
  const o = parseServeOptions(['--root', path.join(REPO_ROOT, 'public'), '--files-dir', path.join(tmp, 'files'), '--http-port', '0', '--binary-port', '0', '--udp-port', 'off', ...argv], {});
  if (o === 'help') throw new Error('help');
  const running = await serve(o as ServeOptions, () => undefined);
  const port = (face: string): number => running.started.find((s) => s.row.face === face)!.port;
  return {
    running,
    httpPort: port('http'),
    binaryPort: port('binary'),
    stop: async () => {
      await running.shutdown(2000);
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
