// public/chat/mx.js, the browser's MX/1 codec, loaded by path as the page loads it: every request
// it encodes (against the protocol doc's hex and src/wire's encoder), every reply and push it
// decodes, whole, split at every byte and with trailing bytes, and the bytes it must refuse.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { encodeFrame as wireFrame } from '../../src/wire/frame.js';
import { encodeError, encodeMessage, encodeNames } from '../../src/wire/payloads.js';

// dist/test/public/ -> the repository root
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Frame {
  type: number;
  id: number;
  payload: Uint8Array;
}
type MxEvent =
  | { kind: 'pong'; id: number; data: Uint8Array }
  | { kind: 'stats'; id: number; json: string }
  | { kind: 'joined'; id: number; names: string[] }
  | { kind: 'said'; id: number }
  | { kind: 'left'; id: number }
  | { kind: 'names'; id: number; names: string[] }
  | { kind: 'userJoined'; name: string }
  | { kind: 'message'; from: string; text: string }
  | { kind: 'userLeft'; name: string }
  | { kind: 'announcement'; text: string }
  | { kind: 'error'; id: number; code: number; message: string }
  | { kind: 'unknown'; type: number; id: number };
interface FrameReader {
  readonly pending: number;
  push(chunk: Uint8Array | ArrayBuffer): Frame[];
}
interface Location {
  protocol: string;
  host: string;
  href: string;
  origin: string;
  search: string;
}
/** The module's surface as the page uses it (it is plain JavaScript, so the test states the types). */
interface MxModule {
  MAGIC: number;
  HEADER_BYTES: number;
  MAX_TEXT_BYTES: number;
  DEFAULT_WS_PATH: string;
  Type: Record<string, number>;
  MxError: new (reason: string, message: string) => Error & { reason: string };
  encodeFrame(type: number, id: number, payload?: Uint8Array): Uint8Array;
  encodePing(id: number, data?: Uint8Array): Uint8Array;
  encodeStats(id: number): Uint8Array;
  encodeJoin(id: number, name: string): Uint8Array;
  encodeSay(id: number, text: string): Uint8Array;
  encodeLeave(id: number): Uint8Array;
  encodeNames(id: number): Uint8Array;
  utf8Length(text: string): number;
  decodeFrame(data: Uint8Array | ArrayBuffer, maxPayload?: number): Frame;
  decodeEvent(frame: Frame): MxEvent;
  decodeMessage(data: Uint8Array | ArrayBuffer, maxPayload?: number): MxEvent;
  FrameReader: new (options?: { maxPayload?: number }) => FrameReader;
  Ids: new () => { last: number; next(): number };
  socketUrl(loc: Location): string;
  backoffMs(attempt: number): number;
}

