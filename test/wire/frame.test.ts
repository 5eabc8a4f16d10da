// FrameDecoder: whole, split at every byte, many per chunk, trailing partials, hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameDecoder, WireError, encodeFrame, encodeHeader, writeFrame, type Frame } from '../../src/wire/frame.js';
import { ErrorCode, HEADER_SIZE, Type } from '../../src/wire/protocol.js';

function bytes(type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat(encodeFrame(type, id, payload));
}

function drain(d: FrameDecoder): Frame[] {
  const out: Frame[] = [];
  for (let f = d.next(); f !== null; f = d.next()) out.push({ type: f.type, id: f.id, payload: Buffer.from(f.payload) });
  return out;
}

test('encodeHeader is !HBBII with magic 0x4D58 and version 1', () => {
  assert.equal(encodeHeader(Type.PING, 0x01020304, 5).toString('hex'), '4d580101' + '01020304' + '00000005');
  assert.equal(encodeHeader(0xff, 0, 0).length, HEADER_SIZE);
});

test('writeFrame lays out the same bytes as encodeFrame, back to back at any offset', () => {
  const out = Buffer.alloc(100, 0xee);
  let at = writeFrame(out, 3, 0x81, 0xdeadbeef, Buffer.from('hello'));
  at = writeFrame(out, at, 0x91, 7);
  assert.equal(at, 3 + 12 + 5 + 12);
  assert.deepEqual(out.subarray(3, at), Buffer.concat([...encodeFrame(0x81, 0xdeadbeef, Buffer.from('hello')), ...encodeFrame(0x91, 7)]));
  assert.equal(out[2], 0xee);
  assert.equal(out[at], 0xee, 'nothing written past the end');
});

test('encodeFrame returns [header, payload] without copying the payload, header only when empty', () => {
  const p = Buffer.from('hello');
  const parts = encodeFrame(Type.PING, 9, p);
  assert.equal(parts.length, 2);
  assert.equal(parts[1], p, 'same Buffer, not a copy');
  assert.equal(encodeFrame(Type.PING, 9).length, 1);
  assert.equal(encodeFrame(Type.PING, 9, Buffer.alloc(0)).length, 1);
  const u8 = new Uint8Array([1, 2, 3]);
  const parts2 = encodeFrame(Type.DATA, 1, u8);
  assert.equal(parts2[1].buffer, u8.buffer, 'Uint8Array wrapped, not copied');
});

const sample = Buffer.concat([
  bytes(Type.PING, 1, Buffer.from('abc')),
  bytes(Type.STATS, 2),
  bytes(Type.SAY, 0xffffffff, Buffer.from('héllo')),
]);
const expected: Frame[] = [
  { type: Type.PING, id: 1, payload: Buffer.from('abc') },
  { type: Type.STATS, id: 2, payload: Buffer.alloc(0) },
  { type: Type.SAY, id: 0xffffffff, payload: Buffer.from('héllo') },
];

test('decoder: several frames in one chunk', () => {
  const d = new FrameDecoder();
  d.push(sample);
  assert.deepEqual(drain(d), expected);
  assert.equal(d.buffered, 0);
});

test('decoder: payload is a view of the chunk when contiguous', () => {
  const d = new FrameDecoder();
  const chunk = bytes(Type.PING, 1, Buffer.from('abcdef'));
  d.push(chunk);
  const f = d.next();
  assert.ok(f);
  assert.equal(f.payload.buffer, chunk.buffer);
});

test('decoder: split at every byte position gives the same frames', () => {
  for (let cut = 0; cut <= sample.length; cut++) {
    const d = new FrameDecoder();
    d.push(sample.subarray(0, cut));
    const got = drain(d);
    d.push(sample.subarray(cut));
    got.push(...drain(d));
    assert.deepEqual(got, expected, `cut at ${cut}`);
  }
});

test('decoder: one byte at a time, incomplete until the last byte of each frame', () => {
  const d = new FrameDecoder();
  const got: Frame[] = [];
  for (let k = 0; k < sample.length; k++) {
    d.push(sample.subarray(k, k + 1));
    got.push(...drain(d));
  }
  assert.deepEqual(got, expected);
});

test('decoder: a trailing partial frame stays buffered', () => {
  const d = new FrameDecoder();
  const partial = bytes(Type.PING, 3, Buffer.from('xyz')).subarray(0, 13);
  d.push(Buffer.concat([bytes(Type.PING, 1), partial]));
  assert.deepEqual(drain(d), [{ type: Type.PING, id: 1, payload: Buffer.alloc(0) }]);
  assert.equal(d.next(), null);
  assert.equal(d.buffered, 1, 'the header was consumed, one payload byte held');
  d.push(Buffer.from('yz'));
  assert.deepEqual(drain(d), [{ type: Type.PING, id: 3, payload: Buffer.from('xyz') }]);
});

