// The WebSocket driver (issue 15): a BytePipe over an upgraded socket, so the MX/1 stream driver
// (src/binary/stream.ts) runs over WebSocket exactly as over TCP. WsServerConnection decides
// everything (sans-IO); this only moves bytes, keeps the output framed and exposes one deadline
// for the listener's sweeper (no timer per socket).
//
// Read side: each binary message is one MX/1 frame, handed on as one 'data' chunk (the whole
// frame, header included). Write side: the Outbox writes an MX/1 byte stream in arbitrary cuts
// (a batch of several frames, a header and then its payload, a slice in the middle of a frame);
// the 12-byte MX/1 headers tell where each frame ends, so each leaves as exactly one unfragmented
// binary message: a WebSocket header, then views of the bytes written (payloads never copied).
// Control frames (pong, ping, close) and the codec's own messages never land inside a message
// that is half written: they wait for its end (RFC 6455 §5.4 lets them go between frames only).
import { EventEmitter } from 'node:events';
import { coarseNow } from '../loop/clock.js';
import type { BytePipe } from '../loop/pipe.js';
import { CloseCode, Opcode } from './constants.js';
import { WsServerConnection, type WsAction } from './connection.js';
import { binaryHeader } from './sender.js';

// MX/1's header (src/wire/frame.ts): 12 bytes, the payload length a u32 at offset 8. Kept as
// numbers here: src/ws may not depend on the MX/1 face, only on the wire layout.
const MX_HEADER = 12;
const MX_LENGTH_AT = 8;

/** While 'data' is paused, keep taking socket bytes into the codec until it holds this much. */
const PAUSED_READ_HIGH = 64 * 1024;
/** After the codec said "end": how long the rest of a message and the peer's FIN may take. */
const END_GRACE_MS = 2000;
const EMPTY = Buffer.alloc(0);
/** Replies gathered while one socket chunk's messages are handled, written in one go past this. */
const BATCH_MAX = 64 * 1024;
/** Pieces up to this size are copied into the batch; larger ones (file data) are written as views. */
const BATCH_COPY_MAX = 4 * 1024;

export interface WsPipeOptions {
  /** --max-frame: the largest MX/1 payload (a message may be 12 bytes longer). */
  maxPayload: number;
  /** --ws-ping-interval in ms; 0 = no pings and no idle close. */
  pingIntervalMs: number;
  /** After our close frame, how long to wait for the peer's (default 2 s). */
  closeTimeoutMs?: number;
}

type Done = (err?: Error | null) => void;

export class WsPipe extends EventEmitter implements BytePipe {
  /** Epoch ms of the next ping / idle check / close timeout; 0 = none (src/loop/sweeper.ts Timed). */
  deadline = 0;
  private readonly socket: BytePipe;
  private readonly conn: WsServerConnection;
  private paused = false;
  private socketPaused = false;
  private ended = false;
  /** The close code our end() sends: 1000, or 1001 once the server is going away. */
  private endCode: number = CloseCode.NORMAL;
  private endReason = '';
  /** The codec said "end": the socket ends once the message being written is complete. */
  private endPending = false;
  private endDeadline = 0;
  private started = false;

  // ---- the outgoing MX/1 stream, cut at frame boundaries ---------------------------------
  /** Bytes of the current frame still to come (0 = at a frame boundary). */
  private remaining = 0;
  /** The current frame is being dropped (it began after our close frame). */
  private dropping = false;
  /** Inside onSocketData: small writes are gathered in `batch` and leave together at its end. */
  private batching = false;
  private batch: Buffer | null = null;
  private batchLen = 0;
  private batchDone: Done[] = [];
  /** An MX/1 header that arrived in pieces (rare: a slice cut inside it). */
  private partial: Buffer | null = null;
  private partialHave = 0;
  /** Control frames (and the codec's own messages) waiting for the current message to end. */
  private waiting: Buffer[][] = [];

