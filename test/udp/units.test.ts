// The pure parts of MX/1 over UDP as vector tables: datagram judgement, the cookie's bytes,
// the cookie MAC, per-address 3x accounting (docs/protocol.md §11).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { writeFrame } from '../../src/wire/frame.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import * as U from '../../src/wire/udp.js';
import { CookieJar } from '../../src/binary/udp/cookie.js';
import { AddressTable, MAX_ERRORS_PER_WINDOW, ERROR_WINDOW_MS } from '../../src/binary/udp/addresses.js';
import { utf8Prefix } from '../../src/binary/udp/face.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
function frame(type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  writeFrame(b, 0, type, id, payload);
  return b;
}

test('decodeDatagram: the table of protocol.md §11.1, in its order', () => {
  const big = Buffer.alloc(U.MAX_DATAGRAM + 1);
  frame(Type.PING, 9, Buffer.alloc(0)).copy(big);
  big.writeUInt32BE(U.MAX_DATAGRAM + 1 - 12, 8);
  const cases: [string, Buffer, { kind: string; id?: number; code?: number }][] = [
    ['empty datagram', hex(''), { kind: 'error', id: 0, code: ErrorCode.MALFORMED }],
    ['one byte, not M', hex('00'), { kind: 'error', id: 0, code: 1 }],
    ['one byte M', hex('4d'), { kind: 'error', id: 0, code: 4 }],
    ['bad magic', hex('4e58 01 01 00000001 00000000'), { kind: 'error', id: 0, code: 1 }],
    ['bad version', hex('4d58 02 01 00000001 00000000'), { kind: 'error', id: 0, code: 1 }],
    ['bad version, short', hex('4d58 02'), { kind: 'error', id: 0, code: 1 }],
    ['short header', hex('4d58 01 01 000000'), { kind: 'error', id: 0, code: 4 }],
    ['reply type ignored', frame(Type.PING_OK, 1), { kind: 'ignore' }],
    ['ERROR type ignored', frame(Type.ERROR, 1, hex('0001')), { kind: 'ignore' }],
    ['push type ignored', frame(Type.MESSAGE, 0), { kind: 'ignore' }],
    ['length over the datagram limit', hex('4d58 01 01 00000007 0000ffd8'), { kind: 'error', id: 7, code: 2 }],
    ['datagram over 65507 bytes', big, { kind: 'error', id: 9, code: 2 }],
    ['length beyond the datagram', hex('4d58 01 01 00000005 00000003 6869'), { kind: 'error', id: 5, code: 4 }],
    ['trailing bytes', hex('4d58 01 01 00000006 00000001 6869'), { kind: 'error', id: 6, code: 4 }],
    ['two frames in one datagram', Buffer.concat([frame(Type.PING, 1), frame(Type.PING, 2)]), { kind: 'error', id: 1, code: 4 }],
    ['well-formed PING', hex('4d58 01 01 00000003 00000002 6869'), { kind: 'frame', id: 3 }],
    ['largest frame', frame(Type.PING, 4, Buffer.alloc(U.MAX_DATAGRAM_PAYLOAD)), { kind: 'frame', id: 4 }],
    ['unknown request type still a frame', frame(0x7e, 8), { kind: 'frame', id: 8 }],
  ];
  for (const [what, d, want] of cases) {
    const r = U.decodeDatagram(d);
    assert.equal(r.kind, want.kind, what);
    if (r.kind === 'error') {
      assert.equal(r.code, want.code, what);
      assert.equal(r.id, want.id, what);
      assert.ok(r.message.length > 0, what);
    }
    if (r.kind === 'frame') assert.equal(r.id, want.id, what);
  }
  const ok = U.decodeDatagram(hex('4d58 01 01 00000003 00000002 6869'));
  assert.ok(ok.kind === 'frame' && ok.type === Type.PING && ok.payload.toString() === 'hi');
});

test('decodeDatagram never throws, whatever the bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const r = U.decodeDatagram(Buffer.from(bytes));
      assert.ok(['frame', 'error', 'ignore'].includes(r.kind));
    }),
  );
});

test('ERROR 15: the exact bytes of §11.2, parsed back by the last 16 bytes', () => {
  const c = '3f9a0c47e21b8d56';
  assert.equal(U.encodeCookieError(c, false).toString('hex'), '000f' + Buffer.from(c).toString('hex'));
  assert.equal(U.encodeCookieError(c, true).toString('hex'), '000f' + Buffer.from('cookie required ' + c).toString('hex'));
  assert.equal(U.encodeCookieError(c, true).length, 34);
  assert.equal(U.encodeCookieError(c, false).length, 18);
  const cases: [string, Buffer, string | null][] = [
    ['bare', hex('000f' + Buffer.from(c).toString('hex')), c],
    ['with text', U.encodeCookieError(c, true), c],
    ['any text before it', Buffer.concat([hex('000f'), Buffer.from('whatever: ' + c)]), c],
    ['other code', hex('000e' + Buffer.from(c).toString('hex')), null],
    ['too short', hex('000f' + Buffer.from(c.slice(1)).toString('hex')), null],
    ['uppercase hex is not a cookie', hex('000f' + Buffer.from(c.toUpperCase()).toString('hex')), null],
    ['not hex', hex('000f' + Buffer.from('zzzzzzzzzzzzzzzz').toString('hex')), null],
  ];
  for (const [what, p, want] of cases) assert.equal(U.cookieFromError(p), want, what);
});

