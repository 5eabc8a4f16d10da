// The WebSocket sender (server and client sides), the mask loop and the close-code table; then
// fast-check properties: random frames encoded by the client side decode to the same events
// split anywhere; random and mutated bytes never throw and never make the receiver hold more
// than its limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CLOSE_CODE_TABLE, CloseCode, Opcode, isCloseCodeAllowedOnWire } from '../../src/ws/constants.js';
import { applyMask, unmaskInPlace } from '../../src/ws/mask.js';
import { WsReceiver, type WsEvent } from '../../src/ws/receiver.js';
import {
  ClientFrameEncoder,
  binaryHeader,
  closePayload,
  encodeBinary,
  encodeClose,
  encodePing,
  encodePong,
  fitCloseReason,
  serverFrameHeader,
} from '../../src/ws/sender.js';
import { KEY, hex, pattern } from './build.js';

/** A random source that hands out the given keys in turn (RFC 6455 §5.7's key by default). */
function fixedKeys(...keys: number[][]): (b: Uint8Array) => void {
  let i = 0;
  const all = keys.length > 0 ? keys : [[...KEY]];
  return (b) => {
    b.set(all[i++ % all.length]!);
  };
}

/** A seeded generator (mulberry32), so a fast-check counterexample replays exactly. */
function seeded(seed: number): (b: Uint8Array) => void {
  let a = seed >>> 0;
  return (b) => {
    for (let i = 0; i < b.length; i++) {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      b[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
    }
  };
}

function drain(r: WsReceiver): WsEvent[] {
  const out: WsEvent[] = [];
  for (let e = r.next(); e !== null; e = r.next()) {
    if (e.kind === 'message') out.push({ kind: 'message', data: Buffer.from(e.data) });
    else if (e.kind === 'ping' || e.kind === 'pong') out.push({ kind: e.kind, payload: Buffer.from(e.payload) });
    else out.push(e);
  }
  return out;
}

// ------------------------------------------------------------------ server side

test('ws sender: header length forms at 0, 125, 126, 65535, 65536 and past 2^32', () => {
  assert.equal(serverFrameHeader(Opcode.BINARY, 0).toString('hex'), '8200');
  assert.equal(serverFrameHeader(Opcode.BINARY, 125).toString('hex'), '827d');
  assert.equal(serverFrameHeader(Opcode.BINARY, 126).toString('hex'), '827e007e');
  assert.equal(serverFrameHeader(Opcode.BINARY, 65535).toString('hex'), '827effff');
  assert.equal(serverFrameHeader(Opcode.BINARY, 65536).toString('hex'), '827f0000000000010000');
  assert.equal(serverFrameHeader(Opcode.BINARY, 2 ** 32 + 5).toString('hex'), '827f0000000100000005');
  assert.equal(serverFrameHeader(Opcode.CONTINUATION, 3, false).toString('hex'), '0003');
  assert.equal(binaryHeader(256).toString('hex'), '827e0100', 'RFC 6455 §5.7: 256 bytes binary');
  assert.throws(() => serverFrameHeader(Opcode.BINARY, -1), RangeError);
  assert.throws(() => serverFrameHeader(Opcode.BINARY, 1.5), RangeError);
});

test('ws sender: encodeBinary is [header, payload] with the caller\'s Buffer, header alone when empty', () => {
  const p = Buffer.from('payload');
  const parts = encodeBinary(p);
  assert.equal(parts.length, 2);
  assert.equal(parts[1], p, 'the same Buffer, not a copy');
  assert.equal(parts[0]!.toString('hex'), '8207');
  assert.deepEqual(encodeBinary(Buffer.alloc(0)).map((b) => b.toString('hex')), ['8200']);
});

test('ws sender: control frames (RFC 6455 §5.7 unmasked ping "Hello"), pong echoes the payload', () => {
  assert.equal(encodePing(Buffer.from('Hello')).toString('hex'), '890548656c6c6f');
  assert.equal(encodePong(Buffer.from('Hello')).toString('hex'), '8a0548656c6c6f');
  assert.equal(encodePong().toString('hex'), '8a00');
  assert.equal(encodePing(pattern(125)).length, 127);
  assert.throws(() => encodePing(pattern(126)), RangeError);
  assert.throws(() => encodePong(pattern(126)), RangeError);
});

test('ws sender: close frames; codes that may not be sent and long reasons are refused', () => {
  assert.equal(encodeClose().toString('hex'), '8800');
  assert.equal(encodeClose(1000).toString('hex'), '880203e8');
  assert.equal(encodeClose(1002, 'bye').toString('hex'), '880503ea627965');
  assert.equal(encodeClose(CloseCode.MESSAGE_TOO_BIG, 'r'.repeat(123)).length, 127);
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65536, 1000.5]) {
    assert.throws(() => encodeClose(code), RangeError, `code ${code}`);
  }
  assert.throws(() => encodeClose(1000, 'r'.repeat(124)), RangeError);
  assert.throws(() => closePayload(undefined, 'reason without a code'), RangeError);
});

