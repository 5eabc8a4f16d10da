// The receiving half of RFC 6455 §5 framing, sans-IO: push the bytes that arrived, pull events.
// No socket, no timer, no clock. Model: ws lib/receiver.js (one step per frame part, the length
// checked against the maximum before a payload byte is buffered), written our way: the header is
// parsed in place in the queue and consumed only together with its payload, so the bytes of a
// frame that has not fully arrived stay unconsumed (`buffered` counts exactly them).
//
// MX/1 is binary, so this endpoint takes binary messages only: a text frame is close 1003. No
// extension is ever negotiated, so every RSV bit is a protocol error.
import { isUtf8 } from 'node:buffer';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, isCloseCodeAllowedOnWire } from './constants.js';
import { unmaskInPlace } from './mask.js';
import { ChunkQueue } from './queue.js';

export type WsEvent =
  /**
   * A complete binary message, assembled across its fragments. A view into a pushed chunk when
   * the message was one frame lying in one chunk; a copy otherwise. Copy it to keep it past the
   * next push.
   */
  | { kind: 'message'; data: Buffer }
  /** Answer with a pong carrying the same payload (it may arrive between fragments of a message). */
  | { kind: 'ping'; payload: Buffer }
  /** Nothing to do: unsolicited pongs are allowed (§5.5.3). */
  | { kind: 'pong'; payload: Buffer }
  /**
   * The peer's close frame: echo the code (an empty close when `code` is null: the frame had no
   * payload, what APIs report as 1005), then end the connection. Nothing more is read.
   */
  | { kind: 'close'; code: number | null; reason: string }
  /** A protocol failure: send a close with `code` (1002, 1003, 1007 or 1009), then end. */
  | { kind: 'fail'; code: number; reason: string };

export type Role = 'server' | 'client';

export interface ReceiverOptions {
  /** 'server' reads a client's frames, which must be masked; 'client' reads a server's, which must not be. */
  role: Role;
  /** The most bytes one message may carry, summed over its fragments; more is close 1009. */
  maxMessage: number;
}

const EMPTY = Buffer.alloc(0);
const TWO_32 = 0x1_0000_0000;

export class WsReceiver {
  private readonly queue = new ChunkQueue();
  private readonly requireMask: boolean;
  private readonly maxMessage: number;
  /** The header at the front of the queue once it is complete and valid; -1: not parsed yet. */
  private headerSize = -1;
  private opcode = 0;
  private fin = false;
  private masked = false;
  private payloadLength = 0;
  private readonly key = new Uint8Array(4);
  /** The fragments of the message in progress (opcode BINARY started it). */
  private inMessage = false;
  private fragments: Buffer[] = [];
  private messageBytes = 0;
  private ended: 'close' | 'fail' | null = null;
  private unreadAfterClose = 0;

  constructor(options: ReceiverOptions) {
    if (!Number.isSafeInteger(options.maxMessage) || options.maxMessage < 0) {
      throw new RangeError(`maxMessage must be a non-negative safe integer, got ${options.maxMessage}`);
    }
    this.requireMask = options.role === 'server';
    this.maxMessage = options.maxMessage;
  }

  /** Bytes pushed and not consumed: after `next()` returned null, exactly the start of a frame still arriving. */
  get buffered(): number {
    return this.queue.length + this.unreadAfterClose;
  }

  /**
   * Everything held: unconsumed bytes plus the fragments of the message in progress. After a
   * drain never more than maxMessage + MAX_HEADER_SIZE + MAX_CONTROL_PAYLOAD (a control frame
   * still arriving in the middle of a message at the limit).
   */
  get retained(): number {
    return this.queue.length + this.messageBytes;
  }

  /** Buffer objects queued (small pieces are merged, so this stays small under dribbling). */
  get queuedChunks(): number {
    return this.queue.chunkCount;
  }

  /** 'close' after a close event, 'fail' after a fail event: no more events come. */
  get finished(): 'close' | 'fail' | null {
    return this.ended;
  }

  /**
   * Hands a chunk over. The receiver keeps a view of it (or copies it when small), and unmasks
   * masked payloads in place: the caller must not reuse the chunk's memory. After a failure
   * bytes are dropped; after a close they are counted as unread (`buffered`) but not held.
   */
  push(chunk: Buffer): void {
    if (this.ended === 'fail') return;
    if (this.ended === 'close') {
      // Nothing after a close is ever read: count it as unread, hold none of it.
      this.unreadAfterClose += chunk.length;
      return;
    }
    this.queue.push(chunk);
  }

  /** The next event, or null when more bytes are needed (or the stream has ended). */
  next(): WsEvent | null {
    for (;;) {
      if (this.ended !== null) return null;
      if (this.headerSize < 0) {
        const failure = this.parseHeader();
        if (failure !== null) return failure;
        if (this.headerSize < 0) return null;
      }
      if (this.queue.length < this.headerSize + this.payloadLength) return null;
      const event = this.takeFrame();
      if (event !== null) return event;
      // A fragment that did not finish its message: look at the next frame.
    }
  }

