// The MX/1 client over UDP (docs/protocol.md §11): the TCP client's chat and ping requests, one
// frame per datagram. Over UDP the client owns reliability: an unanswered request is resent with
// the same id (§11.4: PING, STATS, NAMES, JOIN, SAY, LEAVE; never ANNOUNCE), ERROR 15 is answered
// by resending with the cookie it carries, and a joined client PINGs so the server keeps it.
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { writeFrame } from '../wire/frame.js';
import { decodeError, decodeNames, decodeText, encodeAnnounce } from '../wire/payloads.js';
import { ErrorCode, HEADER_SIZE, MAGIC, Type, VERSION } from '../wire/protocol.js';
import { MAX_DATAGRAM, cookieFromError, encodeUdpJoin } from '../wire/udp.js';
import { LocalCode, MuxError } from './errors.js';
import { decodePush } from './pushes.js';

export interface UdpConnectOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 9000 (the UDP face shares the MX/1 port number by default). */
  port?: number;
  /** Per request, all attempts together. Default 5000. */
  timeoutMs?: number;
  /** Resends of an unanswered request (not ANNOUNCE); attempts are timeoutMs / (retries + 1) apart. Default 4. */
  retries?: number;
  /** While joined, a PING this often keeps the member alive (the server's default timeout is 60 s). Default 15000. */
  keepaliveMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_RETRIES = 4;
const DEFAULT_KEEPALIVE_MS = 15_000;
/** ERROR 15 answered with a resend at most this often per request (a cookie may expire once in between). */
const COOKIE_TRIES = 2;
const EMPTY = Buffer.alloc(0);

interface Pending {
  type: number;
  expect: number;
  /** The request's payload without a cookie; the cookie is added per attempt where it can travel. */
  payload: Buffer;
  datagram: Buffer;
  resend: boolean;
  attempts: number;
  cookieTries: number;
  timer: NodeJS.Timeout | null;
  onReply(payload: Buffer): void;
  fail(err: Error): void;
}

/**
 * Events as the TCP client's: 'userJoined'(name), 'message'(from, text), 'userLeft'(name),
 * 'announcement'(text), 'close'(hadError), 'error'(err) (only emitted when someone listens).
 */
export class MuxUdpClient extends EventEmitter {
  private readonly socket: dgram.Socket;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly keepaliveMs: number;
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;
  private cookie: string | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private joined = false;
  private closed = false;

  constructor(socket: dgram.Socket, opts: UdpConnectOptions = {}) {
    super();
    this.socket = socket;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = opts.retries ?? DEFAULT_RETRIES;
    this.keepaliveMs = opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    socket.on('message', (d: Buffer) => this.onDatagram(d));
    // A connected UDP socket reports ICMP errors (port unreachable: ECONNREFUSED): nothing answers there.
    socket.on('error', (err: Error) => {
      for (const id of [...this.pending.keys()]) this.failRequest(id, err);
      this.emitError(err);
    });
  }

  ping(payload: Uint8Array = EMPTY): Promise<Buffer> {
    return this.request(Type.PING, Buffer.from(payload), Type.PING_OK, true, (p) => Buffer.from(p));
  }

