// MX/1 payload layouts (docs/protocol.md, "Payloads"). Encoders return fresh Buffers; decoders
// read the payload in place and throw WireError(MALFORMED) on anything short, long or not UTF-8,
// so the server can answer error 4 and keep the connection.
// str16 = u16 byte length + UTF-8 bytes; "rest" = every remaining payload byte as UTF-8;
// u64 sizes travel as two big-endian u32 halves and must fit a JS safe integer (2^53 - 1).
import { isUtf8 } from 'node:buffer';
import { WireError } from './frame.js';
import { ErrorCode, SHA256_SIZE } from './protocol.js';

const MAX_STR16 = 0xffff;
/** 2^53 - 1 splits into a high half of at most 0x1fffff. */
const MAX_SAFE_HIGH = 0x1fffff;

function malformed(message: string): never {
  throw new WireError(ErrorCode.MALFORMED, message);
}

function utf8(buf: Buffer, start: number, end: number, what: string): string {
  // ASCII fast path: latin1 decoding is a straight byte copy (no validation needed below 0x80).
  let ascii = true;
  for (let k = start; k < end; k++) {
    if (buf[k] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1', start, end);
  const view = buf.subarray(start, end);
  if (!isUtf8(view)) malformed(`${what} is not valid UTF-8`);
  return view.toString('utf8');
}

function checkSafeSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new WireError(ErrorCode.MALFORMED, `${what} must be an integer in 0..2^53-1, got ${n}`);
}

function writeU64(buf: Buffer, at: number, n: number): void {
  buf.writeUInt32BE(Math.floor(n / 0x100000000), at);
  buf.writeUInt32BE(n % 0x100000000, at + 4);
}

function readU64(buf: Buffer, at: number, what: string): number {
  if (at + 8 > buf.length) malformed(`${what}: payload too short for a u64`);
  const high = buf.readUInt32BE(at);
  if (high > MAX_SAFE_HIGH) malformed(`${what} exceeds 2^53-1`);
  return high * 0x100000000 + buf.readUInt32BE(at + 4);
}

function strBytes(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > MAX_STR16) throw new WireError(ErrorCode.MALFORMED, `${what} is ${b.length} bytes; a str16 holds at most ${MAX_STR16}`);
  return b;
}

// ---- str16 ---------------------------------------------------------------------------------

