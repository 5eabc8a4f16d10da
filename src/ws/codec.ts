// The WebSocket codec in one import: RFC 6455 framing (receiver, server and client encoders,
// masking, the close-code table). The handshake (./handshake.js), the MX/1-per-message check
// (./mx.js) and the connection state machine (./connection.js) are imported on their own.
export { CLOSE_CODE_TABLE, CloseCode, MAX_CLOSE_REASON_BYTES, MAX_CONTROL_PAYLOAD, MAX_HEADER_SIZE, Opcode, isCloseCodeAllowedOnWire } from './constants.js';
export { applyMask, unmaskInPlace } from './mask.js';
export { WsReceiver, type ReceiverOptions, type Role, type WsEvent } from './receiver.js';
export {
  ClientFrameEncoder,
  binaryHeader,
  closePayload,
  encodeBinary,
  encodeClose,
  encodePing,
  encodePong,
  fitCloseReason,
  serverFrameHeader,
  type RandomSource,
} from './sender.js';
