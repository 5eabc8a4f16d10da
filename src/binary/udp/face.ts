// MX/1 over UDP, sans-IO: datagrams (with their source and the time) in, datagrams out through
// one `send` callback. No socket here: the driver (server.ts) owns the dgram socket and the timer.
// The requests themselves are the MX/1 core's (core.ts, with no transfers part: PUT/GET/LIST/AUTH
// answer ERROR 3): one MxCore per member (keyed by address:port), and one shared core that
// answers the stateless requests of everyone else, one datagram at a time. This layer adds only what datagrams need
// (docs/protocol.md §11): judging each datagram, address validation by cookie, the 3x rule on
// everything sent to an unvalidated address, member timeouts, and the two retransmission rules
// (a repeated JOIN is answered again, a repeated SAY id is not relayed twice).
import type { Metrics } from '../../loop/metrics.js';
import { writeFrame } from '../../wire/frame.js';
import { encodeError, encodeNames } from '../../wire/payloads.js';
import { ErrorCode, HEADER_SIZE, Type } from '../../wire/protocol.js';
import { MAX_DATAGRAM_PAYLOAD, decodeDatagram, encodeCookieError, isCookie, splitUdpJoin } from '../../wire/udp.js';
import { MxCore, type CoreConfig, type Output, type Transport } from '../core.js';
import type { StatsSource } from '../stats.js';
import type { ChatSink, Push, Room } from '../../chat/room.js';
import { AddressTable, type AddressEntry } from './addresses.js';
import { CookieJar } from './cookie.js';

/** Ids of a member's last SAYs: a retransmitted SAY is acknowledged, not relayed twice. */
export const SAY_IDS_REMEMBERED = 32;
/** Source ports below this (echo, chargen, DNS, NTP...) are never answered: no loops with those services. */
export const MIN_PEER_PORT = 1024;

const TRANSPORT: Transport = { name: 'datagrams', maxReply: MAX_DATAGRAM_PAYLOAD, local: false };
const EMPTY = Buffer.alloc(0);

export interface UdpFaceOptions {
  room: Room;
  metrics: Metrics;
  /** SHA-256 of the admin token, or null when announcements are disabled. */
  adminDigest: Buffer | null;
  /** The STATS JSON (the same as over TCP), built to fit a datagram (stats.ts: its fixed part when the whole does not). */
  stats: StatsSource;
  memberTimeoutMs: number;
  /** UDP members at most; a JOIN beyond is ERROR 51. */
  maxMembers: number;
  maxAddresses?: number;
  cookies?: CookieJar;
  /** Hands a datagram to the socket; false when it was not queued (the send queue is full). */
  send(datagram: Buffer, address: string, port: number): boolean;
  log(line: string): void;
}

/** Where one core's frames go: the 3x rule applies unless the destination is validated. */
interface Target {
  entry: AddressEntry;
  address: string;
  port: number;
}

/** A UDP peer in the room: its address is its identity, its datagrams its only sign of life. */
class UdpMember implements ChatSink, Output {
  readonly sink: ChatSink = this;
  readonly core: MxCore;
  lastSeen: number;
  /** The JOIN that made it a member: its retransmission is answered JOIN_OK again. */
  readonly joinId: number;
  readonly joinName: Buffer;
  private readonly sayIds: number[] = [];

  constructor(
    private readonly face: UdpFace,
    cfg: CoreConfig,
    readonly key: string,
    readonly target: Target,
    joinId: number,
    joinName: Buffer,
    now: number,
  ) {
    this.joinId = joinId;
    this.joinName = Buffer.from(joinName);
    this.lastSeen = now;
    this.core = new MxCore(cfg, TRANSPORT, this);
  }

  // Output: its replies. Its address proved itself with a cookie before the core existed.
  send(type: number, id: number, payload?: Buffer): void {
    this.face.emit(this.target, type, id, payload);
  }

  error(id: number, code: number, message: string): void {
    this.face.emitError(this.target, id, code, message);
  }