  stats(): Promise<Record<string, unknown>> {
    return this.request(Type.STATS, EMPTY, Type.STATS_OK, true, (p) => {
      let value: unknown;
      try {
        value = JSON.parse(decodeText(p));
      } catch {
        throw new MuxError(LocalCode.PROTOCOL, 'STATS reply is not JSON');
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MuxError(LocalCode.PROTOCOL, 'STATS reply is not a JSON object');
      return value as Record<string, unknown>;
    });
  }

  async join(name: string): Promise<string[]> {
    const names = await this.request(Type.JOIN, Buffer.from(name, 'utf8'), Type.JOIN_OK, true, decodeNames);
    this.joined = true;
    this.startKeepalive();
    return names;
  }

  say(text: string): Promise<void> {
    return this.request(Type.SAY, Buffer.from(text, 'utf8'), Type.SAY_OK, true, expectEmpty);
  }

  async leave(): Promise<void> {
    await this.request(Type.LEAVE, EMPTY, Type.LEAVE_OK, true, expectEmpty);
    this.joined = false;
    this.stopKeepalive();
  }

  names(): Promise<string[]> {
    return this.request(Type.NAMES, EMPTY, Type.NAMES_OK, true, decodeNames);
  }

  /** Sent once: a resend could announce twice (§11.4). */
  announce(token: string, text: string): Promise<void> {
    return this.request(Type.ANNOUNCE, encodeAnnounce(token, text), Type.ANNOUNCE_OK, false, expectEmpty);
  }

  /**
   * Rejects what is pending and closes the socket. A joined client first sends one LEAVE (not
   * waited for), so the others see USER_LEFT now rather than after the server's member timeout.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.joined) {
      try {
        this.socket.send(frameOf(Type.LEAVE, this.nextId(), EMPTY));
      } catch {
        // the socket is already unusable; the member times out on the server
      }
    }
    this.shutdown(new MuxError(LocalCode.CLOSED, 'client closed'));
    return new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
      this.emit('close', false);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // --- requests ---------------------------------------------------------------------------

  private request<T>(type: number, payload: Buffer, expect: number, resend: boolean, decode: (p: Buffer) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(new MuxError(LocalCode.CLOSED, 'client closed'));
        return;
      }
      const id = this.nextId();
      const entry: Pending = {
        type,
        expect,
        payload,
        datagram: frameOf(type, id, withCookie(type, payload, this.cookie)),
        resend,
        attempts: 0,
        cookieTries: 0,
        timer: null,
        onReply: (p) => resolve(decode(p)),
        fail: reject,
      };
      if (entry.datagram.length > MAX_DATAGRAM) {
        reject(new MuxError(LocalCode.LOCAL, `request of ${entry.datagram.length} bytes does not fit a datagram (${MAX_DATAGRAM})`));
        return;
      }
      this.pending.set(id, entry);
      this.transmit(id, entry);
    });
  }

  private transmit(id: number, entry: Pending): void {
    entry.attempts++;
    const wait = entry.resend ? Math.max(1, Math.floor(this.timeoutMs / (this.retries + 1))) : this.timeoutMs;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.onTimer(id), wait);
    this.socket.send(entry.datagram, (err) => {
      if (err) this.failRequest(id, err);
    });
  }

  private onTimer(id: number): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    entry.timer = null;
    if (entry.resend && entry.attempts <= this.retries) {
      this.transmit(id, entry);
      return;
    }
    const tries = entry.attempts === 1 ? '' : ` (${entry.attempts} attempts)`;
    this.failRequest(id, new MuxError(LocalCode.TIMEOUT, `no reply within ${this.timeoutMs} ms${tries}`));
  }

  /** u32 ids, skipping 0 (pushes) and any id still awaiting its reply. */
  private nextId(): number {
    do this.lastId = (this.lastId + 1) >>> 0;
    while (this.lastId === 0 || this.pending.has(this.lastId));
    return this.lastId;
  }

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

  // --- receiving --------------------------------------------------------------------------

  private onDatagram(d: Buffer): void {
    // One frame per datagram; anything else is noise (the socket is connected to the server,
    // but a datagram can still be damaged): dropped, the resend timer covers it.
    if (d.length < HEADER_SIZE || d.readUInt16BE(0) !== MAGIC || d[2] !== VERSION || d.readUInt32BE(8) !== d.length - HEADER_SIZE) return;
    const type = d[3]!;
    const id = d.readUInt32BE(4);
    const payload = d.subarray(HEADER_SIZE);
    if (id === 0 && type !== Type.ERROR) {
      this.onPush(type, payload);
      return;
    }
    const entry = this.pending.get(id);
    if (type === Type.ERROR) {
      const err = serverError(payload);
      if (entry) this.onError(id, entry, err, payload);
      else if (id === 0) this.emitError(err);
      return;
    }
    // No entry: the second answer to a resent request, or a late one after a timeout.
    if (!entry || type !== entry.expect) return;
    this.finish(id);
    try {
      entry.onReply(payload);
    } catch (err) {
      entry.fail(err instanceof MuxError ? err : new MuxError(LocalCode.PROTOCOL, `malformed reply: ${(err as Error).message}`));
    }
  }

  private onError(id: number, entry: Pending, err: MuxError, payload: Buffer): void {
    if (err.code === ErrorCode.COOKIE_REQUIRED && entry.cookieTries < COOKIE_TRIES) {
      const cookie = cookieFromError(payload);
      if (cookie !== null && canCarryCookie(entry.type)) {
        entry.cookieTries++;
        this.cookie = cookie;
        entry.datagram = frameOf(entry.type, id, withCookie(entry.type, entry.payload, cookie));
        entry.attempts = 0;
        this.transmit(id, entry);
        return;
      }
    }
    // A resent LEAVE whose first copy arrived: the member is gone, which is what we asked.
    if (entry.type === Type.LEAVE && err.code === ErrorCode.NOT_JOINED && entry.attempts > 1) {
      this.finish(id);
      entry.onReply(EMPTY);
      return;
    }
    this.failRequest(id, err);
  }

  private onPush(type: number, payload: Buffer): void {
    try {
      const event = decodePush(type, payload);
      if (event !== null) this.emit(event[0], ...event.slice(1));
    } catch (err) {
      this.emitError(new MuxError(LocalCode.PROTOCOL, `malformed push: ${(err as Error).message}`));
    }
  }

  // --- lifecycle --------------------------------------------------------------------------

  private startKeepalive(): void {
    if (this.keepalive !== null || this.closed) return;
    this.keepalive = setInterval(() => {
      if (this.joined) this.ping().catch(() => undefined);
    }, this.keepaliveMs);
    this.keepalive.unref();
  }

  private stopKeepalive(): void {
    if (this.keepalive !== null) clearInterval(this.keepalive);
    this.keepalive = null;
  }

  private shutdown(err: Error): void {
    this.closed = true;
    this.joined = false;
    this.stopKeepalive();
    for (const id of [...this.pending.keys()]) this.failRequest(id, err);
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

function canCarryCookie(type: number): boolean {
  return type === Type.JOIN || type === Type.STATS || type === Type.NAMES;
}

/** The payload as sent: JOIN gains 0x00 + cookie, STATS and NAMES become the cookie (§11.2). */
function withCookie(type: number, payload: Buffer, cookie: string | null): Buffer {
  if (cookie === null || !canCarryCookie(type)) return payload;
  if (type === Type.JOIN) return encodeUdpJoin(payload.toString('utf8'), cookie);
  return Buffer.from(cookie, 'latin1');
}

function frameOf(type: number, id: number, payload: Buffer): Buffer {
  const d = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeFrame(d, 0, type, id, payload);
  return d;
}

function expectEmpty(p: Buffer): void {
  if (p.length !== 0) throw new MuxError(LocalCode.PROTOCOL, `expected an empty reply, got ${p.length} bytes`);
}

function serverError(payload: Buffer): MuxError {
  try {
    const { code, message } = decodeError(payload);
    return new MuxError(code, message);
  } catch {
    return new MuxError(LocalCode.PROTOCOL, 'malformed ERROR frame from server');
  }
}

/**
 * A UDP "connection": a socket connected to the server's address (so only its datagrams are
 * read, and ICMP port-unreachable surfaces as ECONNREFUSED). Nothing is sent until a request.
 */
export async function connectUdp(opts: UdpConnectOptions = {}): Promise<MuxUdpClient> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 9000;
  const family = net.isIP(host);
  const address = family !== 0 ? { address: host, family } : await lookup(host);
  const socket = dgram.createSocket(address.family === 6 ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, address.address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return new MuxUdpClient(socket, opts);
}
