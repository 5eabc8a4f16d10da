// Payload codecs: every round trip, and malformed inputs answer WireError(MALFORMED).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WireError } from '../../src/wire/frame.js';
import { ErrorCode } from '../../src/wire/protocol.js';
import * as P from '../../src/wire/payloads.js';

const digest = Buffer.alloc(32, 0xab);
const isMalformed = (e: unknown): boolean => e instanceof WireError && e.code === ErrorCode.MALFORMED;
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('str16 round trip, layout and offset', () => {
  const b = P.encodeStr16('张三');
  assert.equal(b.toString('hex'), '0006' + Buffer.from('张三').toString('hex'));
  const framed = Buffer.concat([Buffer.from([9, 9]), b, Buffer.from([7])]);
  assert.deepEqual(P.decodeStr16(framed, 2), { value: '张三', next: 10 });
  assert.deepEqual(P.decodeStr16(hex('0000'), 0), { value: '', next: 2 });
  assert.throws(() => P.decodeStr16(hex('00'), 0), isMalformed);
  assert.throws(() => P.decodeStr16(hex('000361'), 0), isMalformed);
  assert.throws(() => P.decodeStr16(hex('0001ff'), 0), isMalformed, 'invalid UTF-8');
  assert.throws(() => P.encodeStr16('x'.repeat(0x10000)), isMalformed, 'too long for u16');
});

test('names (JOIN_OK/NAMES_OK) round trip and layout', () => {
  const names = ['alice', '张三', 'Bob-1.x'];
  assert.deepEqual(P.decodeNames(P.encodeNames(names)), names);
  assert.equal(P.encodeNames(['a', 'bc']).toString('hex'), '0002' + '000161' + '00026263');
  assert.deepEqual(P.decodeNames(hex('0000')), []);
  assert.throws(() => P.decodeNames(hex('')), isMalformed);
  assert.throws(() => P.decodeNames(hex('0002 000161')), isMalformed, 'count larger than entries');
  assert.throws(() => P.decodeNames(hex('0001 000161 00')), isMalformed, 'trailing bytes');
});

test('error round trip and layout', () => {
  assert.equal(P.encodeError(11, 'taken').toString('hex'), '000b' + Buffer.from('taken').toString('hex'));
  assert.deepEqual(P.decodeError(P.encodeError(50, 'boom ü')), { code: 50, message: 'boom ü' });
  assert.deepEqual(P.decodeError(hex('0003')), { code: 3, message: '' });
  assert.throws(() => P.decodeError(hex('00')), isMalformed);
  assert.throws(() => P.decodeError(hex('0004 c3')), isMalformed, 'truncated UTF-8');
});

test('message and announce round trip', () => {
  assert.deepEqual(P.decodeMessage(P.encodeMessage('张三', 'hi there 👋')), { from: '张三', text: 'hi there 👋' });
  assert.deepEqual(P.decodeMessage(P.encodeMessage('a', '')), { from: 'a', text: '' });
  assert.deepEqual(P.decodeAnnounce(P.encodeAnnounce('s3cret', 'maintenance')), { token: 's3cret', text: 'maintenance' });
  assert.throws(() => P.decodeMessage(hex('00')), isMalformed);
  assert.throws(() => P.decodeMessage(hex('0005 6162')), isMalformed);
  assert.throws(() => P.decodeAnnounce(hex('0001 61 ff')), isMalformed, 'invalid UTF-8 text');
});

test('put round trip, layout and malformed', () => {
  const p = P.encodePut(2 ** 40 + 5, digest, 'a.txt');
  assert.equal(p.subarray(0, 8).toString('hex'), '0000010000000005');
  assert.deepEqual(P.decodePut(p), { size: 2 ** 40 + 5, sha256: digest, name: 'a.txt' });
  assert.deepEqual(P.decodePut(P.encodePut(Number.MAX_SAFE_INTEGER, digest, '')).size, Number.MAX_SAFE_INTEGER);
  assert.throws(() => P.decodePut(Buffer.alloc(39)), isMalformed, 'short');
  const huge = Buffer.concat([hex('0020000000000000'), digest]);
  assert.throws(() => P.decodePut(huge), isMalformed, 'above 2^53-1');
  assert.throws(() => P.encodePut(-1, digest, 'x'), isMalformed);
  assert.throws(() => P.encodePut(1.5, digest, 'x'), isMalformed);
  assert.throws(() => P.encodePut(1, Buffer.alloc(31), 'x'), isMalformed);
});

