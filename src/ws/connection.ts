// One server-side MX/1-over-WebSocket connection as a sans-IO state machine (the shape of h11's
// Connection and quinn-proto: bytes and the current time go in, MX/1 frames, bytes to write and
// "end the connection" come out). It owns the close decisions of issue 15 item 2: pong every
// ping, echo the peer's close, fail with the receiver's close code, answer a message that is
// not exactly one MX/1 frame with ERROR (id 0) then close 1002, ping every interval and close a
// peer that sent nothing for two. The driver only moves bytes and arms one timer.
import { Type } from '../wire/protocol.js';
import { encodeFrame } from '../wire/frame.js';
import { encodeError } from '../wire/payloads.js';
import { CloseCode } from './constants.js';
import { checkMxMessage, wsMaxMessage } from './mx.js';
import { WsReceiver, type WsEvent } from './receiver.js';
import { binaryHeader, encodeClose, encodePing, encodePong, fitCloseReason } from './sender.js';

export type WsAction =
  /** An MX/1 frame for the core; `payload` is a view of the received bytes (the codec never writes to it again). */
  | { kind: 'frame'; type: number; id: number; payload: Buffer; /** The whole message: header and payload (what a byte-stream driver hands on). */ message: Buffer }
  /** Bytes to write, in order (writev them; nothing is copied). */
  | { kind: 'write'; data: Buffer[] }
  /** Everything queued is written: end the connection (FIN after the last write). */
  | { kind: 'end'; reason: string };

export interface WsConnectionOptions {
  /** --max-frame: the largest MX/1 payload; a WebSocket message may carry this plus the 12-byte header. */
  maxPayload: number;
  /** --ws-ping-interval in ms; 0 turns pings and the idle close off. */
  pingIntervalMs: number;
  /** After our own close frame, how long to wait for the peer's before ending anyway. */
  closeTimeoutMs?: number;
  /** The time the connection was upgraded (any monotonic clock in ms). */
  now: number;
}

export type WsConnectionState = 'open' | 'closing' | 'closed';

export class WsServerConnection {
  private readonly receiver: WsReceiver;
  private readonly maxPayload: number;
  private readonly interval: number;
  private readonly closeTimeout: number;
  private readonly actions: WsAction[] = [];
  private lastReceived: number;
  private nextPing: number;
  private closeDeadline = Infinity;
  private current: WsConnectionState = 'open';

  constructor(options: WsConnectionOptions) {
    this.maxPayload = options.maxPayload;
    this.receiver = new WsReceiver({ role: 'server', maxMessage: wsMaxMessage(options.maxPayload) });
    this.interval = options.pingIntervalMs;
    this.closeTimeout = options.closeTimeoutMs ?? 2000;
    this.lastReceived = options.now;
    this.nextPing = options.pingIntervalMs > 0 ? options.now + options.pingIntervalMs : Infinity;
  }

  /** 'open'; 'closing' once we sent a close and wait for the peer's; 'closed' once 'end' was queued. */
  get state(): WsConnectionState {
    return this.current;
  }

  /** Bytes and fragments held for messages still arriving (bounded by --max-frame + 12 + a control frame). */
  get retained(): number {
    return this.receiver.retained;
  }

  /**
   * Bytes from the peer (including any that arrived right behind the handshake head). The
   * chunk is handed over: masked payloads are unmasked in place. Nothing is decoded until
   * poll(): a driver that stops polling (backpressure) leaves the bytes buffered here, and
   * pauses its socket while `retained` says too much is waiting.
   */
  receive(chunk: Buffer, now: number): void {
    if (this.current === 'closed') return;
    if (chunk.length > 0) this.lastReceived = now;
    this.receiver.push(chunk);
  }

  /**
   * The next action, or null when the bytes received so far give none. Actions come out in
   * the order they arose; the frames are decoded one per call, as they are asked for.
   */
  poll(): WsAction | null {
    for (;;) {
      const queued = this.actions.shift();
      if (queued !== undefined) return queued;
      if (this.current === 'closed') return null;
      const e = this.receiver.next();
      if (e === null) return null;
      const frame = this.handle(e);
      if (frame !== null) return frame;
    }
  }

