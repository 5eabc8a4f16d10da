// One HTTP/1.1 connection: feeds socket bytes to the parser, asks the handler for replies,
// and writes them strictly in request order (RFC 9112 §9.3.2), whether a reply is ready at
// once (cache hit), arrives later (a promise) or is a file streamed with backpressure.
// It reads and writes through a BytePipe (src/loop/pipe.ts), so the same connection serves a
// TCP socket, a Unix socket or a TLS socket.
//
// An upgrade (RFC 9110 §7.8): a request with an Upgrade field and no body stops the parser
// right behind its head until its answer is known, so nothing the client sent after it is
// parsed as HTTP. If the handler answers with an Upgrade naming a registered protocol, the
// replies before it go out, then the 101, then the pipe (paused, our listeners and deadline
// gone) and those unparsed bytes pass to the protocol, whose Connection replaces this one at
// the listener (onUpgrade). Any other answer is sent as usual and parsing carries on.
import type { Connection } from '../loop/listener.js';
import type { Timed } from '../loop/sweeper.js';
import { Outbox } from '../loop/outbox.js';
import { coarseNow, dateHeaderLine } from '../loop/clock.js';
import type { ChunkPool } from '../loop/chunk-pool.js';
import { FileSender } from '../loop/file-sender.js';
import type { BytePipe } from '../loop/pipe.js';
import { errorReply } from './status.js';
import {
  headerValue,
  holdsFile,
  isUpgrade,
  releaseBody,
  type Answer,
  type BodyPart,
  type Handler,
  type ParserFactory,
  type ParserLimits,
  type Reply,
  type RequestHead,
  type RequestParser,
  type UpgradeProtocol,
} from './types.js';
import type { AccessLog } from './access-log.js';

export interface ConnectionOptions {
  handler: Handler;
  parserFactory: ParserFactory;
  limits: ParserLimits;
  /**
   * Time allowed from a head's first byte to its last (slowloris) -> 408; on a fresh
   * connection, from accept (nginx's client_header_timeout).
   */
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
  /** Read buffers for streamed files, shared by every connection, counted server-wide. */
  pool: ChunkPool;
  onRequest?: () => void;
  /** Protocols a handler may upgrade to, by the name its Upgrade answer gives. */
  upgrades?: ReadonlyMap<string, UpgradeProtocol>;
  /** Told the Connection that took over the pipe after a 101 (the listener's handoff). */
  onUpgrade?: (next: Connection) => void;
  /** coarseNow() at accept: the first head's deadline runs from then (over TLS it includes the handshake). Default: now. */
  acceptedAt?: number;
}

interface Slot {
  head: RequestHead | null;
  reply: Reply | null;
  /** Set by the parser's rejection: answer, then close. */
  fatal: boolean;
  /** The handler was asked (or the slot got its answer without it). */
  asked: boolean;
  /** Removed unsent: a reply that settles later is released, never sent. */
  dropped: boolean;
  /** The protocol `reply` (a 101) switches to; null for a plain reply. */
  protocol: UpgradeProtocol | null;
}

/** A 101 is out (or queued): the pipe goes to `protocol` once our output has left. */
interface Switch {
  protocol: UpgradeProtocol;
  head: RequestHead;
}

/** A file region being sent (by the shared FileSender: one chunk beyond what the kernel took). */
interface Sending {
  sender: FileSender | null;
  /** The reply's body and the region's index in it: what follows once the region is out. */
  parts: BodyPart[];
  index: number;
}

const enum Wait {
  None,
  /** A fresh connection: its first head must be complete within the head timeout of accept. */
  First,
  Idle,
  Head,
  Body,
  Send,
}

/**
 * Body buffers up to this size are copied into the outbox's batch; bigger ones are written as
 * they are. The outbox's slice (256 KiB by default) is what a reader must take per
 * --send-timeout; a file's chunks (chunk-pool.ts) are smaller.
 */
const COPY_LIMIT = 16 * 1024;

