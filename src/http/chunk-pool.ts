// Read buffers for files being sent. A connection holds at most one at a time (the next chunk
// is read only once the socket has taken the previous one), every byte held is counted in the
// server-wide output budget, and the chunk shrinks as that budget fills: a thousand slow
// readers cost a thousand small chunks, not a thousand stream buffers. Buffers come back here
// when the socket is done with them, so a burst reuses them rather than growing the heap.
import type { ByteBudget } from '../loop/budget.js';

/** Chunk size while the server holds little; a fast reader takes it at once. */
export const CHUNK_FULL = 64 * 1024;
/** Chunk size once the server holds --max-output-total or more. */
export const CHUNK_MIN = 16 * 1024;
/** Free buffers kept for reuse, per size class; beyond this they go to the GC. */
const POOL_BYTES_PER_CLASS = 1024 * 1024;

export class ChunkPool {
  /** Free buffers by size class (powers of two from CHUNK_MIN to CHUNK_FULL). */
  private readonly free = new Map<number, Buffer[]>();

  constructor(
    readonly budget: ByteBudget,
    private readonly full = CHUNK_FULL,
    private readonly min = CHUNK_MIN,
  ) {}

  /**
   * A buffer to read the next chunk into: the largest size class that the budget and `cap`
   * (the connection's own size, see grow/shrink) allow, rounded down so the budget is never
   * overshot by rounding. Its whole length is counted in the budget until give().
   */
  take(cap = this.full): Buffer {
    const want = Math.min(cap, this.budget.chunk(this.full, this.min));
    let size = this.min;
    while (size * 2 <= want && size * 2 <= this.full) size *= 2;
    const list = this.free.get(size);
    const buf = list !== undefined && list.length > 0 ? list.pop()! : Buffer.allocUnsafeSlow(size);
    this.budget.add(buf.length);
    return buf;
  }

  /**
   * Returns a buffer. `reusable`: nothing can still be reading from it (the socket finished
   * the write); a write that failed may leave it referenced, so it is only uncounted.
   */
  give(buf: Buffer, reusable: boolean): void {
    this.budget.sub(buf.length);
    if (!reusable) return;
    let list = this.free.get(buf.length);
    if (list === undefined) this.free.set(buf.length, (list = []));
    if ((list.length + 1) * buf.length <= POOL_BYTES_PER_CLASS) list.push(buf);
  }

  /**
   * A connection's next chunk size after a write: the socket took the whole chunk at once (a
   * fast reader): double, up to the full size; it had to queue it (a slow reader, who will
   * hold that chunk until the kernel takes it): halve, down to the minimum. A thousand slow
   * readers then hold a thousand small chunks, and a fast one still reads in big ones.
   */
  nextSize(size: number, takenAtOnce: boolean): number {
    return takenAtOnce ? Math.min(this.full, size * 2) : Math.max(this.min, size >> 1);
  }

  /** Free buffers kept (for tests). */
  get pooledBytes(): number {
    let n = 0;
    for (const [size, list] of this.free) n += size * list.length;
    return n;
  }
}