  constructor(socket: BytePipe, options: WsPipeOptions) {
    super();
    this.socket = socket;
    this.conn = new WsServerConnection({
      maxPayload: options.maxPayload,
      pingIntervalMs: options.pingIntervalMs,
      closeTimeoutMs: options.closeTimeoutMs,
      now: coarseNow(),
    });
    this.rearm();
  }

  /**
   * Starts reading: `leftover` (bytes that arrived right behind the handshake head) first, then
   * the socket. Call once the protocol above has its listeners on.
   */
  start(leftover: Buffer): void {
    if (this.started) return;
    this.started = true;
    const s = this.socket;
    s.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    s.on('end', () => this.onSocketEnd());
    s.on('drain', () => this.emit('drain'));
    s.on('error', (err: Error) => this.emit('error', err));
    s.on('close', () => {
      this.deadline = 0;
      this.emit('close');
    });
    if (leftover.length > 0) this.onSocketData(leftover);
    if (!this.socketPaused && !s.destroyed) s.resume();
  }

  /** Graceful shutdown: the close frame our end() sends says 1001 "going away". */
  goingAway(reason = 'server shutting down'): void {
    this.endCode = CloseCode.GOING_AWAY;
    this.endReason = reason;
  }

  /** Bytes the codec holds for messages still arriving (for tests and the fuzz bound). */
  get retained(): number {
    return this.conn.retained;
  }

  get state(): 'open' | 'closing' | 'closed' {
    return this.conn.state;
  }

  // ---- reading ------------------------------------------------------------------------------

  private onSocketData(chunk: Buffer): void {
    this.conn.receive(chunk, coarseNow());
    // One chunk may hold many messages (a client with requests in flight). Each message is its
    // own 'data' event, so the protocol above flushes its replies once per message: gather the
    // small ones here and write them together, one syscall per chunk instead of one per reply
    // (over TCP the Outbox does this batching, since there a chunk is one 'data' event).
    this.batching = true;
    try {
      this.pump();
    } finally {
      this.batching = false;
      this.flushBatch();
    }
  }

  private onSocketEnd(): void {
    this.conn.peerEnded();
    this.pump();
  }

  /**
   * Runs the codec's actions: frames only while 'data' flows (or once we are closing, when no
   * frame comes out any more), queued writes and the end always.
   */
  private pump(): void {
    for (;;) {
      const a = this.paused && this.conn.state === 'open' ? this.conn.pollQueued() : this.conn.poll();
      if (a === null) break;
      this.act(a);
    }
    this.updateSocketPause();
    this.rearm();
  }

  private act(a: WsAction): void {
    switch (a.kind) {
      case 'frame':
        this.emit('data', a.message);
        return;
      case 'write':
        this.control(a.data);
        return;
      case 'end':
        this.finish();
        return;
    }
  }

  /**
   * Reading stops while 'data' is paused and the codec holds enough. After the codec ended it
   * goes on, so the peer's FIN is seen: what arrives then is counted, never held.
   */
  private updateSocketPause(): void {
    const s = this.socket;
    const stop = this.paused && this.conn.state === 'open' && this.conn.retained >= PAUSED_READ_HIGH;
    if (stop && !this.socketPaused) {
      this.socketPaused = true;
      s.pause();
    } else if (!stop && this.socketPaused) {
      this.socketPaused = false;
      if (this.started) s.resume();
    }
  }

  /** The codec is done: end the TCP connection after what is owed (never inside a message). */
  private finish(): void {
    if (this.endPending) return;
    this.endPending = true;
    this.ended = true;
    // The peer sends nothing more: the protocol above completes what it owes, then ends too.
    this.emit('end');
    // Owed output (the rest of a message) and then the peer's FIN get this long; a peer that
    // keeps its side open after the close handshake is cut.
    this.endDeadline = coarseNow() + END_GRACE_MS;
    if (this.remaining === 0) {
      this.flushBatch();
      this.socket.end();
    }
  }

  // ---- timers -------------------------------------------------------------------------------

