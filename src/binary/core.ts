// The MX/1 protocol core, sans-IO (model: quinn-proto, h11). One MxCore per peer: decoded
// frames and the time go in (handle, tick); frames to send and effects go out through the
// driver's CoreIO (send, and the store calls openRead/read/list/beginUpload/...). Effects whose
// results come later are fed back as events carrying the transfer's serial `t` (onOpened,
// onRead, onListed, onCommitted, ...), never the request id: a client may reuse an id as soon
// as its transfer's last byte is queued, while the file is still being closed.
//
// No socket, no timer, no file system here: the stream driver (stream.ts: TCP, Unix sockets)
// and a datagram driver only move bytes, and the tests drive this class with frame tables.
// What the transport can do is stated in `Transport`: a datagram face says `streams: false`
// (PUT/GET/LIST/AUTH answer ERROR 3 pointing to TCP) and a smaller `maxReply`.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { SlotBudget } from '../loop/budget.js';
import type { Metrics } from '../loop/metrics.js';
import type { FileEntry, FileInfo } from '../store/files.js';
import { StoreError, checkUploadSize, validateFileName } from '../store/names.js';
import { WireError, type Frame } from '../wire/frame.js';
import {
  decodeGet, decodePut, decodeStr16, decodeText, encodeError, encodeFileInfo, encodeList, encodeNames,
} from '../wire/payloads.js';
import { ErrorCode, MAX_SAY_BYTES, Type } from '../wire/protocol.js';
import { validateChatName } from '../chat/names.js';
import { storeErrorCode } from './store-errors.js';
import { encodePush, type ChatSink, type JoinResult, type Member, type Room } from '../chat/room.js';

/** DATA payload size for downloads: big enough to amortise headers, small next to the output limit. */
export const DOWNLOAD_CHUNK = 64 * 1024;
/** Failed AUTHs per connection before further AUTHs are refused for AUTH_LOCKOUT_MS. */
export const AUTH_MAX_FAILURES = 3;
export const AUTH_LOCKOUT_MS = 10_000;
/** The ANNOUNCEMENT a chat member gets when the server starts shutting down. */
export const SHUTDOWN_NOTICE = 'server is shutting down';

/** What the connection's transport can do. */
export interface Transport {
  /** Byte streams (TCP, Unix): PUT, GET, LIST, DATA and AUTH work. False for datagrams. */
  readonly streams: boolean;
  /** Largest reply payload sent: NAMES_OK, JOIN_OK and LIST_OK are cut to fit (their count says how many). */
  readonly maxReply: number;
  /** The peer is on this machine (loopback address or Unix socket): it may PUT without a token. */
  readonly local: boolean;
}

/** Shared by every connection of a server. */
export interface CoreConfig {
  room: Room;
  metrics: Metrics;
  /** Largest upload (ERROR 22 beyond). */
  maxUpload: number;
  /** Transfers in progress per connection (ERROR 51 beyond). */
  maxTransfers: number;
  /** Transfers in progress across the server: a slot is held from PUT/GET until the file is closed. */
  transfers: SlotBudget;
  /** A transfer with no progress for this long is aborted with ERROR 27. */
  transferTimeoutMs: number;
  /** SHA-256 of the admin token, or null: ANNOUNCE is refused. */
  adminDigest: Buffer | null;
  /** SHA-256 of the upload token, or null: PUT only from local peers. */
  uploadDigest: Buffer | null;
  stats(): Buffer;
  log(line: string): void;
}

/** The driver side of one connection: where frames go and how effects are run. */
export interface CoreIO {
  /** Queues a frame, in order. The payload may be a view; the driver must not keep it past the call unless it copies. */
  send(type: number, id: number, payload?: Buffer): void;
  /** Where this connection's chat pushes go. */
  readonly sink: ChatSink;
  /** Downloads wait while true (the peer has not taken enough of our output); the driver calls writable() when it clears. */
  congested(): boolean;
  /** Output bytes the peer's side has taken so far: progress for the GET transfer timeout. */
  sent(): number;

