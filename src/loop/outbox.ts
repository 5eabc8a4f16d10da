// One connection's output, in front of its socket. It knows no protocol: bytes go in, bytes
// come out in order. Three jobs:
// - Batching: between cork() and uncork(), small writes are copied into one buffer that
//   leaves in ONE socket.write (a write per small reply, or a writev of hundreds of pieces,
//   costs more than the copies at pipeline depth). The batch buffer is shared by every outbox
//   of the process (one thread) and reused whenever the socket took a batch whole.
// - Slicing: the socket is handed at most `slice` bytes while it still holds that much; the
//   rest waits in our own queue. A write completes only when the kernel took all of it, so
//   bounded writes make a slow reader's progress visible (`sent`), and a send deadline can run
//   between two completed writes (nginx's send_timeout) rather than over megabytes.
// - Ending: end() after everything queued is out.
// The owner forwards the socket's 'drain' to drained() (the outbox adds no listeners, so the
// owner decides what a drain wakes up).
import type { Socket } from 'node:net';

/** What the outbox needs of a socket (a net.Socket, or a fake in tests). */
export type OutboxSocket = Pick<Socket, 'write' | 'end' | 'writableLength' | 'writableHighWaterMark' | 'writableNeedDrain' | 'destroyed'>;

export interface OutboxOptions {
  /** Largest piece handed to the socket while it is busy; default 256 KiB, never below its high-water mark. */
  slice?: number;
  /** Writes up to this size are copied into the batch while corked; default 4 KiB. */
  copyLimit?: number;
}

/** Size of the shared batch buffer; a batch that fills it is flushed and a new one started. */
export const BATCH_SIZE = 64 * 1024;
const DEFAULT_SLICE = 256 * 1024;
const DEFAULT_COPY_LIMIT = 4 * 1024;

/** The batch buffer no socket holds any more (one thread: only one outbox fills it at a time). */
let spare: Buffer | null = null;

export class Outbox {
  private readonly socket: OutboxSocket;
  private readonly slice: number;
  private readonly copyLimit: number;
  private corks = 0;
  private batch: Buffer | null = null;
  /** Bytes used in `batch`. */
  private batchLen = 0;
  /** Output waiting for the socket to take what it has. */
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private endWhenSent = false;
  private ended = false;
  /** Bytes given to the socket so far. */
  private written = 0;

  constructor(socket: OutboxSocket, opts: OutboxOptions = {}) {
    this.socket = socket;
    // Never below the socket's high-water mark: feed() stops once the socket holds a slice, and
    // only a write that reached the high-water mark promises the 'drain' that resumes it. With a
    // slice under the mark the socket would empty, no 'drain' would come and held output would
    // wait for ever.
    this.slice = Math.max(opts.slice ?? DEFAULT_SLICE, socket.writableHighWaterMark);
    this.copyLimit = Math.min(opts.copyLimit ?? DEFAULT_COPY_LIMIT, BATCH_SIZE);
  }

  /** Bytes queued and not yet taken by the kernel: batch, held queue and the socket's buffer. */
  get backlog(): number {
    return this.socket.writableLength + this.heldBytes + this.batchLen;
  }

  /** Bytes the kernel has taken so far: progress for a send deadline. */
  get sent(): number {
    return this.written - this.socket.writableLength;
  }

  /** A 'drain' is due: the socket is past its high-water mark or we hold output. */
  get drainDue(): boolean {
    return this.heldBytes > 0 || this.socket.writableNeedDrain;
  }

  get isEnded(): boolean {
    return this.ended || this.endWhenSent;
  }