const END_PLAIN = Buffer.from('\r\n', 'latin1');
const END_CLOSE = Buffer.from('Connection: close\r\n\r\n', 'latin1');
const END_KEEP_ALIVE = Buffer.from('Connection: keep-alive\r\n\r\n', 'latin1');

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
  private sending: Sending | null = null;
  /** Slots in the queue whose handler has not been asked yet (see canAsk). */
  private unasked = 0;
  private closing = false;
  /** drain() was called: no new requests, the one in flight answers with Connection: close. */
  private draining = false;
  /** No request will follow the queued ones: the client half-closed, or a body's framing broke. */
  private inputDone = false;
  /** The peer half-closed ('end' came to us): an upgrade's protocol must hear it too. */
  private peerEnded = false;
  /**
   * Queued output past which we stop parsing. Never below the socket's high-water mark, so
   * whenever we stop for output, write() has returned false and a 'drain' is due to wake us.
   */
  private readonly outputLimit: number;
  private current: Slot | null = null;
  /**
   * Batching (corked while a chunk of input is handled: pipelined replies from memory leave
   * in ONE write), slicing, progress for the send deadline and end-after-flush.
   */
  private readonly outbox: Outbox;
  /** Bytes the kernel had taken when the send deadline was last armed. */
  private sentMark = 0;
  /** A request that may upgrade: parsing stays stopped behind it until it is answered. */
  private hold: Slot | null = null;
  /** Its 101 is written: the pipe is handed on once our output has left (see handOver). */
  private switching: Switch | null = null;
  /** Our listeners on the pipe, kept to be removed when an upgrade hands the pipe on. */
  private readonly listeners = {
    data: (chunk: Buffer): void => this.onData(chunk),
    drain: (): void => this.onDrain(),
    end: (): void => this.onEnd(),
    error: (): void => this.destroy(),
    close: (): void => this.cleanup(),
  };

  constructor(
    private readonly pipe: BytePipe,
    private readonly opts: ConnectionOptions,
  ) {
    this.outputLimit = Math.max(opts.maxOutputBytes, pipe.writableHighWaterMark);
    this.outbox = new Outbox(pipe, { copyLimit: COPY_LIMIT });
    this.parser = opts.parserFactory(opts.limits, {
      onHead: (head) => this.onHead(head),
      onBody: () => {
        // Bodies are read to keep the framing in step and dropped: no method we serve takes one.
      },
      onComplete: () => this.onComplete(),
    });
    pipe.on('data', this.listeners.data);
    pipe.on('drain', this.listeners.drain);
    pipe.on('end', this.listeners.end);
    pipe.on('error', this.listeners.error);
    pipe.on('close', this.listeners.close);
    // From accept: time spent in a TLS handshake counts against the first head (at least 1 ms
    // left, so a handshake that took it all is cut at the next sweep).
    this.arm(Wait.First, opts.acceptedAt === undefined ? opts.headTimeoutMs : Math.max(1, opts.acceptedAt + opts.headTimeoutMs - coarseNow()));
  }

  private arm(wait: Wait, ms: number): void {
    this.wait = wait;
    this.deadline = coarseNow() + ms;
    if (wait === Wait.Send) this.sentMark = this.outbox.sent;
  }

  onDeadline(): void {
    switch (this.wait) {
      case Wait.First:
      case Wait.Head:
        // Nothing of a request arrived on a fresh connection: close without a word, like an
        // idle one (and like nginx's client_header_timeout there); a 408 to a client that
        // never asked (a browser's preconnect) would only be noise.
        if (this.wait === Wait.First && !this.parser.inHead) {
          this.destroy();
          break;
        }
        // RFC 9110 §15.5.9: 408 tells the client we gave up waiting for its request.
        this.closing = true;
        this.dropSlots(0);
        this.outbox.cork();
        this.writeReply(null, errorReply(408, { close: true }), false);
        this.end();
        this.outbox.uncork();
        break;
      case Wait.Send:
        // A slow reader that keeps reading is not a stalled one: only a whole period without
        // any progress ends the connection.
        if (this.outbox.sent > this.sentMark) this.arm(Wait.Send, this.opts.sendTimeoutMs);
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
    const outbox = this.outbox;
    outbox.cork();
    try {
      do {
        this.pump();
        outbox.flush();
      } while (this.resumeReading());
      this.finishIfDone();
    } finally {
      outbox.uncork();
    }
    if (this.switching !== null) this.handOver();
    else this.rearm();
  }

  private feed(chunk: Buffer): void {
    const n = this.parser.execute(chunk);
    if (n === -1) {
      this.readPaused = true;
      this.pipe.pause();
      const current = this.current;
      this.current = null;
      if (current === null) {
        const error = this.parser.error;
        this.queue.push({ head: null, reply: errorReply(error?.status ?? 400, { close: true }), fatal: true, asked: true, dropped: false, protocol: null });
      } else if (this.queue.includes(current)) {
        // The head was valid but its body's framing broke (bad chunk syntax, past --max-body),
        // and its answer has not started: the error is the answer (400/413), then close;
        // nothing after it can be trusted (RFC 9112 §6.3).
        this.answerWithError(current, this.parser.error?.status ?? 400);
      } else {
        // Its answer has started: no status can follow a head already sent. Close once the
        // output (perhaps a streaming file) is out, answering nothing more.
        this.inputDone = true;
      }
      return;
    }
    if (n < chunk.length) {
      this.leftover = chunk.subarray(n);
      this.readPaused = true;
      this.pipe.pause();
    } else if (this.hold !== null && !this.readPaused) {
      // The chunk ended with the held head: the next bytes may be the new protocol's.
      this.readPaused = true;
      this.pipe.pause();
    }
  }

  private onHead(head: RequestHead): void {
    this.opts.onRequest?.();
    // The head deadline belongs to this head (the next one's starts from its own first byte),
    // a body deadline to its body; a head also ends an idle period, which (see rearm) bytes
    // alone never extend. Only an output deadline carries over.
    if (this.wait !== Wait.Send) this.wait = Wait.None;
    const slot: Slot = { head, reply: null, fatal: false, asked: false, dropped: false, protocol: null };
    // A possible upgrade: parse nothing behind it until its answer is known (see the top).
    if (head.contentLength <= 0 && !head.chunked && headerValue(head, 'upgrade') !== undefined) this.hold = slot;
    this.current = slot;
    this.queue.push(slot);
    if (this.canAsk(this.queue.length - 1)) this.ask(slot);
    else this.unasked++;
  }

  /**
   * A request is handed to the handler only when no earlier one still holds, or may yet hold,
   * an open file: a connection holds at most one descriptor at a time (answers go out in
   * order anyway), so descriptors are bounded by the connection count. Replies from memory
   * (cache hits) never wait.
   */
  private canAsk(index: number): boolean {
    if (this.sending !== null) return false;
    for (let i = 0; i < index; i++) {
      const s = this.queue[i]!;
      if (!s.asked || s.reply === null || holdsFile(s.reply.body)) return false;
    }
    return true;
  }

  /** Asks the handler for the slots that waited, in order, as far as canAsk allows. */
  private askWaiting(): void {
    if (this.unasked === 0 || this.sending !== null) return;
    for (let i = 0; i < this.queue.length; i++) {
      const s = this.queue[i]!;
      if (!s.asked) {
        this.unasked--;
        this.ask(s);
      }
      if (s.reply === null || holdsFile(s.reply.body)) return;
    }
  }

  private ask(slot: Slot): void {
    slot.asked = true;
    const head = slot.head!;
    let result: Answer | Promise<Answer>;
    try {
      result = this.opts.handler.handle(head);
    } catch {
      result = errorReply(500, { close: true });
    }
    if (result instanceof Promise) {
      result.then(
        (answer) => this.settle(slot, answer),
        () => this.settle(slot, errorReply(500, { close: true })),
      );
    } else if (isUpgrade(result)) {
      this.accept(slot, result.upgrade, result.reply);
    } else {
      slot.reply = result;
    }
  }

  /**
   * An upgrade is honoured for a request held for one (an Upgrade field, no body), with a 101
   * and a registered protocol; anything else is the handler's mistake: 500, then close.
   */
  private accept(slot: Slot, name: string, reply: Reply): void {
    const protocol = this.opts.upgrades?.get(name);
    releaseBody(reply.body); // a 101 has no body (RFC 9110 §15.2.2)
    if (protocol === undefined || slot !== this.hold || reply.status !== 101) {
      slot.reply = errorReply(500, { close: true });
      return;
    }
    slot.reply = reply;
    slot.protocol = protocol;
  }

  private onComplete(): void {
    const held = this.current !== null && this.current === this.hold;
    this.current = null;
    if (held || this.backlogged()) this.parser.pause();
  }

  /** Too much pending to take another request now (pipelining bound, unread output). */
  private backlogged(): boolean {
    return this.queue.length >= this.opts.maxPipeline || this.outbox.backlog >= this.outputLimit;
  }

  private settle(slot: Slot, answer: Answer): void {
    if (slot.dropped || slot.reply !== null || this.pipe.destroyed) {
      // Dropped unsent (connection gone, draining, closing), or already answered with an error.
      releaseBody(isUpgrade(answer) ? answer.reply.body : answer.body);
      return;
    }
    if (isUpgrade(answer)) this.accept(slot, answer.upgrade, answer.reply);
    else slot.reply = answer;
    this.service();
  }

  /** The request's body broke before its answer started: the error replaces that answer. */
  private answerWithError(slot: Slot, status: number): void {
    if (slot.reply !== null) releaseBody(slot.reply.body);
    if (!slot.asked) {
      slot.asked = true;
      this.unasked--;
    }
    slot.reply = errorReply(status, { close: true, headOnly: slot.head?.method === 'HEAD' });
    slot.fatal = true;
  }

  /** Removes the slots from `from` on, unsent, and lets go of the files their replies hold. */
  private dropSlots(from: number): void {
    const queue = this.queue;
    for (let i = from; i < queue.length; i++) {
      const s = queue[i]!;
      s.dropped = true;
      if (s === this.hold) this.hold = null;
      if (!s.asked) this.unasked--;
      if (s.reply !== null) releaseBody(s.reply.body);
    }
    if (from < queue.length) queue.length = from;
  }

  /** Writes every reply at the front of the queue that is ready, in order. */
  private pump(): void {
    while (this.sending === null && !this.closing) {
      const slot = this.queue[0];
      if (slot === undefined) break;
      if (!slot.asked) {
        // At the front with nothing streaming: nothing earlier holds a file.
        this.unasked--;
        this.ask(slot);
      }
      if (slot.reply === null) break;
      this.queue.shift();
      if (slot === this.hold) this.hold = null;
      if (slot.protocol !== null) {
        this.writeSwitch(slot.head!, slot.reply, slot.protocol);
        break;
      }
      const keepAlive = !slot.fatal && !this.draining && slot.head !== null && slot.head.keepAlive && slot.reply.close !== true;
      this.writeReply(slot.head, slot.reply, keepAlive);
      if (!keepAlive) {
        this.closing = true;
        // rearm stops once closing: the output (perhaps a file still streaming) is judged on progress.
        this.arm(Wait.Send, this.opts.sendTimeoutMs);
        this.dropSlots(0);
        if (this.sending === null) this.end();
      }
    }
    this.askWaiting();
  }

  private writeReply(head: RequestHead | null, reply: Reply, keepAlive: boolean): void {
    const outbox = this.outbox;
    if (reply.headBytes !== undefined) outbox.write(reply.headBytes);
    else outbox.writeLatin1(reply.head);
    outbox.write(dateLineBytes());
    // RFC 9112 §9.3: 1.1 persists by default; 1.0 only when both sides say keep-alive.
    outbox.write(!keepAlive ? END_CLOSE : head !== null && head.versionMinor === 0 ? END_KEEP_ALIVE : END_PLAIN);
    // HEAD, 204 and 304 never carry a body (RFC 9110 §9.3.2, §15.3.5, §15.4.5), whatever the handler says.
    const bodiless = (head !== null && head.method === 'HEAD') || reply.status === 204 || reply.status === 304;
    this.opts.accessLog?.record(this.pipe, head, reply.status, bodiless ? 0 : reply.bodyLength);
    if (bodiless) {
      releaseBody(reply.body);
      return;
    }
    this.writeBody(reply.body, 0);
  }

  /**
   * The 101 head, Date and the blank line, with no Connection field of ours (the handler's
   * head carries Connection: Upgrade). Nothing follows it in HTTP: the queue is empty, since
   * nothing was parsed behind this request.
   */
  private writeSwitch(head: RequestHead, reply: Reply, protocol: UpgradeProtocol): void {
    const outbox = this.outbox;
    if (reply.headBytes !== undefined) outbox.write(reply.headBytes);
    else outbox.writeLatin1(reply.head);
    outbox.write(dateLineBytes());
    outbox.write(END_PLAIN);
    this.opts.accessLog?.record(this.pipe, head, reply.status, 0);
    this.closing = true;
    this.switching = { protocol, head };
    // Output queued behind a slow reader must still leave first; it is judged on progress.
    this.arm(Wait.Send, this.opts.sendTimeoutMs);
  }

  /**
   * Hands the pipe to the upgrade's protocol once nothing of ours is held back (what the
   * socket buffers itself leaves before anything the protocol writes). Detaches first, so no
   * event of the pipe reaches us again.
   */
  private handOver(): void {
    const sw = this.switching!;
    this.outbox.flush();
    if (this.outbox.holding || this.pipe.destroyed) return; // the next 'drain' (or 'close') decides
    this.switching = null;
    const pipe = this.pipe;
    pipe.pause();
    const l = this.listeners;
    pipe.off('data', l.data);
    pipe.off('drain', l.drain);
    pipe.off('end', l.end);
    pipe.off('error', l.error);
    pipe.off('close', l.close);
    this.deadline = 0;
    this.wait = Wait.None;
    this.parser.destroy();
    this.outbox.discard(); // nothing is held: this only returns the batch buffer
    const leftover = this.leftover ?? Buffer.alloc(0);
    this.leftover = null;
    let next: Connection;
    try {
      next = sw.protocol(pipe, leftover, sw.head);
    } catch {
      pipe.destroy();
      return;
    }
    this.opts.onUpgrade?.(next);
    // The client half-closed while its upgrade was decided: that 'end' came to us, and a socket
    // emits it once. The new protocol has its listeners on now; it hears it after its leftover.
    if (this.peerEnded && !pipe.destroyed) pipe.emit('end');
    // Shutdown began while the 101 was leaving: the new protocol drains too.
    if (this.draining) next.drain?.();
  }

  private writeBody(parts: BodyPart[], from: number): void {
    for (let i = from; i < parts.length; i++) {
      const part = parts[i]!;
      if (Buffer.isBuffer(part)) {
        this.outbox.write(part);
      } else {
        // The head (and anything before it) must reach the socket before the file's bytes.
        this.outbox.flush();
        const s: Sending = { sender: null, parts, index: i };
        this.sending = s;
        // The region's reference to its file passes to the sender.
        s.sender = new FileSender(this.opts.pool, this.outbox, { file: part.file, start: part.start, end: part.end + 1, onDone: (err) => this.fileDone(s, err) });
        if (this.wait !== Wait.Send) this.arm(Wait.Send, this.opts.sendTimeoutMs);
        s.sender.start();
        return;
      }
    }
    if (this.sending === null && from > 0) {
      // A streamed body just finished: carry on with the replies that waited behind it.
      this.afterStream();
    }
  }

  /** The region is out (the sender let go of the file): carry on with the rest of the body. */
  private fileDone(s: Sending, err: Error | null): void {
    if (this.sending !== s) return;
    this.sending = null;
    // A file that ended early cannot honour the Content-Length already sent, and a failed
    // write means the socket is gone: close.
    if (err !== null || this.pipe.destroyed) {
      releaseBody(s.parts, s.index + 1);
      if (err !== null) this.destroy();
      return;
    }
    this.outbox.cork();
    this.writeBody(s.parts, s.index + 1);
    this.outbox.uncork();
  }

  private afterStream(): void {
    if (this.closing) this.end();
    else this.service();
  }

  /**
   * Ends our side once every byte given to write() is on its way. From here only the send
   * deadline runs (rearm stops once closing): output still held must keep moving, and a peer
   * that never closes its half of the socket (we allow half-open) is let go after it.
   */
  private end(): void {
    this.arm(Wait.Send, this.opts.sendTimeoutMs);
    this.outbox.end();
  }

  private onDrain(): void {
    if (!this.outbox.drained()) return; // the socket took a slice; the next 'drain' brings more
    if (this.switching !== null) return this.handOver();
    if (this.sending !== null) return this.sending.sender!.writable();
    this.service();
  }

  /**
   * Reading stays paused while too much is pending and resumes once the backlog clears.
   * True when it parsed held-back bytes, which may have queued replies to write.
   */
  private resumeReading(): boolean {
    if (!this.readPaused || this.closing || this.parser.error !== null || this.hold !== null) return false;
    if (this.sending !== null || this.backlogged()) return false;
    this.readPaused = false;
    this.parser.resume();
    const leftover = this.leftover;
    this.leftover = null;
    if (leftover !== null) this.feed(leftover);
    if (!this.readPaused) this.pipe.resume();
    return leftover !== null;
  }

  /** Picks the one deadline that matters now. */
  private rearm(): void {
    if (this.closing) return;
    if (this.sending !== null || this.outbox.backlog > 0) {
      if (this.wait !== Wait.Send) this.arm(Wait.Send, this.opts.sendTimeoutMs);
    } else if (this.parser.inHead) {
      // The head deadline runs from the head's first byte (from accept for the first head);
      // later bytes do not extend it.
      if (this.wait !== Wait.Head && this.wait !== Wait.First) this.arm(Wait.Head, this.opts.headTimeoutMs);
    } else if (this.parser.inBody) {
      // One deadline for the whole body: a body dripped a byte at a time must not hold the
      // connection for ever (bodies are read only to be dropped; nothing we serve takes one).
      if (this.wait !== Wait.Body) this.arm(Wait.Body, this.opts.sendTimeoutMs);
    } else if (this.queue.length > 0) {
      if (this.wait !== Wait.Send) this.arm(Wait.Send, this.opts.sendTimeoutMs);
    } else if (this.wait !== Wait.Idle && this.wait !== Wait.First) {
      // Idle runs from the last answered request; stray bytes that start no request (empty
      // lines before a request line, RFC 9112 §2.2) do not extend it, nor turn a fresh
      // connection's head deadline into an idle one.
      this.arm(Wait.Idle, this.opts.idleTimeoutMs);
    }
  }

  private onEnd(): void {
    // The client half-closed (the listener allows half-open sockets): answer what it
    // already asked for, then close our side.
    this.inputDone = true;
    this.peerEnded = true;
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (this.switching !== null) return;
    if (this.inputDone && this.queue.length === 0 && this.leftover === null && this.sending === null && !this.pipe.writableEnded && !this.outbox.isEnded) {
      this.end();
    }
  }

  /**
   * Graceful shutdown: no new requests (what was read but not parsed is dropped, pipelined
   * requests not yet started get no answer); the one in flight is answered with Connection:
   * close, a download already streaming runs to its end; then the connection closes. An idle
   * connection closes at once. Idempotent.
   */
  drain(): void {
    if (this.draining || this.pipe.destroyed) return;
    this.draining = true;
    if (this.closing) return; // already finishing its last answer
    this.inputDone = true;
    this.readPaused = true;
    this.pipe.pause();
    this.parser.pause();
    this.leftover = null;
    if (this.sending === null && this.queue.length === 0 && this.outbox.backlog === 0) {
      this.destroy();
      return;
    }
    // Answers go out in order: the front one is in flight, the rest were never started.
    this.dropSlots(this.sending !== null ? 0 : 1);
    this.service();
  }

  /** The shutdown timeout passed: cut what is left. True if a response was cut short. */
  abort(): boolean {
    if (this.pipe.destroyed) return false;
    const cut = this.sending !== null || this.queue.length > 0 || this.outbox.backlog > 0;
    this.destroy();
    return cut;
  }

  private destroy(): void {
    this.closing = true;
    this.pipe.destroy();
  }

  private cleanup(): void {
    this.closing = true;
    this.deadline = 0;
    this.switching = null;
    this.hold = null;
    const s = this.sending;
    this.sending = null;
    if (s !== null) {
      // The sender releases the file (after a read still outstanding) and its chunks.
      s.sender!.abort();
      releaseBody(s.parts, s.index + 1);
    }
    this.dropSlots(0);
    this.outbox.discard();
    this.parser.destroy();
  }
}
