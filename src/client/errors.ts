// Errors the client library rejects with. Positive codes come from the server's ERROR frames
// (protocol.ts ErrorCode); negative codes are local conditions no server ever sends.
import { CodedError } from '../loop/coded-error.js';

/** Local error codes (negative so they can never collide with a server's u16 code). */
export const LocalCode = {
  /** No reply (or, for a transfer, no progress) within timeoutMs. */
  TIMEOUT: -1,
  /** The connection closed (or was closed by us) before the reply arrived. */
  CLOSED: -2,
  /** The server sent something that breaks the protocol (wrong reply type, malformed payload, too many DATA bytes). */
  PROTOCOL: -3,
  /** A local input problem found before anything was sent (a file that changed while it was being uploaded, ...). */
  LOCAL: -4,
  /** TLS failed: the server's certificate could not be verified or names another host, or the handshake failed. */
  TLS: -5,
} as const;

/** `code`: the server's MX/1 error code (1..65535) or one of LocalCode (negative). */
export class MuxError extends CodedError<number> {}
