// MX/1 wire constants: the contract documented in docs/protocol.md. Shared by the server
// (src/binary) and the client library (src/client); it imports nothing.

/** "MX" in ASCII; the first two bytes of every frame. */
export const MAGIC = 0x4d58;
export const VERSION = 1;
/** struct `!HBBII`: magic u16, version u8, type u8, id u32, length u32. */
export const HEADER_SIZE = 12;
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** A reply's type is its request's type with the high bit set. */
export const REPLY_BIT = 0x80;

export const Type = {
  PING: 0x01,
  STATS: 0x02,
  /** Authenticates the connection for PUT when the server has an upload token. */
  AUTH: 0x03,
  JOIN: 0x10,
  SAY: 0x11,
  LEAVE: 0x12,
  NAMES: 0x13,
  ANNOUNCE: 0x14,
  PUT: 0x20,
  GET: 0x21,
  LIST: 0x22,
  DATA: 0x30,

  PING_OK: 0x81,
  STATS_OK: 0x82,
  AUTH_OK: 0x83,
  JOIN_OK: 0x90,
  SAY_OK: 0x91,
  LEAVE_OK: 0x92,
  NAMES_OK: 0x93,
  ANNOUNCE_OK: 0x94,
  PUT_OK: 0xa0,
  GET_OK: 0xa1,
  LIST_OK: 0xa2,

  /** Server pushes carry id 0. */
  USER_JOINED: 0xc0,
  MESSAGE: 0xc1,
  USER_LEFT: 0xc2,
  ANNOUNCEMENT: 0xc3,

  ERROR: 0xff,
} as const;
export type TypeCode = (typeof Type)[keyof typeof Type];

export const ErrorCode = {
  BAD_MAGIC_OR_VERSION: 1,
  FRAME_TOO_LARGE: 2,
  UNKNOWN_TYPE: 3,
  MALFORMED: 4,
  INVALID_NAME: 10,
  NAME_TAKEN: 11,
  NOT_JOINED: 12,
  ALREADY_JOINED: 13,
  FORBIDDEN: 14,
  /** UDP: JOIN needs the cookie carried in this error's payload (address validation). */
  COOKIE_REQUIRED: 15,
  NOT_FOUND: 20,
  BAD_FILE_NAME: 21,
  FILE_TOO_LARGE: 22,
  CHECKSUM_MISMATCH: 23,
  ID_IN_USE: 24,
  OFFSET_BEYOND_END: 25,
  /** ENOSPC / EDQUOT: nothing partial is kept. */
  STORAGE_FULL: 26,
  /** A transfer made no progress for --transfer-timeout. */
  TRANSFER_TIMEOUT: 27,
  INTERNAL: 50,
  /** A server-wide or per-address budget is exhausted: retryable, the text names the limit. */
  BUSY: 51,
  /** The chat relay (other workers or machines) is unreachable: JOIN cannot promise a unique name. */
  CHAT_RELAY_UNAVAILABLE: 52,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes after which the server closes the connection: the byte stream can no longer be framed. */
export function isFatal(code: number): boolean {
  return code === ErrorCode.BAD_MAGIC_OR_VERSION || code === ErrorCode.FRAME_TOO_LARGE;
}

export const SHA256_SIZE = 32;
export const MAX_SAY_BYTES = 4096;
export const MAX_CHAT_NAME_CHARS = 32;
export const MAX_FILE_NAME_BYTES = 255;
export const RESERVED_NAMES: readonly string[] = ['server', 'admin'];
