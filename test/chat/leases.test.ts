// The Redis relay's lease and roster rules without Redis and without sleeping: a fake clock, and
// for the scenarios a key table with expiry that answers SET NX PX and the heartbeat's refresh
// the way redis-hub.ts's REFRESH script does (test/chat/redis.test.ts runs the real thing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Leases, heartbeatEveryMs, leaseValue, parseLeaseValue, type Lease } from '../../src/chat/leases.js';
import { Roster, type RosterChange, type ScannedLease } from '../../src/chat/roster.js';

const HOLD = 15_000;

function clock(start = 0): { now: () => number; at: (t: number) => void } {
  let t = start;
  return { now: () => t, at: (next: number) => (t = next) };
}

const lease = (owner: number, m: number, name: string, value = `v-${name}`, confirmed = false): Lease => ({ owner, m, name, value, confirmed });
const scanned = (...entries: [string, string, number][]): Map<string, ScannedLease> =>
  new Map(entries.map(([name, server, joinedAt]) => [name.toLowerCase(), { name, server, joinedAt }]));

// ---- lease values and timing ------------------------------------------------------------

test('lease values: "<server> <taken at> <name>" round trip; what is not a lease is null', () => {
  const rows: [string, ReturnType<typeof parseLeaseValue>][] = [
    [leaseValue('srv-1', 1234, 'ada'), { server: 'srv-1', joinedAt: 1234, name: 'ada' }],
    ['srv-1 1234 two words', { server: 'srv-1', joinedAt: 1234, name: 'two words' }],
    ['srv-1 soon ada', { server: 'srv-1', joinedAt: 0, name: 'ada' }],
    ['srv-1 1234', null],
    ['srv-1', null],
    ['', null],
  ];
  for (const [raw, want] of rows) assert.deepEqual(parseLeaseValue(raw), want, JSON.stringify(raw));
});

test('heartbeat: every third of the hold, never more often than every 100 ms', () => {
  for (const [hold, every] of [[15_000, 5000], [3000, 1000], [1000, 333], [300, 100], [10, 100]] as const) {
    assert.equal(heartbeatEveryMs(hold), every, `hold ${hold}`);
  }
});

// ---- the names this server holds ------------------------------------------------------------

test('leases: found by member and by owner; drop forgets only the lease still held under its key', () => {
  const held = new Leases();
  const ada = lease(1, 1, 'ada');
  const bob = lease(1, 2, 'bob');
  const cy = lease(2, 1, 'cy');
  held.hold('ada', ada);
  held.hold('bob', bob);
  held.hold('cy', cy);
  assert.equal(held.size, 3);
  assert.deepEqual(held.ofMember(1, 2), ['bob', bob]);
  assert.equal(held.ofMember(2, 2), undefined);
  assert.deepEqual(held.ofOwner(1), [['ada', ada], ['bob', bob]]);
  assert.equal(held.drop('bob', lease(1, 2, 'bob')), false, 'another lease object under the key');
  assert.equal(held.drop('bob', bob), true);
  assert.equal(held.drop('bob', bob), false, 'twice');
  assert.equal(held.ofMember(1, 2), undefined);
  assert.deepEqual(held.all(), [['ada', ada], ['cy', cy]]);
});

test('leases: a refresh\'s lost indexes (1-based, of what was sent) drop those still held, and only those', () => {
  const held = new Leases();
  const [a, b, c, d] = [lease(1, 1, 'a'), lease(1, 2, 'b'), lease(1, 3, 'c'), lease(1, 4, 'd')];
  for (const l of [a, b, c, d]) held.hold(l.name, l);
  const sent = held.all();
  // While the refresh was away: b left, and c's member left and rejoined under the same name.
  held.drop('b', b);
  held.drop('c', c);
  const c2 = lease(1, 5, 'c');
  held.hold('c', c2);
  assert.deepEqual(held.lost(sent, [2, 3, 4, 9]), [['d', d]]);
  assert.deepEqual(held.all(), [['a', a], ['c', c2]]);
  assert.deepEqual(held.lost(held.all(), []), []);
});

test('leases: joins whose own event never came back are answered once, at the next heartbeat', () => {
  const held = new Leases();
  const a = lease(1, 1, 'a', 'va', true);
  const b = lease(1, 2, 'b');
  const c = lease(2, 1, 'c');
  for (const l of [a, b, c]) held.hold(l.name, l);
  assert.deepEqual(held.confirmUnanswered().map(([k]) => k), ['b', 'c']);
  assert.equal(b.confirmed && c.confirmed, true);
  assert.deepEqual(held.confirmUnanswered(), []);
});

