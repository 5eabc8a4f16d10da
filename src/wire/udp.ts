// MX/1 over UDP (docs/protocol.md "UDP"): one frame per datagram, and the address-validation
// cookie's bytes. Pure functions shared by the server (src/binary/udp) and the client library.
import { ErrorCode, HEADER_SIZE, MAGIC, REPLY_BIT, VERSION } from './protocol.js';

/** Largest UDP payload over IPv4 (65,535 - 20 IP - 8 UDP): the most we accept or send. */
export const MAX_DATAGRAM = 65_507;
/** The most a frame in one datagram can carry. */
export const MAX_DATAGRAM_PAYLOAD = MAX_DATAGRAM - HEADER_SIZE;
/** The cookie travels as this many lowercase hex ASCII characters (8 bytes of HMAC). */
export const COOKIE_LENGTH = 16;
/** Separates the name from the cookie in a UDP JOIN; a chat name can never contain it. */
export const COOKIE_SEPARATOR = 0x00;
const COOKIE_TEXT = 'cookie required ';

export type DatagramResult =
  | { kind: 'frame'; type: number; id: number; payload: Buffer }
  /** Not one well-formed frame: answer ERROR `code` with this id (nothing to close). */
  | { kind: 'error'; id: number; code: number; message: string }
  /** A reply, push or ERROR type: never answered (two peers must not answer each other forever). */
  | { kind: 'ignore'; reason: string };

/**
 * Judges one datagram: exactly one well-formed frame, or the ERROR to answer. Checks in order:
 * magic/version (1, id 0); shorter than a header (4, id 0); a reply/push/ERROR type (ignored);
 * a datagram over MAX_DATAGRAM or a length over MAX_DATAGRAM_PAYLOAD (2); a length that does not
 * match the bytes present, short or trailing (4). Errors 2 and 4 after a readable header carry its id.
 */
export function decodeDatagram(d: Buffer): DatagramResult {
  const n = d.length;
  if ((n >= 2 && d.readUInt16BE(0) !== MAGIC) || (n === 1 && d[0] !== MAGIC >> 8)) {
    return { kind: 'error', id: 0, code: ErrorCode.BAD_MAGIC_OR_VERSION, message: 'bad magic' };
  }
  if (n >= 3 && d[2] !== VERSION) {
    return { kind: 'error', id: 0, code: ErrorCode.BAD_MAGIC_OR_VERSION, message: `unsupported version ${d[2]}` };
  }
  if (n < HEADER_SIZE) {
    return { kind: 'error', id: 0, code: ErrorCode.MALFORMED, message: `datagram of ${n} bytes is shorter than the 12-byte header` };
  }
  const type = d[3];
  if ((type & REPLY_BIT) !== 0) return { kind: 'ignore', reason: `type 0x${type.toString(16)} is not a request` };
  const id = d.readUInt32BE(4);
  const length = d.readUInt32BE(8);
  if (n > MAX_DATAGRAM || length > MAX_DATAGRAM_PAYLOAD) {
    return { kind: 'error', id, code: ErrorCode.FRAME_TOO_LARGE, message: `a datagram carries at most ${MAX_DATAGRAM_PAYLOAD} payload bytes` };
  }
  const present = n - HEADER_SIZE;
  if (length !== present) {
    return {
      kind: 'error',
      id,
      code: ErrorCode.MALFORMED,
      message: length > present ? `length ${length} but the datagram carries ${present} payload bytes` : `${present - length} bytes after the frame`,
    };
  }
  return { kind: 'frame', type, id, payload: d.subarray(HEADER_SIZE) };
}

/** A cookie as it travels: exactly COOKIE_LENGTH characters 0-9 a-f. */
export function isCookie(b: Buffer): boolean {
  if (b.length !== COOKIE_LENGTH) return false;
  for (const c of b) {
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** ERROR 15's payload: u16 15, optional text, then the cookie as its last COOKIE_LENGTH bytes. */
export function encodeCookieError(cookie: string, withText: boolean): Buffer {
  const text = withText ? COOKIE_TEXT : '';
  const out = Buffer.allocUnsafe(2 + text.length + COOKIE_LENGTH);
  out.writeUInt16BE(ErrorCode.COOKIE_REQUIRED, 0);
  out.write(text + cookie, 2, 'latin1');
  return out;
}

/** The cookie in an ERROR payload of code 15 (its last COOKIE_LENGTH bytes), or null. */
export function cookieFromError(payload: Buffer): string | null {
  if (payload.length < 2 + COOKIE_LENGTH || payload.readUInt16BE(0) !== ErrorCode.COOKIE_REQUIRED) return null;
  const tail = payload.subarray(payload.length - COOKIE_LENGTH);
  return isCookie(tail) ? tail.toString('latin1') : null;
}

/** A UDP JOIN: the name's UTF-8 bytes, then (with a cookie) 0x00 and the cookie. */
export function encodeUdpJoin(name: string, cookie: string | null): Buffer {
  const n = Buffer.from(name, 'utf8');
  if (cookie === null) return n;
  const out = Buffer.allocUnsafe(n.length + 1 + COOKIE_LENGTH);
  n.copy(out, 0);
  out[n.length] = COOKIE_SEPARATOR;
  out.write(cookie, n.length + 1, 'latin1');
  return out;
}

/**
 * Splits a UDP JOIN at its first 0x00: the name bytes, and the bytes after it (null when there is
 * no 0x00). The caller checks the cookie: anything but exactly one cookie after 0x00 is error 4.
 */
export function splitUdpJoin(payload: Buffer): { name: Buffer; cookie: Buffer | null } {
  const at = payload.indexOf(COOKIE_SEPARATOR);
  if (at < 0) return { name: payload, cookie: null };
  return { name: payload.subarray(0, at), cookie: payload.subarray(at + 1) };
}