export function encodeStr16(s: string): Buffer {
  const b = strBytes(s, 'string');
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

export function decodeStr16(buf: Buffer, offset: number): { value: string; next: number } {
  if (offset + 2 > buf.length) malformed('str16: missing length');
  const len = buf.readUInt16BE(offset);
  const end = offset + 2 + len;
  if (end > buf.length) malformed(`str16: declares ${len} bytes, ${buf.length - offset - 2} present`);
  return { value: utf8(buf, offset + 2, end, 'str16'), next: end };
}

// ---- rest ----------------------------------------------------------------------------------

/** The whole payload as UTF-8 ("rest" fields: JOIN name, SAY text, pushes). */
export function decodeText(p: Buffer): string {
  return utf8(p, 0, p.length, 'text');
}

// ---- JOIN_OK / NAMES_OK: u16 count + str16 x count ---------------------------------------

/**
 * The first names that fit in `maxBytes` of payload (and in a u16 count): a reply must never be
 * larger than the frames the peer accepts. Without a limit, more than 65535 names is an error.
 */
export function encodeNames(names: string[], maxBytes = Infinity): Buffer {
  if (maxBytes === Infinity && names.length > 0xffff) throw new WireError(ErrorCode.MALFORMED, 'too many names for a u16 count');
  const parts: Buffer[] = [Buffer.allocUnsafe(2)];
  let size = 2;
  for (const n of names) {
    const item = encodeStr16(n);
    if (size + item.length > maxBytes || parts.length > 0xffff) break;
    parts.push(item);
    size += item.length;
  }
  parts[0].writeUInt16BE(parts.length - 1, 0);
  return Buffer.concat(parts, size);
}

export function decodeNames(p: Buffer): string[] {
  if (p.length < 2) malformed('names: missing count');
  const count = p.readUInt16BE(0);
  const names: string[] = [];
  let at = 2;
  for (let k = 0; k < count; k++) {
    const s = decodeStr16(p, at);
    names.push(s.value);
    at = s.next;
  }
  if (at !== p.length) malformed(`names: ${p.length - at} trailing bytes`);
  return names;
}

// ---- ERROR: u16 code + rest message -------------------------------------------------------

export function encodeError(code: number, message: string): Buffer {
  const m = Buffer.from(message, 'utf8');
  const out = Buffer.allocUnsafe(2 + m.length);
  out.writeUInt16BE(code, 0);
  m.copy(out, 2);
  return out;
}

export function decodeError(p: Buffer): { code: number; message: string } {
  if (p.length < 2) malformed('error: missing code');
  return { code: p.readUInt16BE(0), message: utf8(p, 2, p.length, 'error message') };
}

// ---- MESSAGE push (0xC1): str16 from + rest text; ANNOUNCE (0x14): str16 token + rest text --

function encodeStrRest(first: string, rest: string, what: string): Buffer {
  const a = strBytes(first, what);
  const b = Buffer.from(rest, 'utf8');
  const out = Buffer.allocUnsafe(2 + a.length + b.length);
  out.writeUInt16BE(a.length, 0);
  a.copy(out, 2);
  b.copy(out, 2 + a.length);
  return out;
}

function decodeStrRest(p: Buffer, what: string): [string, string] {
  const s = decodeStr16(p, 0);
  return [s.value, utf8(p, s.next, p.length, `${what} text`)];
}

export function encodeMessage(from: string, text: string): Buffer {
  return encodeStrRest(from, text, 'sender name');
}

export function decodeMessage(p: Buffer): { from: string; text: string } {
  const [from, text] = decodeStrRest(p, 'message');
  return { from, text };
}

export function encodeAnnounce(token: string, text: string): Buffer {
  return encodeStrRest(token, text, 'token');
}

export function decodeAnnounce(p: Buffer): { token: string; text: string } {
  const [token, text] = decodeStrRest(p, 'announce');
  return { token, text };
}

// ---- PUT (0x20): u64 size + 32-byte SHA-256 + rest name -----------------------------------

function checkDigest(sha256: Buffer): void {
  if (sha256.length !== SHA256_SIZE) throw new WireError(ErrorCode.MALFORMED, `SHA-256 digest must be ${SHA256_SIZE} bytes, got ${sha256.length}`);
}

export function encodePut(size: number, sha256: Buffer, name: string): Buffer {
  checkSafeSize(size, 'size');
  checkDigest(sha256);
  const n = Buffer.from(name, 'utf8');
  const out = Buffer.allocUnsafe(8 + SHA256_SIZE + n.length);
  writeU64(out, 0, size);
  sha256.copy(out, 8);
  n.copy(out, 8 + SHA256_SIZE);
  return out;
}

export function decodePut(p: Buffer): { size: number; sha256: Buffer; name: string } {
  if (p.length < 8 + SHA256_SIZE) malformed('put: payload shorter than size + digest');
  return {
    size: readU64(p, 0, 'put size'),
    sha256: p.subarray(8, 8 + SHA256_SIZE),
    name: utf8(p, 8 + SHA256_SIZE, p.length, 'file name'),
  };
}

// ---- PUT_OK (0xA0) / GET_OK (0xA1): u64 size + 32-byte SHA-256 ---------------------------

export function encodeFileInfo(size: number, sha256: Buffer): Buffer {
  checkSafeSize(size, 'size');
  checkDigest(sha256);
  const out = Buffer.allocUnsafe(8 + SHA256_SIZE);
  writeU64(out, 0, size);
  sha256.copy(out, 8);
  return out;
}

export function decodeFileInfo(p: Buffer): { size: number; sha256: Buffer } {
  if (p.length !== 8 + SHA256_SIZE) malformed(`file info: expected ${8 + SHA256_SIZE} bytes, got ${p.length}`);
  return { size: readU64(p, 0, 'file size'), sha256: p.subarray(8) };
}

// ---- GET (0x21): u64 offset + rest name ----------------------------------------------------

export function encodeGet(offset: number, name: string): Buffer {
  checkSafeSize(offset, 'offset');
  const n = Buffer.from(name, 'utf8');
  const out = Buffer.allocUnsafe(8 + n.length);
  writeU64(out, 0, offset);
  n.copy(out, 8);
  return out;
}

export function decodeGet(p: Buffer): { offset: number; name: string } {
  if (p.length < 8) malformed('get: payload shorter than the offset');
  return { offset: readU64(p, 0, 'get offset'), name: utf8(p, 8, p.length, 'file name') };
}

// ---- LIST_OK (0xA2): u32 count + (u64 size + str16 name) x count -------------------------

/** The first entries that fit in `maxBytes` of payload (see encodeNames). */
export function encodeList(entries: { size: number; name: string }[], maxBytes = Infinity): Buffer {
  const parts: Buffer[] = [Buffer.allocUnsafe(4)];
  let size = 4;
  for (const e of entries) {
    checkSafeSize(e.size, 'size');
    const n = strBytes(e.name, 'file name');
    if (size + 10 + n.length > maxBytes) break;
    const item = Buffer.allocUnsafe(10 + n.length);
    writeU64(item, 0, e.size);
    item.writeUInt16BE(n.length, 8);
    n.copy(item, 10);
    parts.push(item);
    size += item.length;
  }
  parts[0].writeUInt32BE(parts.length - 1, 0);
  return Buffer.concat(parts, size);
}

export function decodeList(p: Buffer): { size: number; name: string }[] {
  if (p.length < 4) malformed('list: missing count');
  const count = p.readUInt32BE(0);
  // Each entry takes at least 10 bytes: refuse an absurd count before looping over it.
  if (count > (p.length - 4) / 10) malformed(`list: count ${count} does not fit ${p.length} bytes`);
  const out: { size: number; name: string }[] = [];
  let at = 4;
  for (let k = 0; k < count; k++) {
    const size = readU64(p, at, 'list size');
    const s = decodeStr16(p, at + 8);
    out.push({ size, name: s.value });
    at = s.next;
  }
  if (at !== p.length) malformed(`list: ${p.length - at} trailing bytes`);
  return out;
}