// ---- the roster and its clock ------------------------------------------------------------

test('roster: add takes now as seen time and, unless the lease says otherwise, as join time', () => {
  const c = clock(500);
  const roster = new Roster('me', HOLD, c.now);
  roster.add('ada', 'Ada', 'other', 120);
  c.at(700);
  roster.add('bob', 'Bob', 'me');
  assert.deepEqual(roster.get('ada'), { name: 'Ada', server: 'other', joinedAt: 120, seenAt: 500 });
  assert.deepEqual(roster.get('bob'), { name: 'Bob', server: 'me', joinedAt: 700, seenAt: 700 });
  assert.deepEqual(roster.names(), ['Ada', 'Bob']);
  assert.equal(roster.scanStarted(), 700);
});

test('roster: for one hold after a (re)connection a missing lease removes nobody; then it does', () => {
  // Connected at 100 000 (Redis restarted empty): the other server re-claims its names in its own time.
  const rows: [at: number, changes: RosterChange[]][] = [
    [100_000, []],
    [105_000, []],
    [114_999, []],
    [115_000, [{ c: 'left', name: 'Ada' }]],
  ];
  for (const [at, changes] of rows) {
    const c = clock(0);
    const roster = new Roster('me', HOLD, c.now);
    roster.add('ada', 'Ada', 'other');
    c.at(100_000);
    roster.connected();
    c.at(at);
    assert.deepEqual(roster.reconcile(new Map(), roster.scanStarted()), changes, `scan at ${at}`);
    assert.equal(roster.size, changes.length === 0 ? 1 : 0);
  }
});

test('roster: a scan that began before an event never undoes it', () => {
  const c = clock(0);
  const roster = new Roster('me', HOLD, c.now);
  roster.connected();
  roster.add('dan', 'Dan', 'other');
  c.at(40_000);
  const started = roster.scanStarted();
  // While the scan is away: eve joins (her lease was taken after the scan read the keys) and
  // dan leaves (his lease was still there when the scan read it).
  c.at(40_005);
  roster.add('eve', 'Eve', 'other');
  roster.left('dan');
  assert.deepEqual(roster.reconcile(scanned(['Dan', 'other', 0]), started), []);
  assert.deepEqual(roster.names(), ['Eve']);
  // A scan that begins after the leave and still finds the key: someone holds the name again.
  c.at(45_000);
  assert.deepEqual(roster.reconcile(scanned(['Dan', 'other', 44_000], ['Eve', 'other', 40_004]), roster.scanStarted()), [{ c: 'joined', name: 'Dan' }]);
});

test('roster: names we missed join in the order they were taken; our own names are the leases\' business', () => {
  const c = clock(0);
  const roster = new Roster('me', HOLD, c.now);
  roster.connected();
  roster.add('mine', 'Mine', 'me');
  c.at(20_000);
  const changes = roster.reconcile(scanned(['Zed', 'b', 300], ['Amy', 'a', 900], ['Kim', 'a', 100], ['Self', 'me', 50]), roster.scanStarted());
  assert.deepEqual(changes, [{ c: 'joined', name: 'Kim' }, { c: 'joined', name: 'Zed' }, { c: 'joined', name: 'Amy' }]);
  assert.deepEqual(roster.names(), ['Mine', 'Kim', 'Zed', 'Amy']);
  assert.deepEqual(roster.get('kim'), { name: 'Kim', server: 'a', joinedAt: 100, seenAt: 20_000 });
});

// ---- scenarios: leases that expire and are refreshed, on the fake clock ---------------------------

/** Name keys with expiry, answering as Redis and redis-hub.ts's REFRESH script would. */
class Keys {
  private readonly keys = new Map<string, { value: string; until: number }>();
  constructor(private readonly now: () => number) {}
  private live(key: string): string | null {
    const k = this.keys.get(key);
    if (k === undefined || k.until <= this.now()) {
      this.keys.delete(key);
      return null;
    }
    return k.value;
  }
  setNx(key: string, value: string, px: number): boolean {
    if (this.live(key) !== null) return false;
    this.keys.set(key, { value, until: this.now() + px });
    return true;
  }
  /** PEXPIRE keys still holding our value, re-SET absent ones; the 1-based indexes of the others. */
  refresh(sent: [string, Lease][], px: number): number[] {
    const lost: number[] = [];
    sent.forEach(([key, l], i) => {
      const v = this.live(key);
      if (v === null || v === l.value) this.keys.set(key, { value: l.value, until: this.now() + px });
      else lost.push(i + 1);
    });
    return lost;
  }
  scan(): Map<string, ScannedLease> {
    const out = new Map<string, ScannedLease>();
    for (const key of [...this.keys.keys()]) {
      const v = this.live(key);
      const parsed = v === null ? null : parseLeaseValue(v);
      if (parsed !== null) out.set(key, parsed);
    }
    return out;
  }
  flush(): void {
    this.keys.clear();
  }
}

