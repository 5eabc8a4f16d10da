// The receiver's vector table, grouped by the Autobahn TestSuite's case groups. Each vector is
// raw bytes (built by test/ws/build.ts, or RFC 6455 §5.7's own hex) and the events it must give.
import { frame, hex, closeBody, pattern, KEY } from './build.js';

export const C = 0x0;
export const T = 0x1;
export const B = 0x2;
export const X = 0x8;
export const P = 0x9;
export const O = 0xa;

export type Expect =
  | { kind: 'message'; data: Buffer }
  | { kind: 'ping'; payload: Buffer }
  | { kind: 'pong'; payload: Buffer }
  | { kind: 'close'; code: number | null; reason: string }
  | { kind: 'fail'; code: number };

export interface Vector {
  group: string;
  name: string;
  input: Buffer;
  events: Expect[];
  role?: 'server' | 'client';
  /** Default 70_000 (the 64 KiB cases fit). */
  maxMessage?: number;
  /** Bytes after a close frame: left unread. */
  unread?: number;
}

const msg = (data: Buffer | string): Expect => ({ kind: 'message', data: Buffer.from(data) });
const ping = (payload: Buffer | string = ''): Expect => ({ kind: 'ping', payload: Buffer.from(payload) });
const pong = (payload: Buffer | string = ''): Expect => ({ kind: 'pong', payload: Buffer.from(payload) });
const close = (code: number | null, reason = ''): Expect => ({ kind: 'close', code, reason });
const fail = (code: number): Expect => ({ kind: 'fail', code });
const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

const bin = (payload: Buffer | string, extra: Partial<Parameters<typeof frame>[0]> = {}): Buffer => frame({ opcode: B, payload, ...extra });
const frag = (opcode: number, payload: Buffer | string, fin: boolean): Buffer => frame({ opcode, payload, fin });

const V: Vector[] = [];
const add = (group: string, name: string, input: Buffer, events: Expect[], extra: Partial<Vector> = {}): void => {
  V.push({ group, name, input, events, ...extra });
};

