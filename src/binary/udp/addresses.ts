// Per-address accounting for the UDP face: the anti-amplification rule of RFC 9000 §8.1 (until an
// address is validated, we send it at most 3x the bytes it sent us), validation itself, and a cap
// on the ERROR replies one address can draw. Pure: time comes in as an argument.
// Bounded: a Map in least-recently-seen order (every datagram moves its entry to the end), so the
// oldest entry is evicted first and idle ones are swept from the front. Forgetting an entry is safe:
// its successor starts at 0 in / 0 out, and 3x holds for every entry's lifetime, hence overall.

/** RFC 9000 §8.1: "an endpoint MUST limit the amount of data it sends to the unvalidated address to three times the amount of data received from that address". */
export const AMPLIFICATION_FACTOR = 3;
export const DEFAULT_MAX_ADDRESSES = 16_384;
/** ERROR replies per address per window: a peer that answers errors with errors cannot loop us. */
export const MAX_ERRORS_PER_WINDOW = 10;
export const ERROR_WINDOW_MS = 1000;

export interface AddressEntry {
  readonly key: string;
  bytesIn: number;
  bytesOut: number;
  /** Proved it receives our datagrams (a valid cookie): no amplification limit. */
  validated: boolean;
  lastSeen: number;
  errorWindowStart: number;
  errorsInWindow: number;
}

export class AddressTable {
  private readonly entries = new Map<string, AddressEntry>();
  private readonly maxEntries: number;
  /** Entries evicted to stay within maxEntries (for metrics and tests). */
  evicted = 0;

  constructor(maxEntries = DEFAULT_MAX_ADDRESSES) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): AddressEntry | undefined {
    return this.entries.get(key);
  }

  /** Accounts a datagram of `bytes` from `key`; the entry becomes the most recently seen. */
  received(key: string, bytes: number, now: number): AddressEntry {
    let e = this.entries.get(key);
    if (e !== undefined) {
      this.entries.delete(key);
    } else {
      if (this.entries.size >= this.maxEntries) this.evictOldest();
      e = { key, bytesIn: 0, bytesOut: 0, validated: false, lastSeen: now, errorWindowStart: now, errorsInWindow: 0 };
    }
    this.entries.set(key, e);
    e.bytesIn += bytes;
    e.lastSeen = now;
    return e;
  }

  /** Bytes we may still send to this address (Infinity once validated). */
  allowance(e: AddressEntry): number {
    return e.validated ? Infinity : AMPLIFICATION_FACTOR * e.bytesIn - e.bytesOut;
  }

  /** Accounts `bytes` about to be sent; false (nothing accounted) when that would break the 3x rule. */
  trySend(e: AddressEntry, bytes: number): boolean {
    if (!e.validated && e.bytesOut + bytes > AMPLIFICATION_FACTOR * e.bytesIn) return false;
    e.bytesOut += bytes;
    return true;
  }

  validate(e: AddressEntry): void {
    e.validated = true;
  }

  /** Takes one ERROR reply from the address's window; false when it has had its share. */
  allowError(e: AddressEntry, now: number): boolean {
    if (now - e.errorWindowStart >= ERROR_WINDOW_MS) {
      e.errorWindowStart = now;
      e.errorsInWindow = 0;
    }
    if (e.errorsInWindow >= MAX_ERRORS_PER_WINDOW) return false;
    e.errorsInWindow++;
    return true;
  }

  /** Forgets entries not seen for idleMs (they are at the front: least recently seen first). */
  sweep(now: number, idleMs: number): void {
    for (const e of this.entries.values()) {
      if (now - e.lastSeen < idleMs) break;
      this.entries.delete(e.key);
    }
  }

  private evictOldest(): void {
    const oldest = this.entries.keys().next();
    if (oldest.done === true) return;
    this.entries.delete(oldest.value);
    this.evicted++;
  }
}
