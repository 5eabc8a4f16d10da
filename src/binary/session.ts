// One MX/1 connection: frames are decoded and handled strictly in arrival order; replies to
// requests that need the disk (PUT, GET, LIST) arrive when ready, carrying their request's id.
// Backpressure both ways: no further frame is taken while our unsent output (LIST replies being
// built counted at their largest) is over the limit, the rest waits in the decoder and reading
// pauses until 'drain'; reading also pauses while queued upload bytes are high; downloads read
// the next chunk only while the socket's buffer is under half the limit.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Metrics } from '../loop/metrics.js';
import type { Timed } from '../loop/sweeper.js';
import { FileStore, StoreError, type Upload } from '../store/files.js';
import { FrameDecoder, WireError, encodeFrame, writeFrame, type Frame } from '../wire/frame.js';
import {
  decodeGet, decodePut, decodeStr16, decodeText, encodeError, encodeFileInfo, encodeList, encodeNames,
} from '../wire/payloads.js';
import { ErrorCode, HEADER_SIZE, MAX_SAY_BYTES, Type } from '../wire/protocol.js';
import type { ChatRoom, Member } from './chat.js';
import { validateChatName } from './names.js';

/** DATA payload size for downloads: big enough to amortise headers, small next to the output limit. */
export const DOWNLOAD_CHUNK = 64 * 1024;
/** Stop reading a client while this many upload bytes wait for the disk. */
const UPLOAD_QUEUE_HIGH = 4 * 1024 * 1024;
/** After a fatal error we end our side; a peer that never closes is cut off after this. */
const FATAL_GRACE_MS = 2000;
/** TCP keep-alive probes find peers that vanished without a FIN (members are exempt from idling). */
const KEEPALIVE_PROBE_MS = 60_000;
/** Size of a reply batch; one buffer is shared by every session between batches (one thread). */
const BATCH_SIZE = 64 * 1024;
/** Frames up to this size are copied into the batch; bigger ones are written as they are. */
const BATCH_FRAME_MAX = 4 * 1024;
let scratch: Buffer | null = null;

export interface SessionContext {
  room: ChatRoom;
  store: FileStore;
  metrics: Metrics;
  maxFrame: number;
  maxOutputBytes: number;
  /** Uploads + downloads in progress per connection: each holds an open file. */
  maxTransfers: number;
  idleTimeoutMs: number;
  /** SHA-256 of the admin token, or null when announcements are disabled. */
  adminDigest: Buffer | null;
  stats(): Buffer;
  log(line: string): void;
  /** Test hook: a download found the socket over maxOutputBytes/2 and is waiting for 'drain'. */
  onDownloadPaused?: (socket: Socket) => void;
}

export class Session implements Timed {
  deadline = 0;
  private readonly socket: Socket;
  private readonly ctx: SessionContext;
  private readonly decoder: FrameDecoder;
  private member: Member | null = null;
  private readonly uploads = new Map<number, Upload>();
  /** Ids of GETs in flight (opening or streaming). */
  private readonly downloads = new Set<number>();
  private closed = false;
  private fatal = false;
  /** The client half-closed: it sends nothing more but still reads our replies. */
  private peerEnded = false;
  /** LIST replies being built (they read the directory). */
  private pendingLists = 0;
  /** Frames wait in the decoder until our output falls under the limit ('drain' or a LIST done). */
  private blocked = false;
  private pausedForUploads = false;
  private writableWaiters: (() => void)[] = [];
  /**
   * While a batch of incoming frames is handled, small replies are copied into one buffer that
   * leaves in one write at the end: a socket.write per header and payload (and a writev of
   * hundreds of pieces) costs more than the copies at pipeline depth.
   */
  private batching = false;
  private batch: Buffer | null = null;
  private batchLen = 0;

  constructor(socket: Socket, ctx: SessionContext) {
    this.socket = socket;
    this.ctx = ctx;
    this.decoder = new FrameDecoder(ctx.maxFrame);
    this.touch();
    socket.setKeepAlive(true, KEEPALIVE_PROBE_MS);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    // 'close' follows every error; nothing else to do here.
    socket.on('error', () => undefined);
  }