test('decoder: bad magic and bad version are error 1, as soon as the header is complete', () => {
  const bad = bytes(Type.PING, 1);
  bad[0] = 0x47; // 'G' as in "GET / HTTP/1.1"
  const d = new FrameDecoder();
  d.push(bad.subarray(0, 11));
  assert.equal(d.next(), null);
  d.push(bad.subarray(11));
  assert.throws(() => d.next(), (e: unknown) => e instanceof WireError && e.code === ErrorCode.BAD_MAGIC_OR_VERSION);
  assert.throws(() => d.next(), WireError, 'stays failed');
  const v = bytes(Type.PING, 1);
  v[2] = 2;
  const d2 = new FrameDecoder();
  d2.push(v);
  assert.throws(() => d2.next(), (e: unknown) => e instanceof WireError && e.code === 1 && /version/.test(e.message));
});

test('decoder: length 0xFFFFFFFF is error 2 right after 12 bytes, nothing buffered', () => {
  const d = new FrameDecoder();
  d.push(encodeHeader(Type.PUT, 1, 0xffffffff));
  assert.throws(() => d.next(), (e: unknown) => e instanceof WireError && e.code === ErrorCode.FRAME_TOO_LARGE);
  assert.equal(d.buffered, 0);
});

test('decoder: the limit is inclusive and configurable', () => {
  const d = new FrameDecoder(4);
  d.push(bytes(Type.PING, 1, Buffer.from('abcd')));
  assert.equal(d.next()?.payload.toString(), 'abcd');
  d.push(encodeHeader(Type.PING, 2, 5));
  assert.throws(() => d.next(), (e: unknown) => e instanceof WireError && e.code === 2);
});

test('property: random frame sequences chunked randomly decode identically', () => {
  const frameArb = fc.record({
    type: fc.integer({ min: 0, max: 255 }),
    id: fc.integer({ min: 0, max: 0xffffffff }),
    payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  }).map((f): Frame => ({ type: f.type, id: f.id, payload: f.payload }));
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (frames, sizes) => {
      const stream = Buffer.concat(frames.map((f) => bytes(f.type, f.id, f.payload)));
      const d = new FrameDecoder();
      const got: Frame[] = [];
      let at = 0;
      let k = 0;
      while (at < stream.length) {
        const n = sizes[k++ % sizes.length];
        d.push(stream.subarray(at, at + n));
        at += n;
        got.push(...drain(d));
      }
      assert.deepEqual(got, frames);
      assert.equal(d.buffered, 0);
    }),
    { numRuns: 200 },
  );
});

test('property: random garbage only ever throws WireError and never buffers an announced payload beyond the limit', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.integer({ min: 1, max: 50 }), (garbage, step) => {
      const max = 64;
      const d = new FrameDecoder(max);
      const buf = Buffer.from(garbage);
      try {
        for (let at = 0; at < buf.length; at += step) {
          d.push(buf.subarray(at, at + step));
          while (d.next() !== null) {
            /* keep decoding */
          }
          // Never more held than one header plus one allowed payload plus the last chunk.
          assert.ok(d.buffered <= HEADER_SIZE + max + step);
        }
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        assert.ok(e.code === 1 || e.code === 2);
        assert.equal(d.buffered, 0);
      }
    }),
    { numRuns: 300 },
  );
});

test('a frame dribbled one byte at a time is held in a bounded number of chunks, and decodes intact', () => {
  const payload = Buffer.alloc(200_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) % 256;
  const bytes = Buffer.concat([...encodeFrame(0x01, 9, payload), ...encodeFrame(0x01, 10, Buffer.from('next'))]);
  const d = new FrameDecoder(1 << 20);
  const frames: Frame[] = [];
  let maxQueued = 0;
  for (let i = 0; i < bytes.length; i++) {
    d.push(bytes.subarray(i, i + 1));
    maxQueued = Math.max(maxQueued, d.queuedChunks);
    for (let f = d.next(); f !== null; f = d.next()) frames.push({ ...f, payload: Buffer.from(f.payload) });
  }
  // 200 KB in 16 KiB blocks: about 13 chunks, not 200,000.
  assert.ok(maxQueued <= 16, `queued ${maxQueued} chunks`);
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0]!.payload, payload);
  assert.equal(frames[1]!.payload.toString(), 'next');
});

test('merging small chunks never changes payload views already handed out', () => {
  const d = new FrameDecoder();
  const first = Buffer.concat(encodeFrame(0x01, 1, Buffer.from('abc')));
  const second = Buffer.concat(encodeFrame(0x01, 2, Buffer.from('xyz')));
  // A partial frame waits, so the following small pieces go to the merge block.
  d.push(first.subarray(0, 5));
  d.push(first.subarray(5));
  const a = d.next();
  d.push(second.subarray(0, 7));
  d.push(second.subarray(7));
  const b = d.next();
  assert.equal(a?.payload.toString(), 'abc');
  assert.equal(b?.payload.toString(), 'xyz');
});
