// The receive buffer of the WebSocket receiver: a queue of chunks and a byte count (the idea of
// ws lib/receiver.js and of src/wire/frame.ts). Taking bytes off the front gives a view when they
// lie in the first chunk and copies only across a chunk boundary. Peeking never consumes, so a
// frame header that has not fully arrived stays in the queue, unconsumed.

/** Chunks up to this size are merged into owned blocks instead of being queued one by one. */
const SMALL_CHUNK = 512;
const BLOCK_SIZE = 16 * 1024;

export class ChunkQueue {
  private readonly chunks: Buffer[] = [];
  private total = 0;
  /** Bytes of chunks[0] already consumed: moving an offset is cheaper than making a view per frame. */
  private offset = 0;
  /** The owned block small chunks are merged into, and how much of it is filled. */
  private block: Buffer | null = null;
  private blockUsed = 0;

  /** Bytes queued and not yet consumed. */
  get length(): number {
    return this.total;
  }

  /** Buffer objects held (for tests: a peer that dribbles bytes must not make this grow). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /**
   * Queues a chunk. The queue keeps a reference to it (no copy) unless it is small and bytes
   * are already waiting: a peer that sends a frame a byte per segment would otherwise leave one
   * Buffer object (about 100 bytes of overhead) per byte. Bytes already handed out as views are
   * never overwritten: a block only grows past its used length.
   */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.total += chunk.length;
    if (chunk.length <= SMALL_CHUNK && this.chunks.length > 0) this.appendSmall(chunk);
    else this.chunks.push(chunk);
  }

  private appendSmall(chunk: Buffer): void {
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
    if (last.buffer === block.buffer && last.byteOffset + last.length === block.byteOffset + start) {
      this.chunks[lastIndex] = block.subarray(last.byteOffset - block.byteOffset, this.blockUsed);
    } else {
      this.chunks.push(block.subarray(start, this.blockUsed));
    }
  }

  /** The byte at offset i from the front; the caller has checked i < length. */
  byteAt(i: number): number {
    i += this.offset;
    for (let k = 0; k < this.chunks.length; k++) {
      const c = this.chunks[k]!;
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    throw new RangeError('byteAt past the end of the queue');
  }

  /** Big-endian u32 at offset i from the front, without consuming. */
  u32At(i: number): number {
    const first = this.chunks[0]!;
    const at = this.offset + i;
    if (at + 4 <= first.length) return first.readUInt32BE(at);
    return ((this.byteAt(i) << 24) | (this.byteAt(i + 1) << 16) | (this.byteAt(i + 2) << 8) | this.byteAt(i + 3)) >>> 0;
  }

  /** Big-endian u16 at offset i from the front, without consuming. */
  u16At(i: number): number {
    const first = this.chunks[0]!;
    const at = this.offset + i;
    if (at + 2 <= first.length) return first.readUInt16BE(at);
    return (this.byteAt(i) << 8) | this.byteAt(i + 1);
  }

  /** Drops n bytes off the front (n <= length). Only an offset moves: no view is made. */
  skip(n: number): void {
    this.total -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.offset;
      if (n < avail) {
        this.offset += n;
        return;
      }
      n -= avail;
      this.chunks.shift();
      this.offset = 0;
    }
  }

  /** Takes n bytes (0 < n <= length) off the front: a view when they lie in the first chunk, else one copy. */
  take(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[0]!;
    const start = this.offset;
    const avail = first.length - start;
    if (n === avail) {
      this.chunks.shift();
      this.offset = 0;
      return start === 0 ? first : first.subarray(start);
    }
    if (n < avail) {
      this.offset = start + n;
      return first.subarray(start, start + n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const from = this.offset;
      const have = c.length - from;
      const want = n - filled;
      if (want >= have) {
        out.set(from === 0 ? c : c.subarray(from), filled);
        filled += have;
        this.chunks.shift();
        this.offset = 0;
      } else {
        out.set(c.subarray(from, from + want), filled);
        filled = n;
        this.offset = from + want;
      }
    }
    return out;
  }

  /** Forgets everything (after a protocol failure nothing more is read). */
  clear(): void {
    this.chunks.length = 0;
    this.total = 0;
    this.offset = 0;
    this.block = null;
    this.blockUsed = 0;
  }
}
