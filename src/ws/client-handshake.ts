// The client side of the opening handshake (RFC 6455 §4.1), sans-IO, for the client library:
// the request head to write, and the judgement of the server's response head. No socket; the
// 16 random key bytes come from an injected source like the client frame encoder's mask keys.
import { MX_SUBPROTOCOL, WS_VERSION, acceptKey } from './keys.js';
import type { RandomSource } from './sender.js';

export interface ClientHandshakeOptions {
  /** Host header value: "127.0.0.1:8080". */
  host: string;
  /** Request target: "/.well-known/muxd/mx". */
  path: string;
  /** Subprotocols to offer; default ['mx1']. */
  protocols?: readonly string[];
  /** Sent as Origin when given (browsers always send one; the CLI need not). */
  origin?: string;
  random: RandomSource;
}

export interface ClientHandshake {
  /** The whole request head, request line to the blank line: write it as it is. */
  head: string;
  /** The Sec-WebSocket-Key sent: checkServerHandshake needs it. */
  key: string;
  protocols: readonly string[];
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SAFE_FIELD = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

export function clientHandshake(o: ClientHandshakeOptions): ClientHandshake {
  if (!SAFE_FIELD.test(o.host)) throw new RangeError(`invalid host ${JSON.stringify(o.host)}`);
  if (!o.path.startsWith('/') || !SAFE_FIELD.test(o.path) || o.path.includes(' ')) throw new RangeError(`invalid path ${JSON.stringify(o.path)}`);
  if (o.origin !== undefined && !SAFE_FIELD.test(o.origin)) throw new RangeError(`invalid origin ${JSON.stringify(o.origin)}`);
  const protocols = o.protocols ?? [MX_SUBPROTOCOL];
  for (const p of protocols) if (!TOKEN.test(p)) throw new RangeError(`invalid subprotocol ${JSON.stringify(p)}`);
  const bytes = new Uint8Array(16);
  o.random(bytes);
  const key = Buffer.from(bytes).toString('base64');
  let head = `GET ${o.path} HTTP/1.1\r\nHost: ${o.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: ${WS_VERSION}\r\n`;
  if (protocols.length > 0) head += `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n`;
  if (o.origin !== undefined) head += `Origin: ${o.origin}\r\n`;
  head += '\r\n';
  return { head, key, protocols };
}

export type ServerHandshakeResult =
  | { ok: true; protocol: string | null }
  | { ok: false; reason: string };

/**
 * Judges the server's response head (RFC 6455 §4.1, the client's checks): status 101,
 * Upgrade: websocket, Connection: upgrade, the right Sec-WebSocket-Accept, no extension (we
 * offered none), and a subprotocol only if it is one we offered.
 */
export function checkServerHandshake(
  status: number,
  headers: readonly (readonly [name: string, value: string])[],
  sent: ClientHandshake,
): ServerHandshakeResult {
  if (status !== 101) return { ok: false, reason: `the server answered ${status}, not 101` };
  const all = (name: string): string[] => headers.filter(([n]) => n === name).map(([, v]) => v);
  const tokens = (name: string): string[] => all(name).flatMap((v) => v.split(',')).map((t) => t.trim().toLowerCase()).filter((t) => t !== '');
  if (!tokens('upgrade').includes('websocket')) return { ok: false, reason: 'no Upgrade: websocket in the 101' };
  if (!tokens('connection').includes('upgrade')) return { ok: false, reason: 'no Connection: upgrade in the 101' };
  const accept = all('sec-websocket-accept');
  if (accept.length !== 1 || accept[0] !== acceptKey(sent.key)) return { ok: false, reason: 'wrong Sec-WebSocket-Accept' };
  if (all('sec-websocket-extensions').length > 0) return { ok: false, reason: 'the server selected an extension we did not offer' };
  const chosen = all('sec-websocket-protocol');
  if (chosen.length > 1) return { ok: false, reason: 'more than one Sec-WebSocket-Protocol in the 101' };
  if (chosen.length === 1 && !sent.protocols.includes(chosen[0]!)) return { ok: false, reason: `the server selected subprotocol ${chosen[0]} we did not offer` };
  return { ok: true, protocol: chosen[0] ?? null };
}
