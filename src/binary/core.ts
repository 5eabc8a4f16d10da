// The MX/1 protocol core, sans-IO (model: quinn-proto, h11). One MxCore per peer: decoded
// frames and the time go in (handle, tick), frames go out through the driver's Output at once
// (encoded in place, no queue), and everything that needs the file system comes out as effect
// objects of the transfers part (transfers.ts), whose results the driver feeds back as events.
//
// This module is the session: dispatch, AUTH, chat, STATS, shutdown. The transfers part
// (PUT/GET/LIST, their ids, slots and timeouts) is given only by drivers that have files; a
// datagram driver gives none, and PUT/GET/LIST/AUTH then answer ERROR 3 naming the transport.
// No socket, no timer, no file system here: the tests drive this class with frame tables.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Metrics } from '../loop/metrics.js';
import { StoreError } from '../store/names.js';
import { storeErrorCode } from './store-errors.js';
import { WireError, type Frame } from '../wire/frame.js';
import { decodeStr16, decodeText, encodeNames } from '../wire/payloads.js';
import { ErrorCode, MAX_SAY_BYTES, Type } from '../wire/protocol.js';
import { validateChatName } from '../chat/names.js';
import { encodePush, type ChatSink, type JoinResult, type Member, type Room } from '../chat/room.js';
import type { StatsSource } from './stats.js';
import { Transfers, type Taken, type TransfersConfig } from './transfers.js';

/** Failed AUTHs per connection before further AUTHs are refused for AUTH_LOCKOUT_MS. */
export const AUTH_MAX_FAILURES = 3;
export const AUTH_LOCKOUT_MS = 10_000;
/** The ANNOUNCEMENT a chat member gets when the server starts shutting down. */
export const SHUTDOWN_NOTICE = 'server is shutting down';

/** What the connection's transport is. */
export interface Transport {
  /** How ERROR texts name it when it lacks files ("PUT is not available over datagrams"). */
  readonly name: string;
  /** Largest reply payload sent: STATS_OK, NAMES_OK, JOIN_OK and LIST_OK are built to fit. */
  readonly maxReply: number;
  /** The peer is on this machine (loopback address or Unix socket): it may PUT without a token. */
  readonly local: boolean;
}

/** The session's part of the server, shared by every connection. */
export interface CoreConfig {
  room: Room;
  metrics: Metrics;
  /** SHA-256 of the admin token, or null: ANNOUNCE is refused. */
  adminDigest: Buffer | null;
  /** STATS_OK's payload, built to fit the transport's largest reply. */
  stats: StatsSource;
  log(line: string): void;
}

/** Where one connection's frames go. */
export interface Output {
  /** Queues a frame, in order. The payload may be a view; the driver must not keep it past the call unless it copies. */
  send(type: number, id: number, payload?: Buffer): void;
  /** Queues an ERROR (a datagram driver cuts the message to what the address may be sent). */
  error(id: number, code: number, message: string): void;
  /** Where this connection's chat pushes go. */
  readonly sink: ChatSink;
  /** A SAY with this id was relayed (a datagram driver answers its retransmission without relaying it twice). */
  said?(id: number): void;
}

/** The transfers part a driver with files provides: the limits, and the peer's progress. */
export interface FilesPart extends TransfersConfig {
  /** Output bytes the peer has taken so far (the GET transfer timeout's progress). */
  taken: Taken;
}

export class MxCore {
  private readonly cfg: CoreConfig;
  private readonly transport: Transport;
  private readonly out: Output;
  /** The transfers part, or null for a driver without files. */
  readonly files: Transfers | null;
  private member: Member | null = null;
  private joining = false;
  private authed = false;
  private authFailures = 0;
  private lockedUntil = 0;
  private closed = false;
  private draining = false;

  constructor(cfg: CoreConfig, transport: Transport, out: Output, files?: FilesPart) {
    this.cfg = cfg;
    this.transport = transport;
    this.out = out;
    this.files = files === undefined ? null : new Transfers(files, cfg.metrics, transport.maxReply, this.replies, files.taken);
  }

  /** The chat member, while joined. */
  get joined(): boolean {
    return this.member !== null;
  }

  /** Requests still owed an answer or bytes: uploads, downloads, LISTs, a JOIN in progress. */
  get busy(): boolean {
    return this.joining || (this.files !== null && this.files.busy);
  }

  /** Output reserved for replies being built (LIST_OK, counted at its largest). */
  get reservedOutput(): number {
    return this.files === null ? 0 : this.files.reservedOutput;
  }

  /** Uploads awaiting DATA or committing, downloads in progress (for drain/abort reports). */
  get transfersInFlight(): number {
    return this.files === null ? 0 : this.files.inFlight;
  }

  // ---- input ---------------------------------------------------------------------------

