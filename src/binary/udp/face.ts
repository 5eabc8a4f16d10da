// MX/1 over UDP, sans-IO: datagrams (with their source and the time) in, datagrams out through
// one `send` callback. No socket here: the driver (server.ts) owns the dgram socket and the timer.
// Every request is answered from this datagram alone plus three small tables: per-address
// accounting (addresses.ts), the members (keyed by address:port) and the room they share with TCP.
// Rules (docs/protocol.md §11): nothing sent to an unvalidated address exceeds 3x what it sent
// us; only a member (validated by a cookie when it joined) ever receives pushes.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Metrics } from '../../loop/metrics.js';
import { WireError, writeFrame } from '../../wire/frame.js';
import { decodeStr16, decodeText, encodeError, encodeNames } from '../../wire/payloads.js';
import { ErrorCode, HEADER_SIZE, MAX_SAY_BYTES, Type } from '../../wire/protocol.js';
import { MAX_DATAGRAM_PAYLOAD, decodeDatagram, encodeCookieError, isCookie, splitUdpJoin } from '../../wire/udp.js';
import { validateChatName } from '../names.js';
import { AddressTable, type AddressEntry } from './addresses.js';
import { CookieJar } from './cookie.js';
import type { ChatSink, Member, Push, Room } from './room-port.js';

/** Ids of a member's last SAYs: a retransmitted SAY is acknowledged, not relayed twice. */
export const SAY_IDS_REMEMBERED = 32;
/** Source ports below this (echo, chargen, DNS, NTP...) are never answered: no loops with those services. */
export const MIN_PEER_PORT = 1024;

/** The requests MX/1 over UDP refuses, with a pointer to TCP. */
const TCP_ONLY: ReadonlyMap<number, string> = new Map([
  [Type.AUTH, 'AUTH'],
  [Type.PUT, 'PUT'],
  [Type.GET, 'GET'],
  [Type.LIST, 'LIST'],
  [Type.DATA, 'DATA'],
]);

export interface UdpFaceOptions {
  room: Room;
  metrics: Metrics;
  /** SHA-256 of the admin token, or null when announcements are disabled. */
  adminDigest: Buffer | null;
  /** The STATS object (the same as over TCP); cut to fit a datagram when needed. */
  stats(): Record<string, unknown>;
  memberTimeoutMs: number;
  /** UDP members at most; a JOIN beyond is ERROR 51. */
  maxMembers: number;
  maxAddresses?: number;
  cookies?: CookieJar;
  /** Hands a datagram to the socket; false when it was not queued (the send queue is full). */
  send(datagram: Buffer, address: string, port: number): boolean;
  log(line: string): void;
}

/** A UDP peer in the room: its address is its identity, its datagrams its only sign of life. */
class UdpMember implements ChatSink {
  member: Member | null = null;
  lastSeen: number;
  /** The JOIN that made it a member: its retransmission is answered JOIN_OK again. */
  readonly joinId: number;
  readonly joinName: Buffer;
  private readonly sayIds: number[] = [];

  constructor(
    private readonly face: UdpFace,
    readonly key: string,
    readonly address: string,
    readonly port: number,
    joinId: number,
    joinName: Buffer,
    now: number,
  ) {
    this.joinId = joinId;
    this.joinName = Buffer.from(joinName);
    this.lastSeen = now;
  }

  deliver(push: Push): void {
    this.face.push(this, push.frame);
  }

  backlog(): number {
    return 0;
  }

  dropped(): void {
    this.face.forget(this);
  }

  /** True when this SAY id was handled before (and records it otherwise). */
  seenSay(id: number): boolean {
    if (this.sayIds.includes(id)) return true;
    if (this.sayIds.length === SAY_IDS_REMEMBERED) this.sayIds.shift();
    this.sayIds.push(id);
    return false;
  }
}

export class UdpFace {
  private readonly opts: UdpFaceOptions;
  private readonly addresses: AddressTable;
  private readonly cookies: CookieJar;
  private readonly members = new Map<string, UdpMember>();
  private readonly metrics: Metrics;
  private now = 0;

