// MX/1 for the browser: the frames the chat page sends and reads, as bytes, with DataView and
// TextEncoder only. No socket, no DOM: chat.js carries the bytes over a WebSocket (one MX/1
// frame per binary message, docs/protocol.md "MX/1 over WebSocket"), and the unit tests feed
// them in directly. The frame layout is docs/protocol.md section 1: a 12-byte big-endian header
// (magic 0x4D58, version 1, type, id, length) and `length` payload bytes.

export const MAGIC = 0x4d58;
export const VERSION = 1;
export const HEADER_BYTES = 12;
/** SAY text and names are checked by the server too; the page checks first to say it sooner. */
export const MAX_TEXT_BYTES = 4096;
/** The largest payload a reader accepts unless told otherwise (the server's --max-frame maximum is far above any chat frame). */
export const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;

export const Type = Object.freeze({
  PING: 0x01,
  STATS: 0x02,
  JOIN: 0x10,
  SAY: 0x11,
  LEAVE: 0x12,
  NAMES: 0x13,
  PING_OK: 0x81,
  STATS_OK: 0x82,
  JOIN_OK: 0x90,
  SAY_OK: 0x91,
  LEAVE_OK: 0x92,
  NAMES_OK: 0x93,
  USER_JOINED: 0xc0,
  MESSAGE: 0xc1,
  USER_LEFT: 0xc2,
  ANNOUNCEMENT: 0xc3,
  ERROR: 0xff,
});

/** The ERROR codes the page acts on (docs/protocol.md section 4). */
export const ErrorCode = Object.freeze({
  BAD_FRAME: 1,
  TOO_LARGE: 2,
  MALFORMED: 4,
  BAD_NAME: 10,
  NAME_TAKEN: 11,
  NOT_JOINED: 12,
  ALREADY_JOINED: 13,
  BUSY: 51,
  RELAY_UNAVAILABLE: 52,
});

/**
 * Bytes that are not MX/1 as documented. `reason` is one of 'bad-magic' (magic or version),
 * 'too-large' (a header announcing more than the reader's limit), 'short' (a message that ends
 * before its frame does), 'trailing' (bytes after the frame in one message), 'malformed' (a
 * payload that does not match its type's layout, or invalid UTF-8).
 */
export class MxError extends Error {
  /** @param {'bad-magic' | 'too-large' | 'short' | 'trailing' | 'malformed'} reason @param {string} message */
  constructor(reason, message) {
    super(message);
    this.name = 'MxError';
    this.reason = reason;
  }
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error (MX/1 text is always valid UTF-8), never U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * One frame as bytes.
 * @param {number} type 0..255
 * @param {number} id u32
 * @param {Uint8Array} [payload]
 * @returns {Uint8Array}
 */
export function encodeFrame(type, id, payload = EMPTY) {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw new RangeError(`type ${type} is not a byte`);
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`id ${id} is not a u32`);
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, MAGIC);
  view.setUint8(2, VERSION);
  view.setUint8(3, type);
  view.setUint32(4, id);
  view.setUint32(8, payload.length);
  out.set(payload, HEADER_BYTES);
  return out;
}

/** @param {number} id @param {Uint8Array} [data] */
export const encodePing = (id, data = EMPTY) => encodeFrame(Type.PING, id, data);
/** @param {number} id */
export const encodeStats = (id) => encodeFrame(Type.STATS, id);
/** @param {number} id */
export const encodeLeave = (id) => encodeFrame(Type.LEAVE, id);
/** @param {number} id */
export const encodeNames = (id) => encodeFrame(Type.NAMES, id);

/**
 * JOIN: the name as typed; the server normalises it and judges it (ERROR 10 or 11).
 * @param {number} id @param {string} name
 */
export function encodeJoin(id, name) {
  return encodeFrame(Type.JOIN, id, encoder.encode(name));
}

/**
 * SAY: 1..4096 UTF-8 bytes, as the server requires (else ERROR 4).
 * @param {number} id @param {string} text
 */
export function encodeSay(id, text) {
  const bytes = encoder.encode(text);
  if (bytes.length < 1 || bytes.length > MAX_TEXT_BYTES) throw new RangeError(`a message is 1..${MAX_TEXT_BYTES} bytes, not ${bytes.length}`);
  return encodeFrame(Type.SAY, id, bytes);
}

/** The UTF-8 byte length of a string, for checks before sending. @param {string} text */
export const utf8Length = (text) => encoder.encode(text).length;

