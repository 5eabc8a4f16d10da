// The hub of a chat room shared by several servers through Redis (`--chat-redis URL`). It runs
// where the room's processes meet: the cluster primary, or the one process of a single-process
// server. Owners are its processes (workers), as for LocalArbiter.
//
//   names   one key per name, `muxd:chat:name:<fold key>` = "<server id> <joined at> <name>",
//           taken with SET NX PX (the first server to ask wins) and kept alive by a heartbeat;
//           the names of a server that dies expire with their hold (HOLD_MS).
//   events  one pub/sub channel; every server, the sender's included, applies what comes back
//           from it, so Redis's order is every member's order.
//   roster  each server's copy of the whole room follows the events and is reconciled with the
//           name keys at every heartbeat (a dead server's members are announced as left then).
//
// The lease and roster decisions are pure (leases.ts, roster.ts) and read time only through
// `now`; this file does the Redis I/O around them.
//
// Without Redis (lost, or not reached yet): JOIN is refused with error 52; members already joined
// keep chatting with this server's members, and on reconnection the names are claimed again.
import { randomUUID } from 'node:crypto';
import { createClient } from '@redis/client';
import { foldName } from './names.js';
import { ErrorCode } from '../wire/protocol.js';
import type { ChatHub, HubOutput } from './arbiter.js';
import type { ChatDown, ChatUp } from './events.js';
import { Leases, heartbeatEveryMs, leaseValue, parseLeaseValue, type Lease } from './leases.js';
import { Roster, type ScannedLease } from './roster.js';

/** How long a server's hold on a name outlives its last heartbeat. */
export const DEFAULT_HOLD_MS = 15_000;
const RECONNECT_MAX_MS = 5000;
const UNAVAILABLE = 'chat relay unavailable';

/** PEXPIRE each key still holding our value; returns the 1-based indexes of the keys we lost. */
const REFRESH = `local lost = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v == ARGV[i + 1] then redis.call('PEXPIRE', k, ARGV[1])
  elseif v == false then redis.call('SET', k, ARGV[i + 1], 'PX', ARGV[1])
  else lost[#lost + 1] = i end
end
return lost`;
/** DEL a key only if it still holds our value. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

type Kind = 'joined' | 'left' | 'said' | 'announced';
/** On the channel. `o`/`m`: the owner and member of the server `s` the event came from. */
interface Wire {
  s: string;
  k: Kind;
  name?: string;
  text?: string;
  o?: number;
  m?: number;
  t?: number;
}

export interface RedisHubOptions {
  url: string;
  out: HubOutput;
  log: (line: string) => void;
  holdMs?: number;
  /** Key and channel prefix; several rooms can share one Redis. */
  prefix?: string;
  /** The clock of the lease and roster rules (tests pass a fake one). */
  now?: () => number;
}

type Client = ReturnType<typeof createClient>;

function parseWire(raw: string): Wire | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const w = v as Record<string, unknown>;
  if (typeof w.s !== 'string' || !['joined', 'left', 'said', 'announced'].includes(w.k as string)) return null;
  if (w.k !== 'announced' && (typeof w.name !== 'string' || w.name.length === 0 || w.name.length > 128)) return null;
  if ((w.k === 'said' || w.k === 'announced') && typeof w.text !== 'string') return null;
  for (const n of ['o', 'm', 't'] as const) if (w[n] !== undefined && !Number.isSafeInteger(w[n])) return null;
  return w as unknown as Wire;
}

export class RedisHub implements ChatHub {
  readonly serverId = randomUUID();
  private readonly out: HubOutput;
  private readonly log: (line: string) => void;
  private readonly holdMs: number;
  private readonly namePrefix: string;
  private readonly channel: string;
  private readonly cmd: Client;
  private readonly sub: Client;
  private status: 'connecting' | 'connected' | 'reconnecting' | 'closed' = 'connecting';
  private readonly owners = new Set<number>();
  /** Names this server holds. */
  private readonly held = new Leases();
  /** The whole room. */
  private readonly roster: Roster;
  private readonly now: () => number;
  private readonly heartbeat: NodeJS.Timeout;
  private reconnects = 0;
  private lastError = '';

