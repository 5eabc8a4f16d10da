// Read buffers for files being sent (file-sender.ts, for either face). A transfer holds at most
// one beyond what its socket took (the next chunk is read only once the socket has taken the
// previous one), every byte held is counted in the server-wide output budget, and the chunk
// shrinks as that budget fills: a thousand slow readers cost a thousand small chunks, not a
// thousand stream buffers.
//
// Chunks are carved from slabs, and a slab's memory goes back to the OS the moment its last
// chunk comes back (beyond a small reserve for the next burst). Plain Buffers could not do that:
// a dropped Buffer is freed only when V8 next runs a full GC, which an idle server may not do
// for a long time, and even then glibc keeps the freed 16-64 KiB blocks in its heap (below its
// mmap threshold). After 1,000 slow readers left that was +100 MB of RSS for good. A slab is a
// resizable ArrayBuffer: V8 maps it outside malloc, and resize(0) hands its pages back at once,
// with no GC; resizing it back maps fresh zeroed pages at the same address, so the chunk views
// carved from it stay valid.
import type { ByteBudget } from './budget.js';

/** Largest chunk: a reader whose socket takes every chunk at once grows to it (fewer reads). */
export const CHUNK_FULL = 256 * 1024;
/** A response's first chunk: a slow reader never holds more than this (it only shrinks). */
export const CHUNK_START = 64 * 1024;
/** Chunks past CHUNK_START only while the server holds less than 1/GROWTH_SHARE of its budget. */
const GROWTH_SHARE = 16;
/** Chunk size once the server holds --max-output-total or more. */
export const CHUNK_MIN = 16 * 1024;
/**
 * Bytes per slab. Each slab serves one size class. Smaller slabs go back to the OS sooner (one
 * chunk still in use keeps its whole slab); larger ones mean fewer mappings and resizes.
 */
export const SLAB_BYTES = 256 * 1024;
/** Empty slabs kept mapped for the next burst, across all size classes; the rest are unmapped. */
export const RETAIN_BYTES = 1024 * 1024;
/** Unmapped slabs kept (address space only, no memory) to be mapped again rather than reallocated. */
const SPARE_SLABS = 64;

/** A resizable ArrayBuffer (ES2024, in Node since 20; the lib setting in tsconfig predates it). */
interface Resizable extends ArrayBuffer {
  resize(byteLength: number): void;
}
const Resizable = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => Resizable;

/** One slab: `size`-byte chunks carved from one resizable ArrayBuffer of SLAB_BYTES. */
class Slab {
  /** The chunks, one view per slot; they stay valid across resize(0) and resize back. */
  chunks: Buffer[] = [];
  /** Indexes of free slots (a stack). */
  free: number[] = [];
  /** Chunks handed out and not yet given back. */
  live = 0;
  /** Chunks given back after a failed write: never handed out again (see give). */
  dead = 0;
  /** Where this slab sits in its class's open or empty list, -1 if in neither. */
  at = -1;
  size = 0;

  constructor(readonly memory: Resizable) {}

  /** Maps the memory (again) and carves it into `size`-byte chunks, all free. */
  carve(size: number): void {
    this.memory.resize(SLAB_BYTES);
    if (size !== this.size) {
      this.size = size;
      this.chunks = [];
      for (let off = 0; off + size <= SLAB_BYTES; off += size) this.chunks.push(Buffer.from(this.memory, off, size));
    }
    this.free = this.chunks.map((_, i) => this.chunks.length - 1 - i);
    this.live = 0;
    this.dead = 0;
  }
}

/** A size class's slabs: `open` have chunks both live and free, `empty` are mapped and unused. */
interface SizeClass {
  open: Slab[];
  empty: Slab[];
}

export class ChunkPool {
  private readonly classes = new Map<number, SizeClass>();
  /** Every mapped slab by its memory, to find a given-back chunk's slab. */
  private readonly slabs = new Map<ArrayBuffer, Slab>();
  /** Unmapped slabs, ready to be mapped again. */
  private readonly spare: Slab[] = [];
  /** Bytes of empty slabs kept mapped (at most RETAIN_BYTES). */
  private retained = 0;

  constructor(
    readonly budget: ByteBudget,
    private readonly full = CHUNK_FULL,
    private readonly min = CHUNK_MIN,
  ) {}

