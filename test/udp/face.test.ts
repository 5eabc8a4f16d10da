// The UDP face without sockets: datagrams in, datagrams out through a recorded `send`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Metrics } from '../../src/loop/metrics.js';
import { writeFrame } from '../../src/wire/frame.js';
import { decodeError, decodeMessage, decodeNames, encodeAnnounce } from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { cookieFromError, decodeDatagram, encodeUdpJoin } from '../../src/wire/udp.js';
import { UdpFace } from '../../src/binary/udp/face.js';
import { statsSource } from '../../src/binary/stats.js';
import { LocalRoom, type Member } from '../../src/chat/room.js';
import { RecordingSink } from './room-helpers.js';

interface Sent { to: string; type: number; id: number; payload: Buffer; bytes: number }

function frame(type: number, id: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const b = Buffer.alloc(12 + p.length);
  writeFrame(b, 0, type, id, p);
  return b;
}

function setup(opts: { timeoutMs?: number; maxMembers?: number; admin?: string; stats?: () => Record<string, unknown> } = {}) {
  const room = new LocalRoom(4 * 1024 * 1024);
  const metrics = new Metrics();
  const sent: Sent[] = [];
  const face = new UdpFace({
    room,
    metrics,
    adminDigest: opts.admin === undefined ? null : createHash('sha256').update(opts.admin).digest(),
    stats: statsSource(() => (opts.stats ? opts.stats() : { uptimeSeconds: 1, chatUsers: room.size, filler: 'x'.repeat(500) })),
    memberTimeoutMs: opts.timeoutMs ?? 60_000,
    maxMembers: opts.maxMembers ?? 100,
    send: (d, address, port) => {
      // What leaves must itself be one well-formed frame (types with the high bit are replies).
      assert.ok(d.length >= 12 && d.readUInt32BE(8) === d.length - 12);
      sent.push({ to: `${address}:${port}`, type: d[3]!, id: d.readUInt32BE(4), payload: d.subarray(12), bytes: d.length });
      return true;
    },
    log: () => undefined,
  });
  let now = 1_000_000;
  const from = (addr: string, d: Buffer, at = now): void => {
    const [a, p] = addr.split(':');
    face.handle(d, a!, Number(p), at);
  };
  const to = (addr: string): Sent[] => sent.filter((s) => s.to === addr);
  const clock = { get: () => now, set: (t: number) => (now = t) };
  return { room, metrics, sent, face, from, to, clock };
}

/** A TCP-like member: a recording sink in the room. */
function tcpMember(room: LocalRoom, name: string): { sink: RecordingSink; member: Member } {
  const sink = new RecordingSink();
  let member: Member | null = null;
  room.join(name, sink, (r) => {
    if (r.ok) member = r.member;
  });
  assert.ok(member);
  return { sink, member };
}

/** JOIN without, then with, the cookie; returns the JOIN_OK names. */
function join(s: ReturnType<typeof setup>, addr: string, name: string, id = 1): string[] {
  s.from(addr, frame(Type.JOIN, id, encodeUdpJoin(name, null)));
  const e = s.to(addr).at(-1)!;
  assert.equal(e.type, Type.ERROR);
  const cookie = cookieFromError(e.payload);
  assert.ok(cookie, 'ERROR 15 carries a cookie');
  s.from(addr, frame(Type.JOIN, id, encodeUdpJoin(name, cookie)));
  const ok = s.to(addr).at(-1)!;
  assert.equal(ok.type, Type.JOIN_OK, decodeError(ok.payload).message);
  return decodeNames(ok.payload);
}

