// The chat pushes (id 0, docs/protocol.md §3 "Pushes") as client events: one decoder for the
// stream client and the datagram client, so both emit exactly the same events.
import { decodeMessage, decodeText } from '../wire/payloads.js';
import { Type } from '../wire/protocol.js';

export type ChatEvent = ['userJoined', string] | ['userLeft', string] | ['announcement', string] | ['message', string, string];

/** The event a push carries, or null for a push type from a newer server (ignored, not an error). Throws WireError on a malformed payload. */
export function decodePush(type: number, payload: Buffer): ChatEvent | null {
  switch (type) {
    case Type.USER_JOINED:
      return ['userJoined', decodeText(payload)];
    case Type.MESSAGE: {
      const { from, text } = decodeMessage(payload);
      return ['message', from, text];
    }
    case Type.USER_LEFT:
      return ['userLeft', decodeText(payload)];
    case Type.ANNOUNCEMENT:
      return ['announcement', decodeText(payload)];
    default:
      return null;
  }
}