  /** Only a SAY that was relayed is remembered: a refused one, resent, is refused again. */
  said(id: number): void {
    if (this.sayIds.length === SAY_IDS_REMEMBERED) this.sayIds.shift();
    this.sayIds.push(id);
  }

  // ChatSink: pushes are datagrams to its address, sent once.
  deliver(push: Push): void {
    this.face.push(this, push.frame);
  }

  backlog(): number {
    return 0;
  }

  dropped(): void {
    this.face.forget(this);
  }

  /** True when a SAY with this id was relayed already. */
  saidBefore(id: number): boolean {
    return this.sayIds.includes(id);
  }
}

/** The core of everyone who is not a member: it answers the datagram being handled, and never joins. */
class SharedIO implements Output, ChatSink {
  readonly sink: ChatSink = this;
  target: Target | null = null;

  constructor(private readonly face: UdpFace) {}

  send(type: number, id: number, payload?: Buffer): void {
    if (this.target !== null) this.face.emit(this.target, type, id, payload);
  }

  error(id: number, code: number, message: string): void {
    if (this.target !== null) this.face.emitError(this.target, id, code, message);
  }

  deliver(): void {}
  backlog(): number {
    return 0;
  }
  dropped(): void {}
}

export class UdpFace {
  private readonly opts: UdpFaceOptions;
  private readonly cfg: CoreConfig;
  private readonly addresses: AddressTable;
  private readonly cookies: CookieJar;
  private readonly members = new Map<string, UdpMember>();
  private readonly shared: MxCore;
  private readonly sharedIO: SharedIO;
  private readonly metrics: Metrics;
  private now = 0;

  constructor(opts: UdpFaceOptions) {
    this.opts = opts;
    this.metrics = opts.metrics;
    this.addresses = new AddressTable(opts.maxAddresses);
    this.cookies = opts.cookies ?? new CookieJar();
    // No transfers part: datagrams carry no files.
    this.cfg = { room: opts.room, metrics: opts.metrics, adminDigest: opts.adminDigest, stats: opts.stats, log: opts.log };
    this.sharedIO = new SharedIO(this);
    this.shared = new MxCore(this.cfg, TRANSPORT, this.sharedIO);
  }

  get memberCount(): number {
    return this.members.size;
  }

  get addressCount(): number {
    return this.addresses.size;
  }

  /** One datagram from address:port. Never throws for anything the peer sent. */
  handle(datagram: Buffer, address: string, port: number, now: number): void {
    this.now = now;
    this.metrics.count('udp.datagramsIn');
    if (port < MIN_PEER_PORT) {
      this.drop();
      return;
    }
    const key = peerKey(address, port);
    const entry = this.addresses.received(key, datagram.length, now);
    const self = this.members.get(key);
    if (self !== undefined) {
      // Any datagram keeps a member alive; a member proved its address when it joined.
      self.lastSeen = now;
      this.addresses.validate(entry);
    }
    const r = decodeDatagram(datagram);
    if (r.kind === 'ignore') {
      this.drop();
      return;
    }
    const target: Target = { entry, address, port };
    if (r.kind === 'error') {
      this.metrics.count('udp.malformed');
      this.emitError(target, r.id, r.code, r.message);
      return;
    }
    this.dispatch(target, self, { type: r.type, id: r.id, payload: r.payload });
  }

  /** Members silent for the timeout leave (USER_LEFT to the others); idle addresses are forgotten. */
  sweep(now: number): void {
    this.now = now;
    const timeout = this.opts.memberTimeoutMs;
    for (const m of [...this.members.values()]) {
      if (!m.core.joined && !m.core.busy) this.forget(m); // a JOIN that failed
      else if (now - m.lastSeen >= timeout) {
        this.metrics.count('udp.memberTimeouts');
        this.remove(m);
      }
    }
    this.addresses.sweep(now, timeout);
  }

  /** Graceful shutdown: members get the shutdown ANNOUNCEMENT and leave; new requests get ERROR 51. */
  drain(): void {
    for (const m of [...this.members.values()]) m.core.drain();
    this.shared.drain();
  }

  /** Every member leaves (the others, TCP members, get USER_LEFT). */
  close(): void {
    for (const m of [...this.members.values()]) this.remove(m);
  }

