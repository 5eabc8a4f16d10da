// The MX/1 client: one connection, requests matched to replies by id (so callers may pipeline),
// pushes turned into events, uploads and downloads streamed with backpressure both ways. The
// connection is a Transport (./transport.ts): TCP, Unix, TLS or WebSocket, the same client above.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { encodeFrame, WireError, type Frame } from '../wire/frame.js';
import {
  decodeError,
  decodeFileInfo,
  decodeList,
  decodeNames,
  decodeText,
  encodeAnnounce,
  encodeGet,
  encodePut,
  encodeStr16,
} from '../wire/payloads.js';
import { DEFAULT_MAX_PAYLOAD, Type } from '../wire/protocol.js';
import { dial, type DialOptions } from './dial.js';
import { LocalCode, MuxError } from './errors.js';
import { decodePush } from './pushes.js';
import { bufferSource, fileSource, type UploadSource } from './source.js';
import { StreamTransport, type Transport } from './transport.js';

/** Where and how to connect (DialOptions: host/port, path, url, tls, origin), and the client's own settings. */
export interface ConnectOptions extends DialOptions {
  /**
   * Per request and for connecting; for put/get, per stretch without progress (a reply, or a
   * DATA frame sent or received). A GET_OK may wait for the server to hash the whole file
   * (first GET of a file after a restart, or of one placed by hand): allow for that. Default 10000.
   */
  timeoutMs?: number;
  /** Largest frame payload accepted from the server; a larger one closes the connection. Default 1 MiB. */
  maxFrame?: number;
  /** Upload token: sent with AUTH before the first put() (servers started with --upload-token need it). */
  token?: string;
}

export interface FileInfo {
  size: number;
  sha256: Buffer;
}

export interface PutOptions {
  onProgress?(sent: number, total: number): void;
  /** Upload token for this put (overrides the connect option): AUTH is sent first if not yet accepted. */
  token?: string;
}

export interface GetOptions {
  /** First byte to fetch; the caller already holds bytes 0..offset. */
  offset?: number;
  /** Called once the server has said how large the whole file is and what its digest is. */
  onStart?(size: number, sha256: Buffer): void;
  /** `received` is a file position: offset plus the bytes received so far. */
  onProgress?(received: number, total: number): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const EMPTY = Buffer.alloc(0);
/**
 * An upload given up on after its PUT went out is released with zero-filled DATA (see
 * abandonUpload); past this many missing bytes the connection is closed instead.
 */
export const ABANDON_PAD_MAX = 16 * 1024 * 1024;
/** Padding frame size: the final frame carries up to one byte more, still within the 64 KiB every server accepts. */
const PAD_CHUNK = 32 * 1024;
let zeros: Buffer | null = null;

/** One request awaiting its reply. Entries leave the map on reply, error, timeout or close. */
interface Pending {
  /** The reply type that answers this request. */
  expect: number;
  onReply(payload: Buffer): void;
  /** Downloads only: DATA frames carrying the request's id. */
  onData?(payload: Buffer): void;
  fail(err: Error): void;
  timer: NodeJS.Timeout | null;
  /** Date.now() of the last progress; the timer, when it fires, times out only if this is old enough. */
  progressAt: number;
}

/**
 * Events: 'userJoined'(name), 'message'(from, text), 'userLeft'(name), 'announcement'(text),
 * 'close'(hadError), 'error'(err). 'error' is emitted only when someone listens, so an unobserved
 * socket error never crashes the process; pending requests are rejected either way.
 */
export class MuxClient extends EventEmitter {
  private readonly transport: Transport;
  private readonly timeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;
  /** Downloads whose sink is over its highWaterMark; the socket stays paused while > 0. */
  private sinkWaits = 0;
  /** Why the connection ended, when we know better than "closed". */
  private failure: MuxError | null = null;
  private closed = false;
  private drainWait: Promise<void> | null = null;
  private drainResolve: (() => void) | null = null;
  private closeWaiters: (() => void)[] = [];
  private readonly token: string | undefined;
  /** The token the server last accepted with AUTH_OK on this connection. */
  private authedWith: string | null = null;

