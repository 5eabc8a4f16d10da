// The constants and the accept-key computation both ends of the opening handshake share
// (RFC 6455 §1.3, §4.2.2). A leaf: it imports only node:crypto, so the client library can use it
// without reaching the server side of the handshake (which knows src/http's request type).
import { createHash } from 'node:crypto';

/** RFC 6455 §1.3: appended to the client's key before hashing. */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const WS_VERSION = '13';
export const MX_SUBPROTOCOL = 'mx1';

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2 item 5.4). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID, 'latin1').digest('base64');
}