const mx = (await import(pathToFileURL(path.join(REPO, 'public', 'chat', 'mx.js')).href)) as MxModule;

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const frame = (type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer => Buffer.concat(wireFrame(type, id, payload));
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const XSS = '<img src=x onerror=alert(1)>';

/** The event with a PING_OK's bytes as a plain Uint8Array (fed a Buffer, the view is a Buffer). */
function plain(e: MxEvent): MxEvent {
  return e.kind === 'pong' ? { ...e, data: Uint8Array.from(e.data) } : e;
}

/** Asserts that `fn` throws an MxError with this reason. */
function throwsReason(fn: () => unknown, reason: string): void {
  assert.throws(fn, (err: unknown) => err instanceof mx.MxError && err.reason === reason, `expected MxError ${reason}`);
}

describe('requests: encoded exactly as docs/protocol.md and src/wire lay them out', () => {
  const cases: { name: string; bytes: Uint8Array; want: Buffer }[] = [
    // The hex dumps of docs/protocol.md section 1.
    { name: 'PING id 1 "hi" (doc)', bytes: mx.encodePing(1, utf8('hi')), want: hex('4d58 01 01 00000001 00000002 6869') },
    { name: 'JOIN id 2 "alice" (doc)', bytes: mx.encodeJoin(2, 'alice'), want: hex('4d58 01 10 00000002 00000005 616c696365') },
    { name: 'PING with no payload', bytes: mx.encodePing(7), want: frame(0x01, 7) },
    { name: 'STATS', bytes: mx.encodeStats(0xffffffff), want: frame(0x02, 0xffffffff) },
    { name: 'JOIN with a non-ASCII name, sent as typed', bytes: mx.encodeJoin(3, 'José张三'), want: frame(0x10, 3, utf8('José张三')) },
    { name: 'SAY', bytes: mx.encodeSay(4, 'hello'), want: frame(0x11, 4, utf8('hello')) },
    { name: 'SAY of markup is bytes like any text', bytes: mx.encodeSay(5, XSS), want: frame(0x11, 5, utf8(XSS)) },
    { name: 'SAY of 4096 bytes (the most)', bytes: mx.encodeSay(6, 'é'.repeat(2048)), want: frame(0x11, 6, utf8('é'.repeat(2048))) },
    { name: 'LEAVE', bytes: mx.encodeLeave(8), want: frame(0x12, 8) },
    { name: 'NAMES', bytes: mx.encodeNames(9), want: frame(0x13, 9) },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(Buffer.from(c.bytes), c.want));
  }

  test('any type, id and payload: the same bytes as src/wire', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 300 }), (type, id, payload) => {
        assert.deepEqual(Buffer.from(mx.encodeFrame(type, id, payload)), Buffer.concat(wireFrame(type, id, Buffer.from(payload))));
      }),
    );
  });

  test('SAY outside 1..4096 bytes, a type over a byte, an id over a u32: refused before anything is sent', () => {
    assert.throws(() => mx.encodeSay(1, ''), RangeError);
    assert.throws(() => mx.encodeSay(1, 'é'.repeat(2048) + 'x'), RangeError);
    assert.throws(() => mx.encodeFrame(256, 1), RangeError);
    assert.throws(() => mx.encodeFrame(-1, 1), RangeError);
    assert.throws(() => mx.encodeFrame(1, 2 ** 32), RangeError);
    assert.throws(() => mx.encodeFrame(1, 1.5), RangeError);
    assert.equal(mx.utf8Length('é张😀'), 2 + 3 + 4);
  });
});

/** Every reply and push the page reads, with what it means. */
const replies: { name: string; bytes: Buffer; want: MxEvent }[] = [
  { name: 'PING_OK', bytes: hex('4d58 01 81 00000001 00000002 6869'), want: { kind: 'pong', id: 1, data: new Uint8Array(utf8('hi')) } },
  { name: 'PING_OK empty', bytes: frame(0x81, 2), want: { kind: 'pong', id: 2, data: new Uint8Array(0) } },
  { name: 'STATS_OK', bytes: frame(0x82, 3, utf8('{"chatUsers":2}')), want: { kind: 'stats', id: 3, json: '{"chatUsers":2}' } },
  // docs/protocol.md: JOIN_OK id 2 listing bob and alice.
  { name: 'JOIN_OK (doc)', bytes: hex('4d58 01 90 00000002 0000000e 0002 0003 626f62 0005 616c696365'), want: { kind: 'joined', id: 2, names: ['bob', 'alice'] } },
  { name: 'JOIN_OK, only me', bytes: frame(0x90, 4, encodeNames(['Ωmega'])), want: { kind: 'joined', id: 4, names: ['Ωmega'] } },
  { name: 'SAY_OK', bytes: frame(0x91, 5), want: { kind: 'said', id: 5 } },
  { name: 'LEAVE_OK', bytes: frame(0x92, 6), want: { kind: 'left', id: 6 } },
  { name: 'NAMES_OK empty room', bytes: frame(0x93, 7, encodeNames([])), want: { kind: 'names', id: 7, names: [] } },
  { name: 'NAMES_OK', bytes: frame(0x93, 8, encodeNames(['张三', 'José', 'a.b-c_d'])), want: { kind: 'names', id: 8, names: ['张三', 'José', 'a.b-c_d'] } },
  { name: 'USER_JOINED', bytes: frame(0xc0, 0, utf8('bob')), want: { kind: 'userJoined', name: 'bob' } },
  { name: 'MESSAGE', bytes: frame(0xc1, 0, encodeMessage('bob', 'hi there')), want: { kind: 'message', from: 'bob', text: 'hi there' } },
  { name: 'MESSAGE with markup, kept as text', bytes: frame(0xc1, 0, encodeMessage('eve', XSS)), want: { kind: 'message', from: 'eve', text: XSS } },
  { name: 'MESSAGE of 4096 bytes in 4-byte characters', bytes: frame(0xc1, 0, encodeMessage('ada', '😀'.repeat(1024))), want: { kind: 'message', from: 'ada', text: '😀'.repeat(1024) } },
  { name: 'USER_LEFT', bytes: frame(0xc2, 0, utf8('bob')), want: { kind: 'userLeft', name: 'bob' } },
  { name: 'ANNOUNCEMENT', bytes: frame(0xc3, 0, utf8('maintenance at noon')), want: { kind: 'announcement', text: 'maintenance at noon' } },
  // docs/protocol.md: ERROR id 3, code 11.
  { name: 'ERROR 11 (doc)', bytes: hex('4d58 01 ff 00000003 00000015 000b 6e616d6520616c6963652069732074616b656e'), want: { kind: 'error', id: 3, code: 11, message: 'name alice is taken' } },
  { name: 'ERROR 10', bytes: frame(0xff, 9, encodeError(10, 'invalid chat name')), want: { kind: 'error', id: 9, code: 10, message: 'invalid chat name' } },
  { name: 'ERROR with no text, id 0', bytes: frame(0xff, 0, encodeError(51, '')), want: { kind: 'error', id: 0, code: 51, message: '' } },
  { name: 'a type the page does not know', bytes: frame(0xa2, 10, Buffer.from([0, 0, 0, 0])), want: { kind: 'unknown', type: 0xa2, id: 10 } },
];