  onDeadline(): void {
    // A chat member that only listens is not idle; TCP keep-alive still finds dead peers.
    // Transfers are not exempt: their bytes (received, or drained to the peer) keep them alive.
    if (!this.fatal && this.member !== null) {
      this.touch();
      return;
    }
    this.socket.destroy();
  }

  private touch(): void {
    if (!this.fatal) this.deadline = Date.now() + this.ctx.idleTimeoutMs;
  }

  private onData(chunk: Buffer): void {
    if (this.fatal || this.closed) return;
    this.touch();
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
    // One cork per batch: every reply it produces leaves in as few writes as possible.
    this.socket.cork();
    this.batching = true;
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
        this.handle(frame);
        if (this.closed || this.fatal) break;
      }
    } finally {
      this.batching = false;
      // Uncork first: the batch written after it can go out at once and its buffer be reused.
      this.socket.uncork();
      this.flushBatch();
    }
    this.applyBackpressure();
    // A half-close that arrived while frames were still queued is completed now.
    if (this.peerEnded && !this.blocked) this.endUploads();
  }

  /**
   * Unsent output plus LIST replies still being built (each reserved at the max frame size) over
   * the limit. Only while a wake-up is due: a 'drain' (pending once a write found the buffer past
   * its high-water mark) or a LIST completing; at least one LIST may always be in flight.
   */
  private outputFull(): boolean {
    const s = this.socket;
    const queued = s.writableLength + this.batchLen;
    if (s.writableNeedDrain && queued > this.ctx.maxOutputBytes) return true;
    return this.pendingLists > 0 && queued + this.pendingLists * this.ctx.maxFrame > this.ctx.maxOutputBytes;
  }

  /** Resumes taking frames after a wake-up ('drain', a LIST reply sent). */
  private unblock(): void {
    if (!this.blocked || this.closed || this.fatal) return;
    this.blocked = false;
    this.processFrames();
  }

  private applyBackpressure(): void {
    let queued = 0;
    for (const u of this.uploads.values()) queued += u.queued;
    if (queued > UPLOAD_QUEUE_HIGH && !this.pausedForUploads) {
      this.pausedForUploads = true;
      void Promise.all(Array.from(this.uploads.values(), (u) => u.drained())).then(() => {
        this.pausedForUploads = false;
        this.updatePaused();
      });
    }
    this.updatePaused();
  }

  private updatePaused(): void {
    if (this.closed || this.fatal) return;
    if (this.blocked || this.pausedForUploads) this.socket.pause();
    else this.socket.resume();
  }

  private onDrain(): void {
    this.touch();
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of waiters) w();
    this.unblock();
  }

  private writable(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /**
   * Half-close: answer everything already received, then end our side. Uploads still waiting
   * for DATA can never complete, so they are aborted with an ERROR, once every frame that
   * arrived before the FIN has been handled (they may still wait in the decoder).
   */
  private onEnd(): void {
    this.peerEnded = true;
    if (!this.blocked) this.endUploads();
  }

  private endUploads(): void {
    for (const [id, upload] of this.uploads) {
      if (upload.complete) continue; // all bytes arrived: it is committing and will answer
      this.uploads.delete(id);
      void upload.abort();
      this.sendError(id, ErrorCode.MALFORMED, `connection half-closed after ${upload.received} of ${upload.size} bytes; upload aborted`);
    }
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (!this.peerEnded || this.closed || this.fatal) return;
    if (this.blocked) return;
    if (this.uploads.size === 0 && this.downloads.size === 0 && this.pendingLists === 0) this.endSocket();
  }

  private onClose(): void {
    this.closed = true;
    if (this.member) {
      this.ctx.room.leave(this.member);
      this.member = null;
    }
    for (const u of this.uploads.values()) void u.abort();
    this.uploads.clear();
    this.onDrain();
  }

  private failFatally(err: WireError): void {
    this.fatal = true;
    this.ctx.metrics.count('binary.errors');
    this.ctx.metrics.count('binary.protocolViolations');
    this.send(Type.ERROR, 0, encodeError(err.code, err.message));
    // Half-close after the error is flushed; the sweeper cuts off a peer that keeps the socket open.
    this.endSocket();
    this.deadline = Date.now() + FATAL_GRACE_MS;
  }

  private send(type: number, id: number, payload?: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    const length = payload === undefined ? 0 : payload.length;
    if (this.batching && HEADER_SIZE + length <= BATCH_FRAME_MAX) {
      if (this.batch !== null && this.batchLen + HEADER_SIZE + length > BATCH_SIZE) this.flushBatch();
      if (this.batch === null) {
        this.batch = scratch ?? Buffer.allocUnsafe(BATCH_SIZE);
        scratch = null;
      }
      this.batchLen = writeFrame(this.batch, this.batchLen, type, id, payload);
      return;
    }
    // Too big to copy: whatever was batched goes first, to keep the order.
    this.flushBatch();
    const parts = encodeFrame(type, id, payload);
    this.socket.cork();
    for (const p of parts) this.socket.write(p);
    this.socket.uncork();
  }

  private flushBatch(): void {
    const batch = this.batch;
    if (batch === null || this.batchLen === 0) return;
    this.socket.write(batch.subarray(0, this.batchLen));
    this.batchLen = 0;
    // Taken whole during write(): the buffer is free again for anyone. Otherwise the socket
    // holds it until the write completes, and the next batch starts a fresh one.
    this.batch = null;
    if (this.socket.writableLength === 0) scratch = batch;
  }

  /** Ends our side after anything still batched. */
  private endSocket(): void {
    this.flushBatch();
    this.socket.end();
  }

  private sendError(id: number, code: number, message: string): void {
    this.ctx.metrics.count('binary.errors');
    this.send(Type.ERROR, id, encodeError(code, message));
  }

  /** Any failure while handling a request: typed ones answer their code, the rest answer 50. */
  private fail(id: number, err: unknown): void {
    if (err instanceof WireError || err instanceof StoreError) {
      this.sendError(id, err.code, err.message);
      return;
    }
    this.ctx.log(`binary: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    this.sendError(id, ErrorCode.INTERNAL, 'internal error');
  }

  private handle(frame: Frame): void {
    const { type, id, payload } = frame;
    this.ctx.metrics.count('binary.frames');
    if (type === Type.DATA) {
      this.onUploadData(id, payload);
      return;
    }
    this.ctx.metrics.count('binary.requests');
    try {
      switch (type) {
        case Type.PING:
          this.send(Type.PING_OK, id, payload);
          return;
        case Type.STATS:
          requireEmpty(payload, 'STATS');
          this.send(Type.STATS_OK, id, this.ctx.stats());
          return;
        case Type.JOIN:
          this.join(id, payload);
          return;
        case Type.SAY:
          this.say(id, payload);
          return;
        case Type.LEAVE:
          requireEmpty(payload, 'LEAVE');
          if (!this.member) throw new WireError(ErrorCode.NOT_JOINED, 'not joined');
          this.ctx.room.leave(this.member);
          this.member = null;
          this.send(Type.LEAVE_OK, id);
          return;
        case Type.NAMES:
          requireEmpty(payload, 'NAMES');
          this.send(Type.NAMES_OK, id, encodeNames(this.ctx.room.names(), this.ctx.maxFrame));
          return;
        case Type.ANNOUNCE:
          this.announce(id, payload);
          return;
        case Type.PUT:
          this.put(id, payload);
          return;
        case Type.GET:
          this.get(id, payload);
          return;
        case Type.LIST:
          requireEmpty(payload, 'LIST');
          this.list(id);
          return;
        default:
          throw new WireError(ErrorCode.UNKNOWN_TYPE, `unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
      }
    } catch (err) {
      this.fail(id, err);
    }
  }

  // ---- chat ------------------------------------------------------------------------------

  private join(id: number, payload: Buffer): void {
    if (this.member) throw new WireError(ErrorCode.ALREADY_JOINED, `already joined as ${this.member.name}`);
    let name: string;
    try {
      name = validateChatName(decodeText(payload));
    } catch (err) {
      if (err instanceof WireError) throw err;
      throw new WireError(ErrorCode.INVALID_NAME, (err as Error).message);
    }
    const member = this.ctx.room.join(name, this.socket);
    if (!member) throw new WireError(ErrorCode.NAME_TAKEN, `name ${name} is taken`);
    this.member = member;
    this.send(Type.JOIN_OK, id, encodeNames(this.ctx.room.names(), this.ctx.maxFrame));
  }

  private say(id: number, payload: Buffer): void {
    if (!this.member) throw new WireError(ErrorCode.NOT_JOINED, 'join before you SAY');
    if (payload.length === 0 || payload.length > MAX_SAY_BYTES) {
      throw new WireError(ErrorCode.MALFORMED, `SAY text must be 1..${MAX_SAY_BYTES} bytes, got ${payload.length}`);
    }
    decodeText(payload); // validates UTF-8; the bytes themselves are forwarded
    this.ctx.metrics.count('binary.messages');
    this.ctx.room.say(this.member, payload);
    this.send(Type.SAY_OK, id);
  }

  private announce(id: number, payload: Buffer): void {
    // The token first (protocol.md §3: 14 before the text's 4), so the text is not decoded yet.
    const { value: token, next } = decodeStr16(payload, 0);
    const expected = this.ctx.adminDigest;
    // Compare digests, not the tokens: equal lengths always, so neither content nor length leaks.
    const given = createHash('sha256').update(token, 'utf8').digest();
    if (expected === null || !timingSafeEqual(given, expected)) {
      throw new WireError(ErrorCode.FORBIDDEN, expected === null ? 'announcements are disabled (no admin token configured)' : 'bad admin token');
    }
    // Same bounds as SAY: an announcement is a chat message from the operator.
    const bytes = payload.length - next;
    if (bytes === 0 || bytes > MAX_SAY_BYTES) {
      throw new WireError(ErrorCode.MALFORMED, `ANNOUNCE text must be 1..${MAX_SAY_BYTES} bytes, got ${bytes}`);
    }
    this.ctx.room.announce(decodeText(payload.subarray(next)));
    this.send(Type.ANNOUNCE_OK, id);
  }

  // ---- files -----------------------------------------------------------------------------

  private idInUse(id: number): boolean {
    return this.uploads.has(id) || this.downloads.has(id);
  }

  /** Every transfer holds a file descriptor: one connection must not exhaust the process's. */
  private checkTransferRoom(): void {
    const limit = this.ctx.maxTransfers;
    if (this.uploads.size + this.downloads.size >= limit) {
      throw new WireError(ErrorCode.INTERNAL, `too many transfers in progress on this connection (limit ${limit})`);
    }
  }

  private put(id: number, payload: Buffer): void {
    const { size, sha256, name } = decodePut(payload);
    if (this.idInUse(id)) throw new WireError(ErrorCode.ID_IN_USE, `id ${id} already has a transfer in progress`);
    this.checkTransferRoom();
    const upload = this.ctx.store.beginUpload(name, size, sha256);
    this.uploads.set(id, upload);
    this.ctx.metrics.count('binary.uploads');
    if (size === 0) this.finishUpload(id, upload);
  }

  private onUploadData(id: number, payload: Buffer): void {
    const upload = this.uploads.get(id);
    if (payload.length === 0) return; // carries nothing, overflows nothing
    // All declared bytes arrived: the upload is committing and may already be renamed into
    // place, so it can no longer be aborted truthfully. Later DATA is discarded, like DATA for
    // no open upload, and the PUT_OK or ERROR 23 goes out as usual.
    if (!upload || upload.complete) {
      this.ctx.metrics.count('binary.dataDiscarded');
      return;
    }
    // More bytes than the PUT declared, before the commit began: the content is not what was promised.
    if (upload.received + payload.length > upload.size) {
      this.uploads.delete(id);
      void upload.abort();
      this.sendError(id, ErrorCode.MALFORMED, `DATA beyond the declared size of ${upload.size} bytes; upload aborted`);
      return;
    }
    // The payload is a view of a socket chunk that Node never reuses, so it can wait for the disk.
    upload.write(payload);
    this.ctx.metrics.count('binary.bytesIn', payload.length);
    if (upload.complete) this.finishUpload(id, upload);
  }

  private finishUpload(id: number, upload: Upload): void {
    upload.commit().then(
      (info) => {
        if (this.uploads.get(id) !== upload) return; // aborted meanwhile; its error was sent
        this.uploads.delete(id);
        this.send(Type.PUT_OK, id, encodeFileInfo(info.size, info.sha256));
        this.finishIfDone();
      },
      (err: unknown) => {
        if (this.uploads.get(id) !== upload) return;
        this.uploads.delete(id);
        this.fail(id, err);
        this.finishIfDone();
      },
    );
  }

  private get(id: number, payload: Buffer): void {
    const { offset, name } = decodeGet(payload);
    if (this.idInUse(id)) throw new WireError(ErrorCode.ID_IN_USE, `id ${id} already has a transfer in progress`);
    this.checkTransferRoom();
    this.downloads.add(id);
    this.ctx.metrics.count('binary.downloads');
    let held = true;
    // The id and the transfer slot are free once the last byte is queued (the client may reuse
    // the id at once); closing the file comes after and answers nothing.
    const release = (): boolean => {
      if (!held) return false;
      held = false;
      this.downloads.delete(id);
      return true;
    };
    this.download(id, name, offset, release).then(
      () => {
        release();
        this.finishIfDone();
      },
      (err: unknown) => {
        if (release()) this.fail(id, err);
        this.finishIfDone();
      },
    );
  }

  private async download(id: number, name: string, offset: number, release: () => boolean): Promise<void> {
    const file = await this.ctx.store.openForRead(name);
    try {
      if (offset > file.size) {
        throw new WireError(ErrorCode.OFFSET_BEYOND_END, `offset ${offset} is beyond the end of the file (${file.size} bytes)`);
      }
      this.send(Type.GET_OK, id, encodeFileInfo(file.size, file.sha256));
      if (offset === file.size) release();
      // Below the stream's high-water mark no 'drain' is promised, so never wait under it.
      const half = Math.max(this.ctx.maxOutputBytes / 2, this.socket.writableHighWaterMark);
      let position = offset;
      while (position < file.size && !this.closed) {
        if (this.socket.writableLength > half && this.socket.writableNeedDrain) {
          this.ctx.onDownloadPaused?.(this.socket);
          await this.writable();
          continue;
        }
        const want = Math.min(DOWNLOAD_CHUNK, file.size - position);
        // A fresh Buffer per chunk: the socket keeps it until it is written.
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await file.handle.read(buf, 0, want, position);
        if (bytesRead === 0) throw new Error(`${name} shrank while being sent`);
        if (this.closed) break;
        this.send(Type.DATA, id, bytesRead === want ? buf : buf.subarray(0, bytesRead));
        this.ctx.metrics.count('binary.bytesOut', bytesRead);
        position += bytesRead;
        if (position === file.size) release();
      }
    } finally {
      await file.handle.close().catch(() => undefined);
    }
  }

  private list(id: number): void {
    this.pendingLists++;
    this.ctx.store
      .list()
      .then(
        (entries) => this.send(Type.LIST_OK, id, encodeList(entries, this.ctx.maxFrame)),
        (err: unknown) => this.fail(id, err),
      )
      .finally(() => {
        this.pendingLists--;
        // Its reserve is released: frames held back for it may go on.
        this.unblock();
        this.finishIfDone();
      });
  }
}

function requireEmpty(payload: Buffer, what: string): void {
  if (payload.length !== 0) throw new WireError(ErrorCode.MALFORMED, `${what} takes no payload, got ${payload.length} bytes`);
}
