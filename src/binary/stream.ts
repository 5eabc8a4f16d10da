// The stream driver of MX/1 (TCP and Unix sockets, and any other BytePipe): bytes in ->
// FrameDecoder -> MxCore; the core's frames -> Outbox -> pipe; the core's file effects ->
// FileEffects (the store), results fed back.
// Frames are handled strictly in arrival order. Backpressure both ways: no further frame is
// taken while our unsent output (LIST replies being built counted at their largest) is over
// the limit, the rest waits in the decoder and reading pauses until 'drain'; reading also
// pauses while queued upload bytes are high; a download writes its next DATA frame only once the
// socket took the last one and reads its next chunk only once it took them all (the shared file
// sender), so a slow reader costs at most one read chunk beyond what the kernel has taken
// (issue 8), not half the output limit.
import { coarseNow } from '../loop/clock.js';
import type { ChunkPool } from '../loop/chunk-pool.js';
import { Outbox } from '../loop/outbox.js';
import { isLocalAddress, type BytePipe } from '../loop/pipe.js';
import type { Timed } from '../loop/sweeper.js';
import type { FileStore } from '../store/files.js';
import { FrameDecoder, WireError, encodeHeader, writeFrame, type Frame } from '../wire/frame.js';
import { encodeError } from '../wire/payloads.js';
import { HEADER_SIZE, Type } from '../wire/protocol.js';
import { MxCore, type CoreConfig, type Output, type Transport } from './core.js';
import { FileEffects } from './file-effects.js';
import type { ChatSink, Push } from '../chat/room.js';
import type { TransfersConfig } from './transfers.js';

/** Stop reading a client while this many upload bytes wait for the disk. */
const UPLOAD_QUEUE_HIGH = 4 * 1024 * 1024;
/** After a fatal error we end our side; a peer that never closes is cut off after this. */
const FATAL_GRACE_MS = 2000;
/** TCP keep-alive probes find peers that vanished without a FIN (members are exempt from idling). */
const KEEPALIVE_PROBE_MS = 60_000;

export { DOWNLOAD_CHUNK, DOWNLOAD_CHUNK_MIN } from './file-effects.js';

export interface StreamContext extends CoreConfig, TransfersConfig {
  store: FileStore;
  maxFrame: number;
  maxOutputBytes: number;
  idleTimeoutMs: number;
  /** A fresh connection must deliver a whole first frame within this, or is closed. */
  helloTimeoutMs: number;
  /** Download read buffers (file-effects.ts downloadPool), counted in the server-wide output budget. */
  pool: ChunkPool;
  /** Test hook: a download of this connection found the output congested and is waiting for 'drain'. */
  onDownloadPaused?: () => void;
}

export class StreamConnection implements Timed, Output, ChatSink {
  deadline = 0;
  readonly sink: ChatSink = this;
  private readonly socket: BytePipe;
  private readonly ctx: StreamContext;
  private readonly decoder: FrameDecoder;
  private readonly outbox: Outbox;
  private readonly core: MxCore;
  private readonly files: FileEffects;
  private closed = false;
  private fatal = false;
  /** A complete first frame arrived (the hello timeout is over). */
  private greeted = false;
  private idleAt: number;
  /** The client half-closed: it sends nothing more but still reads our replies. */
  private peerEnded = false;
  private draining = false;
  /** Frames wait in the decoder until our output falls under the limit ('drain' or a LIST done). */
  private blocked = false;
  private pausedForUploads = false;

  constructor(socket: BytePipe, ctx: StreamContext) {
    this.socket = socket;
    this.ctx = ctx;
    this.decoder = new FrameDecoder(ctx.maxFrame);
    const outbox = (this.outbox = new Outbox(socket));
    const transport: Transport = { name: 'streams', maxReply: ctx.maxFrame, local: isLocalAddress(socket.remoteAddress) };
    this.core = new MxCore(ctx, transport, this, { ...transfersConfig(ctx), taken: () => outbox.sent });
    this.files = new FileEffects(this.core.files!, {
      store: ctx.store,
      pool: ctx.pool,
      outbox,
      after: () => this.afterResult(),
      onDownloadPaused: ctx.onDownloadPaused,
    });
    this.idleAt = coarseNow() + ctx.helloTimeoutMs;
    this.deadline = this.idleAt;
    socket.setKeepAlive(true, KEEPALIVE_PROBE_MS);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    // 'close' follows every error; nothing else to do here.
    socket.on('error', () => undefined);
  }