test('ws sender: fitCloseReason cuts at 123 bytes without splitting a character', () => {
  assert.equal(fitCloseReason('short'), 'short');
  const greek = 'κ'.repeat(100); // 200 bytes
  const fitted = fitCloseReason(greek);
  assert.equal(Buffer.byteLength(fitted), 122);
  assert.equal(fitted, 'κ'.repeat(61));
  assert.equal(Buffer.byteLength(fitCloseReason('a' + '€'.repeat(60))), 121);
  assert.equal(fitCloseReason('x'.repeat(500)), 'x'.repeat(123));
});

test('ws sender: server frames read back by a client-role receiver', () => {
  const r = new WsReceiver({ role: 'client', maxMessage: 1 << 20 });
  const big = pattern(70_000, 5);
  r.push(Buffer.concat([...encodeBinary(Buffer.from('hi')), ...encodeBinary(big), encodePing(Buffer.from('p')), encodePong(Buffer.from('q')), encodeClose(1001, 'going')]));
  assert.deepEqual(drain(r), [
    { kind: 'message', data: Buffer.from('hi') },
    { kind: 'message', data: big },
    { kind: 'ping', payload: Buffer.from('p') },
    { kind: 'pong', payload: Buffer.from('q') },
    { kind: 'close', code: 1001, reason: 'going' },
  ]);
});

// ------------------------------------------------------------------ client side

test('ws client encoder: RFC 6455 §5.7 masked text "Hello" byte for byte', () => {
  const enc = new ClientFrameEncoder(fixedKeys());
  assert.equal(enc.frame(Opcode.TEXT, Buffer.from('Hello')).toString('hex'), '818537fa213d7f9f4d5158');
  assert.equal(enc.pong(Buffer.from('Hello')).toString('hex'), '8a8537fa213d7f9f4d5158');
});

test('ws client encoder: a fresh key per frame, the payload untouched, fragments cover the message', () => {
  const enc = new ClientFrameEncoder(fixedKeys([1, 2, 3, 4], [5, 6, 7, 8]));
  const p = Buffer.from('abcdefghij');
  const a = enc.binary(p);
  const b = enc.binary(p);
  assert.equal(a.subarray(2, 6).toString('hex'), '01020304');
  assert.equal(b.subarray(2, 6).toString('hex'), '05060708');
  assert.equal(p.toString(), 'abcdefghij', 'payload not masked in place');
  const frags = enc.fragments(p, 4);
  assert.deepEqual(frags.map((f) => f[0]), [0x02, 0x00, 0x80]);
  assert.deepEqual(enc.fragments(Buffer.alloc(0), 4).map((f) => f.subarray(0, 2).toString('hex')), ['8280'], 'an empty message is one frame');
  const r = new WsReceiver({ role: 'server', maxMessage: 100 });
  for (const f of frags) r.push(f);
  assert.deepEqual(drain(r), [{ kind: 'message', data: p }]);
  assert.throws(() => enc.fragments(p, 0), RangeError);
  assert.throws(() => enc.ping(pattern(126)), RangeError);
});