  constructor(opts: RedisHubOptions) {
    this.out = opts.out;
    this.log = opts.log;
    this.holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
    this.now = opts.now ?? Date.now;
    this.roster = new Roster(this.serverId, this.holdMs, this.now);
    const prefix = opts.prefix ?? 'muxd:chat:';
    this.namePrefix = prefix + 'name:';
    this.channel = prefix + 'events';
    const socket = {
      connectTimeout: 2000,
      // Backoff: 100 ms doubling to 5 s, for ever: the relay comes back whenever Redis does.
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 6), RECONNECT_MAX_MS),
    };
    // Commands fail at once while disconnected (a JOIN then answers 52) instead of queueing.
    this.cmd = createClient({ url: opts.url, socket, disableOfflineQueue: true });
    this.sub = this.cmd.duplicate();
    for (const client of [this.cmd, this.sub]) {
      client.on('error', (err: Error) => {
        this.lastError = err.message;
        this.lost();
      });
      client.on('reconnecting', () => this.lost());
      client.on('end', () => this.lost());
      client.on('ready', () => this.maybeConnected());
    }
    void this.cmd.connect().catch((err: Error) => (this.lastError = err.message));
    void this.sub
      .connect()
      .then(() => this.sub.subscribe(this.channel, (message: string) => this.onWire(message)))
      .then(() => this.maybeConnected())
      .catch((err: Error) => (this.lastError = err.message));
    this.heartbeat = setInterval(() => void this.beat(), heartbeatEveryMs(this.holdMs));
    this.heartbeat.unref();
  }

  get size(): number {
    return this.roster.size;
  }

  state(): Record<string, unknown> {
    return {
      mode: 'redis',
      state: this.status,
      server: this.serverId,
      names: this.held.size,
      members: this.roster.size,
      reconnects: this.reconnects,
      ...(this.lastError !== '' && this.status !== 'connected' ? { lastError: this.lastError } : {}),
    };
  }

  attach(owner: number): void {
    if (this.owners.has(owner)) return;
    this.owners.add(owner);
    this.out.send(owner, { c: 'roster', names: this.names() });
  }

  detach(owner: number): void {
    if (!this.owners.delete(owner)) return;
    for (const [key, h] of this.held.ofOwner(owner)) this.release(key, h);
  }

  handle(owner: number, request: ChatUp): void {
    if (!this.owners.has(owner)) this.attach(owner);
    switch (request.c) {
      case 'join':
        void this.join(owner, request.m, request.name);
        return;
      case 'leave': {
        const held = this.held.ofMember(owner, request.m);
        if (held !== undefined) this.release(...held);
        return;
      }
      case 'say': {
        const h = this.held.ofMember(owner, request.m)?.[1];
        if (h === undefined) return;
        this.emit({ s: this.serverId, k: 'said', name: h.name, text: request.text, o: owner, m: request.m });
        return;
      }
      case 'announce':
        this.announce(request.text);
        return;
    }
  }

  announce(text: string): void {
    this.emit({ s: this.serverId, k: 'announced', text });
  }

  async close(): Promise<void> {
    if (this.status === 'closed') return;
    clearInterval(this.heartbeat);
    const connected = this.status === 'connected';
    this.status = 'closed';
    // Give the names back now rather than when their hold expires.
    if (connected) {
      await Promise.allSettled(this.held.all().map(([key, h]) => this.cmd.eval(RELEASE, { keys: [this.namePrefix + key], arguments: [h.value] })));
    }
    for (const client of [this.sub, this.cmd]) {
      try {
        client.destroy();
      } catch {
        // already closed
      }
    }
  }

  // ---- names -----------------------------------------------------------------------------

  private async join(owner: number, m: number, name: string): Promise<void> {
    const refuse = (code: number, message: string): void => this.out.send(owner, { c: 'refused', m, code, message });
    if (this.status !== 'connected') return refuse(ErrorCode.CHAT_RELAY_UNAVAILABLE, UNAVAILABLE);
    const key = foldName(name);
    const redisKey = this.namePrefix + key;
    const joinedAt = this.now();
    const value = leaseValue(this.serverId, joinedAt, name);
    let reply: string | null;
    try {
      reply = (await this.cmd.set(redisKey, value, { condition: 'NX', expiration: { type: 'PX', value: this.holdMs } })) as string | null;
    } catch {
      return refuse(ErrorCode.CHAT_RELAY_UNAVAILABLE, UNAVAILABLE);
    }
    if (reply !== 'OK') return refuse(ErrorCode.NAME_TAKEN, `name ${name} is taken`);
    if (!this.owners.has(owner)) {
      // The worker went away while Redis answered.
      void this.cmd.eval(RELEASE, { keys: [redisKey], arguments: [value] }).catch(() => undefined);
      return;
    }
    const lease: Lease = { owner, m, name, value, confirmed: false };
    this.held.hold(key, lease);
    try {
      await this.cmd.publish(this.channel, JSON.stringify({ s: this.serverId, k: 'joined', name, o: owner, m, t: joinedAt } satisfies Wire));
    } catch {
      // Claimed but not announced: give it back and say so.
      this.held.drop(key, lease);
      void this.cmd.eval(RELEASE, { keys: [redisKey], arguments: [value] }).catch(() => undefined);
      refuse(ErrorCode.CHAT_RELAY_UNAVAILABLE, UNAVAILABLE);
    }
  }

  /** A member of ours leaves (or its worker went away): free the name and tell the room. */
  private release(key: string, h: Lease): void {
    this.held.drop(key, h);
    if (this.status === 'connected') void this.cmd.eval(RELEASE, { keys: [this.namePrefix + key], arguments: [h.value] }).catch(() => undefined);
    // Unreleased, the key simply expires: it is no longer refreshed.
    if (h.confirmed) this.emit({ s: this.serverId, k: 'left', name: h.name, o: h.owner, m: h.m });
  }

  // ---- events ----------------------------------------------------------------------------

  /** Through Redis when connected (its order is everyone's); else to this server's members only. */
  private emit(w: Wire): void {
    if (this.status !== 'connected') return this.apply(w);
    this.cmd.publish(this.channel, JSON.stringify(w)).catch(() => this.apply(w));
  }

  private onWire(raw: string): void {
    const w = parseWire(raw);
    if (w !== null) this.apply(w);
  }

  private apply(w: Wire): void {
    const ours = w.s === this.serverId;
    const origin = ours && w.o !== undefined && w.m !== undefined ? { owner: w.o, m: w.m } : null;
    switch (w.k) {
      case 'joined': {
        const key = foldName(w.name!);
        const known = this.roster.get(key);
        if (known !== undefined && known.server === w.s) return;
        if (known !== undefined) {
          // The name changed hands (its old server died and the hold expired before a reconcile
          // noticed): the old holder leaves first.
          this.roster.remove(key);
          this.broadcast({ c: 'left', name: known.name }, null);
        }
        if (ours) {
          // Our own join, back from the channel; unless its worker went away meanwhile (the name
          // is released then, and the other servers drop it at their next reconcile).
          const h = this.held.get(key);
          if (h === undefined || h.owner !== origin?.owner || h.m !== origin.m) return;
          h.confirmed = true;
        }
        this.roster.add(key, w.name!, w.s, w.t);
        this.broadcast({ c: 'joined', name: w.name! }, origin);
        return;
      }
      case 'left': {
        const key = foldName(w.name!);
        const known = this.roster.get(key);
        if (known === undefined || known.server !== w.s) return;
        this.roster.left(key);
        this.broadcast({ c: 'left', name: w.name! }, origin);
        return;
      }
      case 'said': {
        const known = this.roster.get(foldName(w.name!));
        if (known === undefined || known.server !== w.s) return; // not a member (any more)
        this.broadcast({ c: 'said', name: w.name!, text: w.text! }, origin);
        return;
      }
      case 'announced':
        this.broadcast({ c: 'announced', text: w.text! }, null);
        return;
    }
  }

  private broadcast(event: ChatDown, origin: { owner: number; m: number } | null): void {
    for (const owner of this.owners) this.out.send(owner, origin !== null && owner === origin.owner ? ({ ...event, origin: origin.m } as ChatDown) : event);
  }

  private names(): string[] {
    return this.roster.names();
  }

  // ---- connection ------------------------------------------------------------------------

  private lost(): void {
    if (this.status !== 'connected') return;
    this.status = 'reconnecting';
    this.log(`muxd: chat relay: lost Redis${this.lastError ? ` (${this.lastError})` : ''}; JOIN answers error 52 until it is back`);
  }

  private maybeConnected(): void {
    if (this.status === 'connected' || this.status === 'closed' || !this.cmd.isReady || !this.sub.isReady) return;
    const again = this.status === 'reconnecting';
    this.status = 'connected';
    this.roster.connected();
    if (again) this.reconnects++;
    this.log(`muxd: chat relay: ${again ? 'Redis is back; claiming our names again' : 'connected to Redis'}`);
    void this.beat();
  }

  /**
   * Heartbeat, and the resynchronisation after a reconnection: refresh (or re-take) every name we
   * hold, give up those another server took meanwhile, then reconcile the roster with the keys.
   */
  private beating = false;
  private async beat(): Promise<void> {
    if (this.status !== 'connected' || this.beating) return;
    this.beating = true;
    try {
      const held = this.held.all();
      if (held.length > 0) {
        const lost = (await this.cmd.eval(REFRESH, { keys: held.map(([k]) => this.namePrefix + k), arguments: [String(this.holdMs), ...held.map(([, h]) => h.value)] })) as number[];
        for (const [key, h] of this.held.lost(held, lost)) {
          this.log(`muxd: chat relay: ${h.name} was taken by another server while Redis was away; that member is disconnected`);
          // The owner evicts its member (a 'left' without origin for a name it holds).
          if (this.roster.get(key)?.server === this.serverId) this.roster.remove(key);
          this.broadcast({ c: 'left', name: h.name }, null);
        }
      }
      // A join whose own event was lost while the channel was down: answer it now.
      for (const [key, h] of this.held.confirmUnanswered()) {
        this.roster.add(key, h.name, this.serverId);
        this.broadcast({ c: 'joined', name: h.name }, { owner: h.owner, m: h.m });
      }
      await this.reconcile();
    } catch (err) {
      this.lastError = (err as Error).message;
    } finally {
      this.beating = false;
    }
  }

  /** The roster against the name keys: joins and leaves we missed (a dead server's expiry included). */
  private async reconcile(): Promise<void> {
    const started = this.roster.scanStarted();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = (await this.cmd.sendCommand(['SCAN', cursor, 'MATCH', this.namePrefix + '*', 'COUNT', '500'])) as [string, string[]];
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    const values = keys.length === 0 ? [] : ((await this.cmd.mGet(keys)) as (string | null)[]);
    const leases = new Map<string, ScannedLease>();
    for (const [i, raw] of values.entries()) {
      const lease = raw === null ? null : parseLeaseValue(raw);
      if (lease !== null) leases.set(keys[i]!.slice(this.namePrefix.length), lease);
    }
    for (const change of this.roster.reconcile(leases, started)) this.broadcast(change, null);
  }
}