  private rearm(): void {
    const d = this.conn.nextDeadline();
    let next = d === null ? 0 : d;
    if (this.endDeadline !== 0 && (next === 0 || this.endDeadline < next)) next = this.endDeadline;
    this.deadline = next;
  }

  /** The sweeper's call at (or after) `deadline`. */
  onDeadline(now: number): void {
    if (this.socket.destroyed) return;
    if (this.endDeadline !== 0 && now >= this.endDeadline) {
      this.socket.destroy();
      return;
    }
    this.conn.onTimer(now);
    this.pump();
  }

  // ---- writing ------------------------------------------------------------------------------

  /** A control frame or the codec's own message: now at a message boundary, else after the current message. */
  private control(parts: Buffer[]): void {
    if (this.remaining > 0) {
      // At most one pong is owed: a newer ping's answer replaces an older one (RFC 6455 §5.5.3).
      if ((parts[0]![0]! & 0x0f) === Opcode.PONG) {
        const i = this.waiting.findIndex((w) => (w[0]![0]! & 0x0f) === Opcode.PONG);
        if (i >= 0) this.waiting.splice(i, 1);
      }
      this.waiting.push(parts);
      return;
    }
    this.writeParts(parts);
  }

  private writeParts(parts: Buffer[]): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    this.writePieces(parts, undefined);
  }

  /**
   * Bytes of the MX/1 output stream, cut anywhere. `done` runs once the socket is done with
   * `buf` (it goes with the last piece cut from it).
   */
  write(buf: Uint8Array, done?: Done): boolean {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) {
      if (done !== undefined) process.nextTick(done, new Error('write after end'));
      return false;
    }
    const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    const n = b.length;
    let at = 0;
    /** Pieces for the socket, in order (written together, corked, so they leave in one writev). */
    let pieces: Buffer[] = [];
    while (at < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - at);
        if (!this.dropping) pieces.push(b.subarray(at, at + take));
        at += take;
        this.remaining -= take;
      } else {
        // At a frame boundary: the next 12 bytes are an MX/1 header.
        let header: Buffer | null = null;
        let payloadAt: number;
        if (this.partialHave === 0 && n - at >= MX_HEADER) {
          payloadAt = at + MX_HEADER;
        } else {
          const p = (this.partial ??= Buffer.allocUnsafe(MX_HEADER));
          const take = Math.min(MX_HEADER - this.partialHave, n - at);
          b.copy(p, this.partialHave, at, at + take);
          this.partialHave += take;
          at += take;
          if (this.partialHave < MX_HEADER) break;
          // Handed to the socket below: this header buffer is the socket's from now on.
          header = p;
          this.partial = null;
          this.partialHave = 0;
          payloadAt = at;
        }
        const length = (header ?? b).readUInt32BE((header === null ? at : 0) + MX_LENGTH_AT);
        const avail = Math.min(length, n - payloadAt);
        // A frame that begins after our close frame is dropped whole (nothing may follow a close).
        this.dropping = this.conn.state !== 'open';
        if (!this.dropping) {
          pieces.push(binaryHeader(MX_HEADER + length));
          if (header === null) {
            pieces.push(b.subarray(at, payloadAt + avail)); // header and payload: one view
          } else {
            pieces.push(header);
            if (avail > 0) pieces.push(b.subarray(payloadAt, payloadAt + avail));
          }
        }
        at = payloadAt + avail;
        this.remaining = length - avail;
      }
      if (this.remaining === 0 && this.partialHave === 0 && (this.waiting.length > 0 || this.endPending)) {
        // A message boundary with something waiting for it: what came before goes first.
        this.writePieces(pieces, undefined);
        pieces = [];
        this.messageDone();
        if (s.destroyed || s.writableEnded) break;
      }
    }
    if (this.remaining === 0) this.dropping = false;
    if (pieces.length > 0 && !s.destroyed && !s.writableEnded) return this.writePieces(pieces, done);
    // Nothing of `buf` is left to write (sent with earlier pieces, copied, or dropped): an empty
    // write after those pieces carries `done`, so it runs once the socket is really done with them.
    if (done !== undefined) {
      if (s.destroyed || s.writableEnded) process.nextTick(done, new Error('write after end'));
      else if (this.batchLen > 0) this.batchDone.push(done);
      else s.write(EMPTY, done);
    }
    return !s.writableNeedDrain;
  }

  /** The current message is complete: what waited for it goes now, and a pending end happens. */
  private messageDone(): void {
    if (this.waiting.length > 0) {
      const w = this.waiting;
      this.waiting = [];
      for (const parts of w) this.writeParts(parts);
    }
    if (this.endPending && !this.socket.writableEnded) {
      this.flushBatch();
      this.socket.end();
    }
  }

  /** Copies small pieces into the batch while a chunk is handled; false when they must go out now. */
  private batched(pieces: readonly Buffer[], done: Done | undefined): boolean {
    if (!this.batching) return false;
    let n = 0;
    for (let i = 0; i < pieces.length; i++) {
      const len = pieces[i]!.length;
      if (len > BATCH_COPY_MAX) return false;
      n += len;
    }
    if (this.batchLen + n > BATCH_MAX) {
      this.flushBatch();
      if (n > BATCH_MAX) return false;
    }
    const b = (this.batch ??= Buffer.allocUnsafe(BATCH_MAX));
    for (let i = 0; i < pieces.length; i++) this.batchLen += pieces[i]!.copy(b, this.batchLen);
    if (done !== undefined) this.batchDone.push(done);
    return true;
  }

  /** Writes what was gathered: one write, whose completion runs every gathered callback. */
  private flushBatch(): void {
    const b = this.batch;
    const n = this.batchLen;
    if (b === null || n === 0) return;
    this.batchLen = 0;
    const dones = this.batchDone;
    this.batchDone = [];
    const s = this.socket;
    if (s.destroyed || s.writableEnded) {
      for (const d of dones) process.nextTick(d, new Error('write after end'));
      return;
    }
    s.write(b.subarray(0, n), dones.length === 0 ? undefined : (err) => {
      for (const d of dones) d(err);
    });
    // Taken whole: the buffer is free for the next batch; else the socket holds it until written.
    if (s.writableLength !== 0) this.batch = null;
  }

  private writePieces(pieces: Buffer[], done: Done | undefined): boolean {
    const s = this.socket;
    if (pieces.length === 0) return !s.writableNeedDrain;
    if (this.batched(pieces, done)) return !s.writableNeedDrain;
    // Order: what was gathered goes before these.
    this.flushBatch();
    if (pieces.length === 1) return s.write(pieces[0]!, done);
    s.cork();
    let ok = true;
    for (let i = 0; i < pieces.length; i++) ok = s.write(pieces[i]!, i === pieces.length - 1 ? done : undefined);
    s.uncork();
    return ok;
  }

  /**
   * Ends our side: a close frame (1000, or 1001 after goingAway()), then the TCP connection ends
   * once the peer's close arrives (or the close timeout passes).
   */
  end(): this {
    if (this.ended) return this;
    this.ended = true;
    this.conn.close(this.endCode, this.endReason, coarseNow());
    this.pump();
    return this;
  }

  destroy(err?: Error): this {
    this.socket.destroy(err);
    return this;
  }

  // ---- the rest of BytePipe, as the socket has it ----------------------------------------

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get writableEnded(): boolean {
    return this.ended;
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  get writableHighWaterMark(): number {
    return this.socket.writableHighWaterMark;
  }

  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  pause(): this {
    this.paused = true;
    this.updateSocketPause();
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    // Messages that waited in the codec come out now (a listener may pause again on the way).
    this.pump();
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  setKeepAlive(enable?: boolean, initialDelayMs?: number): this {
    this.socket.setKeepAlive(enable, initialDelayMs);
    return this;
  }
}
