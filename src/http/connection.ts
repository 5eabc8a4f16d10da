// One HTTP/1.1 connection: feeds socket bytes to the parser, asks the handler for replies,
// and writes them strictly in request order (RFC 9112 §9.3.2), whether a reply is ready at
// once (cache hit), arrives later (a promise) or is a file streamed with backpressure.
import { createReadStream, type ReadStream } from 'node:fs';
import type { Socket } from 'node:net';
import type { Timed } from '../loop/sweeper.js';
import { coarseNow, dateHeaderLine } from '../loop/clock.js';
import { errorReply } from './status.js';
import type { BodyPart, FileRegion, Handler, ParserFactory, ParserLimits, Reply, RequestHead, RequestParser } from './types.js';
import type { AccessLog } from './access-log.js';

export interface ConnectionOptions {
  handler: Handler;
  parserFactory: ParserFactory;
  limits: ParserLimits;
  /** Time allowed from a head's first byte to its last (slowloris) -> 408. */
  headTimeoutMs: number;
  /** Time a kept-alive connection may sit with nothing to do. */
  idleTimeoutMs: number;
  /** Time a reader may leave our output unread (or a body unsent) before we give up. */
  sendTimeoutMs: number;
  /** Requests parsed but not yet answered; past this we stop reading (pipelining bound). */
  maxPipeline: number;
  /** Output bytes queued in the socket past which we stop parsing new requests. */
  maxOutputBytes: number;
  accessLog: AccessLog | null;
  onRequest?: () => void;
}

interface Slot {
  head: RequestHead | null;
  reply: Reply | null;
  /** Set by the parser's rejection: answer, then close. */
  fatal: boolean;
}

const enum Wait {
  None,
  Idle,
  Head,
  Body,
  Send,
}

const STREAM_CHUNK = 256 * 1024;
/**
 * The socket is handed at most about this much at a time; the rest waits in our own queue.
 * A write completes only when the kernel took all of it (and Node merges queued writes into
 * one writev), so bounded writes are how a slow reader's progress becomes visible: the send
 * timeout runs between two completed writes, like nginx's send_timeout, not over megabytes
 * (a reader must take 256 KiB per --send-timeout). A file's chunks pass through unsplit.
 */
const WRITE_SLICE = STREAM_CHUNK;
/** Body buffers at least this big are written as they are rather than copied into the batch. */
const COPY_LIMIT = 16 * 1024;

const END_PLAIN = Buffer.from('\r\n', 'latin1');
const END_CLOSE = Buffer.from('Connection: close\r\n\r\n', 'latin1');
const END_KEEP_ALIVE = Buffer.from('Connection: keep-alive\r\n\r\n', 'latin1');

/**
 * One output buffer shared by every connection (one thread: only one flush runs at a time).
 * Reused while writes complete synchronously, which is the common case on a fast socket.
 */
const SCRATCH_SIZE = 64 * 1024;
let scratch: Buffer | null = null;

let dateLine = '';
let dateBytes = Buffer.alloc(0);
/** The Date line as bytes, re-encoded once per second. */
function dateLineBytes(): Buffer {
  const line = dateHeaderLine();
  if (line !== dateLine) {
    dateLine = line;
    dateBytes = Buffer.from(line, 'latin1');
  }
  return dateBytes;
}

export class HttpConnection implements Timed {
  deadline = 0;
  private wait = Wait.None;
  private readonly parser: RequestParser;
  private readonly queue: Slot[] = [];
  /** Bytes the parser left unconsumed when we paused it. */
  private leftover: Buffer | null = null;
  private readPaused = false;
  private streaming: ReadStream | null = null;
  private closing = false;
  /** No request will follow the queued ones: the client half-closed, or a body's framing broke. */
  private inputDone = false;
  /**
   * Queued output past which we stop parsing. Never below the socket's high-water mark, so
   * whenever we stop for output, write() has returned false and a 'drain' is due to wake us.
   */
  private readonly outputLimit: number;
  private current: Slot | null = null;
  /**
   * Output gathered while handling one chunk of input and flushed as ONE buffer: for
   * pipelined requests answered from memory, a write per reply (or a writev of many small
   * pieces, each a string to encode) costs more than copying them all into one buffer.
   */
  private batch: (string | Buffer)[] = [];
  private batchBytes = 0;
  /** Output waiting for the socket to take what it has (see WRITE_SLICE). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** end() was asked for while output was held: end once it is out. */
  private endWhenSent = false;
  /** Bytes given to write(); minus what the socket and `held` still hold, what the kernel took. */
  private written = 0;
  /** Bytes the kernel had taken when the send deadline was last armed. */
  private sentMark = 0;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.outputLimit = Math.max(opts.maxOutputBytes, socket.writableHighWaterMark);
    this.parser = opts.parserFactory(opts.limits, {
      onHead: (head) => this.onHead(head),
      onBody: () => {
        // Bodies are read to keep the framing in step and dropped: no method we serve takes one.
      },
      onComplete: () => this.onComplete(),
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('end', () => this.onEnd());
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.cleanup());
    this.arm(Wait.Idle, opts.idleTimeoutMs);
  }