  // ---- requests ------------------------------------------------------------------------

  private dispatch(target: Target, self: UdpMember | undefined, frame: { type: number; id: number; payload: Buffer }): void {
    const { type, id } = frame;
    this.metrics.count('udp.requests');
    switch (type) {
      case Type.JOIN:
        this.join(target, self, id, frame.payload);
        return;
      case Type.STATS:
      case Type.NAMES:
        // Over UDP their payload is empty or a cookie; the core sees it empty.
        if (frame.payload.length !== 0) {
          if (!isCookie(frame.payload)) {
            this.emitError(target, id, ErrorCode.MALFORMED, 'payload must be empty or a 16-character cookie');
            return;
          }
          if (!this.validate(target, id, frame.payload)) return;
          frame = { type, id, payload: EMPTY };
        }
        break;
      case Type.SAY:
        // A retransmitted SAY (its SAY_OK was lost) is acknowledged again, not relayed twice.
        if (self !== undefined && self.core.joined && self.saidBefore(id)) {
          this.emit(target, Type.SAY_OK, id);
          return;
        }
        break;
      case Type.DATA:
        // The core discards stray DATA silently (it is a stream's upload bytes); here it is a mistake.
        this.emitError(target, id, ErrorCode.UNKNOWN_TYPE, 'DATA is not available over datagrams: use the TCP port');
        return;
    }
    if (self !== undefined) {
      self.core.handle(frame, this.now);
      // LEAVE (or a drop): the core has left the room; the address is an ordinary one again.
      if (!self.core.joined && !self.core.busy) this.forget(self);
      return;
    }
    this.sharedIO.target = target;
    try {
      this.shared.handle(frame, this.now);
    } finally {
      this.sharedIO.target = null;
    }
  }

  /** Checks a cookie from an unvalidated address: true (now validated), or ERROR 15 with a fresh one. */
  private validate(target: Target, id: number, cookie: Buffer | null): boolean {
    if (target.entry.validated) return true;
    if (cookie === null || !this.cookies.check(target.address, target.port, cookie, this.now)) {
      this.sendCookie(target, id);
      return false;
    }
    this.addresses.validate(target.entry);
    return true;
  }

  private join(target: Target, self: UdpMember | undefined, id: number, payload: Buffer): void {
    const { name, cookie } = splitUdpJoin(payload);
    if (cookie !== null && !isCookie(cookie)) {
      this.emitError(target, id, ErrorCode.MALFORMED, 'after the 0x00, a JOIN carries exactly a 16-character cookie');
      return;
    }
    if (self !== undefined) {
      if (self.core.joined) {
        // Its JOIN_OK was lost and the client sent the same JOIN again: answer it again.
        if (id === self.joinId && name.equals(self.joinName)) {
          this.emit(target, Type.JOIN_OK, id, this.namesPayload());
          return;
        }
        self.core.handle({ type: Type.JOIN, id, payload: name }, this.now); // ERROR 13 from the core
        return;
      }
      if (self.core.busy) return; // a retransmission while the room decides: the answer is coming
      this.forget(self); // an earlier JOIN that failed
    }
    // The cookie comes before every other check (DTLS, RFC 6347 §4.2.1): nothing about the
    // name or the room is told to an address that has not proved it is there.
    if (!this.validate(target, id, cookie)) return;
    if (this.members.size >= this.opts.maxMembers) {
      this.emitError(target, id, ErrorCode.BUSY, `too many UDP chat members (limit ${this.opts.maxMembers})`);
      return;
    }
    const m = new UdpMember(this, this.cfg, target.entry.key, target, id, name, this.now);
    this.members.set(m.key, m);
    m.core.handle({ type: Type.JOIN, id, payload: name }, this.now);
    if (m.core.joined) this.metrics.count('udp.joins');
    else if (!m.core.busy) this.forget(m); // refused (invalid name, taken): no member
  }

  private namesPayload(): Buffer {
    // The same list a NAMES gives, cut the same way.
    return encodeNames(this.opts.room.names(), MAX_DATAGRAM_PAYLOAD);
  }