test('a spoofed JOIN gets one small ERROR 15 (within 3x) and never a push', () => {
  const s = setup();
  const { member: tcpUser } = tcpMember(s.room, 'tcpuser');
  const victim = '10.0.0.9:4000';
  const j = frame(Type.JOIN, 1, 'ada');
  s.from(victim, j);
  const out = s.to(victim);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.type, Type.ERROR);
  assert.equal(decodeError(out[0]!.payload).code, ErrorCode.COOKIE_REQUIRED);
  assert.ok(out[0]!.bytes <= 3 * j.length, `${out[0]!.bytes} bytes for ${j.length}`);
  // The room never saw it; chat traffic does not reach the victim.
  assert.deepEqual(s.room.names(), ['tcpuser']);
  s.room.say(tcpUser, Buffer.from('hello'));
  s.room.announce('news');
  assert.equal(s.to(victim).length, 1);
  // A forged cookie: another ERROR 15, still no member.
  s.from(victim, frame(Type.JOIN, 2, encodeUdpJoin('ada', '0000000000000000')));
  assert.equal(decodeError(s.to(victim).at(-1)!.payload).code, 15);
  assert.equal(s.face.memberCount, 0);
  const total = s.to(victim).reduce((n, x) => n + x.bytes, 0);
  assert.ok(total <= 3 * (j.length + 12 + 20), `${total} bytes out`);
});

test('cookie round trip: JOIN_OK; UDP and TCP members see each other both ways', () => {
  const s = setup();
  const { sink: tcp, member: bob } = tcpMember(s.room, 'bob');
  const a = '127.0.0.1:40000';
  assert.deepEqual(join(s, a, 'ada'), ['bob', 'ada']);
  assert.deepEqual(tcp.pushes.at(-1), { type: Type.USER_JOINED, payload: 'ada' });
  s.from(a, frame(Type.SAY, 7, 'hi bob'));
  assert.equal(s.to(a).at(-1)!.type, Type.SAY_OK);
  assert.equal(tcp.pushes.at(-1)!.type, Type.MESSAGE);
  s.room.say(bob, Buffer.from('hi ada'));
  const m = s.to(a).at(-1)!;
  assert.equal(m.type, Type.MESSAGE);
  assert.equal(m.id, 0);
  assert.deepEqual(decodeMessage(m.payload), { from: 'bob', text: 'hi ada' });
  // Same name rules and uniqueness as TCP.
  s.from('127.0.0.1:40001', frame(Type.JOIN, 1, 'BOB'));
  const c = cookieFromError(s.to('127.0.0.1:40001').at(-1)!.payload)!;
  s.from('127.0.0.1:40001', frame(Type.JOIN, 1, encodeUdpJoin('BOB', c)));
  assert.equal(decodeError(s.to('127.0.0.1:40001').at(-1)!.payload).code, ErrorCode.NAME_TAKEN);
  s.from('127.0.0.1:40001', frame(Type.JOIN, 2, encodeUdpJoin('has space', c)));
  assert.equal(decodeError(s.to('127.0.0.1:40001').at(-1)!.payload).code, ErrorCode.INVALID_NAME);
  assert.equal(s.face.memberCount, 1);
});

test('retransmissions: JOIN with the same id is JOIN_OK again, a new id is 13; a repeated SAY id is not relayed twice', () => {
  const s = setup();
  const { sink: tcp } = tcpMember(s.room, 'bob');
  const a = '127.0.0.1:40000';
  join(s, a, 'ada', 5);
  s.from(a, frame(Type.JOIN, 5, 'ada'));
  assert.equal(s.to(a).at(-1)!.type, Type.JOIN_OK);
  s.from(a, frame(Type.JOIN, 6, 'ada'));
  assert.equal(decodeError(s.to(a).at(-1)!.payload).code, ErrorCode.ALREADY_JOINED);
  const before = tcp.pushes.length;
  for (let k = 0; k < 3; k++) s.from(a, frame(Type.SAY, 9, 'once'));
  s.from(a, frame(Type.SAY, 10, 'twice'));
  assert.deepEqual(s.to(a).slice(-4).map((x) => x.type), [Type.SAY_OK, Type.SAY_OK, Type.SAY_OK, Type.SAY_OK]);
  assert.equal(tcp.pushes.length - before, 2);
  // Only relayed SAYs are remembered: a refused one, resent, is refused again.
  s.from(a, frame(Type.SAY, 11, Buffer.alloc(5000, 0x61)));
  s.from(a, frame(Type.SAY, 11, Buffer.alloc(5000, 0x61)));
  assert.deepEqual(s.to(a).slice(-2).map((x) => decodeError(x.payload).code), [ErrorCode.MALFORMED, ErrorCode.MALFORMED]);
  // The memory is bounded: after SAY_IDS_REMEMBERED newer SAYs, an old id is relayed again.
  for (let k = 0; k < 40; k++) s.from(a, frame(Type.SAY, 100 + k, 'm'));
  const n = tcp.pushes.length;
  s.from(a, frame(Type.SAY, 9, 'once'));
  assert.equal(tcp.pushes.length, n + 1);
});

