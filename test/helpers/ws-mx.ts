// MX/1 over WebSocket in tests, with the `ws` package as the client (an independent
// implementation of RFC 6455): each MX/1 frame is sent as one binary message and each message
// received must be exactly one frame. Frames are kept with waiters, like test/binary/raw-client.ts.
import WebSocket from 'ws';
import { encodeFrame, type Frame } from '../../src/wire/frame.js';
import { HEADER_SIZE } from '../../src/wire/protocol.js';
import { MxRequests } from './mx-requests.js';

export const WS_PATH = '/.well-known/muxd/mx';

export interface WsClose {
  code: number;
  reason: string;
}

export class WsMxClient extends MxRequests {
  readonly frames: Frame[] = [];
  /** Messages that were not exactly one MX/1 frame (a test fails on any). */
  readonly malformed: Buffer[] = [];
  closed: WsClose | null = null;
  private waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private closeWaiters: ((c: WsClose) => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary || data.length < HEADER_SIZE || data.readUInt32BE(8) !== data.length - HEADER_SIZE) {
        this.malformed.push(Buffer.from(data));
        return;
      }
      const frame: Frame = { type: data[3]!, id: data.readUInt32BE(4), payload: Buffer.from(data.subarray(HEADER_SIZE)) };
      const k = this.waiters.findIndex((w) => w.match(frame));
      if (k >= 0) {
        const [w] = this.waiters.splice(k, 1);
        clearTimeout(w!.timer);
        w!.resolve(frame);
      } else this.frames.push(frame);
    });
    ws.on('error', () => undefined);
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.reject(new Error(`WebSocket closed (${code} ${reason.toString()}) while waiting for a frame`));
      }
      this.waiters = [];
      for (const c of this.closeWaiters) c(this.closed);
      this.closeWaiters = [];
    });
  }

  /** Opens ws://127.0.0.1:PORT/PATH offering the mx1 subprotocol; rejects on a refused handshake. */
  static connect(port: number, opts: { path?: string; headers?: Record<string, string>; origin?: string; host?: string } = {}): Promise<WsMxClient> {
    const ws = new WebSocket(`ws://${opts.host ?? '127.0.0.1'}:${port}${opts.path ?? WS_PATH}`, 'mx1', {
      headers: opts.headers,
      origin: opts.origin,
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.off('error', reject);
        resolve(new WsMxClient(ws));
      });
      ws.once('error', reject);
    });
  }

  send(type: number, id: number, payload?: Buffer): void {
    this.ws.send(Buffer.concat(encodeFrame(type, id, payload)), { binary: true });
  }

  /** The next frame (already received or future) that matches; fails after `timeoutMs`. */
  next(match: (f: Frame) => boolean = () => true, what = 'a frame', timeoutMs = 10_000): Promise<Frame> {
    const k = this.frames.findIndex(match);
    if (k >= 0) return Promise.resolve(this.frames.splice(k, 1)[0]!);
    if (this.closed !== null) return Promise.reject(new Error(`WebSocket closed (${this.closed.code}) before ${what}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push({ match, resolve, reject, timer });
    });
  }

  /** The close the server sent (code and reason as the `ws` client reports them). */
  waitClose(timeoutMs = 10_000): Promise<WsClose> {
    if (this.closed !== null) return Promise.resolve(this.closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for the WebSocket to close`)), timeoutMs);
      this.closeWaiters.push((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