  private arm(wait: Wait, ms: number): void {
    this.wait = wait;
    this.deadline = coarseNow() + ms;
    if (wait === Wait.Send) this.sentMark = this.sent();
  }

  /** Output bytes the kernel has taken off our hands so far. */
  private sent(): number {
    return this.written - this.socket.writableLength - this.heldBytes;
  }

  onDeadline(): void {
    switch (this.wait) {
      case Wait.Head:
        // RFC 9110 §15.5.9: 408 tells the client we gave up waiting for its request.
        this.closing = true;
        this.queue.length = 0;
        this.writeReply(null, errorReply(408, { close: true }), false);
        this.flush();
        this.end();
        break;
      case Wait.Send:
        // A slow reader that keeps reading is not a stalled one: only a whole period without
        // any progress ends the connection.
        if (this.sent() > this.sentMark) this.arm(Wait.Send, this.opts.sendTimeoutMs);
        else this.destroy();
        break;
      default:
        this.destroy();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    this.feed(chunk);
    this.service();
  }

  /**
   * Writes what is ready, then parses what was held back while reading was paused, for as
   * long as that makes progress. A flush the kernel takes whole brings no 'drain', so
   * nothing else would come back for bytes held in `leftover`.
   */
  private service(): void {
    do {
      this.pump();
      this.flush();
    } while (this.resumeReading());
    this.finishIfDone();
    this.rearm();
  }

  private feed(chunk: Buffer): void {
    const n = this.parser.execute(chunk);
    if (n === -1) {
      this.readPaused = true;
      this.socket.pause();
      const current = this.current;
      this.current = null;
      if (current === null) {
        const error = this.parser.error;
        this.queue.push({ head: null, reply: errorReply(error?.status ?? 400, { close: true }), fatal: true });
      } else if (this.queue.includes(current)) {
        // The head was valid and has its answer; its body's framing broke, so nothing after
        // it can be trusted (RFC 9112 §6.3): send that one answer, then close.
        current.fatal = true;
      } else {
        // Already answered: close once the output (perhaps a streaming file) is out.
        this.inputDone = true;
      }
      return;
    }
    if (n < chunk.length) {
      this.leftover = chunk.subarray(n);
      this.readPaused = true;
      this.socket.pause();
    }
  }

  private onHead(head: RequestHead): void {
    this.opts.onRequest?.();
    // The head deadline belongs to this head (the next one's starts from its own first byte),
    // a body deadline to its body; a head also ends an idle period, which (see rearm) bytes
    // alone never extend. Only an output deadline carries over.
    if (this.wait !== Wait.Send) this.wait = Wait.None;
    const slot: Slot = { head, reply: null, fatal: false };
    this.current = slot;
    this.queue.push(slot);
    let result: Reply | Promise<Reply>;
    try {
      result = this.opts.handler.handle(head);
    } catch {
      result = errorReply(500, { close: true });
    }
    if (result instanceof Promise) {
      result.then(
        (reply) => this.settle(slot, reply),
        () => this.settle(slot, errorReply(500, { close: true })),
      );
    } else {
      slot.reply = result;
    }
  }

  private onComplete(): void {
    this.current = null;
    if (this.backlogged()) this.parser.pause();
  }

  /** Too much pending to take another request now (pipelining bound, unread output). */
  private backlogged(): boolean {
    return this.queue.length >= this.opts.maxPipeline || this.socket.writableLength + this.heldBytes + this.batchBytes >= this.outputLimit;
  }

  private settle(slot: Slot, reply: Reply): void {
    slot.reply = reply;
    if (this.socket.destroyed) return;
    this.service();
  }

  /** Writes every reply at the front of the queue that is ready, in order. */
  private pump(): void {
    while (this.streaming === null && !this.closing) {
      const slot = this.queue[0];
      if (slot === undefined || slot.reply === null) break;
      this.queue.shift();
      const keepAlive = !slot.fatal && slot.head !== null && slot.head.keepAlive && slot.reply.close !== true;
      this.writeReply(slot.head, slot.reply, keepAlive);
      if (!keepAlive) {
        this.closing = true;
        // rearm stops once closing: the output (perhaps a file still streaming) is judged on progress.
        this.arm(Wait.Send, this.opts.sendTimeoutMs);
        this.queue.length = 0;
        if (this.streaming === null) {
          this.flush();
          this.end();
        }
      }
    }
  }

  private writeReply(head: RequestHead | null, reply: Reply, keepAlive: boolean): void {
    this.push(reply.headBytes ?? reply.head);
    this.push(dateLineBytes());
    // RFC 9112 §9.3: 1.1 persists by default; 1.0 only when both sides say keep-alive.
    this.push(!keepAlive ? END_CLOSE : head !== null && head.versionMinor === 0 ? END_KEEP_ALIVE : END_PLAIN);
    // HEAD, 204 and 304 never carry a body (RFC 9110 §9.3.2, §15.3.5, §15.4.5), whatever the handler says.
    const bodiless = (head !== null && head.method === 'HEAD') || reply.status === 204 || reply.status === 304;
    this.opts.accessLog?.record(this.socket, head, reply.status, bodiless ? 0 : reply.bodyLength);
    if (bodiless) return;
    this.writeBody(reply.body, 0);
  }

  private writeBody(parts: BodyPart[], from: number): void {
    for (let i = from; i < parts.length; i++) {
      const part = parts[i]!;
      if (Buffer.isBuffer(part)) {
        this.push(part);
      } else {
        // The head (and anything before it) must reach the socket before the file's bytes.
        this.flush();
        this.streamFile(part, () => this.writeBody(parts, i + 1));
        return;
      }
    }
    if (this.streaming === null && from > 0) {
      // A streamed body just finished: carry on with the replies that waited behind it.
      this.afterStream();
    }
  }

  private streamFile(region: FileRegion, next: () => void): void {
    const expected = region.end - region.start + 1;
    let sent = 0;
    const stream = createReadStream(region.path, { start: region.start, end: region.end, highWaterMark: STREAM_CHUNK });
    this.streaming = stream;
    stream.on('data', (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      sent += buf.length;
      if (!this.write(buf)) {
        stream.pause();
        this.arm(Wait.Send, this.opts.sendTimeoutMs);
      }
    });
    stream.on('error', () => this.destroy());
    stream.on('end', () => {
      this.streaming = null;
      // A file that shrank under us cannot honour the Content-Length already sent: close.
      if (sent !== expected) return this.destroy();
      if (this.socket.destroyed) return;
      next();
    });
  }

  private afterStream(): void {
    if (this.closing) {
      this.flush();
      this.end();
      return;
    }
    this.service();
  }

  private push(part: string | Buffer): void {
    if (typeof part !== 'string' && part.length >= COPY_LIMIT) {
      this.flush();
      this.write(part);
      return;
    }
    this.batch.push(part);
    // Heads are ASCII (latin1): one byte per character.
    this.batchBytes += part.length;
  }

  /** Writes the gathered output as one buffer. */
  private flush(): void {
    const parts = this.batch;
    if (parts.length === 0) return;
    if (this.socket.destroyed) {
      parts.length = 0;
      this.batchBytes = 0;
      return;
    }
    const size = this.batchBytes;
    const useScratch = size <= SCRATCH_SIZE;
    const out = useScratch ? (scratch ??= Buffer.allocUnsafe(SCRATCH_SIZE)) : Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (typeof part === 'string') at += out.write(part, at, 'latin1');
      else {
        out.set(part, at);
        at += part.length;
      }
    }
    parts.length = 0;
    this.batchBytes = 0;
    this.write(useScratch ? out.subarray(0, at) : out);
    // Nothing left queued means the kernel took every byte during write() and no one holds
    // the scratch buffer any more; otherwise the socket keeps it until the write completes,
    // so the next flush starts a fresh one.
    if (useScratch && (this.socket.writableLength !== 0 || this.heldBytes !== 0)) scratch = null;
  }

