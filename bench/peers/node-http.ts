// node:http with one fixed response: what the standard library's parser and writer cost.
import { createServer } from 'node:http';
import { NODE_HTTP_OWN_HEADER_BYTES, fixedResponse, peerArgs, readyLine } from './fixed-response.js';

const args = peerArgs();
// node:http writes Date/Connection/Keep-Alive itself: pad less so the total matches.
const { headers, body } = fixedResponse(args.bytes - NODE_HTTP_OWN_HEADER_BYTES);
const flat: string[] = [];
for (const [k, v] of headers) flat.push(k, v);
flat.push('Content-Length', String(body.length));
const server = createServer((_req, res) => {
  res.writeHead(200, flat);
  res.end(body);
});
server.keepAliveTimeout = 30_000;
server.listen(args.port, args.host, () => {
  const addr = server.address();
  process.stdout.write(readyLine('node-http', args.host, typeof addr === 'object' && addr ? addr.port : 0));
});
process.on('SIGTERM', () => process.exit(0));