  // Effects (streams only). Each result comes back through the named MxCore method.
  /** Open `name` for reading, fstat and digest that descriptor -> onOpened(t, info | error). */
  openRead(t: number, name: string): void;
  /** Read from the descriptor opened for `t` -> onRead(t, bytes | error). */
  read(t: number, position: number, length: number): void;
  /** Close the descriptor of `t` -> onReadClosed(t). */
  closeRead(t: number): void;
  /** List the store -> onListed(t, entries | error). */
  list(t: number): void;
  /** Start an upload (the temp file opens now). A later write failure -> onUploadFailed(t, error). */
  beginUpload(t: number, name: string, size: number, sha256: Buffer): void;
  writeUpload(t: number, bytes: Buffer): void;
  /** Verify, fsync and rename -> onCommitted(t, info | error). */
  commitUpload(t: number): void;
  /** Drop the upload and remove its temp file now -> onUploadClosed(t) once its descriptor is closed. */
  abortUpload(t: number): void;
  /** Test hook: a download found the output congested and waits. */
  downloadPaused?(): void;
}

interface Upload {
  kind: 'put';
  t: number;
  id: number;
  name: string;
  size: number;
  sha256: Buffer;
  received: number;
  /** beginUpload was emitted (first DATA, or commit of an empty file). */
  begun: boolean;
  committing: boolean;
  /** No reply may be sent for it any more (aborted, failed, timed out, connection gone). */
  dead: boolean;
  progressAt: number;
  slot: boolean;
}

const enum File {
  Opening,
  Open,
  /** closeRead was emitted: onReadClosed frees the slot. */
  Closing,
  None,
}

const enum Dl {
  Opening,
  Streaming,
  /** The last byte is queued (or it failed): waiting for the close. */
  Closing,
}

interface Download {
  kind: 'get';
  t: number;
  id: number;
  offset: number;
  state: Dl;
  position: number;
  size: number;
  /** A read is outstanding. */
  reading: boolean;
  /** The id is still held on this connection (freed with the last byte queued). */
  holdsId: boolean;
  file: File;
  progressAt: number;
  sentMark: number;
  slot: boolean;
}

type Transfer = Upload | Download;

export class MxCore {
  private readonly cfg: CoreConfig;
  private readonly transport: Transport;
  private readonly io: CoreIO;
  private member: Member | null = null;
  private joining = false;
  /** Request ids held by transfers (PUT until its reply; GET until its last byte is queued). */
  private readonly byId = new Map<number, Transfer>();
  /** Every transfer still holding something (a slot, a descriptor), by serial. */
  private readonly byT = new Map<number, Transfer>();
  private nextT = 1;
  private pendingLists = 0;
  /** LISTs being built: serial -> request id. */
  private readonly listIds = new Map<number, number>();
  private authed = false;
  private authFailures = 0;
  private lockedUntil = 0;
  private closed = false;
  private draining = false;

  constructor(cfg: CoreConfig, transport: Transport, io: CoreIO) {
    this.cfg = cfg;
    this.transport = transport;
    this.io = io;
  }

  /** The chat member, while joined. */
  get joined(): boolean {
    return this.member !== null;
  }

  /** Requests still owed an answer or bytes: uploads, downloads, LISTs, a JOIN in progress. */
  get busy(): boolean {
    return this.byId.size > 0 || this.pendingLists > 0 || this.joining;
  }

  /** Output reserved for replies being built (LIST_OK, counted at its largest). */
  get reservedOutput(): number {
    return this.pendingLists * this.transport.maxReply;
  }

  /** Uploads awaiting DATA or committing, downloads in progress (for drain/abort reports). */
  get transfersInFlight(): number {
    return this.byId.size;
  }

  // ---- input ---------------------------------------------------------------------------