  /** `connection`: a connected Transport (what connect() makes), or a connected net.Socket carrying MX/1 as a byte stream. */
  constructor(connection: Transport | net.Socket, opts: ConnectOptions = {}) {
    super();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.token = opts.token;
    this.transport = connection instanceof net.Socket
      ? new StreamTransport(connection, opts.maxFrame ?? DEFAULT_MAX_PAYLOAD, opts.path ?? `${opts.host ?? '127.0.0.1'}:${opts.port ?? 9000}`)
      : connection;
    this.transport.start({
      frame: (frame) => this.dispatch(frame),
      error: (cause, failure) => {
        this.failure ??= failure;
        this.emitError(cause);
      },
      ended: (failure) => {
        this.failure ??= failure;
      },
      drain: () => this.onDrain(),
      close: (hadError) => this.onClose(hadError),
    });
  }

  ping(payload: Uint8Array = EMPTY): Promise<Buffer> {
    return this.request(Type.PING, payload, Type.PING_OK, (p) => p);
  }

  stats(): Promise<Record<string, unknown>> {
    return this.request(Type.STATS, EMPTY, Type.STATS_OK, (p) => {
      let value: unknown;
      try {
        value = JSON.parse(decodeText(p));
      } catch {
        throw new MuxError(LocalCode.PROTOCOL, 'STATS reply is not JSON');
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new MuxError(LocalCode.PROTOCOL, 'STATS reply is not a JSON object');
      }
      return value as Record<string, unknown>;
    });
  }

  join(name: string): Promise<string[]> {
    return this.request(Type.JOIN, Buffer.from(name, 'utf8'), Type.JOIN_OK, decodeNames);
  }

  say(text: string): Promise<void> {
    return this.request(Type.SAY, Buffer.from(text, 'utf8'), Type.SAY_OK, expectEmpty);
  }

  leave(): Promise<void> {
    return this.request(Type.LEAVE, EMPTY, Type.LEAVE_OK, expectEmpty);
  }

  names(): Promise<string[]> {
    return this.request(Type.NAMES, EMPTY, Type.NAMES_OK, decodeNames);
  }

  announce(token: string, text: string): Promise<void> {
    return this.request(Type.ANNOUNCE, encodeAnnounce(token, text), Type.ANNOUNCE_OK, expectEmpty);
  }

  /**
   * Authenticates this connection for uploads (AUTH 0x03 -> AUTH_OK 0x83). A wrong token is
   * ERROR 14; three wrong tokens lock the connection out of AUTH for a few seconds.
   */
  async auth(token: string): Promise<void> {
    await this.request(Type.AUTH, encodeStr16(token), Type.AUTH_OK, expectEmpty);
    this.authedWith = token;
  }

  list(): Promise<{ size: number; name: string }[]> {
    return this.request(Type.LIST, EMPTY, Type.LIST_OK, decodeList);
  }

  /**
   * Uploads `source` (a file path or bytes) as `name`. The digest is computed first; then PUT and
   * all DATA frames go out without waiting for a reply, pausing whenever the socket is full.
   */
  async put(name: string, source: string | Uint8Array, opts: PutOptions = {}): Promise<FileInfo> {
    this.assertOpen();
    const token = opts.token ?? this.token;
    if (token !== undefined && token !== this.authedWith) await this.auth(token);
    const src: UploadSource = typeof source === 'string' ? await fileSource(source) : bufferSource(source);
    try {
      return await this.upload(name, src, opts);
    } finally {
      await src.close();
    }
  }