// ------------------------------------------------------------------ mask loop

function naiveMask(src: Uint8Array, key: Uint8Array): Buffer {
  const out = Buffer.alloc(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! ^ key[i & 3]!;
  return out;
}

test('ws mask: the word loop equals the byte loop at every length and alignment, in place and into an output', () => {
  const key = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]);
  const backing = pattern(400, 9);
  for (let len = 0; len <= 140; len++) {
    for (let srcOff = 0; srcOff < 4; srcOff++) {
      const src = new Uint8Array(backing.buffer, backing.byteOffset + srcOff, len);
      const want = naiveMask(src, key);
      for (let outOff = 0; outOff < 8; outOff++) {
        const out = Buffer.alloc(len + 16, 0xee);
        applyMask(src, key, out, outOff);
        assert.ok(out.subarray(outOff, outOff + len).equals(want), `len ${len} src+${srcOff} out+${outOff}`);
        assert.equal(out[outOff + len], 0xee, 'nothing written past the end');
        if (outOff > 0) assert.equal(out[outOff - 1], 0xee, 'nothing written before the start');
      }
      const copy = new Uint8Array(new ArrayBuffer(len + 8), srcOff, len);
      copy.set(src);
      unmaskInPlace(copy, key);
      assert.ok(Buffer.from(copy).equals(want), `in place, len ${len} at +${srcOff}`);
    }
  }
});

// ------------------------------------------------------------------ close codes

test('ws close codes: the table covers 0-65535 without a gap and agrees with RFC 6455 §7.4 plus the IANA registry', () => {
  let next = 0;
  for (const r of CLOSE_CODE_TABLE) {
    assert.equal(r.from, next, `range starting at ${r.from}`);
    assert.ok(r.to >= r.from);
    next = r.to + 1;
  }
  assert.equal(next, 65536);
  const allowed = (c: number): boolean => (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
  for (let c = 0; c <= 65535; c++) assert.equal(isCloseCodeAllowedOnWire(c), allowed(c), `code ${c}`);
  assert.equal(isCloseCodeAllowedOnWire(-1), false);
  assert.equal(isCloseCodeAllowedOnWire(65536), false);
  assert.equal(isCloseCodeAllowedOnWire(1000.5), false);
});

// ------------------------------------------------------------------ properties

type Op =
  | { op: 'message'; payload: Uint8Array; fragmentSize: number; pingInside: Uint8Array | null }
  | { op: 'ping'; payload: Uint8Array }
  | { op: 'pong'; payload: Uint8Array };

const control = fc.uint8Array({ maxLength: 125 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('message' as const), payload: fc.uint8Array({ maxLength: 400 }), fragmentSize: fc.integer({ min: 1, max: 500 }), pingInside: fc.option(control, { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('ping' as const), payload: control }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pong' as const), payload: control }) },
);
const closeArb = fc.option(
  fc.record({ code: fc.constantFrom(1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 3000, 4999), reason: fc.string({ maxLength: 30 }) }),
  { nil: null },
);

function encodeOps(ops: Op[], end: { code: number; reason: string } | null, seed: number): { stream: Buffer; events: WsEvent[] } {
  const enc = new ClientFrameEncoder(seeded(seed));
  const frames: Buffer[] = [];
  const events: WsEvent[] = [];
  for (const o of ops) {
    if (o.op === 'message') {
      const frags = enc.fragments(o.payload, o.fragmentSize);
      frames.push(frags[0]!);
      // A ping between the fragments comes out first; with one fragment it simply follows.
      const between = o.pingInside !== null && frags.length > 1;
      if (between) {
        frames.push(enc.ping(o.pingInside!));
        events.push({ kind: 'ping', payload: Buffer.from(o.pingInside!) });
      }
      frames.push(...frags.slice(1));
      events.push({ kind: 'message', data: Buffer.from(o.payload) });
      if (o.pingInside !== null && !between) {
        frames.push(enc.ping(o.pingInside));
        events.push({ kind: 'ping', payload: Buffer.from(o.pingInside) });
      }
    } else {
      frames.push(o.op === 'ping' ? enc.ping(o.payload) : enc.pong(o.payload));
      events.push({ kind: o.op, payload: Buffer.from(o.payload) });
    }
  }
  const fitted = end === null ? null : { code: end.code, reason: fitCloseReason(end.reason) };
  frames.push(fitted === null ? enc.close() : enc.close(fitted.code, fitted.reason));
  events.push({ kind: 'close', code: fitted?.code ?? null, reason: fitted?.reason ?? '' });
  return { stream: Buffer.concat(frames), events };
}

function cutInto(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(stream.subarray(at, p));
    at = p;
  }
  out.push(stream.subarray(at));
  return out;
}

test('ws property: random frames from the client encoder decode to the same events, however the stream is cut', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 12 }), closeArb, fc.integer(), fc.array(fc.nat(), { maxLength: 10 }), (ops, end, seed, cuts) => {
      const { stream, events } = encodeOps(ops, end, seed);
      const r = new WsReceiver({ role: 'server', maxMessage: 400 });
      const got: WsEvent[] = [];
      for (const piece of cutInto(stream, cuts)) {
        r.push(Buffer.from(piece));
        got.push(...drain(r));
      }
      assert.deepEqual(got, events);
      assert.equal(r.buffered, 0);
    }),
    { numRuns: 300 },
  );
});