  handle(frame: Frame, now: number): void {
    const { type, id, payload } = frame;
    const metrics = this.cfg.metrics;
    metrics.count('binary.frames');
    if (type === Type.DATA) {
      this.onUploadData(id, payload, now);
      return;
    }
    metrics.count('binary.requests');
    if (this.draining) {
      this.sendError(id, ErrorCode.BUSY, 'server shutting down: no new requests');
      return;
    }
    try {
      switch (type) {
        case Type.PING:
          this.io.send(Type.PING_OK, id, payload);
          return;
        case Type.STATS:
          requireEmpty(payload, 'STATS');
          this.io.send(Type.STATS_OK, id, this.cfg.stats());
          return;
        case Type.AUTH:
          this.requireStreams('AUTH');
          this.auth(id, payload, now);
          return;
        case Type.JOIN:
          this.join(id, payload);
          return;
        case Type.SAY:
          this.say(id, payload);
          return;
        case Type.LEAVE:
          requireEmpty(payload, 'LEAVE');
          if (this.member === null) throw new WireError(ErrorCode.NOT_JOINED, 'not joined');
          this.cfg.room.leave(this.member);
          this.member = null;
          this.io.send(Type.LEAVE_OK, id);
          return;
        case Type.NAMES:
          requireEmpty(payload, 'NAMES');
          this.io.send(Type.NAMES_OK, id, encodeNames(this.cfg.room.names(), this.transport.maxReply));
          return;
        case Type.ANNOUNCE:
          this.announce(id, payload);
          return;
        case Type.PUT:
          this.requireStreams('PUT');
          this.put(id, payload, now);
          return;
        case Type.GET:
          this.requireStreams('GET');
          this.get(id, payload, now);
          return;
        case Type.LIST:
          this.requireStreams('LIST');
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

  /** The byte stream cannot be framed any more (bad magic, frame too large): ERROR with id 0. The driver ends the connection. */
  protocolError(err: WireError): void {
    this.cfg.metrics.count('binary.errors');
    this.cfg.metrics.count('binary.protocolViolations');
    this.io.send(Type.ERROR, 0, encodeError(err.code, err.message));
  }

  // ---- time ----------------------------------------------------------------------------

  /** Earliest time tick() has something to do; 0 = nothing armed. */
  nextDeadline(): number {
    if (this.byId.size === 0) return 0;
    let at = 0;
    for (const x of this.byId.values()) {
      if (x.kind === 'put' ? x.committing || x.dead : x.state !== Dl.Streaming) continue;
      const due = x.progressAt + this.cfg.transferTimeoutMs;
      if (at === 0 || due < at) at = due;
    }
    return at;
  }

  /** Aborts transfers without progress for the transfer timeout (ERROR 27). */
  tick(now: number): void {
    if (this.byId.size === 0) return;
    const limit = this.cfg.transferTimeoutMs;
    const sent = this.io.sent();
    for (const x of [...this.byId.values()]) {
      if (x.kind === 'put') {
        if (x.committing || x.dead || now - x.progressAt < limit) continue;
        this.cfg.metrics.count('binary.transferTimeouts');
        this.killUpload(x, ErrorCode.TRANSFER_TIMEOUT, `transfer timed out: no DATA for ${limit} ms after ${x.received} of ${x.size} bytes; upload aborted`);
      } else if (x.state === Dl.Streaming) {
        // Progress is the peer taking our output, not merely our queueing it.
        if (sent > x.sentMark) {
          x.sentMark = sent;
          x.progressAt = now;
          continue;
        }
        if (now - x.progressAt < limit) continue;
        this.cfg.metrics.count('binary.transferTimeouts');
        this.endDownload(x);
        this.sendError(x.id, ErrorCode.TRANSFER_TIMEOUT, `transfer timed out: the reader took nothing for ${limit} ms at byte ${x.position} of ${x.size}`);
      }
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** The output drained: paced downloads go on. */
  writable(): void {
    if (this.byId.size === 0) return;
    for (const x of [...this.byId.values()]) if (x.kind === 'get') this.pump(x);
  }

  /**
   * The peer half-closed: it sends nothing more. Uploads still waiting for DATA can never
   * complete: ERROR 4 for each, and their temp files go. Call once every frame that arrived
   * before the FIN was handled.
   */
  halfClosed(): void {
    for (const x of [...this.byId.values()]) {
      if (x.kind !== 'put' || x.committing || x.dead) continue;
      this.killUpload(x, ErrorCode.MALFORMED, `connection half-closed after ${x.received} of ${x.size} bytes; upload aborted`);
    }
  }

  /**
   * Graceful shutdown: new requests get ERROR 51 from now on (DATA for uploads in progress is
   * still taken); a chat member gets an ANNOUNCEMENT that the server is going down and leaves.
   * The driver closes the connection once `busy` is false.
   */
  drain(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    if (this.member !== null) {
      const member = this.member;
      this.member = null;
      this.io.sink.deliver(encodePush(Type.ANNOUNCEMENT, Buffer.from(SHUTDOWN_NOTICE, 'utf8')));
      this.cfg.room.leave(member);
    }
  }

  /** Shutdown timeout: uploads still in progress get ERROR 51 and are dropped. True if work was cut. */
  abort(): boolean {
    let cut = false;
    for (const x of [...this.byId.values()]) {
      cut = true;
      if (x.kind === 'put') {
        if (x.dead) continue;
        if (x.committing) {
          // Its rename may be under way: it finishes or fails on its own; no claim is made.
          continue;
        }
        this.killUpload(x, ErrorCode.BUSY, `server shutting down: upload aborted after ${x.received} of ${x.size} bytes`);
      } else {
        this.endDownload(x);
      }
    }
    return cut || this.pendingLists > 0;
  }

  /** The connection is gone: leave the room, drop uploads (temp files removed), close files. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.member !== null) {
      this.cfg.room.leave(this.member);
      this.member = null;
    }
    for (const x of [...this.byT.values()]) {
      if (x.kind === 'put') {
        this.byId.delete(x.id);
        if (!x.dead) {
          x.dead = true;
          this.dropUpload(x);
        }
      } else {
        this.endDownload(x);
      }
    }
  }

  // ---- chat ----------------------------------------------------------------------------

  private join(id: number, payload: Buffer): void {
    if (this.member !== null) throw new WireError(ErrorCode.ALREADY_JOINED, `already joined as ${this.member.name}`);
    if (this.joining) throw new WireError(ErrorCode.ALREADY_JOINED, 'a JOIN is already in progress');
    let name: string;
    try {
      name = validateChatName(decodeText(payload));
    } catch (err) {
      if (err instanceof WireError) throw err;
      throw new WireError(ErrorCode.INVALID_NAME, (err as Error).message);
    }
    this.joining = true;
    this.cfg.room.join(name, this.io.sink, (result) => this.onJoined(id, result));
  }

  private onJoined(id: number, result: JoinResult): void {
    this.joining = false;
    if (!result.ok) {
      if (!this.closed) this.sendError(id, result.code, result.message);
      return;
    }
    // Gone or shutting down while a relay decided: the name is given back.
    if (this.closed || this.draining) {
      this.cfg.room.leave(result.member);
      if (!this.closed) this.sendError(id, ErrorCode.BUSY, 'server shutting down');
      return;
    }
    this.member = result.member;
    this.io.send(Type.JOIN_OK, id, encodeNames(result.names, this.transport.maxReply));
  }

  private say(id: number, payload: Buffer): void {
    if (this.member === null) throw new WireError(ErrorCode.NOT_JOINED, 'join before you SAY');
    if (payload.length === 0 || payload.length > MAX_SAY_BYTES) {
      throw new WireError(ErrorCode.MALFORMED, `SAY text must be 1..${MAX_SAY_BYTES} bytes, got ${payload.length}`);
    }
    decodeText(payload); // validates UTF-8; the bytes themselves are forwarded
    this.cfg.metrics.count('binary.messages');
    this.cfg.room.say(this.member, payload);
    this.io.send(Type.SAY_OK, id);
  }

  private announce(id: number, payload: Buffer): void {
    // The token first (protocol.md §3: 14 before the text's 4), so the text is not decoded yet.
    const { value: token, next } = decodeStr16(payload, 0);
    const expected = this.cfg.adminDigest;
    if (expected === null || !tokenMatches(token, expected)) {
      throw new WireError(ErrorCode.FORBIDDEN, expected === null ? 'announcements are disabled (no admin token configured)' : 'bad admin token');
    }
    // Same bounds as SAY: an announcement is a chat message from the operator.
    const bytes = payload.length - next;
    if (bytes === 0 || bytes > MAX_SAY_BYTES) {
      throw new WireError(ErrorCode.MALFORMED, `ANNOUNCE text must be 1..${MAX_SAY_BYTES} bytes, got ${bytes}`);
    }
    this.cfg.room.announce(decodeText(payload.subarray(next)));
    this.io.send(Type.ANNOUNCE_OK, id);
  }

  // ---- AUTH ----------------------------------------------------------------------------

  private auth(id: number, payload: Buffer, now: number): void {
    const { value: token, next } = decodeStr16(payload, 0);
    if (next !== payload.length) throw new WireError(ErrorCode.MALFORMED, `AUTH: ${payload.length - next} bytes after the token`);
    if (now < this.lockedUntil) {
      throw new WireError(ErrorCode.FORBIDDEN, `locked out after ${AUTH_MAX_FAILURES} failed AUTH attempts; try again in ${Math.ceil((this.lockedUntil - now) / 1000)} s`);
    }
    const expected = this.cfg.uploadDigest;
    if (expected === null) throw new WireError(ErrorCode.FORBIDDEN, 'no upload token is set on this server (--upload-token): AUTH grants nothing');
    if (!tokenMatches(token, expected)) {
      this.authed = false;
      if (++this.authFailures >= AUTH_MAX_FAILURES) {
        this.authFailures = 0;
        this.lockedUntil = now + AUTH_LOCKOUT_MS;
      }
      this.cfg.metrics.count('binary.authFailures');
      throw new WireError(ErrorCode.FORBIDDEN, 'bad upload token');
    }
    this.authed = true;
    this.authFailures = 0;
    this.io.send(Type.AUTH_OK, id);
  }

  // ---- transfers -----------------------------------------------------------------------

  private requireStreams(what: string): void {
    if (!this.transport.streams) throw new WireError(ErrorCode.UNKNOWN_TYPE, `${what} is not available over datagrams: use the TCP port`);
  }

  /** The id is free and the connection below --max-transfers, or throws ERROR 24/51. */
  private checkRoom(id: number): void {
    if (this.byId.has(id)) throw new WireError(ErrorCode.ID_IN_USE, `id ${id} already has a transfer in progress`);
    const limit = this.cfg.maxTransfers;
    if (this.byId.size >= limit) {
      throw new WireError(ErrorCode.BUSY, `too many transfers in progress on this connection (limit ${limit}, --max-transfers)`);
    }
  }

  /** Takes a server-wide transfer slot (the last check: a refused request holds none), or throws ERROR 51. */
  private takeSlot(): void {
    if (!this.cfg.transfers.tryAcquire()) {
      this.cfg.metrics.count('binary.busy');
      throw new WireError(ErrorCode.BUSY, `server busy: ${this.cfg.transfers.limit} transfers in progress (--max-transfers-total); retry later`);
    }
  }

  private put(id: number, payload: Buffer, now: number): void {
    const { size, sha256, name } = decodePut(payload);
    const expected = this.cfg.uploadDigest;
    if (expected !== null) {
      if (!this.authed) throw new WireError(ErrorCode.FORBIDDEN, 'uploads need AUTH with the upload token first (--upload-token is set)');
    } else if (!this.transport.local) {
      throw new WireError(ErrorCode.FORBIDDEN, 'uploads are accepted only from loopback and Unix-socket peers unless the server sets --upload-token');
    }
    this.checkRoom(id);
    const nfc = validateFileName(name);
    checkUploadSize(size, this.cfg.maxUpload);
    this.takeSlot();
    const x: Upload = {
      kind: 'put', t: this.nextT++, id, name: nfc, size, sha256: Buffer.from(sha256), received: 0,
      begun: false, committing: false, dead: false, progressAt: now, slot: true,
    };
    this.byId.set(id, x);
    this.byT.set(x.t, x);
    this.cfg.metrics.count('binary.uploads');
    if (size === 0) this.commit(x);
  }

  private onUploadData(id: number, payload: Buffer, now: number): void {
    const x = this.byId.get(id);
    if (payload.length === 0) return; // carries nothing, overflows nothing
    // All declared bytes arrived: the upload is committing and may already be renamed into
    // place, so it can no longer be aborted truthfully. Later DATA is discarded, like DATA for
    // no open upload, and the PUT_OK or ERROR 23 goes out as usual.
    if (x === undefined || x.kind !== 'put' || x.committing || x.dead) {
      this.cfg.metrics.count('binary.dataDiscarded');
      return;
    }
    // More bytes than the PUT declared, before the commit began: the content is not what was promised.
    if (x.received + payload.length > x.size) {
      this.killUpload(x, ErrorCode.MALFORMED, `DATA beyond the declared size of ${x.size} bytes; upload aborted`);
      return;
    }
    if (!x.begun) {
      // The temp file opens with the first byte, not with the PUT: a PUT alone holds no descriptor.
      x.begun = true;
      this.io.beginUpload(x.t, x.name, x.size, x.sha256);
    }
    x.received += payload.length;
    x.progressAt = now;
    this.io.writeUpload(x.t, payload);
    this.cfg.metrics.count('binary.bytesIn', payload.length);
    if (x.received === x.size) this.commit(x);
  }

  private commit(x: Upload): void {
    if (!x.begun) {
      x.begun = true;
      this.io.beginUpload(x.t, x.name, x.size, x.sha256);
    }
    x.committing = true;
    this.io.commitUpload(x.t);
  }

  /** Answers `code` for the upload, drops it (temp file removed at once) and frees its id. */
  private killUpload(x: Upload, code: number, message: string): void {
    x.dead = true;
    this.byId.delete(x.id);
    this.dropUpload(x);
    this.sendError(x.id, code, message);
  }

  private dropUpload(x: Upload): void {
    if (x.begun) this.io.abortUpload(x.t);
    else this.releaseSlot(x);
  }

  /** A write failed (a full disk): the reply goes now, not after the last DATA. */
  onUploadFailed(t: number, err: unknown): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'put' || x.dead || x.committing) return;
    x.dead = true;
    this.byId.delete(x.id);
    this.io.abortUpload(t);
    if (!this.closed) this.fail(x.id, err);
  }

  onCommitted(t: number, result: FileInfo | Error): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'put') return;
    if (x.dead) return; // aborted meanwhile (connection gone): onUploadClosed frees it
    this.byId.delete(x.id);
    this.releaseSlot(x);
    if (this.closed) return;
    if (result instanceof Error) this.fail(x.id, result);
    else this.io.send(Type.PUT_OK, x.id, encodeFileInfo(result.size, result.sha256));
  }

  /** An aborted upload's descriptor is closed. */
  onUploadClosed(t: number): void {
    const x = this.byT.get(t);
    if (x !== undefined) this.releaseSlot(x);
  }

  private get(id: number, payload: Buffer, now: number): void {
    const { offset, name } = decodeGet(payload);
    this.checkRoom(id);
    this.takeSlot();
    const x: Download = {
      kind: 'get', t: this.nextT++, id, offset, state: Dl.Opening, position: offset, size: 0,
      reading: false, holdsId: true, file: File.Opening, progressAt: now, sentMark: 0, slot: true,
    };
    this.byId.set(id, x);
    this.byT.set(x.t, x);
    this.cfg.metrics.count('binary.downloads');
    this.io.openRead(x.t, name);
  }

  onOpened(t: number, result: FileInfo | Error, now: number): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'get') return;
    x.file = result instanceof Error ? File.None : File.Open;
    if (x.state !== Dl.Opening) {
      // Cut while opening (connection gone, shutdown): no reply, just close.
      this.closeFile(x);
      return;
    }
    if (result instanceof Error) {
      this.endDownload(x);
      this.fail(x.id, result);
      return;
    }
    if (x.offset > result.size) {
      this.endDownload(x);
      this.sendError(x.id, ErrorCode.OFFSET_BEYOND_END, `offset ${x.offset} is beyond the end of the file (${result.size} bytes)`);
      return;
    }
    x.size = result.size;
    // GET_OK describes the descriptor we stream from: its fstat size, its digest.
    this.io.send(Type.GET_OK, x.id, encodeFileInfo(result.size, result.sha256));
    x.state = Dl.Streaming;
    x.progressAt = now;
    x.sentMark = this.io.sent();
    this.pump(x);
  }

  /** Reads the next chunk if none is outstanding and the output has room. */
  private pump(x: Download): void {
    if (x.state !== Dl.Streaming || x.reading) return;
    if (x.position >= x.size) {
      this.endDownload(x);
      return;
    }
    if (this.io.congested()) {
      this.io.downloadPaused?.();
      return;
    }
    x.reading = true;
    this.io.read(x.t, x.position, Math.min(DOWNLOAD_CHUNK, x.size - x.position));
  }

  onRead(t: number, result: Buffer | Error): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'get') return;
    x.reading = false;
    if (x.state !== Dl.Streaming) {
      this.closeFile(x);
      return;
    }
    if (result instanceof Error || result.length === 0) {
      const id = x.id;
      const held = x.holdsId;
      this.endDownload(x);
      if (held) this.fail(id, result instanceof Error ? result : new Error('file shrank while being sent'));
      return;
    }
    this.io.send(Type.DATA, x.id, result);
    this.cfg.metrics.count('binary.bytesOut', result.length);
    x.position += result.length;
    this.pump(x);
  }

  onReadClosed(t: number): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'get') return;
    x.file = File.None;
    this.releaseSlot(x);
  }

  /** The download is over (done, failed, cut): its id is free at once, its file closes. */
  private endDownload(x: Download): void {
    if (x.holdsId) {
      x.holdsId = false;
      this.byId.delete(x.id);
    }
    x.state = Dl.Closing;
    // A read in flight closes it when it lands (onRead), an open in flight when it opens.
    if (!x.reading) this.closeFile(x);
  }

  private closeFile(x: Download): void {
    if (x.file === File.Open) {
      x.file = File.Closing;
      this.io.closeRead(x.t);
    } else if (x.file === File.None) {
      this.releaseSlot(x);
    }
  }

  private releaseSlot(x: Transfer): void {
    if (!x.slot) return;
    x.slot = false;
    this.byT.delete(x.t);
    this.cfg.transfers.release();
  }

  private list(id: number): void {
    const t = this.nextT++;
    this.listIds.set(t, id);
    this.pendingLists++;
    this.io.list(t);
  }

  onListed(t: number, result: FileEntry[] | Error): void {
    const id = this.listIds.get(t);
    if (id === undefined) return;
    this.listIds.delete(t);
    this.pendingLists--;
    if (this.closed) return;
    if (result instanceof Error) this.fail(id, result);
    else this.io.send(Type.LIST_OK, id, encodeList(result, this.transport.maxReply));
  }

  // ---- replies -------------------------------------------------------------------------

  private sendError(id: number, code: number, message: string): void {
    if (this.closed) return;
    this.cfg.metrics.count('binary.errors');
    this.io.send(Type.ERROR, id, encodeError(code, message));
  }

  /** Any failure while handling a request: typed ones answer their code, the rest answer 50. */
  private fail(id: number, err: unknown): void {
    if (err instanceof WireError) {
      this.sendError(id, err.code, err.message);
      return;
    }
    if (err instanceof StoreError) {
      this.sendError(id, storeErrorCode(err), err.message);
      return;
    }
    this.cfg.log(`binary: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    this.sendError(id, ErrorCode.INTERNAL, 'internal error');
  }
}

/** Compares digests, not the tokens: equal lengths always, so neither content nor length leaks. */
function tokenMatches(token: string, expected: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(token, 'utf8').digest(), expected);
}

export function tokenDigest(token: string | null): Buffer | null {
  return token === null || token === '' ? null : createHash('sha256').update(token, 'utf8').digest();
}

function requireEmpty(payload: Buffer, what: string): void {
  if (payload.length !== 0) throw new WireError(ErrorCode.MALFORMED, `${what} takes no payload, got ${payload.length} bytes`);
}
