// MX/1 framing: a 12-byte big-endian header `!HBBII` (magic, version, type, id, length) then
// `length` payload bytes. The decoder is incremental and sans-IO: push chunks, pull frames.
// Model: ws lib/receiver.js — a queue of chunks plus a byte count, views when a frame lies in one
// chunk, a copy only across a boundary, and the declared length checked before anything is buffered.
import { CodedError } from '../loop/coded-error.js';
import { DEFAULT_MAX_PAYLOAD, ErrorCode, HEADER_SIZE, MAGIC, VERSION } from './protocol.js';

export interface Frame {
  type: number;
  id: number;
  /** A view into the received chunk when the bytes were contiguous; copy it to keep it. */
  payload: Buffer;
}

/** A protocol violation with the MX/1 error code to answer with (see protocol.ts ErrorCode). */
export class WireError extends CodedError<number> {}

const EMPTY = Buffer.alloc(0);
/** Chunks up to this size are merged into owned blocks of BLOCK_SIZE (see appendSmall). */
const SMALL_CHUNK = 512;
const BLOCK_SIZE = 16 * 1024;

export function encodeHeader(type: number, id: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(h, 0, type, id, length);
  return h;
}

function writeHeader(out: Buffer, at: number, type: number, id: number, length: number): void {
  out.writeUInt16BE(MAGIC, at);
  out[at + 2] = VERSION;
  out.writeUInt8(type, at + 3);
  out.writeUInt32BE(id, at + 4);
  out.writeUInt32BE(length, at + 8);
}

/** Writes the frame (header, then payload) into `out` at `at`; returns the offset after it. */
export function writeFrame(out: Buffer, at: number, type: number, id: number, payload?: Uint8Array): number {
  const length = payload === undefined ? 0 : payload.length;
  writeHeader(out, at, type, id, length);
  if (length > 0) out.set(payload!, at + HEADER_SIZE);
  return at + HEADER_SIZE + length;
}

/** [header, payload] (payload omitted when empty) for socket.cork()/write or writev: the payload is never copied. */
export function encodeFrame(type: number, id: number, payload?: Uint8Array): Buffer[] {
  if (payload === undefined || payload.length === 0) return [encodeHeader(type, id, 0)];
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  return [encodeHeader(type, id, body.length), body];
}

export class FrameDecoder {
  private readonly maxPayload: number;
  private readonly chunks: Buffer[] = [];
  private total = 0;
  /** Header of the frame whose payload we are waiting for; -1 length = no header read yet. */
  private type = 0;
  private id = 0;
  private length = -1;
  /** The owned block small chunks are merged into, and how much of it is filled. */
  private block: Buffer | null = null;
  private blockUsed = 0;
  /** Set once a fatal error was thrown: the stream can no longer be framed, so it stays failed. */
  private failure: WireError | null = null;

  constructor(maxPayload: number = DEFAULT_MAX_PAYLOAD) {
    this.maxPayload = maxPayload;
  }

  get buffered(): number {
    return this.total;
  }

  /** Chunks queued, for tests: small pieces are merged, so this stays bounded. */
  get queuedChunks(): number {
    return this.chunks.length;
  }

  push(chunk: Buffer): void {
    if (this.failure || chunk.length === 0) return;
    this.total += chunk.length;
    if (chunk.length <= SMALL_CHUNK && this.appendSmall(chunk)) return;
    this.chunks.push(chunk);
  }

  /**
   * A peer that dribbles a frame a few bytes per segment would otherwise leave one Buffer
   * object (~100 bytes of overhead) per segment queued. Small chunks are copied into an owned
   * block and the last queued view is extended instead. Bytes already handed out as payload
   * views are never overwritten: the block only grows past its used length.
   */
  private appendSmall(chunk: Buffer): boolean {
    // Nothing waiting (whole frames per chunk, the common case): queue the chunk as it is.
    if (this.chunks.length === 0) return false;
    let block = this.block;
    if (block === null || this.blockUsed + chunk.length > block.length) {
      block = this.block = Buffer.allocUnsafeSlow(BLOCK_SIZE);
      this.blockUsed = 0;
    }
    const start = this.blockUsed;
    block.set(chunk, start);
    this.blockUsed += chunk.length;
    const lastIndex = this.chunks.length - 1;
    const last = this.chunks[lastIndex]!;
    if (last.buffer === block.buffer && last.byteOffset + last.length === start) {
      this.chunks[lastIndex] = block.subarray(last.byteOffset, this.blockUsed);
    } else {
      this.chunks.push(block.subarray(start, this.blockUsed));
    }
    return true;
  }

  next(): Frame | null {
    if (this.failure) throw this.failure;
    if (this.length < 0) {
      if (this.total < HEADER_SIZE) return null;
      const h = this.consume(HEADER_SIZE);
      const magic = h.readUInt16BE(0);
      const version = h[2];
      if (magic !== MAGIC || version !== VERSION) {
        return this.fail(ErrorCode.BAD_MAGIC_OR_VERSION,
          magic !== MAGIC ? `bad magic 0x${magic.toString(16).padStart(4, '0')}` : `unsupported version ${version}`);
      }
      const length = h.readUInt32BE(8);
      // Checked before a single payload byte is buffered (PostgreSQL's startup-packet cap, ws maxPayload).
      if (length > this.maxPayload) {
        return this.fail(ErrorCode.FRAME_TOO_LARGE, `frame payload of ${length} bytes exceeds the limit of ${this.maxPayload}`);
      }
      this.type = h[3];
      this.id = h.readUInt32BE(4);
      this.length = length;
    }
    if (this.total < this.length) return null;
    const payload = this.length === 0 ? EMPTY : this.consume(this.length);
    const frame: Frame = { type: this.type, id: this.id, payload };
    this.length = -1;
    return frame;
  }

  private fail(code: number, message: string): never {
    this.failure = new WireError(code, message);
    this.chunks.length = 0;
    this.total = 0;
    throw this.failure;
  }

  /** Takes n bytes off the front: a view when they lie in the first chunk, else one copy. */
  private consume(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[0];
    if (n === first.length) {
      this.chunks.shift();
      return first;
    }
    if (n < first.length) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const take = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, take);
      filled += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    return out;
  }
}