  private async upload(name: string, src: UploadSource, opts: PutOptions): Promise<FileInfo> {
    const id = this.nextId();
    /** Set once the server answered (or the connection closed): then it holds no upload for us. */
    let settled = false;
    const result = new Promise<FileInfo>((resolve, reject) => {
      this.register(id, {
        expect: Type.PUT_OK,
        onReply: (p) => {
          settled = true;
          const info = decodeFileInfo(p);
          this.finish(id);
          resolve(info);
        },
        fail: (err) => {
          // Our own failures (a timeout, a source that shrank or failed) leave the server waiting for DATA.
          if (err instanceof MuxError && err.code !== LocalCode.TIMEOUT && err.code !== LocalCode.LOCAL) settled = true;
          reject(err);
        },
        timer: null,
        progressAt: 0,
      });
    });
    // The caller sees the outcome through the awaited `result` below; this only keeps an early
    // rejection (bad name, closed) from being reported as unhandled while we are still sending.
    const ended = result.then(
      () => undefined,
      () => undefined,
    );
    this.send(Type.PUT, id, encodePut(src.size, src.sha256, name));
    let sent = 0;
    try {
      for await (const chunk of src.chunks()) {
        // Rejected early (bad name, too large, closed) or timed out: stop reading and sending.
        if (!this.pending.has(id)) break;
        const flushed = this.send(Type.DATA, id, chunk);
        sent += chunk.length;
        opts.onProgress?.(sent, src.size);
        this.progress(id);
        // A timeout while the server reads nothing must not leave us waiting for 'drain'.
        if (!flushed) {
          await Promise.race([this.drained(), ended]);
          this.progress(id);
        }
      }
    } catch (err) {
      this.failRequest(id, err instanceof Error ? err : new Error(String(err)));
    }
    if (!settled && sent < src.size) this.abandonUpload(id, src.size - sent);
    return result;
  }

  /**
   * Releases the server's side of an upload given up on after its PUT went out, so its id and
   * transfer slot do not stay taken until the connection closes (MX/1 has no cancel frame):
   * zero-filled DATA with one byte more than is missing, the excess in the frame that would
   * complete it, makes the server abort it at once (ERROR 4, nothing stored; ignored here, the
   * request is settled). The frames are queued before anything sent after this, and share one
   * buffer. Past ABANDON_PAD_MAX the connection is closed instead.
   */
  private abandonUpload(id: number, missing: number): void {
    if (this.closed || this.transport.destroyed) return;
    if (missing > ABANDON_PAD_MAX) {
      this.failure ??= new MuxError(LocalCode.CLOSED, `connection closed to abandon an upload ${missing} bytes short`);
      this.transport.destroy();
      return;
    }
    const pad = (zeros ??= Buffer.alloc(PAD_CHUNK + 1));
    let left = missing;
    // Keep at least one byte missing until the last frame, which overshoots by one.
    for (; left > PAD_CHUNK; left -= PAD_CHUNK) this.send(Type.DATA, id, pad.subarray(0, PAD_CHUNK));
    this.send(Type.DATA, id, pad.subarray(0, left + 1));
  }

