// The Redis relay's copy of the whole room and the time rules that keep it true, apart from the
// Redis I/O (redis-hub.ts) so that a test drives them with a fake clock and tables (model:
// Phoenix Presence: what a dead node held leaves when its lease is gone, never earlier).
//
// The roster follows the channel's events and is reconciled with the name leases at every
// heartbeat. Three rules make the reconciliation safe against events that cross a scan:
//   - an entry learnt after the scan began is kept (the scan may predate its lease);
//   - a name that left after the scan began is not re-added (the scan may predate its release);
//   - for one hold after a (re)connection nothing is removed: the other servers may not have
//     re-claimed their names yet (a restarted Redis starts empty).

export interface RosterEntry {
  name: string;
  /** The server whose member holds the name. */
  server: string;
  /** When the name was taken (from its lease): the roster's order for names learnt by a scan. */
  joinedAt: number;
  /** When this server learnt of it. */
  seenAt: number;
}

/** A name lease as the scan read it. */
export interface ScannedLease {
  name: string;
  server: string;
  joinedAt: number;
}

/** What a reconciliation changed, in the order the members are told. */
export interface RosterChange {
  c: 'joined' | 'left';
  name: string;
}

export class Roster {
  /** fold key -> entry, in the order learnt. */
  private readonly entries = new Map<string, RosterEntry>();
  /** fold key -> when a 'left' for it was applied. */
  private readonly recentlyLeft = new Map<string, number>();
  private connectedAt = 0;

  constructor(
    /** The self's server id: its own names are never removed or added by a scan (its leases say that). */
    private readonly self: string,
    /** How long a lease outlives its last refresh. */
    private readonly holdMs: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  names(): string[] {
    return Array.from(this.entries.values(), (e) => e.name);
  }

  get(key: string): RosterEntry | undefined {
    return this.entries.get(key);
  }

  /** A join learnt from the channel (or answered by a heartbeat): `joinedAt` defaults to now. */
  add(key: string, name: string, server: string, joinedAt?: number): void {
    const now = this.now();
    this.entries.set(key, { name, server, joinedAt: joinedAt ?? now, seenAt: now });
  }

  /** The name changed hands or was lost: gone, with no memory of a leave. */
  remove(key: string): void {
    this.entries.delete(key);
  }

  /** A 'left' from the channel: gone, and not re-added by a scan that began before now. */
  left(key: string): void {
    this.entries.delete(key);
    this.recentlyLeft.set(key, this.now());
  }

  /** Redis is (back) up: removals wait one hold from now. */
  connected(): void {
    this.connectedAt = this.now();
  }

  /** The time a scan begins: pass it to reconcile() with what the scan read. */
  scanStarted(): number {
    return this.now();
  }

  /**
   * The roster against the leases a scan read (fold key -> lease), the scan having begun at
   * `started`: names whose lease is gone leave, names we missed join (in the order they were
   * taken). Applies the changes and returns them.
   */
  reconcile(leases: ReadonlyMap<string, ScannedLease>, started: number): RosterChange[] {
    const changes: RosterChange[] = [];
    const settled = started - this.connectedAt >= this.holdMs;
    for (const [key, e] of [...this.entries]) {
      if (!settled || leases.has(key) || e.seenAt >= started || e.server === this.self) continue;
      this.entries.delete(key);
      changes.push({ c: 'left', name: e.name });
    }
    const missing = [...leases].filter(([key, e]) => !this.entries.has(key) && e.server !== this.self && (this.recentlyLeft.get(key) ?? 0) < started);
    missing.sort((a, b) => a[1].joinedAt - b[1].joinedAt);
    for (const [key, e] of missing) {
      this.entries.set(key, { ...e, seenAt: started });
      changes.push({ c: 'joined', name: e.name });
    }
    // A hold after a leave its lease is released or expired: no later scan can read it.
    for (const [key, at] of this.recentlyLeft) if (at < started - this.holdMs) this.recentlyLeft.delete(key);
    return changes;
  }
}
