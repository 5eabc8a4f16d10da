// MX/1 over WebSocket (issue 15): every binary message is exactly one MX/1 frame, its 12-byte
// header and then as many payload bytes as the header says. A message that is not is answered as
// the TCP face answers a frame it cannot trust: MX/1 ERROR (id 0), then close 1002.
import { ErrorCode, HEADER_SIZE, MAGIC, VERSION } from '../wire/protocol.js';

export type MxMessage =
  /** One well-formed frame; `payload` is a view into the message. */
  | { ok: true; type: number; id: number; payload: Buffer }
  /**
   * Not one frame: answer ERROR `code` with id 0 (ErrorCode.BAD_MAGIC_OR_VERSION or
   * FRAME_TOO_LARGE, both fatal), then close the WebSocket with 1002.
   */
  | { ok: false; code: number; message: string };

// Header layout `!HBBII` (src/wire/frame.ts): magic u16 at 0, version u8 at 2, type u8 at 3,
// id u32 at 4, length u32 at 8.

/**
 * Judges one binary message against the MX/1 framing rules, in the order the TCP face checks a
 * header: shorter than a header, or bad magic or version: ERROR 1; a declared length over
 * `maxPayload` (--max-frame): ERROR 2, whatever the message holds; a message shorter or longer
 * than its header says: ERROR 1 (over TCP those bytes could not be framed either).
 */
export function checkMxMessage(message: Buffer, maxPayload: number): MxMessage {
  const n = message.length;
  if (n < HEADER_SIZE) {
    return { ok: false, code: ErrorCode.BAD_MAGIC_OR_VERSION, message: `message of ${n} bytes is shorter than the ${HEADER_SIZE}-byte MX/1 header` };
  }
  const magic = message.readUInt16BE(0);
  if (magic !== MAGIC) return { ok: false, code: ErrorCode.BAD_MAGIC_OR_VERSION, message: `bad magic 0x${magic.toString(16).padStart(4, '0')}` };
  const version = message[2]!;
  if (version !== VERSION) return { ok: false, code: ErrorCode.BAD_MAGIC_OR_VERSION, message: `unsupported version ${version}` };
  const length = message.readUInt32BE(8);
  if (length > maxPayload) {
    return { ok: false, code: ErrorCode.FRAME_TOO_LARGE, message: `frame payload of ${length} bytes exceeds the limit of ${maxPayload}` };
  }
  const present = n - HEADER_SIZE;
  if (length !== present) {
    return {
      ok: false,
      code: ErrorCode.BAD_MAGIC_OR_VERSION,
      message: length > present
        ? `MX/1 header says ${length} payload bytes but the WebSocket message carries ${present}`
        : `${present - length} bytes after the MX/1 frame in one WebSocket message`,
    };
  }
  return { ok: true, type: message[3]!, id: message.readUInt32BE(4), payload: message.subarray(HEADER_SIZE) };
}

/** The WebSocket limit for a face whose MX/1 frames carry at most `maxPayload` bytes: the header on top. */
export function wsMaxMessage(maxPayload: number): number {
  return maxPayload + HEADER_SIZE;
}