  /**
   * Downloads `name` from `offset` into `sink`. Resolves with the whole file's size and digest once
   * every byte has been written to the sink. Verifies nothing: with an offset only the caller holds
   * the prefix, so the caller checks the digest.
   */
  get(name: string, sink: NodeJS.WritableStream, opts: GetOptions = {}): Promise<FileInfo> {
    const offset = opts.offset ?? 0;
    return new Promise<FileInfo>((resolve, reject) => {
      const id = this.nextId();
      let info: FileInfo | null = null;
      let remaining = 0;
      let received = 0;
      let waitingForSink = false;
      const onSinkDrain = (): void => {
        waitingForSink = false;
        this.arm(id);
        this.releaseSink();
      };
      const onSinkError = (err: Error): void => this.failRequest(id, err);
      const cleanup = (): void => {
        sink.removeListener('error', onSinkError);
        if (waitingForSink) {
          waitingForSink = false;
          sink.removeListener('drain', onSinkDrain);
          this.releaseSink();
        }
      };
      sink.on('error', onSinkError);
      this.register(id, {
        expect: Type.GET_OK,
        onReply: (p) => {
          if (info !== null) throw new MuxError(LocalCode.PROTOCOL, 'second GET reply for one request');
          const whole = decodeFileInfo(p);
          if (offset > whole.size) throw new MuxError(LocalCode.PROTOCOL, `server accepted offset ${offset} beyond the end (${whole.size})`);
          info = whole;
          remaining = whole.size - offset;
          this.progress(id);
          opts.onStart?.(whole.size, whole.sha256);
          if (remaining === 0) {
            this.finish(id);
            cleanup();
            resolve(whole);
          }
        },
        onData: (chunk) => {
          if (info === null) throw new MuxError(LocalCode.PROTOCOL, 'DATA before the GET reply');
          if (chunk.length > remaining - received) throw new MuxError(LocalCode.PROTOCOL, 'server sent more DATA than the file holds');
          received += chunk.length;
          this.progress(id);
          const done = received === remaining;
          const whole = info;
          if (done) {
            this.finish(id);
            cleanup();
          }
          const ok = sink.write(chunk, done ? (err?: Error | null) => (err ? reject(err) : resolve(whole)) : undefined);
          opts.onProgress?.(offset + received, whole.size);
          if (!done && !ok && !waitingForSink) {
            // Backpressure towards the server: stop reading the socket until the sink drains.
            waitingForSink = true;
            this.disarm(id);
            this.holdSink();
            sink.once('drain', onSinkDrain);
          }
        },
        fail: (err) => {
          cleanup();
          reject(err);
        },
        timer: null,
        progressAt: 0,
      });
      try {
        this.send(Type.GET, id, encodeGet(offset, name));
      } catch (err) {
        this.failRequest(id, err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Ends the connection politely and resolves once it is closed; pending requests are rejected. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => this.transport.destroy(), this.timeoutMs);
      force.unref();
      this.closeWaiters.push(() => {
        clearTimeout(force);
        resolve();
      });
      this.failure ??= new MuxError(LocalCode.CLOSED, 'connection closed by the client');
      // A FIN, or the WebSocket closing handshake; either keeps reading until the server's end.
      this.transport.end();
    });
  }

  /** True once the connection has closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  // --- requests -------------------------------------------------------------------------

  private request<T>(type: number, payload: Uint8Array, expect: number, decode: (p: Buffer) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed || this.transport.destroyed) {
        reject(this.closedError());
        return;
      }
      const id = this.nextId();
      this.register(id, {
        expect,
        onReply: (p) => {
          const value = decode(p);
          this.finish(id);
          resolve(value);
        },
        fail: reject,
        timer: null,
        progressAt: 0,
      });
      try {
        this.send(type, id, payload);
      } catch (err) {
        this.failRequest(id, err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** u32 ids, skipping 0 (pushes) and any id still awaiting its reply. */
  private nextId(): number {
    do this.lastId = (this.lastId + 1) >>> 0;
    while (this.lastId === 0 || this.pending.has(this.lastId));
    return this.lastId;
  }

  private register(id: number, entry: Pending): void {
    if (this.closed) {
      entry.fail(this.closedError());
      return;
    }
    this.pending.set(id, entry);
    this.arm(id);
  }

  /** (Re)starts the request's timer: a reply or, for transfers, progress must come within timeoutMs. */
  private arm(id: number): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    entry.progressAt = Date.now();
    entry.timer ??= setTimeout(() => this.onTimer(id), this.timeoutMs);
  }

  /** Transfer progress: only a timestamp, so a DATA frame costs no timer churn. */
  private progress(id: number): void {
    const entry = this.pending.get(id);
    if (entry) entry.progressAt = Date.now();
  }

  private onTimer(id: number): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    entry.timer = null;
    const quiet = Date.now() - entry.progressAt;
    if (quiet < this.timeoutMs) {
      entry.timer = setTimeout(() => this.onTimer(id), this.timeoutMs - quiet);
      return;
    }
    const what = entry.expect === Type.PUT_OK || entry.onData ? 'no reply or progress' : 'no reply';
    this.failRequest(id, new MuxError(LocalCode.TIMEOUT, `${what} within ${this.timeoutMs} ms`));
  }

  private disarm(id: number): void {
    const entry = this.pending.get(id);
    if (entry?.timer) {
      clearTimeout(entry.timer);
      entry.timer = null;
    }
  }