// ------------------------------------------------------------------ 1 framing
{
  const g = '1 framing';
  add(g, 'binary, empty', bin(''), [msg('')]);
  for (const n of [1, 125, 126, 127, 128, 1000, 65535, 65536]) {
    add(g, `binary of ${n} bytes`, bin(pattern(n, n)), [msg(pattern(n, n))]);
  }
  add(g, 'binary, short length in the 16-bit form (non-minimal, accepted)', bin('abc', { lengthForm: 16 }), [msg('abc')]);
  add(g, 'binary, short length in the 64-bit form (non-minimal, accepted)', bin('abc', { lengthForm: 64 }), [msg('abc')]);
  add(g, 'binary with an all-zero masking key', bin('plain', { mask: [0, 0, 0, 0] }), [msg('plain')]);
  add(g, 'two binary messages back to back', cat(bin('one'), bin('two')), [msg('one'), msg('two')]);
  add(g, 'RFC 6455 §5.7 masked text "Hello": text is refused (1003)', hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'), [fail(1003)]);
  add(g, 'text, empty: refused (1003)', frame({ opcode: T }), [fail(1003)]);
  add(g, 'text after a binary message', cat(bin('ok'), frame({ opcode: T, payload: 'hi' })), [msg('ok'), fail(1003)]);
  add(g, 'masking: an unmasked client frame (1002)', bin('abc', { mask: null }), [fail(1002)]);
  add(g, 'masking: an unmasked empty client frame (1002)', bin('', { mask: null }), [fail(1002)]);
  add(g, 'masking: an unmasked ping from a client (1002)', frame({ opcode: P, mask: null }), [fail(1002)]);
  // The client side of the codec reads server frames, which are never masked.
  add(g, 'client role: RFC 6455 §5.7 unmasked ping "Hello"', hex('89 05 48 65 6c 6c 6f'), [ping('Hello')], { role: 'client' });
  add(g, 'client role: RFC 6455 §5.7 unmasked text "Hello" (1003)', hex('81 05 48 65 6c 6c 6f'), [fail(1003)], { role: 'client' });
  add(g, 'client role: RFC 6455 §5.7 256-byte binary', cat(hex('82 7e 01 00'), pattern(256, 7)), [msg(pattern(256, 7))], { role: 'client' });
  add(g, 'client role: RFC 6455 §5.7 64 KiB binary', cat(hex('82 7f 00 00 00 00 00 01 00 00'), pattern(65536, 8)), [msg(pattern(65536, 8))], { role: 'client' });
  add(g, 'client role: a masked server frame (1002)', bin('abc'), [fail(1002)], { role: 'client' });
}

// ------------------------------------------------------------------ 2 pings and pongs
{
  const g = '2 pings/pongs';
  add(g, 'ping without payload', frame({ opcode: P }), [ping()]);
  add(g, 'ping with a text payload', frame({ opcode: P, payload: 'Hello, world!' }), [ping('Hello, world!')]);
  add(g, 'ping with a binary payload', frame({ opcode: P, payload: hex('00 ff fe fd fc fb 00 ff') }), [ping(hex('00 ff fe fd fc fb 00 ff'))]);
  add(g, 'ping with 125 bytes', frame({ opcode: P, payload: pattern(125, 2) }), [ping(pattern(125, 2))]);
  add(g, 'ping with 126 bytes (1002)', frame({ opcode: P, payload: pattern(126, 2) }), [fail(1002)]);
  add(g, 'ping declaring 126 bytes, nothing more sent: decided from the header (1002)', frame({ opcode: P, declared: 126 }), [fail(1002)]);
  add(g, 'ping with a short length in the 16-bit form (1002: a control length is 7 bits)', frame({ opcode: P, payload: 'x', lengthForm: 16 }), [fail(1002)]);
  add(g, 'RFC 6455 §5.7 masked pong "Hello" (unsolicited: reported, ignored by the caller)', hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'), [pong('Hello')]);
  add(g, 'unsolicited empty pong', frame({ opcode: O }), [pong()]);
  add(g, 'unsolicited pong, then a ping', cat(frame({ opcode: O, payload: 'a' }), frame({ opcode: P, payload: 'b' })), [pong('a'), ping('b')]);
  add(g, 'ten pings in a row', cat(...Array.from({ length: 10 }, (_, i) => frame({ opcode: P, payload: `p${i}` }))), Array.from({ length: 10 }, (_, i) => ping(`p${i}`)));
  add(g, 'pong with 126 bytes (1002)', frame({ opcode: O, payload: pattern(126, 3) }), [fail(1002)]);
}

// ------------------------------------------------------------------ 3 reserved bits
{
  const g = '3 reserved bits';
  add(g, 'RSV1 on a binary frame', bin('x', { rsv: 4 }), [fail(1002)]);
  add(g, 'RSV2 on a binary frame after a valid message', cat(bin('ok'), bin('x', { rsv: 2 })), [msg('ok'), fail(1002)]);
  add(g, 'RSV3 on a ping', frame({ opcode: P, rsv: 1 }), [fail(1002)]);
  add(g, 'RSV1+RSV2 on a pong', frame({ opcode: O, rsv: 6, payload: 'x' }), [fail(1002)]);
  add(g, 'RSV1+RSV3 on a binary frame', bin('x', { rsv: 5 }), [fail(1002)]);
  add(g, 'RSV2+RSV3 on a ping', frame({ opcode: P, rsv: 3 }), [fail(1002)]);
  add(g, 'all RSV bits on a close', frame({ opcode: X, rsv: 7, payload: closeBody(1000) }), [fail(1002)]);
  add(g, 'RSV1 on a continuation', cat(frag(B, 'a', false), frame({ opcode: C, payload: 'b', rsv: 4 })), [fail(1002)]);
  add(g, 'RSV1 on a text frame: the RSV bit is judged first (1002, not 1003)', frame({ opcode: T, payload: 'x', rsv: 4 }), [fail(1002)]);
}

// ------------------------------------------------------------------ 4 opcodes
{
  const g = '4 opcodes';
  for (const op of [3, 4, 5, 6, 7]) {
    add(g, `reserved data opcode ${op}`, frame({ opcode: op }), [fail(1002)]);
    add(g, `reserved data opcode ${op} with payload, after a valid message`, cat(bin('ok'), frame({ opcode: op, payload: 'xyz' })), [msg('ok'), fail(1002)]);
  }
  for (const op of [0xb, 0xc, 0xd, 0xe, 0xf]) {
    add(g, `reserved control opcode 0x${op.toString(16)}`, frame({ opcode: op }), [fail(1002)]);
    add(g, `reserved control opcode 0x${op.toString(16)} with payload, after a valid message`, cat(bin('ok'), frame({ opcode: op, payload: 'xyz' })), [msg('ok'), fail(1002)]);
  }
}

// ------------------------------------------------------------------ 5 fragmentation
{
  const g = '5 fragmentation';
  add(g, 'ping in two fragments (1002)', cat(frag(P, 'a', false), frame({ opcode: C, payload: 'b' })), [fail(1002)]);
  add(g, 'pong in two fragments (1002)', cat(frag(O, 'a', false), frame({ opcode: C, payload: 'b' })), [fail(1002)]);
  add(g, 'close with FIN clear (1002)', frag(X, closeBody(1000), false), [fail(1002)]);
  add(g, 'binary in two fragments', cat(frag(B, 'frag', false), frag(C, 'ment', true)), [msg('fragment')]);
  add(g, 'binary in three fragments', cat(frag(B, 'a', false), frag(C, 'bc', false), frag(C, 'def', true)), [msg('abcdef')]);
  add(g, 'binary in fragments, the first and last empty', cat(frag(B, '', false), frag(C, 'mid', false), frag(C, '', true)), [msg('mid')]);
  add(g, 'binary in fragments, all empty', cat(frag(B, '', false), frag(C, '', false), frag(C, '', true)), [msg('')]);
  add(g, 'a ping between fragments is reported before the message', cat(frag(B, 'ab', false), frame({ opcode: P, payload: 'p' }), frag(C, 'cd', true)), [ping('p'), msg('abcd')]);
  add(g, 'a pong between fragments', cat(frag(B, 'ab', false), frame({ opcode: O, payload: 'q' }), frag(C, 'cd', true)), [pong('q'), msg('abcd')]);
  add(g, 'pings between every fragment', cat(frag(B, 'a', false), frame({ opcode: P, payload: '1' }), frag(C, 'b', false), frame({ opcode: P, payload: '2' }), frag(C, 'c', true)), [ping('1'), ping('2'), msg('abc')]);
  add(g, 'continuation with nothing to continue, FIN set (1002)', frag(C, 'x', true), [fail(1002)]);
  add(g, 'continuation with nothing to continue, FIN clear (1002)', frag(C, 'x', false), [fail(1002)]);
  add(g, 'continuation after a complete message (1002)', cat(bin('done'), frag(C, 'x', true)), [msg('done'), fail(1002)]);
  add(g, 'new binary frame inside a fragmented message (1002)', cat(frag(B, 'a', false), frag(B, 'b', true)), [fail(1002)]);
  add(g, 'new text frame inside a fragmented message (1002)', cat(frag(B, 'a', false), frag(T, 'b', true)), [fail(1002)]);
  add(g, 'fragmented text: refused at its first fragment (1003)', cat(frag(T, 'a', false), frag(C, 'b', true)), [fail(1003)]);
  add(g, 'two fragmented messages in a row', cat(frag(B, 'a', false), frag(C, 'b', true), frag(B, 'c', false), frag(C, 'd', true)), [msg('ab'), msg('cd')]);
  const many = Array.from({ length: 100 }, (_, i) => frag(i === 0 ? B : C, Buffer.from([i]), i === 99));
  add(g, 'a message in 100 one-byte fragments', cat(...many), [msg(Buffer.from(Array.from({ length: 100 }, (_, i) => i)))]);
}

// ------------------------------------------------------------------ 6 UTF-8 handling (binary-only endpoint)
{
  const g = '6 UTF-8';
  const invalid = hex('c0 80 ed a0 80 ff fe ce');
  add(g, 'binary carrying invalid UTF-8 is delivered unchanged', bin(invalid), [msg(invalid)]);
  add(g, 'text with valid UTF-8 (κόσμε) is refused as text (1003)', frame({ opcode: T, payload: 'κόσμε' }), [fail(1003)]);
  add(g, 'text with invalid UTF-8: refused from the header, as text (1003)', frame({ opcode: T, payload: invalid }), [fail(1003)]);
  add(g, 'close reason in valid UTF-8 (κόσμε)', frame({ opcode: X, payload: closeBody(1000, 'κόσμε') }), [close(1000, 'κόσμε')]);
  for (const [what, bytes] of [
    ['an overlong encoding', 'c0 af'],
    ['a UTF-16 surrogate', 'ed a0 80'],
    ['a truncated sequence', 'ce'],
    ['a code point past U+10FFFF', 'f4 90 80 80'],
    ['a lone continuation byte', '80'],
  ] as const) {
    add(g, `close reason with ${what} (1007)`, frame({ opcode: X, payload: closeBody(1000, cat(Buffer.from('ok'), hex(bytes))) }), [fail(1007)]);
  }
}

// ------------------------------------------------------------------ 7 close handling
{
  const g = '7 close';
  add(g, 'close without payload: no code', frame({ opcode: X }), [close(null)]);
  add(g, 'close with a code only', frame({ opcode: X, payload: closeBody(1000) }), [close(1000)]);
  add(g, 'close with a code and a reason', frame({ opcode: X, payload: closeBody(1001, 'bye') }), [close(1001, 'bye')]);
  add(g, 'close with a 123-byte reason', frame({ opcode: X, payload: closeBody(1000, 'r'.repeat(123)) }), [close(1000, 'r'.repeat(123))]);
  add(g, 'close with a 124-byte reason: payload over 125 (1002)', frame({ opcode: X, payload: closeBody(1000, 'r'.repeat(124)) }), [fail(1002)]);
  add(g, 'close with a 1-byte payload (1002)', frame({ opcode: X, payload: hex('03') }), [fail(1002)]);
  add(g, 'close declaring a 1-byte payload: decided from the header (1002)', frame({ opcode: X, declared: 1 }), [fail(1002)]);
  add(g, 'close after a message', cat(bin('last'), frame({ opcode: X, payload: closeBody(1000) })), [msg('last'), close(1000)]);
  const secondClose = frame({ opcode: X, payload: closeBody(1000) });
  add(g, 'close, then a second close: left unread', cat(frame({ opcode: X, payload: closeBody(1000) }), secondClose), [close(1000)], { unread: secondClose.length });
  const lateping = frame({ opcode: P, payload: 'late' });
  add(g, 'close, then a ping: left unread (not answered)', cat(frame({ opcode: X }), lateping), [close(null)], { unread: lateping.length });
  const latemsg = bin('late');
  add(g, 'close, then a message: left unread', cat(frame({ opcode: X, payload: closeBody(1000) }), latemsg), [close(1000)], { unread: latemsg.length });
  add(g, 'close in the middle of a fragmented message: the fragments are dropped', cat(frag(B, 'half', false), frame({ opcode: X, payload: closeBody(1000) })), [close(1000)]);
  add(g, 'close after a 64 KiB message', cat(bin(pattern(65536, 9)), frame({ opcode: X, payload: closeBody(1000) })), [msg(pattern(65536, 9)), close(1000)]);
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    add(g, `close code ${code} may be sent`, frame({ opcode: X, payload: closeBody(code) }), [close(code)]);
  }
  for (const code of [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    add(g, `close code ${code} may not be sent (1002)`, frame({ opcode: X, payload: closeBody(code) }), [fail(1002)]);
  }
}

// ------------------------------------------------------------------ 9 limits (maxMessage 1000 unless said)
{
  const g = '9 limits';
  const lim = { maxMessage: 1000 };
  add(g, 'a message of exactly the limit', bin(pattern(1000, 4)), [msg(pattern(1000, 4))], lim);
  add(g, 'a message one byte over the limit (1009)', bin(pattern(1001, 4)), [fail(1009)], lim);
  add(g, 'over the limit: decided from the header, no payload sent (1009)', frame({ opcode: B, declared: 1001 }), [fail(1009)], lim);
  add(g, 'over the limit in the 64-bit form: decided before the mask arrives (1009)', frame({ opcode: B, declared: 70_000 }).subarray(0, 10), [fail(1009)], lim);
  add(g, 'fragments that sum to the limit', cat(frag(B, pattern(600, 5), false), frag(C, pattern(400, 6), true)), [msg(cat(pattern(600, 5), pattern(400, 6)))], lim);
  add(g, 'fragments that sum past the limit: refused at the header of the fragment that crosses (1009)', cat(frag(B, pattern(600, 5), false), frame({ opcode: C, declared: 401 })), [fail(1009)], lim);
  add(g, 'control frames between fragments do not count toward the limit', cat(frag(B, pattern(999, 5), false), frame({ opcode: P, payload: pattern(125, 1) }), frag(C, 'z', true)), [ping(pattern(125, 1)), msg(cat(pattern(999, 5), Buffer.from('z')))], lim);
  add(g, 'limit 0: an empty message passes', bin(''), [msg('')], { maxMessage: 0 });
  add(g, 'limit 0: one byte is too big (1009)', bin('x'), [fail(1009)], { maxMessage: 0 });
  add(g, '64-bit length with the top bit set (1002)', frame({ opcode: B, declared: 1n << 63n }), [fail(1002)], lim);
  add(g, '64-bit length 2^64-1: top bit set (1002)', frame({ opcode: B, declared: (1n << 64n) - 1n }), [fail(1002)], lim);
  add(g, '64-bit length 2^32: the high word counts (1009)', frame({ opcode: B, declared: 1n << 32n }), [fail(1009)]);
  add(g, '64-bit length past 2^53 (1009)', frame({ opcode: B, declared: (1n << 53n) + 1n }), [fail(1009)]);
  const smalls = Array.from({ length: 60 }, (_, i) => bin(Buffer.from([i & 0xff])));
  add(g, '60 one-byte messages in one stream', cat(...smalls), Array.from({ length: 60 }, (_, i) => msg(Buffer.from([i & 0xff]))), lim);
}

export const VECTORS: readonly Vector[] = V;
export { KEY };