test('a silent member leaves after the timeout; any datagram refreshes it', () => {
  const s = setup({ timeoutMs: 10_000 });
  const { sink: tcp } = tcpMember(s.room, 'bob');
  const a = '127.0.0.1:40000';
  const t0 = s.clock.get();
  join(s, a, 'ada');
  s.from(a, frame(Type.PING, 2), t0 + 9_000);
  s.face.sweep(t0 + 15_000);
  assert.equal(s.face.memberCount, 1, 'refreshed at t0+9s');
  s.face.sweep(t0 + 19_000);
  assert.equal(s.face.memberCount, 0);
  assert.deepEqual(tcp.pushes.at(-1), { type: Type.USER_LEFT, payload: 'ada' });
  assert.deepEqual(s.room.names(), ['bob']);
  assert.equal(s.metrics.counters['udp.memberTimeouts'], 1);
});

test('STATS and NAMES: within 3x, else ERROR 15; with the cookie, the full reply', () => {
  const s = setup();
  const a = '127.0.0.1:41000';
  s.from(a, frame(Type.NAMES, 1));
  assert.equal(s.to(a).at(-1)!.type, Type.NAMES_OK, 'an empty room fits');
  s.from(a, frame(Type.STATS, 2));
  const e = s.to(a).at(-1)!;
  assert.equal(decodeError(e.payload).code, ErrorCode.COOKIE_REQUIRED);
  const cookie = cookieFromError(e.payload)!;
  s.from(a, frame(Type.STATS, 3, cookie));
  const r = s.to(a).at(-1)!;
  assert.equal(r.type, Type.STATS_OK);
  assert.equal((JSON.parse(r.payload.toString()) as { uptimeSeconds: number }).uptimeSeconds, 1);
  // Validated now: no cookie needed any more.
  s.from(a, frame(Type.STATS, 4));
  assert.equal(s.to(a).at(-1)!.type, Type.STATS_OK);
  s.from(a, frame(Type.STATS, 5, 'not a cookie'));
  assert.equal(decodeError(s.to(a).at(-1)!.payload).code, ErrorCode.MALFORMED);
  // Everything sent to an address before validation stayed within 3x of what it sent.
  const b = '127.0.0.1:41001';
  for (let k = 0; k < 20; k++) s.from(b, frame(Type.STATS, k + 1));
  const out = s.to(b).reduce((n, x) => n + x.bytes, 0);
  assert.ok(out <= 3 * 20 * 12, `${out}`);
  assert.ok(s.to(b).every((x) => x.type === Type.ERROR));
});

test('STATS_OK that outgrows a datagram is replaced by its fixed part', () => {
  const s = setup({ stats: () => ({ uptimeSeconds: 2, chatUsers: 0, limits: { a: 1 }, huge: 'y'.repeat(70_000) }) });
  const a = '127.0.0.1:41000';
  s.from(a, frame(Type.STATS, 1));
  const cookie = cookieFromError(s.to(a).at(-1)!.payload)!;
  s.from(a, frame(Type.STATS, 2, cookie));
  assert.deepEqual(JSON.parse(s.to(a).at(-1)!.payload.toString()), { truncated: true, uptimeSeconds: 2, chatUsers: 0, limits: { a: 1 } });
});