test('UDP JOIN: name, 0x00, cookie; split at the first 0x00', () => {
  const c = '0123456789abcdef';
  assert.equal(U.encodeUdpJoin('ada', null).toString('hex'), '616461');
  assert.equal(U.encodeUdpJoin('ada', c).toString('hex'), '616461' + '00' + Buffer.from(c).toString('hex'));
  const cases: [string, Buffer, string, string | null][] = [
    ['no cookie', hex('616461'), 'ada', null],
    ['cookie', U.encodeUdpJoin('张三', c), '张三', c],
    ['empty after 00', hex('61646100'), 'ada', ''],
    ['two 00', hex('6100620063'), 'a', '620063'],
  ];
  for (const [what, p, name, cookie] of cases) {
    const r = U.splitUdpJoin(p);
    assert.equal(r.name.toString('utf8'), name, what);
    if (cookie === null) assert.equal(r.cookie, null, what);
    else assert.equal(r.cookie!.toString(what === 'two 00' ? 'hex' : 'latin1'), cookie, what);
  }
  assert.equal(U.isCookie(Buffer.from(c)), true);
  assert.equal(U.isCookie(Buffer.from(c + '0')), false);
});

test('cookie: bound to address, port and slot; valid for the current and the previous slot', () => {
  const key = Buffer.alloc(32, 7);
  const jar = new CookieJar({ key, slotMs: 1000 });
  const t = 10_500;
  const c = jar.issue('127.0.0.1', 5000, t);
  assert.match(c, /^[0-9a-f]{16}$/);
  assert.equal(c, new CookieJar({ key, slotMs: 1000 }).issue('127.0.0.1', 5000, t), 'deterministic under one key');
  assert.notEqual(c, new CookieJar({ slotMs: 1000 }).issue('127.0.0.1', 5000, t), 'a random key per process');
  const b = Buffer.from(c, 'latin1');
  const cases: [string, string, number, Buffer, number, boolean][] = [
    ['same slot', '127.0.0.1', 5000, b, t + 400, true],
    ['next slot (previous accepted)', '127.0.0.1', 5000, b, t + 1000, true],
    ['two slots later', '127.0.0.1', 5000, b, t + 2000, false],
    ['earlier slot (not issued yet)', '127.0.0.1', 5000, b, t - 1000, false],
    ['other port', '127.0.0.1', 5001, b, t, false],
    ['other address', '127.0.0.2', 5000, b, t, false],
    ['IPv6 form of the address', '::ffff:127.0.0.1', 5000, b, t, false],
    ['one character changed', '127.0.0.1', 5000, Buffer.from((c[0] === '0' ? '1' : '0') + c.slice(1)), t, false],
    ['wrong length', '127.0.0.1', 5000, b.subarray(0, 15), t, false],
  ];
  for (const [what, addr, port, cookie, now, want] of cases) assert.equal(jar.check(addr, port, cookie, now), want, what);
});

test('address table: 3x until validated, then no limit', () => {
  const t = new AddressTable(4);
  const e = t.received('a:1', 12, 0);
  assert.equal(t.allowance(e), 36);
  const steps: [string, () => boolean, boolean, number][] = [
    ['30 of 36', () => t.trySend(e, 30), true, 6],
    ['7 more is over', () => t.trySend(e, 7), false, 6],
    ['6 more fits exactly', () => t.trySend(e, 6), true, 0],
    ['another 12 in allows 36', () => (t.received('a:1', 12, 1), t.trySend(e, 36)), true, 0],
    ['validated: anything', () => (t.validate(e), t.trySend(e, 1_000_000)), true, Infinity],
  ];
  for (const [what, step, ok, left] of steps) {
    assert.equal(step(), ok, what);
    assert.equal(t.allowance(e), left, what);
  }
});

test('address table: bounded, least recently seen evicted first, idle swept', () => {
  const t = new AddressTable(3);
  t.received('a', 1, 0);
  t.received('b', 1, 1);
  t.received('c', 1, 2);
  t.received('a', 1, 3); // a is now the most recent
  t.received('d', 1, 4); // evicts b
  assert.equal(t.size, 3);
  assert.equal(t.get('b'), undefined);
  assert.equal(t.evicted, 1);
  assert.ok(t.get('a') && t.get('c') && t.get('d'));
  t.sweep(10, 7); // c (seen at 2) and a (3) idle for >= 7; d (4) is not
  assert.deepEqual(['a', 'b', 'c', 'd'].filter((k) => t.get(k) !== undefined), ['d']);
  // A forgotten address starts over at 0 in / 0 out: never more than 3x overall.
  const again = t.received('b', 10, 11);
  assert.equal(t.allowance(again), 30);
});

test('address table: ERROR replies capped per window', () => {
  const t = new AddressTable();
  const e = t.received('x', 12, 0);
  let allowed = 0;
  for (let k = 0; k < 50; k++) if (t.allowError(e, 10)) allowed++;
  assert.equal(allowed, MAX_ERRORS_PER_WINDOW);
  assert.equal(t.allowError(e, 10 + ERROR_WINDOW_MS), true, 'a new window');
});

test('utf8Prefix never cuts a character', () => {
  const s = Buffer.from('ab张三', 'utf8'); // 2 + 3 + 3 bytes
  const cases: [number, number][] = [[0, 0], [1, 1], [2, 2], [3, 2], [4, 2], [5, 5], [7, 5], [8, 8], [100, 8]];
  for (const [max, want] of cases) assert.equal(utf8Prefix(s, max), want, `max ${max}`);
});