  handle(frame: Frame, now: number): void {
    const { type, id, payload } = frame;
    const metrics = this.cfg.metrics;
    metrics.count('binary.frames');
    if (type === Type.DATA) {
      if (this.files !== null) this.files.data(id, payload, now);
      else metrics.count('binary.dataDiscarded');
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
          this.out.send(Type.PING_OK, id, payload);
          return;
        case Type.STATS:
          requireEmpty(payload, 'STATS');
          this.out.send(Type.STATS_OK, id, this.cfg.stats(this.transport.maxReply));
          return;
        case Type.AUTH:
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
          this.out.send(Type.LEAVE_OK, id);
          return;
        case Type.NAMES:
          requireEmpty(payload, 'NAMES');
          this.out.send(Type.NAMES_OK, id, encodeNames(this.cfg.room.names(), this.transport.maxReply));
          return;
        case Type.ANNOUNCE:
          this.announce(id, payload);
          return;
        case Type.PUT:
          this.requireFiles('PUT').put(id, payload, now, this.uploadRefusal());
          return;
        case Type.GET:
          this.requireFiles('GET').get(id, payload, now);
          return;
        case Type.LIST: {
          const files = this.requireFiles('LIST');
          requireEmpty(payload, 'LIST');
          files.list(id);
          return;
        }
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
    this.out.error(0, err.code, err.message);
  }

  // ---- time ----------------------------------------------------------------------------

  /** Earliest time tick() has something to do; 0 = nothing armed. */
  nextDeadline(): number {
    return this.files === null ? 0 : this.files.nextDeadline();
  }

  /** Aborts transfers without progress for the transfer timeout (ERROR 27). */
  tick(now: number): void {
    this.files?.tick(now);
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /**
   * The peer half-closed: it sends nothing more. Uploads still waiting for DATA can never
   * complete: ERROR 4 for each, and their temp files go. Call once every frame that arrived
   * before the FIN was handled.
   */
  halfClosed(): void {
    this.files?.halfClosed();
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
      this.out.sink.deliver(encodePush(Type.ANNOUNCEMENT, Buffer.from(SHUTDOWN_NOTICE, 'utf8')));
      this.cfg.room.leave(member);
    }
  }

  /** Shutdown timeout: uploads still in progress get ERROR 51 and are dropped. True if work was cut. */
  abort(): boolean {
    return this.files !== null && this.files.abort();
  }

  /** The connection is gone: leave the room, drop uploads (temp files removed), close files. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.member !== null) {
      this.cfg.room.leave(this.member);
      this.member = null;
    }
    this.files?.close();
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
    this.cfg.room.join(name, this.out.sink, (result) => this.onJoined(id, result));
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
    this.out.send(Type.JOIN_OK, id, encodeNames(result.names, this.transport.maxReply));
  }

  private say(id: number, payload: Buffer): void {
    if (this.member === null) throw new WireError(ErrorCode.NOT_JOINED, 'join before you SAY');
    if (payload.length === 0 || payload.length > MAX_SAY_BYTES) {
      throw new WireError(ErrorCode.MALFORMED, `SAY text must be 1..${MAX_SAY_BYTES} bytes, got ${payload.length}`);
    }
    decodeText(payload); // validates UTF-8; the bytes themselves are forwarded
    this.cfg.metrics.count('binary.messages');
    this.cfg.room.say(this.member, payload);
    this.out.send(Type.SAY_OK, id);
    this.out.said?.(id);
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
    this.out.send(Type.ANNOUNCE_OK, id);
  }

  // ---- AUTH ----------------------------------------------------------------------------

  private auth(id: number, payload: Buffer, now: number): void {
    const files = this.requireFiles('AUTH');
    const { value: token, next } = decodeStr16(payload, 0);
    if (next !== payload.length) throw new WireError(ErrorCode.MALFORMED, `AUTH: ${payload.length - next} bytes after the token`);
    if (now < this.lockedUntil) {
      throw new WireError(ErrorCode.FORBIDDEN, `locked out after ${AUTH_MAX_FAILURES} failed AUTH attempts; try again in ${Math.ceil((this.lockedUntil - now) / 1000)} s`);
    }
    const expected = files.cfg.uploadDigest;
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
    this.out.send(Type.AUTH_OK, id);
  }

  // ---- AUTH and uploads ----------------------------------------------------------------

  private requireFiles(what: string): Transfers {
    if (this.files === null) throw new WireError(ErrorCode.UNKNOWN_TYPE, `${what} is not available over ${this.transport.name}: use the TCP port`);
    return this.files;
  }

  /** Why this connection may not PUT, or null: the token once set, else only local peers. */
  private uploadRefusal(): string | null {
    if (this.files!.cfg.uploadDigest !== null) {
      return this.authed ? null : 'uploads need AUTH with the upload token first (--upload-token is set)';
    }
    return this.transport.local ? null : 'uploads are accepted only from loopback and Unix-socket peers unless the server sets --upload-token';
  }

  // ---- replies -------------------------------------------------------------------------

  /** The transfers part answers through these: nothing goes out once the connection is gone. */
  private readonly replies = {
    send: (type: number, id: number, payload?: Buffer): void => {
      if (!this.closed) this.out.send(type, id, payload);
    },
    error: (id: number, code: number, message: string): void => this.sendError(id, code, message),
    fail: (id: number, err: unknown): void => this.fail(id, err),
  };

  private sendError(id: number, code: number, message: string): void {
    if (this.closed) return;
    this.cfg.metrics.count('binary.errors');
    this.out.error(id, code, message);
  }

  /** Any failure while handling a request: typed ones answer their code, the rest answer 50. */
  private fail(id: number, err: unknown): void {
    if (this.closed) return;
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