describe('replies and pushes: whole, split at every byte, with trailing bytes', () => {
  for (const r of replies) {
    test(`${r.name}: whole`, () => {
      assert.deepEqual(plain(mx.decodeMessage(r.bytes)), r.want);
      // An ArrayBuffer (what a WebSocket with binaryType 'arraybuffer' delivers) reads the same.
      const ab = new Uint8Array(r.bytes).buffer;
      assert.deepEqual(plain(mx.decodeMessage(ab)), r.want);
    });

    test(`${r.name}: split at every byte`, () => {
      for (let cut = 0; cut <= r.bytes.length; cut++) {
        const reader = new mx.FrameReader();
        const first = reader.push(r.bytes.subarray(0, cut));
        const second = reader.push(r.bytes.subarray(cut));
        const frames = [...first, ...second];
        assert.equal(frames.length, 1, `cut at ${cut}`);
        assert.equal(first.length, cut === r.bytes.length ? 1 : 0, `nothing before the last byte (cut at ${cut})`);
        assert.deepEqual(plain(mx.decodeEvent(frames[0]!)), r.want, `cut at ${cut}`);
        assert.equal(reader.pending, 0);
      }
      // And one byte at a time.
      const reader = new mx.FrameReader();
      const frames: Frame[] = [];
      for (const b of r.bytes) frames.push(...reader.push(Uint8Array.of(b)));
      assert.equal(frames.length, 1);
      assert.deepEqual(plain(mx.decodeEvent(frames[0]!)), r.want);
    });

    test(`${r.name}: every shorter message is short, never a wrong reading`, () => {
      for (let n = 0; n < r.bytes.length; n++) throwsReason(() => mx.decodeMessage(r.bytes.subarray(0, n)), 'short');
    });

    test(`${r.name}: trailing bytes`, () => {
      // One WebSocket message is one frame: anything after it is refused.
      for (const tail of [Buffer.from([0]), hex('4d58'), frame(0x91, 1)]) {
        throwsReason(() => mx.decodeMessage(Buffer.concat([r.bytes, tail])), 'trailing');
      }
      // A stream reader keeps a partial next frame, and reads a whole one.
      const reader = new mx.FrameReader();
      const frames = reader.push(Buffer.concat([r.bytes, frame(0x91, 77).subarray(0, 5)]));
      assert.equal(frames.length, 1);
      assert.deepEqual(plain(mx.decodeEvent(frames[0]!)), r.want);
      assert.equal(reader.pending, 5);
      const next = reader.push(frame(0x91, 77).subarray(5));
      assert.deepEqual(next.map((f) => mx.decodeEvent(f)), [{ kind: 'said', id: 77 }]);
      assert.equal(reader.pending, 0);
    });
  }

  test('many frames in one chunk, cut at random points, come out the same', () => {
    const arb = fc.array(fc.constantFrom(...replies), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(arb, fc.array(fc.nat(), { maxLength: 8 }), (picked, cutSeeds) => {
        const stream = Buffer.concat(picked.map((r) => r.bytes));
        const cuts = [...new Set(cutSeeds.map((s) => s % (stream.length + 1)))].sort((a, b) => a - b);
        const reader = new mx.FrameReader();
        const got: MxEvent[] = [];
        let at = 0;
        for (const cut of [...cuts, stream.length]) {
          for (const f of reader.push(stream.subarray(at, cut))) got.push(plain(mx.decodeEvent(f)));
          at = cut;
        }
        assert.deepEqual(got, picked.map((r) => r.want));
        assert.equal(reader.pending, 0);
      }),
    );
  });

  test('frames handed out are copies: a reused input buffer does not change them', () => {
    const input = Buffer.from(frame(0xc3, 0, utf8('first')));
    const reader = new mx.FrameReader();
    const [f] = reader.push(input.subarray(0, 8)).concat(reader.push(input.subarray(8)));
    input.fill(0);
    assert.deepEqual(mx.decodeEvent(f!), { kind: 'announcement', text: 'first' });
  });
});