/** One server's relay state: its leases and its roster, stepped by hand as the hub's heartbeat would. */
class Server {
  readonly held = new Leases();
  readonly roster: Roster;
  readonly told: RosterChange[] = [];
  constructor(
    readonly id: string,
    private readonly keys: Keys,
    private readonly now: () => number,
  ) {
    this.roster = new Roster(id, HOLD, now);
    this.roster.connected();
  }
  join(m: number, name: string): boolean {
    const value = leaseValue(this.id, this.now(), name);
    if (!this.keys.setNx(name, value, HOLD)) return false;
    const l = lease(1, m, name, value, true);
    this.held.hold(name, l);
    this.roster.add(name, name, this.id);
    return true;
  }
  beat(): string[] {
    const sent = this.held.all();
    const lost = this.held.lost(sent, this.keys.refresh(sent, HOLD)).map(([key]) => {
      this.roster.remove(key);
      return key;
    });
    this.told.push(...this.roster.reconcile(this.keys.scan(), this.roster.scanStarted()));
    return lost;
  }
}

test('scenario: heartbeats keep a lease alive for ever; a server that stops beating loses its names one hold later', () => {
  const c = clock(0);
  const keys = new Keys(c.now);
  const a = new Server('a', keys, c.now);
  const b = new Server('b', keys, c.now);
  assert.equal(a.join(1, 'ada'), true);
  assert.equal(b.join(1, 'ada'), false, 'taken');
  const every = heartbeatEveryMs(HOLD);
  let t = 0;
  for (; t <= 10 * HOLD; t += every) {
    c.at(t);
    a.beat();
    b.beat();
  }
  assert.deepEqual(b.told, [{ c: 'joined', name: 'ada' }], 'b learnt ada once and kept her');
  assert.equal(b.join(2, 'ada'), false, 'still taken after ten holds');
  // a dies right after its last beat at t - every: its lease runs out a hold later.
  const lastBeat = t - every;
  for (; t < lastBeat + HOLD; t += every) {
    c.at(t);
    b.beat();
  }
  assert.deepEqual(b.told, [{ c: 'joined', name: 'ada' }], 'not gone while the lease holds');
  c.at(lastBeat + HOLD);
  b.beat();
  assert.deepEqual(b.told.at(-1), { c: 'left', name: 'ada' });
  assert.equal(b.join(2, 'ada'), true, 'the name is free again');
});

test('scenario: Redis restarts empty: our refresh re-takes our names, and a name taken meanwhile is lost', () => {
  const c = clock(0);
  const keys = new Keys(c.now);
  const a = new Server('a', keys, c.now);
  const b = new Server('b', keys, c.now);
  a.join(1, 'ada');
  a.join(2, 'alf');
  c.at(5000);
  b.beat();
  assert.deepEqual(b.roster.names(), ['ada', 'alf']);
  // Redis restarts; b reconnects first and a new member of b takes alf before a is back.
  c.at(6000);
  keys.flush();
  b.roster.connected();
  assert.equal(b.join(1, 'alf'), true, 'Redis forgot alf, so a member of b may take it');
  assert.equal(keys.setNx('alf', leaseValue('a', 6000, 'alf'), HOLD), false, 'and nobody else can now');
  assert.deepEqual(b.beat(), [], 'b keeps what it took');
  assert.deepEqual(b.roster.names(), ['ada', 'alf'], 'within a hold of reconnecting nobody is removed');
  // a comes back: ada is re-taken, alf is lost (its member is disconnected).
  c.at(7000);
  a.roster.connected();
  assert.deepEqual(a.beat(), ['alf']);
  assert.deepEqual(a.held.all().map(([k]) => k), ['ada']);
  assert.deepEqual(a.told, [{ c: 'joined', name: 'alf' }], "a lists b's alf");
  c.at(12_000);
  a.beat();
  b.beat();
  c.at(12_000 + HOLD - 1);
  assert.equal(keys.scan().get('ada')?.server, 'a', 'ada refreshed by a');
  assert.equal(keys.scan().get('alf')?.server, 'b', 'alf refreshed by b');
  c.at(12_000 + HOLD);
  assert.equal(keys.scan().size, 0, 'both expire a hold after their last refresh');
});