  /**
   * The next action already decided (a ping or close from onTimer, the close of close()), without
   * decoding any received bytes: for a driver whose reader is paused but whose timers still run.
   */
  pollQueued(): WsAction | null {
    return this.actions.shift() ?? null;
  }

  private handle(e: WsEvent): WsAction | null {
    switch (e.kind) {
      case 'message': {
        if (this.current !== 'open') return null; // after our close, nothing more is delivered
        const m = checkMxMessage(e.data, this.maxPayload);
        if (m.ok) return { kind: 'frame', type: m.type, id: m.id, payload: m.payload, message: e.data };
        this.write(...encodeMessage(encodeFrame(Type.ERROR, 0, encodeError(m.code, m.message))));
        this.fail(CloseCode.PROTOCOL_ERROR, m.message);
        return null;
      }
      case 'ping':
        if (this.current === 'open') this.write(encodePong(e.payload));
        return null;
      case 'pong':
        return null;
      case 'close':
        if (this.current === 'open') this.write(e.code === null ? encodeClose() : encodeClose(e.code));
        this.end(e.code === null ? 'peer closed' : `peer closed with ${e.code}`);
        return null;
      case 'fail':
        this.fail(e.code, e.reason);
        return null;
    }
  }

  /**
   * The bytes of one MX/1 frame as one unfragmented binary message: [WebSocket header, ...parts],
   * the parts not copied. Null once a close was sent (nothing may follow it).
   */
  encodeFrame(parts: readonly Buffer[]): Buffer[] | null {
    if (this.current !== 'open') return null;
    return encodeMessage(parts);
  }

  /** Starts the closing handshake (graceful shutdown: 1001): the close frame to write comes out of poll(). */
  close(code: number, reason: string, now: number): void {
    if (this.current !== 'open') return;
    this.write(encodeClose(code, fitCloseReason(reason)));
    this.current = 'closing';
    this.closeDeadline = now + this.closeTimeout;
  }

  /** The peer half-closed or the socket ended without a close frame: nothing more to do but end. */
  peerEnded(): void {
    if (this.current !== 'closed') this.end('peer ended the connection');
  }

  /** When to call onTimer next (ms on the clock passed in), or null for never. */
  nextDeadline(): number | null {
    if (this.current === 'closed') return null;
    if (this.current === 'closing') return this.closeDeadline;
    if (this.interval <= 0) return null;
    return Math.min(this.nextPing, this.lastReceived + 2 * this.interval);
  }

  /** Call at (or after) nextDeadline(); queues a ping, or the idle close, or the end after an unanswered close. */
  onTimer(now: number): void {
    if (this.current === 'closing') {
      if (now >= this.closeDeadline) this.end('no close frame from the peer in time');
      return;
    }
    if (this.current !== 'open' || this.interval <= 0) return;
    if (now >= this.lastReceived + 2 * this.interval) {
      this.write(encodeClose(CloseCode.GOING_AWAY, 'idle: nothing received for two ping intervals'));
      this.end('idle');
      return;
    }
    if (now >= this.nextPing) {
      this.write(encodePing());
      this.nextPing = now + this.interval;
    }
  }

  private write(...data: Buffer[]): void {
    this.actions.push({ kind: 'write', data });
  }

  private fail(code: number, reason: string): void {
    if (this.current === 'open') this.write(encodeClose(code, fitCloseReason(reason)));
    this.end(`protocol failure ${code}: ${reason}`);
  }

  private end(reason: string): void {
    this.current = 'closed';
    this.actions.push({ kind: 'end', reason });
  }
}

function encodeMessage(parts: readonly Buffer[]): Buffer[] {
  let n = 0;
  for (const p of parts) n += p.length;
  const out: Buffer[] = [binaryHeader(n)];
  for (const p of parts) if (p.length > 0) out.push(p);
  return out;
}