  /** Forgets the id: a late reply for it is ignored. */
  private finish(id: number): Pending | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    if (entry.timer) clearTimeout(entry.timer);
    this.pending.delete(id);
    return entry;
  }

  private failRequest(id: number, err: Error): void {
    this.finish(id)?.fail(err);
  }

  private assertOpen(): void {
    if (this.closed || this.transport.destroyed) throw this.closedError();
  }

  private closedError(): MuxError {
    return this.failure ?? new MuxError(LocalCode.CLOSED, 'connection closed');
  }

  /** Sends one frame (one writev, or one WebSocket message); false when the write buffer is full. */
  private send(type: number, id: number, payload: Uint8Array): boolean {
    this.assertOpen();
    return this.transport.send(encodeFrame(type, id, payload));
  }

  /** Resolves on the transport's next drain (or its close); shared by every waiting upload. */
  private drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.drainWait ??= new Promise<void>((resolve) => {
      this.drainResolve = resolve;
    });
    return this.drainWait;
  }

  private onDrain(): void {
    const resolve = this.drainResolve;
    this.drainWait = null;
    this.drainResolve = null;
    resolve?.();
  }

  // --- receiving ------------------------------------------------------------------------

  /** A download's sink is full: the transport stops delivering frames and reading until every sink drained. */
  private holdSink(): void {
    if (this.sinkWaits++ === 0) this.transport.pause();
  }

  private releaseSink(): void {
    // resume() delivers the frames held back, which may pause again for another slow sink.
    if (--this.sinkWaits === 0 && !this.closed) this.transport.resume();
  }

  private dispatch(frame: Frame): void {
    const { type, id, payload } = frame;
    if (id === 0 && type !== Type.ERROR) {
      this.onPush(type, payload);
      return;
    }
    const entry = this.pending.get(id);
    if (type === Type.ERROR) {
      const err = decodeServerError(payload);
      if (entry) this.failRequest(id, err);
      else if (id === 0) {
        // A connection-level error (the fatal "bad frame" before a close, too many connections).
        this.failure ??= err;
        this.emitError(err);
      }
      // Otherwise a late answer to a request we gave up on (timed out, or an abandoned upload's
      // expected ERROR 4): like any late reply, it concerns no one now.
      return;
    }
    // No entry: a late reply after a timeout, or DATA for a download we gave up on.
    if (!entry) return;
    try {
      if (type === Type.DATA && entry.onData) entry.onData(payload);
      else if (type === entry.expect) entry.onReply(payload);
      else throw new MuxError(LocalCode.PROTOCOL, `unexpected frame type 0x${type.toString(16)} for request ${id}`);
    } catch (err) {
      this.failRequest(id, asProtocolError(err));
    }
  }

  private onPush(type: number, payload: Buffer): void {
    try {
      const event = decodePush(type, payload);
      if (event !== null) this.emit(event[0], ...event.slice(1));
    } catch (err) {
      if (err instanceof WireError) this.emitError(asProtocolError(err));
      else throw err;
    }
  }

  private onClose(hadError: boolean): void {
    this.closed = true;
    const err = this.closedError();
    for (const id of [...this.pending.keys()]) this.failRequest(id, err);
    this.onDrain();
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
    this.emit('close', hadError);
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

function expectEmpty(p: Buffer): void {
  if (p.length !== 0) throw new MuxError(LocalCode.PROTOCOL, `expected an empty reply, got ${p.length} bytes`);
}

function decodeServerError(payload: Buffer): MuxError {
  try {
    const { code, message } = decodeError(payload);
    return new MuxError(code, message);
  } catch {
    return new MuxError(LocalCode.PROTOCOL, 'malformed ERROR frame from server');
  }
}

function asProtocolError(err: unknown): Error {
  if (err instanceof MuxError) return err;
  if (err instanceof WireError) return new MuxError(LocalCode.PROTOCOL, `malformed reply: ${err.message}`);
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Opens a connection: TCP (host, port), a Unix socket (path), TLS (tls), or a WebSocket (url:
 * ws:// or wss://). Rejects with the socket's error (e.g. code ECONNREFUSED) or a MuxError:
 * TIMEOUT, TLS (an unverifiable certificate, a failed handshake), PROTOCOL (a refused WebSocket
 * handshake), LOCAL (a bad url).
 */
export async function connect(opts: ConnectOptions = {}): Promise<MuxClient> {
  return new MuxClient(await dial(opts), opts);
}