  /**
   * Validates the header at the front of the queue as far as it has arrived. Sets headerSize
   * when it is complete; returns a fail event as soon as the bytes present say the frame is bad.
   */
  private parseHeader(): WsEvent | null {
    const q = this.queue;
    if (q.length < 2) return null;
    const b0 = q.byteAt(0);
    const b1 = q.byteAt(1);
    if ((b0 & 0x70) !== 0) return this.fail(CloseCode.PROTOCOL_ERROR, 'RSV bits set but no extension was negotiated');
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const control = opcode >= 0x8;
    if (control) {
      if (opcode > Opcode.PONG) return this.fail(CloseCode.PROTOCOL_ERROR, `reserved control opcode 0x${opcode.toString(16)}`);
      if (!fin) return this.fail(CloseCode.PROTOCOL_ERROR, 'fragmented control frame');
    } else if (opcode === Opcode.CONTINUATION) {
      if (!this.inMessage) return this.fail(CloseCode.PROTOCOL_ERROR, 'continuation frame with no message to continue');
    } else if (opcode === Opcode.TEXT || opcode === Opcode.BINARY) {
      if (this.inMessage) return this.fail(CloseCode.PROTOCOL_ERROR, 'new data frame inside a fragmented message');
      if (opcode === Opcode.TEXT) return this.fail(CloseCode.UNSUPPORTED_DATA, 'text messages are not accepted: MX/1 is binary');
    } else {
      return this.fail(CloseCode.PROTOCOL_ERROR, `reserved data opcode 0x${opcode.toString(16)}`);
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked !== this.requireMask) {
      return this.fail(CloseCode.PROTOCOL_ERROR, this.requireMask ? 'client frame is not masked' : 'server frame is masked');
    }
    let length = b1 & 0x7f;
    let size = 2;
    if (control && length > MAX_CONTROL_PAYLOAD) {
      return this.fail(CloseCode.PROTOCOL_ERROR, `control frame declares ${length === 126 ? 'a 16-bit' : length === 127 ? 'a 64-bit' : length} length (at most ${MAX_CONTROL_PAYLOAD} bytes)`);
    }
    if (opcode === Opcode.CLOSE && length === 1) return this.fail(CloseCode.PROTOCOL_ERROR, 'close payload of 1 byte (a code takes 2)');
    if (length === 126) {
      if (q.length < 4) return null;
      length = q.u16At(2);
      size = 4;
    } else if (length === 127) {
      if (q.length < 10) return null;
      const high = q.u32At(2);
      if ((high & 0x8000_0000) !== 0) return this.fail(CloseCode.PROTOCOL_ERROR, '64-bit payload length with the most significant bit set');
      // Beyond 2^53 the sum is inexact, but then it is far beyond any maxMessage anyway.
      length = high * TWO_32 + q.u32At(6);
      size = 10;
    }
    // Non-minimal length encodings (126 for a length under 126, ...) are accepted, as browsers and ws do.
    if (!control && this.messageBytes + length > this.maxMessage) {
      // Decided from the header: not one byte of this payload has been buffered on purpose.
      return this.fail(CloseCode.MESSAGE_TOO_BIG, `message of ${this.messageBytes + length} bytes or more exceeds the limit of ${this.maxMessage}`);
    }
    if (masked) size += 4;
    if (q.length < size) return null;
    if (masked) for (let i = 0; i < 4; i++) this.key[i] = q.byteAt(size - 4 + i);
    this.headerSize = size;
    this.fin = fin;
    this.opcode = opcode;
    this.masked = masked;
    this.payloadLength = length;
    return null;
  }

  /** Consumes the complete frame at the front; returns its event, or null for a non-final fragment. */
  private takeFrame(): WsEvent | null {
    const q = this.queue;
    q.skip(this.headerSize);
    this.headerSize = -1;
    const payload = this.payloadLength === 0 ? EMPTY : q.take(this.payloadLength);
    if (this.masked && payload.length > 0) unmaskInPlace(payload, this.key);
    switch (this.opcode) {
      case Opcode.PING:
        return { kind: 'ping', payload };
      case Opcode.PONG:
        return { kind: 'pong', payload };
      case Opcode.CLOSE:
        return this.closeFrame(payload);
      default:
        break;
    }
    // BINARY (starting a message) or CONTINUATION (of one): the header checks ensured which.
    if (payload.length > 0) this.fragments.push(payload);
    this.messageBytes += payload.length;
    this.inMessage = true;
    if (!this.fin) return null;
    const frags = this.fragments;
    const data = frags.length === 0 ? EMPTY : frags.length === 1 ? frags[0]! : Buffer.concat(frags, this.messageBytes);
    this.fragments = [];
    this.messageBytes = 0;
    this.inMessage = false;
    return { kind: 'message', data };
  }

  private closeFrame(payload: Buffer): WsEvent {
    if (payload.length === 0) {
      this.finish('close');
      return { kind: 'close', code: null, reason: '' };
    }
    if (payload.length === 1) return this.fail(CloseCode.PROTOCOL_ERROR, 'close payload of 1 byte (a code takes 2)');
    const code = payload.readUInt16BE(0);
    if (!isCloseCodeAllowedOnWire(code)) return this.fail(CloseCode.PROTOCOL_ERROR, `close code ${code} may not be sent`);
    const reasonBytes = payload.subarray(2);
    if (!isUtf8(reasonBytes)) return this.fail(CloseCode.INVALID_PAYLOAD, 'close reason is not valid UTF-8');
    this.finish('close');
    return { kind: 'close', code, reason: reasonBytes.toString('utf8') };
  }

  private finish(how: 'close' | 'fail'): void {
    this.ended = how;
    this.fragments = [];
    this.messageBytes = 0;
    this.inMessage = false;
  }

  private fail(code: number, reason: string): WsEvent {
    this.finish('fail');
    this.queue.clear();
    this.headerSize = -1;
    return { kind: 'fail', code, reason };
  }
}