test('errors: TCP-only requests are 3; messages cut to the 3x allowance; tiny garbage gets nothing', () => {
  const s = setup();
  const a = '127.0.0.1:42000';
  for (const t of [Type.PUT, Type.GET, Type.LIST, Type.DATA, Type.AUTH]) {
    s.from(a, frame(t, 3, Buffer.alloc(60)));
    const e = decodeError(s.to(a).at(-1)!.payload);
    assert.equal(e.code, ErrorCode.UNKNOWN_TYPE);
    assert.match(e.message, /not available over datagrams: use the TCP port/);
  }
  const b = '127.0.0.1:42001';
  s.from(b, frame(Type.LIST, 1)); // 12 bytes in: 36 out at most
  const e = s.to(b).at(-1)!;
  assert.ok(e.bytes <= 36);
  assert.equal(decodeError(e.payload).code, 3);
  const c = '127.0.0.1:42002';
  s.from(c, Buffer.from('hi'));
  assert.equal(s.to(c).length, 0, '2 bytes in allow 6 out: not even an ERROR header');
  s.from(c, Buffer.from('x'.repeat(10)));
  const bad = s.to(c).at(-1)!;
  assert.equal(decodeError(bad.payload).code, ErrorCode.BAD_MAGIC_OR_VERSION);
  assert.ok(bad.bytes <= 36);
  // Never answered: a reply type (loop protection) and a privileged source port.
  s.from('127.0.0.1:42003', frame(Type.ERROR, 1, Buffer.from([0, 1])));
  s.from('127.0.0.1:53', frame(Type.PING, 1, 'x'.repeat(50)));
  assert.equal(s.to('127.0.0.1:42003').length + s.to('127.0.0.1:53').length, 0);
  assert.ok((s.metrics.counters['udp.dropped'] ?? 0) >= 3);
});

test('SAY/LEAVE need a member; ANNOUNCE checks the token; LEAVE sends USER_LEFT', () => {
  const s = setup({ admin: 'secret' });
  const { sink: tcp } = tcpMember(s.room, 'bob');
  const a = '127.0.0.1:43000';
  s.from(a, frame(Type.SAY, 1, 'hi'));
  assert.equal(decodeError(s.to(a).at(-1)!.payload).code, ErrorCode.NOT_JOINED);
  s.from(a, frame(Type.ANNOUNCE, 2, encodeAnnounce('wrong', 'x')));
  assert.equal(decodeError(s.to(a).at(-1)!.payload).code, ErrorCode.FORBIDDEN);
  join(s, a, 'ada', 3);
  s.from(a, frame(Type.ANNOUNCE, 4, encodeAnnounce('secret', 'hello all')));
  assert.equal(s.to(a).at(-2)!.type, Type.ANNOUNCEMENT, 'the joined sender gets it too');
  assert.equal(s.to(a).at(-1)!.type, Type.ANNOUNCE_OK);
  assert.deepEqual(tcp.pushes.at(-1), { type: Type.ANNOUNCEMENT, payload: 'hello all' });
  s.from(a, frame(Type.LEAVE, 5));
  assert.equal(s.to(a).at(-1)!.type, Type.LEAVE_OK);
  assert.deepEqual(tcp.pushes.at(-1), { type: Type.USER_LEFT, payload: 'ada' });
  s.from(a, frame(Type.LEAVE, 5));
  assert.equal(decodeError(s.to(a).at(-1)!.payload).code, ErrorCode.NOT_JOINED);
});

test('the member table is bounded: a JOIN beyond it is ERROR 51', () => {
  const s = setup({ maxMembers: 2 });
  join(s, '127.0.0.1:44000', 'a1');
  join(s, '127.0.0.1:44001', 'a2');
  const x = '127.0.0.1:44002';
  s.from(x, frame(Type.JOIN, 1, 'a3'));
  const c = cookieFromError(s.to(x).at(-1)!.payload)!;
  s.from(x, frame(Type.JOIN, 1, encodeUdpJoin('a3', c)));
  assert.equal(decodeError(s.to(x).at(-1)!.payload).code, ErrorCode.BUSY);
});

test('every reply decodes as one datagram frame', () => {
  const s = setup();
  join(s, '127.0.0.1:45000', 'ada');
  for (const x of s.sent) {
    const d = Buffer.alloc(12 + x.payload.length);
    writeFrame(d, 0, x.type, x.id, x.payload);
    assert.equal(decodeDatagram(d).kind, 'ignore', 'replies are never requests');
  }
});