function checkInvariants(r: WsReceiver, max: number, events: WsEvent[]): void {
  // A message at the limit plus a control frame (at most 125 + 14 bytes) still arriving.
  assert.ok(r.retained <= max + 14 + 125, `retained ${r.retained} > ${max} + 14 + 125`);
  for (const e of events) {
    if (e.kind === 'message') assert.ok(e.data.length <= max);
    if (e.kind === 'ping' || e.kind === 'pong') assert.ok(e.payload.length <= 125);
    if (e.kind === 'fail') {
      assert.ok([1002, 1003, 1007, 1009].includes(e.code), `fail code ${e.code}`);
      assert.equal(r.retained, 0, 'nothing kept after a failure');
    }
  }
  const terminal = events.filter((e) => e.kind === 'fail' || e.kind === 'close');
  assert.ok(terminal.length <= 1, 'at most one close or failure');
}

test('ws property: random bytes never throw and never make the receiver hold more than its limit', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 20 }), fc.constantFrom<'server' | 'client'>('server', 'client'), fc.integer({ min: 0, max: 300 }), (chunks, role, max) => {
      const r = new WsReceiver({ role, maxMessage: max });
      const all: WsEvent[] = [];
      for (const c of chunks) {
        r.push(Buffer.from(c));
        const got = drain(r);
        all.push(...got);
        checkInvariants(r, max, all);
      }
    }),
    { numRuns: 1000 },
  );
});

test('ws property: valid streams with random bytes changed never throw and stay within the limit', () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 1, maxLength: 8 }),
      closeArb,
      fc.integer(),
      fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (ops, end, seed, flips, cuts) => {
        const { stream } = encodeOps(ops, end, seed);
        for (const f of flips) stream[f.at % stream.length] = f.value;
        const max = 300;
        const r = new WsReceiver({ role: 'server', maxMessage: max });
        const all: WsEvent[] = [];
        for (const piece of cutInto(stream, cuts)) {
          r.push(Buffer.from(piece));
          all.push(...drain(r));
          checkInvariants(r, max, all);
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('ws property: a declared length over the limit fails before its payload, whatever the length form', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 2 ** 40 }), (max, over) => {
      const length = max + over;
      const header = Buffer.concat([serverFrameHeader(Opcode.BINARY, length)]);
      header[1] = header[1]! | 0x80; // masked, as a client sends it; the key has not arrived yet
      const r = new WsReceiver({ role: 'server', maxMessage: max });
      r.push(header);
      const e = r.next();
      assert.ok(e !== null && e.kind === 'fail' && e.code === 1009);
    }),
    { numRuns: 300 },
  );
  void hex;
});
