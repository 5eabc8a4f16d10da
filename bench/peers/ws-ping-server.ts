// MX/1 PING over WebSocket on the `ws` package: what a user would otherwise put together, kept
// minimal. Every binary message is one MX/1 frame; a PING (0x01) is answered with 0x81, the same
// id and payload, as one binary message; any other type with ERROR 3 (unknown type), id 0; a
// message that is not one whole frame closes with 1002. No compression (ws's server default).
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { parseArgs } from 'node:util';
import { MX, MX_HEADER, MX_MAGIC, MX_VERSION, encodeFrame, writeHeader } from '../lib/mx.js';

const MAX_PAYLOAD = 1 << 20;
const UNKNOWN_TYPE = encodeFrame(MX.ERROR, 0, Buffer.from([0, 3]));

function onMessage(ws: WebSocket, data: RawData, isBinary: boolean): void {
  // With the default binaryType ('nodebuffer') an unfragmented message is one Buffer.
  const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  if (!isBinary || buf.length < MX_HEADER || buf.readUInt16BE(0) !== MX_MAGIC || buf[2] !== MX_VERSION || buf.readUInt32BE(8) !== buf.length - MX_HEADER) {
    return void ws.close(1002, 'one MX/1 frame per binary message');
  }
  if (buf[3] !== MX.PING) return void ws.send(UNKNOWN_TYPE);
  // The reply is the request with another type byte: one new buffer, as the TCP peer makes.
  const out = Buffer.allocUnsafe(buf.length);
  writeHeader(out, 0, MX.PING_OK, buf.readUInt32BE(4), buf.length - MX_HEADER);
  buf.copy(out, MX_HEADER, MX_HEADER);
  ws.send(out);
}

const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });
const wss = new WebSocketServer({
  host: values.host,
  port: Number(values.port),
  maxPayload: MAX_PAYLOAD + MX_HEADER,
  perMessageDeflate: false,
  // Selects mx1 when offered, as muxd does; any path is accepted.
  handleProtocols: (protocols) => (protocols.has('mx1') ? 'mx1' : false),
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
  ws.on('error', () => ws.terminate());
});
wss.on('listening', () => {
  const addr = wss.address();
  process.stdout.write(`peer ws-ping-server listening on ${values.host}:${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
