// The JavaScript ceiling for HTTP: a raw `net` server that answers every request with one
// precomputed response. It still finds request boundaries (the "\r\n\r\n" that ends a head,
// RFC 9112 §2.1) across chunk splits, so pipelined requests each get their answer. Requests
// with bodies are not expected (the bench only sends GET).
import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { fixedResponse, peerArgs, readyLine } from './fixed-response.js';

const CR = 13;
const LF = 10;

/**
 * Counts complete request heads in a byte stream. `matched` is how much of CRLF CRLF the previous
 * chunk ended with, so a terminator split across chunks is still found.
 */
export class HeadCounter {
  private matched = 0;

  /** Number of heads that ended inside `chunk`. */
  push(chunk: Buffer): number {
    let heads = 0;
    let m = this.matched;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === (m === 0 || m === 2 ? CR : LF)) {
        if (++m === 4) {
          heads++;
          m = 0;
        }
      } else {
        m = b === CR ? 1 : 0;
      }
    }
    this.matched = m;
    return heads;
  }
}

function main(): void {
  const args = peerArgs();
  const one = fixedResponse(args.bytes).wire;
  // Up to 16 answers per write come from one preallocated buffer: no concatenation per request.
  const MAX_BATCH = 16;
  const batch = Buffer.concat(Array.from({ length: MAX_BATCH }, () => one));
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    const counter = new HeadCounter();
    socket.on('data', (chunk: Buffer) => {
      let n = counter.push(chunk);
      while (n > 0) {
        const k = Math.min(n, MAX_BATCH);
        socket.write(k === 1 ? one : batch.subarray(0, k * one.length));
        n -= k;
      }
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(args.port, args.host, () => {
    const addr = server.address();
    process.stdout.write(readyLine('raw-net', args.host, typeof addr === 'object' && addr ? addr.port : 0));
  });
  process.on('SIGTERM', () => process.exit(0));
}

// Importable by tests (HeadCounter) without starting a server.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
