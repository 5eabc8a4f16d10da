// Just enough MX/1 for the load generator and the minimal peer, written against the wire spec
// (docs/protocol.md) rather than src/wire, so a bench measures the server and not our own codec:
// 12-byte big-endian header `!HBBII` = magic 0x4D58 u16, version 1 u8, type u8, id u32, length u32.

export const MX_MAGIC = 0x4d58;
export const MX_VERSION = 1;
export const MX_HEADER = 12;

export const MX = {
  PING: 0x01,
  JOIN: 0x10,
  SAY: 0x11,
  PUT: 0x20,
  GET: 0x21,
  DATA: 0x30,
  PING_OK: 0x81,
  JOIN_OK: 0x90,
  SAY_OK: 0x91,
  PUT_OK: 0xa0,
  GET_OK: 0xa1,
  USER_JOINED: 0xc0,
  MESSAGE: 0xc1,
  USER_LEFT: 0xc2,
  ERROR: 0xff,
} as const;

export function writeHeader(target: Buffer, offset: number, type: number, id: number, length: number): void {
  target.writeUInt16BE(MX_MAGIC, offset);
  target[offset + 2] = MX_VERSION;
  target[offset + 3] = type;
  target.writeUInt32BE(id >>> 0, offset + 4);
  target.writeUInt32BE(length >>> 0, offset + 8);
}

/** One frame in one Buffer (header + payload copied once): for frames encoded ahead of the load. */
export function encodeFrame(type: number, id: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(MX_HEADER + payload.length);
  writeHeader(out, 0, type, id, payload.length);
  out.set(payload, MX_HEADER);
  return out;
}

/** u64 as two u32 halves (sizes here stay far below 2^53). */
export function writeU64(target: Buffer, offset: number, value: number): void {
  target.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  target.writeUInt32BE(value >>> 0, offset + 4);
}

export function readU64(source: Buffer, offset: number): number {
  return source.readUInt32BE(offset) * 0x1_0000_0000 + source.readUInt32BE(offset + 4);
}

export interface FrameEvents {
  /** A whole frame arrived. `payload` is set only for non-DATA frames up to `keepPayloadMax` bytes. */
  frame(type: number, id: number, length: number, payload: Buffer | null): void;
  /** Payload bytes of a DATA frame as they stream in (counted, never buffered). */
  data?(id: number, bytes: number): void;
}

/**
 * Walks a byte stream frame by frame by reading headers and skipping payloads: replies are
 * counted without copying them. Headers split across chunks are assembled in a 12-byte buffer.
 */
export class FrameScanner {
  private readonly head = Buffer.alloc(MX_HEADER);
  private headFill = 0;
  private type = 0;
  private id = 0;
  private length = 0;
  private remaining = 0;
  private inPayload = false;
  private kept: Buffer[] | null = null;

  constructor(private readonly on: FrameEvents, private readonly keepPayloadMax = 64 * 1024) {}

  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (!this.inPayload) {
        // Fast path: a whole header inside this chunk.
        if (this.headFill === 0 && end - pos >= MX_HEADER) {
          this.startFrame(chunk, pos);
          pos += MX_HEADER;
        } else {
          const take = Math.min(MX_HEADER - this.headFill, end - pos);
          chunk.copy(this.head, this.headFill, pos, pos + take);
          this.headFill += take;
          pos += take;
          if (this.headFill < MX_HEADER) return;
          this.headFill = 0;
          this.startFrame(this.head, 0);
        }
        if (this.remaining === 0) this.finish();
        continue;
      }
      const take = Math.min(this.remaining, end - pos);
      if (this.type === MX.DATA) this.on.data?.(this.id, take);
      else if (this.kept) this.kept.push(chunk.subarray(pos, pos + take));
      pos += take;
      this.remaining -= take;
      if (this.remaining === 0) this.finish();
    }
  }

  private startFrame(src: Buffer, at: number): void {
    if (src.readUInt16BE(at) !== MX_MAGIC || src[at + 2] !== MX_VERSION) throw new Error('mx: bad magic or version in a reply');
    this.type = src[at + 3]!;
    this.id = src.readUInt32BE(at + 4);
    this.length = this.remaining = src.readUInt32BE(at + 8);
    this.inPayload = true;
    this.kept = this.type !== MX.DATA && this.length <= this.keepPayloadMax ? [] : null;
  }

  private finish(): void {
    this.inPayload = false;
    const kept = this.kept;
    this.kept = null;
    const payload = kept === null ? null : kept.length === 1 ? kept[0]! : Buffer.concat(kept);
    this.on.frame(this.type, this.id, this.length, payload);
  }
}

/** "code N: message" from an ERROR payload (u16 code + UTF-8 rest). */
export function describeError(payload: Buffer | null): string {
  if (payload === null || payload.length < 2) return 'error (no payload)';
  return `error ${payload.readUInt16BE(0)}: ${payload.toString('utf8', 2)}`;
}
