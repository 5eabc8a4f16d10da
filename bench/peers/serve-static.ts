// node:http + serve-static (the `send` module underneath): the usual Node static-file stack.
import { createServer } from 'node:http';
import serveStatic from 'serve-static';
import { peerArgs, readyLine } from './fixed-response.js';

const args = peerArgs();
const serve = serveStatic(args.root, { index: ['index.html'] });
const server = createServer((req, res) => {
  serve(req, res, () => {
    res.statusCode = 404;
    res.end('not found');
  });
});
server.keepAliveTimeout = 30_000;
server.listen(args.port, args.host, () => {
  const addr = server.address();
  process.stdout.write(readyLine('serve-static', args.host, typeof addr === 'object' && addr ? addr.port : 0));
});
process.on('SIGTERM', () => process.exit(0));
