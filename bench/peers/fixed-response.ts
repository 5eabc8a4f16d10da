// The one precomputed response the fixed-response peers send: a 1 KiB body with headers like a
// static server's, padded so the whole response has the size muxd's 1 KiB file response has.
import { parseArgs } from 'node:util';

export const BODY_BYTES = 1024;
/** Used when the bench could not measure muxd's own response (about what a static server sends). */
export const DEFAULT_RESPONSE_BYTES = 1300;
/** What node:http adds on its own: `Date: <29 chars>`, `Connection: keep-alive`, `Keep-Alive: timeout=30`, with CRLFs. */
export const NODE_HTTP_OWN_HEADER_BYTES = 37 + 24 + 24;

export interface FixedResponse {
  /** Header fields in order, without Content-Length (node:http adds its own framing headers). */
  headers: [string, string][];
  body: Buffer;
  /** The whole HTTP/1.1 response, status line to last body byte. */
  wire: Buffer;
}

export function fixedResponse(totalBytes: number): FixedResponse {
  const body = Buffer.alloc(BODY_BYTES, 'x');
  const headers: [string, string][] = [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Last-Modified', 'Mon, 01 Jan 2024 00:00:00 GMT'],
    ['ETag', '"400-18cc1f6a800"'],
  ];
  const build = (): Buffer => {
    const lines = ['HTTP/1.1 200 OK', `Content-Length: ${BODY_BYTES}`, ...headers.map(([k, v]) => `${k}: ${v}`)];
    return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
  };
  // "X-Pad: " + value + CRLF adds 9 bytes plus the value.
  const padLen = totalBytes - build().length - 9;
  if (padLen > 0) headers.push(['X-Pad', 'p'.repeat(padLen)]);
  return { headers, body, wire: build() };
}

export interface PeerArgs {
  host: string;
  port: number;
  bytes: number;
  root: string;
}

export function peerArgs(): PeerArgs {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      bytes: { type: 'string', default: String(DEFAULT_RESPONSE_BYTES) },
      root: { type: 'string', default: '.' },
    },
  });
  return { host: values.host, port: Number(values.port), bytes: Number(values.bytes), root: values.root };
}

/** The ready line every peer prints; the bench parses the port from it. */
export function readyLine(name: string, host: string, port: number): string {
  return `peer ${name} listening on http://${host}:${port}\n`;
}
