// The JavaScript ceiling for MX/1: decode each 12-byte header, answer PING (0x01) with 0x81 and
// the same id and payload, nothing else. All replies to one chunk go out in one write.
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { MX, MX_HEADER, MX_MAGIC, MX_VERSION, writeHeader, encodeFrame } from '../lib/mx.js';

const MAX_PAYLOAD = 1 << 20;
const UNKNOWN_TYPE = encodeFrame(MX.ERROR, 0, Buffer.from([0, 3]));

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer | null = null;
  socket.on('data', (chunk: Buffer) => {
    const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    // First pass: find the complete frames and the size of all their replies.
    let pos = 0;
    let outBytes = 0;
    while (buf.length - pos >= MX_HEADER) {
      if (buf.readUInt16BE(pos) !== MX_MAGIC || buf[pos + 2] !== MX_VERSION) return void socket.destroy();
      const length = buf.readUInt32BE(pos + 8);
      if (length > MAX_PAYLOAD) return void socket.destroy();
      if (buf.length - pos - MX_HEADER < length) break;
      outBytes += buf[pos + 3] === MX.PING ? MX_HEADER + length : UNKNOWN_TYPE.length;
      pos += MX_HEADER + length;
    }
    const end = pos;
    if (end < buf.length) pending = buf.subarray(end);
    if (outBytes === 0) return;
    // Second pass: every reply of this chunk into one buffer, one write (one syscall).
    const out = Buffer.allocUnsafe(outBytes);
    let at = 0;
    for (pos = 0; pos < end; ) {
      const length = buf.readUInt32BE(pos + 8);
      if (buf[pos + 3] === MX.PING) {
        writeHeader(out, at, MX.PING_OK, buf.readUInt32BE(pos + 4), length);
        buf.copy(out, at + MX_HEADER, pos + MX_HEADER, pos + MX_HEADER + length);
        at += MX_HEADER + length;
      } else {
        UNKNOWN_TYPE.copy(out, at);
        at += UNKNOWN_TYPE.length;
      }
      pos += MX_HEADER + length;
    }
    socket.write(out);
  });
  socket.on('error', () => socket.destroy());
}

const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });
const server = createServer(serve);
server.listen(Number(values.port), values.host, () => {
  const addr = server.address();
  process.stdout.write(`peer ping-server listening on ${values.host}:${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