  // ---- members -------------------------------------------------------------------------

  /** Leaves the room (USER_LEFT to the others) and forgets the member. */
  private remove(m: UdpMember): void {
    this.forget(m);
    m.core.close();
  }

  /** @internal The member's table entry only (the room has already let it go, or is about to). */
  forget(m: UdpMember): void {
    if (this.members.get(m.key) === m) this.members.delete(m.key);
  }

  /** @internal A push to a member: members proved their address, so no 3x limit applies. */
  push(m: UdpMember, frame: Buffer): void {
    if (this.members.get(m.key) !== m) return;
    this.transmit(frame, m.target.address, m.target.port);
  }

  // ---- sending -------------------------------------------------------------------------

  private transmit(datagram: Buffer, address: string, port: number): boolean {
    if (!this.opts.send(datagram, address, port)) {
      this.drop();
      return false;
    }
    this.metrics.count('udp.datagramsOut');
    return true;
  }

  private drop(): void {
    this.metrics.count('udp.dropped');
  }

  /**
   * @internal Every frame but ERROR a core (or this face) answers with. Within the
   * destination's 3x allowance as it is; else STATS_OK and NAMES_OK become ERROR 15 with a
   * cookie (those requests may carry one), and anything else is dropped.
   */
  emit(target: Target, type: number, id: number, payload?: Buffer): void {
    const size = HEADER_SIZE + (payload?.length ?? 0);
    if (!this.addresses.trySend(target.entry, size)) {
      if (type === Type.STATS_OK || type === Type.NAMES_OK) this.sendCookie(target, id);
      else this.drop();
      return;
    }
    const out = Buffer.allocUnsafe(size);
    writeFrame(out, 0, type, id, payload);
    this.transmit(out, target.address, target.port);
  }

  /** ERROR 15 with a cookie for this address: with its text when the allowance has room, else bare. */
  private sendCookie(target: Target, id: number): void {
    const { entry } = target;
    if (!this.addresses.allowError(entry, this.now)) {
      this.drop();
      return;
    }
    const cookie = this.cookies.issue(target.address, target.port, this.now);
    const room = this.addresses.allowance(entry) - HEADER_SIZE;
    const withText = encodeCookieError(cookie, true);
    const payload = withText.length <= room ? withText : encodeCookieError(cookie, false);
    if (!this.addresses.trySend(entry, HEADER_SIZE + payload.length)) {
      this.drop();
      return;
    }
    this.metrics.count('udp.cookiesSent');
    const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
    writeFrame(out, 0, Type.ERROR, id, payload);
    this.transmit(out, target.address, target.port);
  }

  /**
   * @internal An ERROR (at most MAX_ERRORS_PER_WINDOW per address per window), its message cut
   * to the allowance at a character boundary; the code always fits, or nothing is sent.
   */
  emitError(target: Target, id: number, code: number, message: string): void {
    const { entry } = target;
    this.metrics.count('udp.errors');
    if (!this.addresses.allowError(entry, this.now)) {
      this.drop();
      return;
    }
    const room = this.addresses.allowance(entry) - HEADER_SIZE - 2;
    if (room < 0) {
      this.drop();
      return;
    }
    let payload = encodeError(code, message);
    if (payload.length - 2 > room) payload = payload.subarray(0, 2 + utf8Prefix(payload.subarray(2), room));
    const size = HEADER_SIZE + payload.length;
    if (!this.addresses.trySend(entry, size)) {
      this.drop();
      return;
    }
    const out = Buffer.allocUnsafe(size);
    writeFrame(out, 0, Type.ERROR, id, payload);
    this.transmit(out, target.address, target.port);
  }
}

export function peerKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The longest prefix of `utf8` of at most `max` bytes that ends on a character boundary. */
export function utf8Prefix(utf8: Buffer, max: number): number {
  if (utf8.length <= max) return utf8.length;
  let n = max;
  // Step back over continuation bytes (10xxxxxx) so no character is cut in half.
  while (n > 0 && (utf8[n]! & 0xc0) === 0x80) n--;
  return n;
}