/** @param {Uint8Array | ArrayBuffer} data */
function bytesOf(data) {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

/**
 * The header at `at`, judged only once all 12 bytes are there (incomplete is not invalid).
 * @param {Uint8Array} b @param {number} at @param {number} maxPayload
 * @returns {{ type: number, id: number, length: number } | null} null while fewer than 12 bytes
 */
function readHeader(b, at, maxPayload) {
  if (b.length - at < HEADER_BYTES) return null;
  const view = new DataView(b.buffer, b.byteOffset + at, HEADER_BYTES);
  if (view.getUint16(0) !== MAGIC || view.getUint8(2) !== VERSION) throw new MxError('bad-magic', 'not an MX/1 frame (bad magic or version)');
  const length = view.getUint32(8);
  // Decided from the header alone, before any of the payload is kept.
  if (length > maxPayload) throw new MxError('too-large', `frame of ${length} bytes is over the ${maxPayload}-byte limit`);
  return { type: view.getUint8(3), id: view.getUint32(4), length };
}

/**
 * Exactly one frame from one WebSocket message: a message shorter or longer than its header
 * says is an error, as the server treats one.
 * @param {Uint8Array | ArrayBuffer} data
 * @param {number} [maxPayload]
 * @returns {{ type: number, id: number, payload: Uint8Array }} payload is a view into `data`
 */
export function decodeFrame(data, maxPayload = DEFAULT_MAX_PAYLOAD) {
  const b = bytesOf(data);
  const h = readHeader(b, 0, maxPayload);
  if (h === null || b.length < HEADER_BYTES + h.length) throw new MxError('short', `message of ${b.length} bytes ends inside its frame`);
  if (b.length > HEADER_BYTES + h.length) throw new MxError('trailing', `${b.length - HEADER_BYTES - h.length} bytes after the frame`);
  return { type: h.type, id: h.id, payload: b.subarray(HEADER_BYTES) };
}

/**
 * Frames from a byte stream cut anywhere (a test's splits, or any stream transport): bytes in,
 * whole frames out, the rest kept for the next push. After an error every push throws again.
 */
export class FrameReader {
  /** @param {{ maxPayload?: number }} [options] */
  constructor(options = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    /** @type {Uint8Array} */
    this.buf = EMPTY;
    /** @type {MxError | null} */
    this.failed = null;
  }

  /** Bytes held that do not make a whole frame yet. */
  get pending() {
    return this.buf.length;
  }

  /**
   * @param {Uint8Array | ArrayBuffer} chunk
   * @returns {{ type: number, id: number, payload: Uint8Array }[]} payloads are copies
   */
  push(chunk) {
    if (this.failed) throw this.failed;
    const add = bytesOf(chunk);
    let b = add;
    if (this.buf.length > 0) {
      b = new Uint8Array(this.buf.length + add.length);
      b.set(this.buf);
      b.set(add, this.buf.length);
    }
    const frames = [];
    let at = 0;
    try {
      for (;;) {
        const h = readHeader(b, at, this.maxPayload);
        if (h === null || b.length - at - HEADER_BYTES < h.length) break;
        const start = at + HEADER_BYTES;
        frames.push({ type: h.type, id: h.id, payload: b.slice(start, start + h.length) });
        at = start + h.length;
      }
    } catch (err) {
      this.failed = /** @type {MxError} */ (err);
      this.buf = EMPTY;
      throw err;
    }
    // Copied, so a caller's buffer that it reuses never changes what is held here.
    this.buf = at === b.length ? EMPTY : b.slice(at);
    return frames;
  }
}

/** A payload cursor: every read checks the bytes are there. */
class Cursor {
  /** @param {Uint8Array} b */
  constructor(b) {
    this.b = b;
    this.at = 0;
    this.view = new DataView(b.buffer, b.byteOffset, b.length);
  }
  u16() {
    if (this.b.length - this.at < 2) throw new MxError('malformed', 'payload ends inside a u16');
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  str16() {
    const n = this.u16();
    if (this.b.length - this.at < n) throw new MxError('malformed', 'payload ends inside a string');
    const s = utf8(this.b.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }
  rest() {
    const s = utf8(this.b.subarray(this.at));
    this.at = this.b.length;
    return s;
  }
  end() {
    if (this.at !== this.b.length) throw new MxError('malformed', `${this.b.length - this.at} unexpected bytes at the end of the payload`);
  }
}

/** @param {Uint8Array} b */
function utf8(b) {
  try {
    return decoder.decode(b);
  } catch {
    throw new MxError('malformed', 'invalid UTF-8');
  }
}

/** u16 count, then that many str16 (JOIN_OK, NAMES_OK). @param {Uint8Array} p */
function names(p) {
  const c = new Cursor(p);
  const count = c.u16();
  const out = [];
  for (let i = 0; i < count; i++) out.push(c.str16());
  c.end();
  return out;
}

/** @param {Uint8Array} p */
function expectEmpty(p) {
  if (p.length !== 0) throw new MxError('malformed', 'payload should be empty');
}

/**
 * @typedef {(
 *   { kind: 'pong', id: number, data: Uint8Array } |
 *   { kind: 'stats', id: number, json: string } |
 *   { kind: 'joined', id: number, names: string[] } |
 *   { kind: 'said', id: number } |
 *   { kind: 'left', id: number } |
 *   { kind: 'names', id: number, names: string[] } |
 *   { kind: 'userJoined', name: string } |
 *   { kind: 'message', from: string, text: string } |
 *   { kind: 'userLeft', name: string } |
 *   { kind: 'announcement', text: string } |
 *   { kind: 'error', id: number, code: number, message: string } |
 *   { kind: 'unknown', type: number, id: number }
 * )} MxEvent
 */

/**
 * What a reply or push means. A type this page does not know is 'unknown' (ignored by the
 * page, so a newer server's additions do no harm); a known type with a bad payload throws.
 * @param {{ type: number, id: number, payload: Uint8Array }} frame
 * @returns {MxEvent}
 */
export function decodeEvent(frame) {
  const { type, id, payload: p } = frame;
  switch (type) {
    case Type.PING_OK:
      return { kind: 'pong', id, data: p };
    case Type.STATS_OK:
      return { kind: 'stats', id, json: utf8(p) };
    case Type.JOIN_OK:
      return { kind: 'joined', id, names: names(p) };
    case Type.SAY_OK:
      expectEmpty(p);
      return { kind: 'said', id };
    case Type.LEAVE_OK:
      expectEmpty(p);
      return { kind: 'left', id };
    case Type.NAMES_OK:
      return { kind: 'names', id, names: names(p) };
    case Type.USER_JOINED:
      return { kind: 'userJoined', name: utf8(p) };
    case Type.MESSAGE: {
      const c = new Cursor(p);
      const from = c.str16();
      return { kind: 'message', from, text: c.rest() };
    }
    case Type.USER_LEFT:
      return { kind: 'userLeft', name: utf8(p) };
    case Type.ANNOUNCEMENT:
      return { kind: 'announcement', text: utf8(p) };
    case Type.ERROR: {
      const c = new Cursor(p);
      const code = c.u16();
      return { kind: 'error', id, code, message: c.rest() };
    }
    default:
      return { kind: 'unknown', type, id };
  }
}

/**
 * One WebSocket message to its meaning: decodeFrame, then decodeEvent.
 * @param {Uint8Array | ArrayBuffer} data @param {number} [maxPayload]
 */
export function decodeMessage(data, maxPayload) {
  return decodeEvent(decodeFrame(data, maxPayload));
}

/**
 * Request ids: a u32 counter that skips 0 (pushes use id 0, docs/protocol.md section 2).
 */
export class Ids {
  constructor() {
    this.last = 0;
  }
  next() {
    this.last = this.last >= 0xffffffff ? 1 : this.last + 1;
    return this.last;
  }
}

/**
 * The WebSocket URL for this page: same origin, ws: or wss: as the page's scheme, and the
 * path from `?ws=/path` when it stays on this origin, else the server's default --ws-path.
 * @param {{ protocol: string, host: string, href: string, origin: string, search: string }} loc
 */
export function socketUrl(loc) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  let path = DEFAULT_WS_PATH;
  const asked = new URLSearchParams(loc.search).get('ws');
  if (asked && asked.startsWith('/')) {
    // "//host" and "/\\host" resolve off-site; only a path on this origin is taken.
    try {
      const url = new URL(asked, loc.href);
      if (url.origin === loc.origin) path = url.pathname;
    } catch {
      // not a URL at all: the default
    }
  }
  return `${scheme}//${loc.host}${path}`;
}

/** The server's default --ws-path. */
export const DEFAULT_WS_PATH = '/.well-known/muxd/mx';

/**
 * Reconnect delays: 1 s, doubling, at most 30 s (issue 15); reset after a successful join.
 * @param {number} attempt 0 for the first retry
 */
export function backoffMs(attempt) {
  return Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
}