  /** Starts (or nests) a batch: small writes are gathered until the matching uncork(). */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks > 0 && --this.corks === 0) this.flush();
  }

  /**
   * Room for `n` bytes in the batch, for callers that encode in place (no intermediate
   * Buffer): write at `batchEnd` into the returned buffer, then commit(end). Null when `n`
   * is too big to copy; write() it instead.
   */
  reserve(n: number): Buffer | null {
    if (n > this.copyLimit) return null;
    if (this.batch !== null && this.batchLen + n > this.batch.length) this.flush();
    if (this.batch === null) {
      this.batch = spare ?? Buffer.allocUnsafe(BATCH_SIZE);
      spare = null;
    }
    return this.batch;
  }

  /** Where the next reserved bytes go in the buffer reserve() returned. */
  get batchEnd(): number {
    return this.batchLen;
  }

  /** The reserved bytes are written up to `end`; outside a cork they leave at once. */
  commit(end: number): void {
    this.batchLen = end;
    if (this.corks === 0) this.flush();
  }

  /**
   * Queues bytes. Small ones are copied into the batch while corked; bigger ones go out as
   * they are (after the batch, to keep the order). False, like socket.write, when the caller
   * should wait for a drain before giving more.
   */
  write(buf: Buffer): boolean {
    if (this.ended || this.endWhenSent) return false;
    if (this.corks > 0 && buf.length <= this.copyLimit) {
      const b = this.reserve(buf.length)!;
      b.set(buf, this.batchLen);
      this.batchLen += buf.length;
      return true;
    }
    this.flush();
    return this.put(buf);
  }

  /** Copies an ASCII/latin1 string into the batch (HTTP heads). */
  writeLatin1(s: string): boolean {
    if (this.ended || this.endWhenSent) return false;
    if (s.length > this.copyLimit) return this.write(Buffer.from(s, 'latin1'));
    const b = this.reserve(s.length)!;
    this.batchLen += b.write(s, this.batchLen, 'latin1');
    if (this.corks === 0) this.flush();
    return true;
  }

  /** Sends the batch now (it is also sent by the last uncork()). */
  flush(): void {
    const batch = this.batch;
    if (batch === null || this.batchLen === 0) return;
    const n = this.batchLen;
    this.batch = null;
    this.batchLen = 0;
    if (this.socket.destroyed) {
      spare = batch;
      return;
    }
    this.put(batch.subarray(0, n));
    // Taken whole during write(): the buffer is free again for anyone. Otherwise the socket
    // holds it until the write completes, and the next batch starts a fresh one.
    if (this.socket.writableLength === 0 && this.heldBytes === 0) spare = batch;
  }

  /** Writes now when the socket holds little, else holds the bytes until it drains. */
  private put(buf: Buffer): boolean {
    if (this.socket.destroyed) return false;
    if (this.heldBytes === 0 && buf.length <= this.slice && this.socket.writableLength < this.slice) {
      this.written += buf.length;
      return this.socket.write(buf);
    }
    this.held.push(buf);
    this.heldBytes += buf.length;
    return this.feed();
  }

  /** Moves held output to the socket, a slice at a time, while the socket holds little. */
  private feed(): boolean {
    const held = this.held;
    let ok = !this.socket.writableNeedDrain;
    while (this.heldBytes > 0 && this.socket.writableLength < this.slice && !this.socket.destroyed) {
      const front = held[0]!;
      const piece = front.length <= this.slice ? front : front.subarray(0, this.slice);
      if (piece === front) held.shift();
      else held[0] = front.subarray(this.slice);
      this.heldBytes -= piece.length;
      this.written += piece.length;
      ok = this.socket.write(piece);
    }
    if (this.heldBytes === 0 && this.endWhenSent && !this.ended) {
      this.ended = true;
      this.socket.end();
    }
    return this.heldBytes === 0 && ok;
  }

  /** Call on the socket's 'drain'. True when nothing is held any more (the owner may go on). */
  drained(): boolean {
    this.feed();
    return this.heldBytes === 0;
  }

  /** Ends the socket once everything queued (batch included) is out. */
  end(): void {
    if (this.ended || this.endWhenSent) return;
    this.flush();
    if (this.heldBytes === 0) {
      this.ended = true;
      this.socket.end();
    } else this.endWhenSent = true;
  }

  /** Forgets queued output (the socket is gone). */
  discard(): void {
    this.held.length = 0;
    this.heldBytes = 0;
    if (this.batch !== null) spare ??= this.batch;
    this.batch = null;
    this.batchLen = 0;
  }
}