  /**
   * A buffer to read the next chunk into: the largest size class that the budget and `cap`
   * (the connection's own size, see nextSize) allow, rounded down so the budget is never
   * overshot by rounding. Its whole length is counted in the budget until give().
   */
  take(cap = this.full): Buffer {
    let want = Math.min(cap, this.budget.chunk(this.full, this.min));
    // A reader only shows it is slow once its socket buffer is full, by then holding its
    // largest chunk: chunks past CHUNK_START only while the server holds little, so a thousand
    // readers that all turn out slow hold CHUNK_START each, not CHUNK_FULL.
    if (want > CHUNK_START && this.budget.used > this.budget.limit / GROWTH_SHARE) want = CHUNK_START;
    let size = this.min;
    while (size * 2 <= want && size * 2 <= this.full) size *= 2;
    const buf = this.carveChunk(size);
    this.budget.add(buf.length);
    return buf;
  }

  /**
   * Returns a buffer. `reusable`: nothing can still be reading from it (the socket finished
   * the write). A write that failed may in theory leave it referenced, so that chunk is only
   * uncounted and never handed out again; its slab is unmapped once its other chunks are back.
   */
  give(buf: Buffer, reusable: boolean): void {
    this.budget.sub(buf.length);
    const slab = this.slabs.get(buf.buffer as ArrayBuffer);
    // Not from a slab (one could not be mapped): the GC has it.
    if (slab === undefined || buf.length !== slab.size) return;
    const cls = this.classes.get(slab.size)!;
    const wasFull = slab.free.length === 0;
    slab.live--;
    if (reusable) slab.free.push((buf.byteOffset / slab.size) | 0);
    else slab.dead++;
    if (slab.live > 0) {
      if (wasFull && slab.free.length > 0) push(cls.open, slab);
      return;
    }
    if (!wasFull) remove(cls.open, slab);
    if (slab.dead === 0 && this.retained + SLAB_BYTES <= RETAIN_BYTES) {
      this.retained += SLAB_BYTES;
      push(cls.empty, slab);
    } else {
      this.unmap(slab, slab.dead === 0);
    }
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

  /** Free chunks kept mapped, ready to hand out (for tests). */
  get pooledBytes(): number {
    let n = 0;
    for (const slab of this.slabs.values()) n += slab.size * slab.free.length;
    return n;
  }

  /** Bytes of slab memory mapped now, in use or not (for tests and the memory benchmark). */
  get mappedBytes(): number {
    return this.slabs.size * SLAB_BYTES;
  }

  private carveChunk(size: number): Buffer {
    let cls = this.classes.get(size);
    if (cls === undefined) this.classes.set(size, (cls = { open: [], empty: [] }));
    // Fill slabs already in use before an empty one, so that empty ones stay empty and can go.
    let slab: Slab | undefined = cls.open[cls.open.length - 1];
    if (slab === undefined) {
      slab = cls.empty.pop();
      if (slab !== undefined) {
        slab.at = -1;
        this.retained -= SLAB_BYTES;
      } else {
        slab = this.map(size);
        // No memory for a slab: a plain buffer, which the GC frees after give().
        if (slab === undefined) return Buffer.allocUnsafeSlow(size);
      }
      push(cls.open, slab);
    }
    const buf = slab.chunks[slab.free.pop()!]!;
    slab.live++;
    if (slab.free.length === 0) remove(cls.open, slab);
    return buf;
  }

  /** A mapped slab of `size`-byte chunks: a spare one mapped again, or a new one. */
  private map(size: number): Slab | undefined {
    try {
      const slab = this.spare.pop() ?? new Slab(new Resizable(SLAB_BYTES, { maxByteLength: SLAB_BYTES }));
      slab.carve(size);
      this.slabs.set(slab.memory, slab);
      return slab;
    } catch {
      return undefined; // RangeError: out of memory or address space
    }
  }

  /** Gives a slab's pages back to the OS; keeps the slab to map again if `reuse`. */
  private unmap(slab: Slab, reuse: boolean): void {
    this.slabs.delete(slab.memory);
    slab.memory.resize(0);
    if (reuse && this.spare.length < SPARE_SLABS) this.spare.push(slab);
  }
}

function push(list: Slab[], slab: Slab): void {
  slab.at = list.length;
  list.push(slab);
}

function remove(list: Slab[], slab: Slab): void {
  const i = slab.at;
  if (i < 0 || list[i] !== slab) return;
  const last = list.pop()!;
  if (last !== slab) {
    list[i] = last;
    last.at = i;
  }
  slab.at = -1;
}
