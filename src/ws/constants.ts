// RFC 6455 constants: opcodes (§5.2, §11.8), close codes (§7.4, §11.7) and the table of which
// close codes may appear on the wire. Imports nothing.

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  /** The endpoint cannot accept this kind of data (here: text; MX/1 is binary). */
  UNSUPPORTED_DATA: 1003,
  /** Never on the wire: what an API reports for a close frame without a code. */
  NO_STATUS: 1005,
  /** Never on the wire: what an API reports when the connection dropped without a close frame. */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
} as const;

/** Control frames carry at most this many payload bytes and are never fragmented (§5.5). */
export const MAX_CONTROL_PAYLOAD = 125;
/** A close reason fits in a control frame after the 2-byte code. */
export const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2;
/** The largest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask. */
export const MAX_HEADER_SIZE = 14;

interface CloseCodeRange {
  readonly from: number;
  readonly to: number;
  /** May a peer put this code in a close frame (RFC 6455 §7.4.1, §7.4.2, the IANA registry)? */
  readonly onWire: boolean;
  readonly meaning: string;
}

/**
 * Every u16 close code, by range. A close frame whose code falls in a range marked `onWire:
 * false` is a protocol error (1002); the encoder refuses to send one. 1012-1014 were registered
 * with IANA after the RFC (service restart, try again later, bad gateway) and browsers send them.
 */
export const CLOSE_CODE_TABLE: readonly CloseCodeRange[] = [
  { from: 0, to: 999, onWire: false, meaning: 'not used (§7.4.2)' },
  { from: 1000, to: 1000, onWire: true, meaning: 'normal closure' },
  { from: 1001, to: 1001, onWire: true, meaning: 'going away' },
  { from: 1002, to: 1002, onWire: true, meaning: 'protocol error' },
  { from: 1003, to: 1003, onWire: true, meaning: 'unsupported data' },
  { from: 1004, to: 1004, onWire: false, meaning: 'reserved' },
  { from: 1005, to: 1005, onWire: false, meaning: 'no status received: never sent' },
  { from: 1006, to: 1006, onWire: false, meaning: 'abnormal closure: never sent' },
  { from: 1007, to: 1007, onWire: true, meaning: 'invalid frame payload data' },
  { from: 1008, to: 1008, onWire: true, meaning: 'policy violation' },
  { from: 1009, to: 1009, onWire: true, meaning: 'message too big' },
  { from: 1010, to: 1010, onWire: true, meaning: 'mandatory extension' },
  { from: 1011, to: 1011, onWire: true, meaning: 'internal error' },
  { from: 1012, to: 1012, onWire: true, meaning: 'service restart (IANA)' },
  { from: 1013, to: 1013, onWire: true, meaning: 'try again later (IANA)' },
  { from: 1014, to: 1014, onWire: true, meaning: 'bad gateway (IANA)' },
  { from: 1015, to: 1015, onWire: false, meaning: 'TLS handshake failure: never sent' },
  { from: 1016, to: 2999, onWire: false, meaning: 'reserved for this protocol, unassigned' },
  { from: 3000, to: 3999, onWire: true, meaning: 'registered with IANA by libraries and frameworks' },
  { from: 4000, to: 4999, onWire: true, meaning: 'private use' },
  { from: 5000, to: 65535, onWire: false, meaning: 'undefined by RFC 6455' },
];

/** True when `code` may appear in a close frame. */
export function isCloseCodeAllowedOnWire(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  for (const r of CLOSE_CODE_TABLE) if (code >= r.from && code <= r.to) return r.onWire;
  return false;
}
