// The sending half of RFC 6455 §5 framing, sans-IO: bytes to write, nothing written.
// Server frames are never masked, and a binary message is [header, payload] so the payload is
// never copied (the idea of ws lib/sender.js). Client frames are masked with a fresh 4-byte key
// from an injected random source (§5.3), so the client library can share this codec.
import { CLOSE_CODE_TABLE, MAX_CLOSE_REASON_BYTES, MAX_CONTROL_PAYLOAD, Opcode, isCloseCodeAllowedOnWire } from './constants.js';
import { applyMask } from './mask.js';

const TWO_32 = 0x1_0000_0000;
const EMPTY = Buffer.alloc(0);

function headerSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x1_0000 ? 4 : 10) + (masked ? 4 : 0);
}

/** Writes a frame header at `out[0]`; returns its size. The 4 key bytes follow the length when `key` is given. */
function writeHeader(out: Buffer, fin: boolean, opcode: number, length: number, key: Uint8Array | null): number {
  out[0] = (fin ? 0x80 : 0) | opcode;
  const maskBit = key === null ? 0 : 0x80;
  let at: number;
  if (length < 126) {
    out[1] = maskBit | length;
    at = 2;
  } else if (length < 0x1_0000) {
    out[1] = maskBit | 126;
    out.writeUInt16BE(length, 2);
    at = 4;
  } else {
    out[1] = maskBit | 127;
    out.writeUInt32BE(Math.floor(length / TWO_32), 2);
    out.writeUInt32BE(length >>> 0, 6);
    at = 10;
  }
  if (key !== null) {
    out.set(key.subarray(0, 4), at);
    at += 4;
  }
  return at;
}

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid payload length ${length}`);
}

function checkControl(payload: Uint8Array): void {
  if (payload.length > MAX_CONTROL_PAYLOAD) throw new RangeError(`control frame payload of ${payload.length} bytes (at most ${MAX_CONTROL_PAYLOAD})`);
}

/** The payload of a close frame: u16 code + UTF-8 reason, or nothing when code is undefined. */
export function closePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw new RangeError('a close reason needs a code');
    return EMPTY;
  }
  if (!isCloseCodeAllowedOnWire(code)) {
    const range = CLOSE_CODE_TABLE.find((r) => code >= r.from && code <= r.to);
    throw new RangeError(`close code ${code} may not be sent (${range?.meaning ?? 'out of range'})`);
  }
  const text = Buffer.from(reason, 'utf8');
  if (text.length > MAX_CLOSE_REASON_BYTES) throw new RangeError(`close reason of ${text.length} bytes (at most ${MAX_CLOSE_REASON_BYTES})`);
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

/**
 * Cuts a reason to at most MAX_CLOSE_REASON_BYTES of UTF-8 without splitting a character, for
 * callers that put a longer human-readable text into a close frame.
 */
export function fitCloseReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= MAX_CLOSE_REASON_BYTES) return reason;
  let end = MAX_CLOSE_REASON_BYTES;
  // Back up over continuation bytes (10xxxxxx) so the cut falls before a character's lead byte.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

// ---------------------------------------------------------------- server side (never masked)

/** The header of an unmasked frame carrying `length` payload bytes. */
export function serverFrameHeader(opcode: number, length: number, fin = true): Buffer {
  checkLength(length);
  const out = Buffer.allocUnsafe(headerSize(length, false));
  writeHeader(out, fin, opcode, length, null);
  return out;
}

/** The header of one unfragmented binary message of `length` bytes: write it, then the payload (or its parts). */
export function binaryHeader(length: number): Buffer {
  return serverFrameHeader(Opcode.BINARY, length, true);
}

/** [header, payload] for one binary message; the payload is the caller's Buffer, not a copy. */
export function encodeBinary(payload: Buffer): Buffer[] {
  return payload.length === 0 ? [binaryHeader(0)] : [binaryHeader(payload.length), payload];
}

function serverControl(opcode: number, payload: Uint8Array): Buffer {
  checkControl(payload);
  const out = Buffer.allocUnsafe(2 + payload.length);
  writeHeader(out, true, opcode, payload.length, null);
  out.set(payload, 2);
  return out;
}

/** The answer to a ping: a pong with the same payload (§5.5.3). */
export function encodePong(payload: Uint8Array = EMPTY): Buffer {
  return serverControl(Opcode.PONG, payload);
}

export function encodePing(payload: Uint8Array = EMPTY): Buffer {
  return serverControl(Opcode.PING, payload);
}

/** A close frame; without a code, an empty one (the echo of a close that had no code). */
export function encodeClose(code?: number, reason = ''): Buffer {
  return serverControl(Opcode.CLOSE, closePayload(code, reason));
}

// ---------------------------------------------------------------- client side (always masked)

/** Fills the given bytes with random values (crypto.randomFillSync fits). */
export type RandomSource = (bytes: Uint8Array) => void;

export class ClientFrameEncoder {
  private readonly random: RandomSource;
  private readonly key = new Uint8Array(4);

  constructor(random: RandomSource) {
    this.random = random;
  }

  /**
   * One masked frame: header, key and masked payload in one new Buffer (masking must not touch
   * the caller's payload, so it is copied once, by the mask loop itself).
   */
  frame(opcode: number, payload: Uint8Array, fin = true): Buffer {
    if (opcode >= 0x8) checkControl(payload);
    this.random(this.key);
    const size = headerSize(payload.length, true);
    const out = Buffer.allocUnsafe(size + payload.length);
    writeHeader(out, fin, opcode, payload.length, this.key);
    applyMask(payload, this.key, out, size);
    return out;
  }

  binary(payload: Uint8Array): Buffer {
    return this.frame(Opcode.BINARY, payload, true);
  }

  /** A message cut into fragments of at most `fragmentSize` bytes (at least one frame). */
  fragments(payload: Uint8Array, fragmentSize: number): Buffer[] {
    if (!Number.isSafeInteger(fragmentSize) || fragmentSize < 1) throw new RangeError(`invalid fragment size ${fragmentSize}`);
    const out: Buffer[] = [];
    let at = 0;
    do {
      const end = Math.min(payload.length, at + fragmentSize);
      out.push(this.frame(at === 0 ? Opcode.BINARY : Opcode.CONTINUATION, payload.subarray(at, end), end === payload.length));
      at = end;
    } while (at < payload.length);
    return out;
  }

  ping(payload: Uint8Array = EMPTY): Buffer {
    return this.frame(Opcode.PING, payload);
  }

  pong(payload: Uint8Array = EMPTY): Buffer {
    return this.frame(Opcode.PONG, payload);
  }

  close(code?: number, reason = ''): Buffer {
    return this.frame(Opcode.CLOSE, closePayload(code, reason));
  }
}