  /**
   * Writes now when the socket holds little, else holds the bytes until it drains. False
   * (like socket.write) when the caller should wait for 'drain' before giving more.
   */
  private write(buf: Buffer): boolean {
    this.written += buf.length;
    if (this.heldBytes === 0 && buf.length <= WRITE_SLICE && this.socket.writableLength < WRITE_SLICE) {
      return this.socket.write(buf);
    }
    this.held.push(buf);
    this.heldBytes += buf.length;
    return this.feedSocket();
  }

  /**
   * Moves held output to the socket, a slice at a time, while the socket holds little.
   * False when a 'drain' is due before more should be given: output is still held (the
   * socket holds at least WRITE_SLICE, past its high-water mark) or the last write said so.
   */
  private feedSocket(): boolean {
    const held = this.held;
    let ok = this.socket.writableLength < this.socket.writableHighWaterMark;
    while (this.heldBytes > 0 && this.socket.writableLength < WRITE_SLICE && !this.socket.destroyed) {
      const front = held[0]!;
      const piece = front.length <= WRITE_SLICE ? front : front.subarray(0, WRITE_SLICE);
      if (piece === front) held.shift();
      else held[0] = front.subarray(WRITE_SLICE);
      this.heldBytes -= piece.length;
      ok = this.socket.write(piece);
    }
    if (this.heldBytes === 0 && this.endWhenSent) this.socket.end();
    return this.heldBytes === 0 && ok;
  }