test('file info round trip and malformed', () => {
  assert.deepEqual(P.decodeFileInfo(P.encodeFileInfo(123, digest)), { size: 123, sha256: digest });
  assert.throws(() => P.decodeFileInfo(Buffer.alloc(39)), isMalformed, 'short');
  assert.throws(() => P.decodeFileInfo(Buffer.alloc(41)), isMalformed, 'long');
});

test('get round trip and malformed', () => {
  assert.deepEqual(P.decodeGet(P.encodeGet(7, 'файл.bin')), { offset: 7, name: 'файл.bin' });
  assert.equal(P.encodeGet(1, 'a').toString('hex'), '000000000000000161');
  assert.throws(() => P.decodeGet(Buffer.alloc(7)), isMalformed);
  assert.throws(() => P.decodeGet(hex('ffffffffffffffff 61')), isMalformed);
});

test('list round trip, layout and malformed', () => {
  const entries = [{ size: 0, name: 'empty' }, { size: 2 ** 33, name: '张三.txt' }];
  assert.deepEqual(P.decodeList(P.encodeList(entries)), entries);
  assert.equal(P.encodeList([{ size: 1, name: 'a' }]).toString('hex'), '00000001' + '0000000000000001' + '0001' + '61');
  assert.deepEqual(P.decodeList(hex('00000000')), []);
  assert.throws(() => P.decodeList(hex('000000')), isMalformed);
  assert.throws(() => P.decodeList(hex('ffffffff')), isMalformed, 'absurd count');
  assert.throws(() => P.decodeList(hex('00000001 0000000000000001 0002 61')), isMalformed, 'short name');
  assert.throws(() => P.decodeList(hex('00000001 0000000000000001 0001 61 00')), isMalformed, 'trailing');
});

test('decodeText: UTF-8 or malformed', () => {
  assert.equal(P.decodeText(Buffer.from('plain ascii')), 'plain ascii');
  assert.equal(P.decodeText(Buffer.from('ünïcode 张')), 'ünïcode 张');
  assert.equal(P.decodeText(Buffer.alloc(0)), '');
  for (const bad of ['ff', 'c0af', 'eda080', 'e282']) assert.throws(() => P.decodeText(hex(bad)), isMalformed, bad);
});

test('property: decoders never throw anything but WireError(MALFORMED) on random bytes', () => {
  const decoders: ((p: Buffer) => unknown)[] = [
    P.decodeNames, P.decodeError, P.decodeMessage, P.decodeAnnounce, P.decodePut, P.decodeFileInfo, P.decodeGet, P.decodeList, P.decodeText,
  ];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (a) => {
      const p = Buffer.from(a);
      for (const d of decoders) {
        try {
          d(p);
        } catch (e) {
          if (!isMalformed(e)) throw e;
        }
      }
    }),
    { numRuns: 500 },
  );
});

test('property: string round trips for arbitrary Unicode', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }), (a, b) => {
      assert.deepEqual(P.decodeMessage(P.encodeMessage(a, b)), { from: a, text: b });
      assert.deepEqual(P.decodeNames(P.encodeNames([a, b])), [a, b]);
    }),
  );
});

test('encodeNames / encodeList with a byte limit keep the first items that fit and count them', () => {
  const names = ['ada', 'bob', '张三', 'dora'];
  const full = P.encodeNames(names);
  assert.deepEqual(P.decodeNames(P.encodeNames(names, full.length)), names);
  const cut = P.encodeNames(names, full.length - 1);
  assert.deepEqual(P.decodeNames(cut), ['ada', 'bob', '张三']);
  assert.ok(cut.length <= full.length - 1);
  assert.deepEqual(P.decodeNames(P.encodeNames(names, 2)), []);
  const entries = [{ size: 1, name: 'a' }, { size: 2, name: 'bb' }];
  const list = P.encodeList(entries);
  assert.deepEqual(P.decodeList(P.encodeList(entries, list.length - 1)), [{ size: 1, name: 'a' }]);
});
