// A minimal MX/1 test client on a raw socket, built only on src/wire (not src/client).
import net from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Metrics } from '../../src/loop/metrics.js';
import { startBinaryServer, type BinaryServer, type BinaryServerOptions } from '../../src/binary/server.js';
import { FrameDecoder, encodeFrame, type Frame } from '../../src/wire/frame.js';
import { MxRequests } from '../helpers/mx-requests.js';

export interface TestServer {
  server: BinaryServer;
  port: number;
  dir: string;
  metrics: Metrics;
  stop(): Promise<void>;
}

export async function startTestServer(overrides: Partial<BinaryServerOptions> = {}): Promise<TestServer> {
  const dir = overrides.filesDir ?? (await mkdtemp(path.join(os.tmpdir(), 'muxd-bin-')));
  const metrics = overrides.metrics ?? new Metrics();
  const server = await startBinaryServer({
    endpoint: { host: '127.0.0.1', port: 0 },
    maxConnections: 50,
    maxFrame: 1024 * 1024,
    maxUpload: 64 * 1024 * 1024,
    filesDir: dir,
    adminToken: 'sesame',
    maxOutputBytes: 1024 * 1024,
    idleTimeoutMs: 60_000,
    metrics,
    log: () => undefined,
    ...overrides,
  });
  return {
    server,
    port: server.listener.port,
    dir,
    metrics,
    stop: async () => {
      await server.close();
      metrics.close();
    },
  };
}

/** Frames received, with waiters for the next frame that matches a predicate. */
export class RawClient extends MxRequests {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder(8 * 1024 * 1024);
  private waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  private closeWaiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    super();
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f !== null; f = this.decoder.next()) {
        const frame = { type: f.type, id: f.id, payload: Buffer.from(f.payload) };
        const k = this.waiters.findIndex((w) => w.match(frame));
        if (k >= 0) {
          const [w] = this.waiters.splice(k, 1);
          w.resolve(frame);
        } else this.frames.push(frame);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters) w.reject(new Error('connection closed while waiting for a frame'));
      this.waiters = [];
      for (const c of this.closeWaiters) c();
    });
  }

  /** `from` picks the client's own address (127.0.0.2 is another client to the server). */
  static connect(port: number, from?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
      s.once('error', reject);
    });
  }

  send(type: number, id: number, payload?: Buffer): void {
    for (const p of encodeFrame(type, id, payload)) this.socket.write(p);
  }

  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame (already received or future) that matches. */
  next(match: (f: Frame) => boolean = () => true): Promise<Frame> {
    const k = this.frames.findIndex(match);
    if (k >= 0) return Promise.resolve(this.frames.splice(k, 1)[0]);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => this.waiters.push({ match, resolve, reject }));
  }

  waitClose(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}