  /**
   * Ends our side once every byte given to write() is on its way. From here only the send
   * deadline runs (rearm stops once closing): output still held must keep moving, and a peer
   * that never closes its half of the socket (we allow half-open) is let go after it.
   */
  private end(): void {
    this.arm(Wait.Send, this.opts.sendTimeoutMs);
    if (this.heldBytes === 0) this.socket.end();
    else this.endWhenSent = true;
  }

  private onDrain(): void {
    this.feedSocket();
    if (this.heldBytes > 0) return; // the socket took a slice; the next 'drain' brings more
    if (this.streaming !== null) {
      this.streaming.resume();
      this.arm(Wait.Send, this.opts.sendTimeoutMs);
      return;
    }
    this.service();
  }

  /**
   * Reading stays paused while too much is pending and resumes once the backlog clears.
   * True when it parsed held-back bytes, which may have queued replies to write.
   */
  private resumeReading(): boolean {
    if (!this.readPaused || this.closing || this.parser.error !== null) return false;
    if (this.streaming !== null || this.backlogged()) return false;
    this.readPaused = false;
    this.parser.resume();
    const leftover = this.leftover;
    this.leftover = null;
    if (leftover !== null) this.feed(leftover);
    if (!this.readPaused) this.socket.resume();
    return leftover !== null;
  }

  /** Picks the one deadline that matters now. */
  private rearm(): void {
    if (this.closing) return;
    if (this.streaming !== null || this.socket.writableLength > 0 || this.heldBytes > 0) {
      if (this.wait !== Wait.Send) this.arm(Wait.Send, this.opts.sendTimeoutMs);
    } else if (this.parser.inHead) {
      // The head deadline runs from the head's first byte; later bytes do not extend it.
      if (this.wait !== Wait.Head) this.arm(Wait.Head, this.opts.headTimeoutMs);
    } else if (this.parser.inBody) {
      // One deadline for the whole body: a body dripped a byte at a time must not hold the
      // connection for ever (bodies are read only to be dropped; nothing we serve takes one).
      if (this.wait !== Wait.Body) this.arm(Wait.Body, this.opts.sendTimeoutMs);
    } else if (this.queue.length > 0) {
      if (this.wait !== Wait.Send) this.arm(Wait.Send, this.opts.sendTimeoutMs);
    } else if (this.wait !== Wait.Idle) {
      // Idle runs from the last answered request; stray bytes that start no request (empty
      // lines before a request line, RFC 9112 §2.2) do not extend it.
      this.arm(Wait.Idle, this.opts.idleTimeoutMs);
    }
  }

  private onEnd(): void {
    // The client half-closed (the listener allows half-open sockets): answer what it
    // already asked for, then close our side.
    this.inputDone = true;
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (this.inputDone && this.queue.length === 0 && this.leftover === null && this.streaming === null && !this.socket.writableEnded && !this.endWhenSent) {
      this.flush();
      this.end();
    }
  }

  private destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private cleanup(): void {
    this.closing = true;
    this.deadline = 0;
    this.streaming?.destroy();
    this.streaming = null;
    this.queue.length = 0;
    this.held.length = 0;
    this.heldBytes = 0;
    this.parser.destroy();
  }
}
