// One HTTP/1.1 request over a raw socket, reading exactly one response: used to check a server
// before loading it, to fetch the ETag a revalidation load sends back, and to measure the exact
// size of muxd's 1 KiB response so the fixed-response peers send as many bytes.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  /** Status line + headers + body, in bytes. */
  totalBytes: number;
}

/** `secure`: over TLS (the bench's self-signed certificate is not verified). */
export function rawGet(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', timeoutMs = 5000, secure = false): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket: Socket = secure ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }) : connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let received = 0;
    const fail = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no full response to ${method} ${path} within ${timeoutMs} ms`)));
    socket.on('error', fail);
    socket.on(secure ? 'secureConnect' : 'connect', () => {
      const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      const parsed = parseHead(all.toString('latin1', 0, end));
      const length = method === 'HEAD' || parsed.status === 304 || parsed.status === 204 ? 0 : Number(parsed.headers.get('content-length') ?? 0);
      const total = end + 4 + length;
      if (received >= total) {
        socket.destroy();
        resolve({ ...parsed, totalBytes: total });
      }
    });
  });
}

/** Status and lower-cased header fields of a response head (without the final CRLF CRLF); exported for tests. */
export function parseHead(head: string): { status: number; headers: Map<string, string> } {
  const lines = head.split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status, headers };
}