  constructor(opts: UdpFaceOptions) {
    this.opts = opts;
    this.metrics = opts.metrics;
    this.addresses = new AddressTable(opts.maxAddresses);
    this.cookies = opts.cookies ?? new CookieJar();
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
    if (r.kind === 'error') {
      this.metrics.count('udp.malformed');
      this.sendError(entry, address, port, r.id, r.code, r.message);
      return;
    }
    try {
      this.dispatch(entry, address, port, self, r.type, r.id, r.payload);
    } catch (err) {
      if (!(err instanceof WireError)) {
        this.opts.log(`udp: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        this.sendError(entry, address, port, r.id, ErrorCode.INTERNAL, 'internal error');
        return;
      }
      this.sendError(entry, address, port, r.id, err.code, err.message);
    }
  }

  /** Members silent for the timeout leave (USER_LEFT to the others); idle addresses are forgotten. */
  sweep(now: number): void {
    this.now = now;
    const timeout = this.opts.memberTimeoutMs;
    for (const m of [...this.members.values()]) {
      if (now - m.lastSeen >= timeout) {
        this.metrics.count('udp.memberTimeouts');
        this.remove(m);
      }
    }
    this.addresses.sweep(now, timeout);
  }

  /** Every member leaves (the others, TCP members, get USER_LEFT). */
  close(): void {
    for (const m of [...this.members.values()]) this.remove(m);
  }

  // ---- requests ------------------------------------------------------------------------

  private dispatch(entry: AddressEntry, address: string, port: number, self: UdpMember | undefined, type: number, id: number, payload: Buffer): void {
    this.metrics.count('udp.requests');
    switch (type) {
      case Type.PING:
        // Same size as the request: always within 3x.
        this.reply(entry, address, port, Type.PING_OK, id, payload, false);
        return;
      case Type.STATS:
        if (!this.cookieOk(entry, address, port, id, payload)) return;
        this.reply(entry, address, port, Type.STATS_OK, id, this.statsPayload(), true);
        return;
      case Type.NAMES:
        if (!this.cookieOk(entry, address, port, id, payload)) return;
        this.reply(entry, address, port, Type.NAMES_OK, id, encodeNames(this.opts.room.names(), MAX_DATAGRAM_PAYLOAD), true);
        return;
      case Type.JOIN:
        this.join(entry, address, port, self, id, payload);
        return;
      case Type.SAY:
        this.say(entry, address, port, self, id, payload);
        return;
      case Type.LEAVE:
        if (payload.length !== 0) throw new WireError(ErrorCode.MALFORMED, `LEAVE takes no payload, got ${payload.length} bytes`);
        if (self === undefined || self.member === null) throw new WireError(ErrorCode.NOT_JOINED, 'not joined');
        this.remove(self);
        this.reply(entry, address, port, Type.LEAVE_OK, id, undefined, false);
        return;
      case Type.ANNOUNCE:
        this.announce(entry, address, port, id, payload);
        return;
      default: {
        const name = TCP_ONLY.get(type);
        if (name !== undefined) throw new WireError(ErrorCode.UNKNOWN_TYPE, `${name} is not available over UDP: use MX/1 over TCP`);
        throw new WireError(ErrorCode.UNKNOWN_TYPE, `unknown frame type 0x${type.toString(16).padStart(2, '0')}`);
      }
    }
  }

  /**
   * STATS and NAMES over UDP take an empty payload or a cookie. A cookie validates the address
   * (its replies are then not limited); a wrong or stale one is answered with a fresh cookie.
   */
  private cookieOk(entry: AddressEntry, address: string, port: number, id: number, payload: Buffer): boolean {
    if (payload.length === 0) return true;
    if (!isCookie(payload)) throw new WireError(ErrorCode.MALFORMED, 'payload must be empty or a 16-character cookie');
    if (!entry.validated) {
      if (!this.cookies.check(address, port, payload, this.now)) {
        this.sendCookie(entry, address, port, id);
        return false;
      }
      this.addresses.validate(entry);
    }
    return true;
  }

  private join(entry: AddressEntry, address: string, port: number, self: UdpMember | undefined, id: number, payload: Buffer): void {
    const { name: nameBytes, cookie } = splitUdpJoin(payload);
    if (cookie !== null && !isCookie(cookie)) throw new WireError(ErrorCode.MALFORMED, 'after the 0x00, a JOIN carries exactly a 16-character cookie');
    if (self !== undefined) {
      if (self.member === null) return; // a retransmission while the room decides: the answer is coming
      // Its JOIN_OK was lost and the client sent the same JOIN again: answer it again.
      if (id === self.joinId && nameBytes.equals(self.joinName)) {
        this.reply(entry, address, port, Type.JOIN_OK, id, encodeNames(this.opts.room.names(), MAX_DATAGRAM_PAYLOAD), false);
        return;
      }
      throw new WireError(ErrorCode.ALREADY_JOINED, `already joined as ${self.member.name}`);
    }
    // The cookie comes before every other check (DTLS, RFC 6347 §4.2.1): nothing about the
    // name or the room is told to an address that has not proved it is there.
    if (!entry.validated) {
      if (cookie === null || !this.cookies.check(address, port, cookie, this.now)) {
        this.sendCookie(entry, address, port, id);
        return;
      }
      this.addresses.validate(entry);
    }
    const key = entry.key;
    if (this.members.size >= this.opts.maxMembers) {
      throw new WireError(ErrorCode.BUSY, `too many UDP chat members (limit ${this.opts.maxMembers})`);
    }
    let name: string;
    try {
      name = validateChatName(decodeText(nameBytes));
    } catch (err) {
      if (err instanceof WireError) throw err;
      throw new WireError(ErrorCode.INVALID_NAME, (err as Error).message);
    }
    const m = new UdpMember(this, key, address, port, id, nameBytes, this.now);
    this.members.set(key, m);
    let answered = false;
    this.opts.room.join(name, m, (result) => {
      if (answered) return;
      answered = true;
      if (!result.ok) {
        if (this.members.get(key) === m) this.members.delete(key);
        this.sendError(entry, address, port, id, result.code, result.message);
        return;
      }
      if (this.members.get(key) !== m) {
        // Forgotten while the room decided (closed): it must not stay in the room.
        this.opts.room.leave(result.member);
        return;
      }
      m.member = result.member;
      this.metrics.count('udp.joins');
      this.reply(entry, address, port, Type.JOIN_OK, id, encodeNames(result.names, MAX_DATAGRAM_PAYLOAD), false);
    });
  }

  private say(entry: AddressEntry, address: string, port: number, self: UdpMember | undefined, id: number, payload: Buffer): void {
    if (self === undefined || self.member === null) throw new WireError(ErrorCode.NOT_JOINED, 'join before you SAY');
    if (payload.length === 0 || payload.length > MAX_SAY_BYTES) {
      throw new WireError(ErrorCode.MALFORMED, `SAY text must be 1..${MAX_SAY_BYTES} bytes, got ${payload.length}`);
    }
    decodeText(payload); // validates UTF-8; the bytes themselves are forwarded
    // A retransmitted SAY (its SAY_OK was lost) is acknowledged again, not relayed twice.
    if (!self.seenSay(id)) {
      this.metrics.count('udp.messages');
      this.opts.room.say(self.member, payload);
    }
    this.reply(entry, address, port, Type.SAY_OK, id, undefined, false);
  }

  private announce(entry: AddressEntry, address: string, port: number, id: number, payload: Buffer): void {
    // The same checks in the same order as over TCP (protocol.md §3).
    const { value: token, next } = decodeStr16(payload, 0);
    const expected = this.opts.adminDigest;
    const given = createHash('sha256').update(token, 'utf8').digest();
    if (expected === null || !timingSafeEqual(given, expected)) {
      throw new WireError(ErrorCode.FORBIDDEN, expected === null ? 'announcements are disabled (no admin token configured)' : 'bad admin token');
    }
    const bytes = payload.length - next;
    if (bytes === 0 || bytes > MAX_SAY_BYTES) {
      throw new WireError(ErrorCode.MALFORMED, `ANNOUNCE text must be 1..${MAX_SAY_BYTES} bytes, got ${bytes}`);
    }
    this.opts.room.announce(decodeText(payload.subarray(next)));
    this.reply(entry, address, port, Type.ANNOUNCE_OK, id, undefined, false);
  }

  /** STATS_OK's JSON; in the unlikely case it outgrows a datagram, its small fixed part. */
  private statsPayload(): Buffer {
    const stats = this.opts.stats();
    const full = Buffer.from(JSON.stringify(stats), 'utf8');
    if (full.length <= MAX_DATAGRAM_PAYLOAD) return full;
    const { uptimeSeconds, chatUsers, limits } = stats;
    return Buffer.from(JSON.stringify({ truncated: true, uptimeSeconds, chatUsers, limits }), 'utf8');
  }

  // ---- members -------------------------------------------------------------------------

  /** Leaves the room (USER_LEFT to the others) and forgets the member. */
  private remove(m: UdpMember): void {
    this.forget(m);
    if (m.member !== null) this.opts.room.leave(m.member);
  }

  /** @internal The member's table entry only (the room has already let it go, or is about to). */
  forget(m: UdpMember): void {
    if (this.members.get(m.key) === m) this.members.delete(m.key);
  }

  /** @internal A push to a member: members proved their address, so no 3x limit applies. */
  push(m: UdpMember, frame: Buffer): void {
    if (this.members.get(m.key) !== m) return;
    this.transmit(frame, m.address, m.port);
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
   * A reply within the address's allowance. One that does not fit is replaced by ERROR 15 with a
   * cookie when `cookieInstead` (the request may carry one: STATS, NAMES), else dropped.
   */
  private reply(entry: AddressEntry, address: string, port: number, type: number, id: number, payload: Buffer | undefined, cookieInstead: boolean): void {
    const size = HEADER_SIZE + (payload?.length ?? 0);
    if (!this.addresses.trySend(entry, size)) {
      if (cookieInstead) this.sendCookie(entry, address, port, id);
      else this.drop();
      return;
    }
    const out = Buffer.allocUnsafe(size);
    writeFrame(out, 0, type, id, payload);
    this.transmit(out, address, port);
  }

  /** ERROR 15 with a cookie for this address: with its text when the allowance has room, else bare. */
  private sendCookie(entry: AddressEntry, address: string, port: number, id: number): void {
    if (!this.addresses.allowError(entry, this.now)) {
      this.drop();
      return;
    }
    const cookie = this.cookies.issue(address, port, this.now);
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
    this.transmit(out, address, port);
  }

  /** An ERROR whose message is cut to the address's allowance (the code always fits, or nothing is sent). */
  private sendError(entry: AddressEntry, address: string, port: number, id: number, code: number, message: string): void {
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
    this.reply(entry, address, port, Type.ERROR, id, payload, false);
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