  // ---- deadlines ------------------------------------------------------------------------

  onDeadline(now: number): void {
    if (this.fatal || this.closed) {
      this.socket.destroy();
      return;
    }
    this.core.tick(now);
    this.files.run();
    this.afterResult();
    if (now >= this.idleAt) {
      // Silent since accept: no complete frame within the hello timeout.
      if (!this.greeted) {
        this.ctx.metrics.count('binary.helloTimeouts');
        this.socket.destroy();
        return;
      }
      // A chat member that only listens is not idle; TCP keep-alive still finds dead peers.
      // Transfers are not exempt: their bytes (received, or drained to the peer) keep them alive.
      if (!this.core.joined) {
        this.socket.destroy();
        return;
      }
      this.idleAt = now + this.ctx.idleTimeoutMs;
    }
    this.rearm();
  }

  /** Bytes or progress: the idle period starts again (not before the first whole frame). */
  private touch(now: number): void {
    if (this.greeted && !this.fatal) this.idleAt = now + this.ctx.idleTimeoutMs;
  }

  private rearm(): void {
    if (this.fatal || this.closed) return;
    const core = this.core.nextDeadline();
    this.deadline = core !== 0 && core < this.idleAt ? core : this.idleAt;
  }

  // ---- input ----------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.fatal || this.closed) return;
    this.touch(coarseNow());
    this.decoder.push(chunk);
    // Paused: only bytes already read can still arrive; they wait with the frames before them.
    if (!this.blocked) this.processFrames();
  }

  /**
   * Handles queued frames until the decoder is empty or our output is over the limit: checked
   * before every frame, since one 64 KiB chunk of 12-byte NAMES or LIST requests asks for
   * thousands of replies.
   */
  private processFrames(): void {
    const now = coarseNow();
    // One batch: every reply it produces leaves in as few writes as possible.
    this.socket.cork();
    this.outbox.cork();
    try {
      for (;;) {
        if (this.outputFull()) {
          this.blocked = true;
          break;
        }
        let frame: Frame | null;
        try {
          frame = this.decoder.next();
        } catch (err) {
          if (!(err instanceof WireError)) throw err;
          this.failFatally(err);
          break;
        }
        if (frame === null) break;
        if (!this.greeted) {
          this.greeted = true;
          this.idleAt = now + this.ctx.idleTimeoutMs;
        }
        this.core.handle(frame, now);
        if (this.closed || this.fatal) break;
      }
    } finally {
      // Uncork the socket first: the batch written after it can go out at once and its
      // buffer be reused by the next batch of any connection.
      this.socket.uncork();
      this.outbox.uncork();
    }
    // A half-close that arrived while frames were still queued is completed now.
    if (this.peerEnded && !this.blocked) this.core.halfClosed();
    this.files.run();
    this.applyBackpressure();
    this.finishIfDone();
    this.rearm();
  }

  /**
   * Unsent output plus LIST replies still being built over the limit. Only while a wake-up is
   * due: a 'drain' (pending once a write found the buffer past its high-water mark) or a LIST
   * completing; at least one LIST may always be in flight.
   */
  private outputFull(): boolean {
    const queued = this.outbox.backlog;
    if (this.outbox.drainDue && queued > this.ctx.maxOutputBytes) return true;
    const reserved = this.core.reservedOutput;
    return reserved > 0 && queued + reserved > this.ctx.maxOutputBytes;
  }

  /** Resumes taking frames after a wake-up ('drain', a LIST reply sent). */
  private unblock(): void {
    if (!this.blocked || this.closed || this.fatal) return;
    this.blocked = false;
    this.processFrames();
  }

  private applyBackpressure(): void {
    if (!this.pausedForUploads && this.files.hasUploads) {
      if (this.files.uploadBacklog > UPLOAD_QUEUE_HIGH) {
        this.pausedForUploads = true;
        void this.files.uploadsDrained().then(() => {
          this.pausedForUploads = false;
          this.updatePaused();
        });
      }
    }
    this.updatePaused();
  }

  private updatePaused(): void {
    if (this.closed || this.fatal) return;
    if (this.blocked || this.pausedForUploads) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  private onDrain(): void {
    this.touch(coarseNow());
    if (!this.outbox.drained()) return; // the socket took a slice; the next 'drain' brings more
    this.files.writable();
    this.unblock();
    this.finishIfDone();
  }

  /**
   * Half-close: answer everything already received, then end our side. Uploads still waiting
   * for DATA can never complete, so they are aborted with an ERROR, once every frame that
   * arrived before the FIN has been handled (they may still wait in the decoder).
   */
  private onEnd(): void {
    this.peerEnded = true;
    if (!this.blocked) {
      this.core.halfClosed();
      this.files.run();
      this.finishIfDone();
    }
  }

  /** Ends our side once nothing is owed any more (half-closed peer, or draining). */
  private finishIfDone(): void {
    if (!(this.peerEnded || this.draining) || this.closed || this.fatal) return;
    if (this.blocked || this.core.busy) return;
    this.outbox.end();
  }

  private onClose(): void {
    this.closed = true;
    this.deadline = 0;
    this.core.close();
    this.files.run();
    this.outbox.discard();
  }

  private failFatally(err: WireError): void {
    this.fatal = true;
    this.core.protocolError(err);
    // Half-close after the error is flushed; the sweeper cuts off a peer that keeps the socket open.
    this.outbox.end();
    this.deadline = coarseNow() + FATAL_GRACE_MS;
  }

  /** After a result from the store: output may have changed, a LIST reserve been released. */
  private afterResult(): void {
    if (this.closed) return;
    this.unblock();
    this.finishIfDone();
    this.rearm();
  }

  // ---- graceful shutdown (src/loop/sweeper.ts contract) -----------------------------------

  /**
   * Takes no new requests (they get ERROR 51 "server shutting down"; DATA for uploads in
   * progress is still taken), tells a chat member the server is going down, and ends the
   * connection once GETs, uploads and LISTs in flight are done. An idle connection ends at once.
   */
  drain(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    this.core.drain();
    this.files.run();
    this.finishIfDone();
  }

  /** Uploads left get ERROR 51 and their temp files are removed now; then the socket is destroyed. */
  abort(): boolean {
    if (this.closed) return false;
    const cut = this.core.abort();
    this.files.run();
    this.outbox.flush();
    this.socket.destroy();
    return cut;
  }

  // ---- Output -------------------------------------------------------------------------

  send(type: number, id: number, payload?: Buffer): void {
    if (this.closed || this.outbox.isEnded) return;
    const length = payload === undefined ? 0 : payload.length;
    const buf = this.outbox.reserve(HEADER_SIZE + length);
    if (buf !== null) {
      this.outbox.commit(writeFrame(buf, this.outbox.batchEnd, type, id, payload));
      return;
    }
    // Too big to copy: header and payload leave in one writev, the payload never copied.
    this.socket.cork();
    this.outbox.write(encodeHeader(type, id, length));
    this.outbox.write(payload!);
    this.socket.uncork();
  }

  error(id: number, code: number, message: string): void {
    this.send(Type.ERROR, id, encodeError(code, message));
  }

  // ---- ChatSink -------------------------------------------------------------------------

  deliver(push: Push): void {
    if (this.closed || this.outbox.isEnded) return;
    this.outbox.write(push.frame);
  }

  backlog(): number {
    return this.outbox.backlog;
  }

  dropped(): void {
    this.socket.destroy();
  }
}

function transfersConfig(ctx: StreamContext): TransfersConfig {
  const { maxUpload, maxTransfers, transfers, transferTimeoutMs, uploadDigest } = ctx;
  return { maxUpload, maxTransfers, transfers, transferTimeoutMs, uploadDigest };
}
