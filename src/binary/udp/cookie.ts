// Stateless address validation (DTLS HelloVerifyRequest, RFC 6347 §4.2.1; QUIC Retry, RFC 9000
// §8.1.2; DNS server cookies, RFC 7873 §5.2): the cookie is a MAC of the peer's address, port and a
// coarse time slot under a per-process random key. Only a peer that receives our datagrams at that
// address can echo it, so a valid cookie proves the address; the server keeps no state to issue it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { COOKIE_LENGTH } from '../../wire/udp.js';

/** A cookie is valid in the slot it was issued in and the next one: 60..120 s. */
export const DEFAULT_COOKIE_SLOT_MS = 60_000;

export class CookieJar {
  private readonly key: Buffer;
  private readonly slotMs: number;

  constructor(opts: { key?: Buffer; slotMs?: number } = {}) {
    this.key = opts.key ?? randomBytes(32);
    this.slotMs = opts.slotMs ?? DEFAULT_COOKIE_SLOT_MS;
  }

  /** The cookie for this address:port now: COOKIE_LENGTH lowercase hex characters. */
  issue(address: string, port: number, now: number): string {
    return this.mac(address, port, Math.floor(now / this.slotMs));
  }

  /** True when `cookie` was issued to this address:port in the current or the previous slot. */
  check(address: string, port: number, cookie: Buffer, now: number): boolean {
    if (cookie.length !== COOKIE_LENGTH) return false;
    const slot = Math.floor(now / this.slotMs);
    // Both compared (no early exit), in constant time: the check leaks nothing about the key.
    const current = timingSafeEqual(cookie, Buffer.from(this.mac(address, port, slot), 'latin1'));
    const previous = timingSafeEqual(cookie, Buffer.from(this.mac(address, port, slot - 1), 'latin1'));
    return current || previous;
  }

  private mac(address: string, port: number, slot: number): string {
    // Length-prefixed fields: no two (address, port, slot) triples share an input.
    return createHmac('sha256', this.key)
      .update(`${address.length}:${address}|${port}|${slot}`, 'latin1')
      .digest('hex')
      .slice(0, COOKIE_LENGTH);
  }
}
