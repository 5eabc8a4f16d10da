// The names this server holds in a room shared through Redis, as leases (model: Phoenix
// Presence, Socket.IO's redis adapter): one key per name, taken with SET NX PX <hold>, refreshed
// by a heartbeat every third of the hold, so the names of a server that dies expire with it
// instead of being locked for ever. Pure: redis-hub.ts does the I/O and tells this what Redis
// answered; test/chat/leases.test.ts drives it with tables.

/** A heartbeat every third of the hold: two may be lost before a lease expires. */
export function heartbeatEveryMs(holdMs: number): number {
  return Math.max(100, Math.floor(holdMs / 3));
}

/** A lease as stored under its name's key: "<server id> <taken at, ms> <name>". */
export function leaseValue(server: string, joinedAt: number, name: string): string {
  return `${server} ${joinedAt} ${name}`;
}

/** The lease a key holds, or null for a value that is not one (names may contain spaces). */
export function parseLeaseValue(raw: string): { server: string; joinedAt: number; name: string } | null {
  const [server, at, ...rest] = raw.split(' ');
  const name = rest.join(' ');
  if (!server || !name) return null;
  return { server, joinedAt: Number(at) || 0, name };
}

/** A name held for one member (`m`) of one owner (a worker). */
export interface Lease {
  readonly owner: number;
  readonly m: number;
  readonly name: string;
  /** The value under the key: refreshes and releases touch the key only while it holds this. */
  readonly value: string;
  /** Our 'joined' came back from the channel (the owner has its answer). */
  confirmed: boolean;
}

export class Leases {
  /** fold key -> lease. */
  private readonly byKey = new Map<string, Lease>();
  /** "owner:m" -> fold key. */
  private readonly byMember = new Map<string, string>();

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): Lease | undefined {
    return this.byKey.get(key);
  }

  /** Every lease held, as [fold key, lease]: what a heartbeat refreshes. */
  all(): [string, Lease][] {
    return [...this.byKey];
  }

  ofMember(owner: number, m: number): [string, Lease] | undefined {
    const key = this.byMember.get(`${owner}:${m}`);
    const lease = key === undefined ? undefined : this.byKey.get(key);
    return key === undefined || lease === undefined ? undefined : [key, lease];
  }

  ofOwner(owner: number): [string, Lease][] {
    return this.all().filter(([, lease]) => lease.owner === owner);
  }

  /** SET NX answered OK: the name is ours. */
  hold(key: string, lease: Lease): void {
    this.byKey.set(key, lease);
    this.byMember.set(`${lease.owner}:${lease.m}`, key);
  }

  /** Forgets `lease` if it is still the one held under `key`; says whether it was. */
  drop(key: string, lease: Lease): boolean {
    if (this.byKey.get(key) !== lease) return false;
    this.byKey.delete(key);
    this.byMember.delete(`${lease.owner}:${lease.m}`);
    return true;
  }

  /**
   * A refresh of `sent` (what all() returned when it was sent) came back with the 1-based
   * indexes of the keys another server holds now (taken while ours had expired: Redis was away
   * longer than a hold). Those still held here are forgotten and returned: their members must go.
   */
  lost(sent: readonly [string, Lease][], indexes: readonly number[]): [string, Lease][] {
    const gone: [string, Lease][] = [];
    for (const i of indexes) {
      const entry = sent[i - 1];
      if (entry !== undefined && this.drop(entry[0], entry[1])) gone.push(entry);
    }
    return gone;
  }

  /** Leases whose own 'joined' never came back (the channel was down): answered now, and returned. */
  confirmUnanswered(): [string, Lease][] {
    const answered = this.all().filter(([, lease]) => !lease.confirmed);
    for (const [, lease] of answered) lease.confirmed = true;
    return answered;
  }
}
