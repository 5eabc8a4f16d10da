// node:https with one fixed response, the same bytes as the node-http peer: what the standard
// library's TLS server, parser and writer cost. Serves --cert/--key (the bench's certificate).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';
import { DEFAULT_RESPONSE_BYTES, NODE_HTTP_OWN_HEADER_BYTES, fixedResponse } from './fixed-response.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    bytes: { type: 'string', default: String(DEFAULT_RESPONSE_BYTES) },
    cert: { type: 'string' },
    key: { type: 'string' },
  },
});
if (values.cert === undefined || values.key === undefined) throw new Error('node-https needs --cert FILE and --key FILE');
// node:https writes Date/Connection/Keep-Alive itself, as node:http does: pad less so the total matches.
const { headers, body } = fixedResponse(Number(values.bytes) - NODE_HTTP_OWN_HEADER_BYTES);
const flat: string[] = [];
for (const [k, v] of headers) flat.push(k, v);
flat.push('Content-Length', String(body.length));
// Node's defaults otherwise (TLS 1.2 minimum, its cipher list, session tickets on), as muxd uses.
const server = createServer({ cert: readFileSync(values.cert), key: readFileSync(values.key), ALPNProtocols: ['http/1.1'] }, (_req, res) => {
  res.writeHead(200, flat);
  res.end(body);
});
server.keepAliveTimeout = 30_000;
server.listen(Number(values.port), values.host, () => {
  const addr = server.address();
  process.stdout.write(`peer node-https listening on ${values.host}:${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