describe('bytes the page refuses', () => {
  test('bad magic or version: judged once all 12 header bytes are there, then the reader stays failed', () => {
    for (const bad of [hex('4d59 01 81 00000001 00000000'), hex('4d58 02 81 00000001 00000000'), hex('0000 00 00 00000000 00000000')]) {
      throwsReason(() => mx.decodeMessage(bad), 'bad-magic');
      const reader = new mx.FrameReader();
      assert.deepEqual(reader.push(bad.subarray(0, 11)), [], 'eleven bytes are only incomplete');
      throwsReason(() => reader.push(bad.subarray(11)), 'bad-magic');
      throwsReason(() => reader.push(frame(0x91, 1)), 'bad-magic');
    }
  });

  test('a length over the limit is refused from the header, before the payload arrives', () => {
    const header = hex('4d58 01 c3 00000000 00000011');
    throwsReason(() => mx.decodeMessage(header, 16), 'too-large');
    const reader = new mx.FrameReader({ maxPayload: 16 });
    throwsReason(() => reader.push(header), 'too-large');
    assert.equal(reader.pending, 0, 'nothing kept');
    // At the limit is fine.
    assert.deepEqual(mx.decodeMessage(frame(0xc3, 0, Buffer.alloc(16, 0x61)), 16), { kind: 'announcement', text: 'a'.repeat(16) });
    // The default limit: a 4 GiB header is refused at once.
    throwsReason(() => new mx.FrameReader().push(hex('4d58 01 c3 00000000 ffffffff')), 'too-large');
  });

  const malformed: { name: string; bytes: Buffer }[] = [
    { name: 'JOIN_OK with a count beyond its names', bytes: frame(0x90, 1, Buffer.concat([hex('0002'), encodeNames(['bob']).subarray(2)])) },
    { name: 'JOIN_OK with bytes after its names', bytes: frame(0x90, 1, Buffer.concat([encodeNames(['bob']), hex('00')])) },
    { name: 'JOIN_OK with no count', bytes: frame(0x90, 1, hex('00')) },
    { name: 'NAMES_OK with a name cut short', bytes: frame(0x93, 1, hex('0001 0005 626f62')) },
    { name: 'SAY_OK with a payload', bytes: frame(0x91, 1, hex('00')) },
    { name: 'LEAVE_OK with a payload', bytes: frame(0x92, 1, hex('00')) },
    { name: 'MESSAGE without its sender length', bytes: frame(0xc1, 0, hex('00')) },
    { name: 'MESSAGE whose sender runs past the payload', bytes: frame(0xc1, 0, hex('0009 626f62')) },
    { name: 'MESSAGE with invalid UTF-8 text', bytes: frame(0xc1, 0, Buffer.concat([hex('0003 626f62'), hex('c3 28')])) },
    { name: 'USER_JOINED with invalid UTF-8', bytes: frame(0xc0, 0, hex('ff')) },
    { name: 'USER_LEFT with a lone surrogate encoded', bytes: frame(0xc2, 0, hex('eda080')) },
    { name: 'ANNOUNCEMENT cut inside a character', bytes: frame(0xc3, 0, hex('e282')) },
    { name: 'ERROR with one byte', bytes: frame(0xff, 1, hex('00')) },
    { name: 'ERROR with invalid UTF-8 text', bytes: frame(0xff, 1, hex('000b ff')) },
  ];
  for (const m of malformed) {
    test(m.name, () => throwsReason(() => mx.decodeMessage(m.bytes), 'malformed'));
  }

  test('random bytes, and random payloads under every known type: an event or an MxError, nothing else', () => {
    const onlyMxError = (fn: () => unknown): void => {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof mx.MxError)) throw err;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        onlyMxError(() => mx.decodeMessage(bytes));
        onlyMxError(() => new mx.FrameReader().push(bytes));
      }),
      { numRuns: 2000 },
    );
    const known = [0x81, 0x82, 0x90, 0x91, 0x92, 0x93, 0xc0, 0xc1, 0xc2, 0xc3, 0xff];
    fc.assert(
      fc.property(fc.constantFrom(...known), fc.uint8Array({ maxLength: 40 }), (type, payload) => {
        onlyMxError(() => mx.decodeMessage(frame(type, 1, Buffer.from(payload))));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ids, the socket URL, the reconnect delays', () => {
  test('ids count from 1, never 0 (pushes use 0), and wrap after 2^32-1', () => {
    const ids = new mx.Ids();
    assert.deepEqual([ids.next(), ids.next(), ids.next()], [1, 2, 3]);
    ids.last = 0xfffffffe;
    assert.deepEqual([ids.next(), ids.next(), ids.next()], [0xffffffff, 1, 2]);
  });

  const at = (href: string): Location => {
    const u = new URL(href);
    return { protocol: u.protocol, host: u.host, href: u.href, origin: u.origin, search: u.search };
  };
  test('same origin, ws: or wss: as the page, default --ws-path', () => {
    assert.equal(mx.DEFAULT_WS_PATH, '/.well-known/muxd/mx');
    assert.equal(mx.socketUrl(at('http://127.0.0.1:8080/chat/')), 'ws://127.0.0.1:8080/.well-known/muxd/mx');
    assert.equal(mx.socketUrl(at('https://chat.example:8443/chat/index.html')), 'wss://chat.example:8443/.well-known/muxd/mx');
    assert.equal(mx.socketUrl(at('http://[::1]:8080/chat/')), 'ws://[::1]:8080/.well-known/muxd/mx');
  });
  test('?ws=/path moves it on this origin; anything off-site keeps the default', () => {
    assert.equal(mx.socketUrl(at('http://h:1/chat/?ws=/ops/mx')), 'ws://h:1/ops/mx');
    assert.equal(mx.socketUrl(at('http://h:1/chat/?ws=%2Fops%2Fmx%3Fx%3D1')), 'ws://h:1/ops/mx');
    for (const offSite of ['//evil.example/x', '/\\evil.example/x', 'http://evil.example/x', 'ws://evil.example/x', 'relative/x', '']) {
      assert.equal(mx.socketUrl(at(`http://h:1/chat/?ws=${encodeURIComponent(offSite)}`)), 'ws://h:1/.well-known/muxd/mx', offSite);
    }
  });
  test('backoff: 1 s doubling to 30 s', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50].map((n) => mx.backoffMs(n)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });
});
