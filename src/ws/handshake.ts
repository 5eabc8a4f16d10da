// The WebSocket opening handshake, server side (RFC 6455 §4.2), as one pure function over plain
// inputs: the request's method, version, header list, scheme and Host, and the allowed origins.
// It decides; it writes nothing. The HTTP face calls it for requests to the WebSocket path and
// sends what it returns: the 101 head (then the connection belongs to the WebSocket driver) or a
// refusal (then Connection: close).
//
// No extension is ever accepted: a permessage-deflate offer is declined by not answering it
// (compressing attacker-chosen bytes next to secrets leaks them, CRIME/BREACH; inflating lets a
// small frame become a huge message). The subprotocol mx1 is selected when the client offers it.
import type { RequestHead } from '../http/types.js';
import { MX_SUBPROTOCOL, WS_VERSION, acceptKey } from './keys.js';

// The shared constants and acceptKey live in the leaf ./keys.js (the client imports that one).
export { WS_GUID, WS_VERSION, MX_SUBPROTOCOL, acceptKey } from './keys.js';

export interface UpgradeRequest {
  /** As sent (case-sensitive, RFC 9110 §9). */
  method: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor: 0 | 1;
  /** Every field in order, names lower-cased, values without surrounding whitespace. */
  headers: readonly (readonly [name: string, value: string])[];
  /** How the request reached us: 'https' on a TLS listener. */
  scheme: 'http' | 'https';
  /** The Host field value; null when absent. */
  host: string | null;
  /** Origins allowed besides our own ("https://app.example"), or '*' for any. */
  allowedOrigins: readonly string[] | '*';
}

export type UpgradeDecision =
  | {
      accept: true;
      status: 101;
      /** The whole response head, status line to the blank line included: write it as it is. */
      head: string;
      headers: [string, string][];
      /** 'mx1' when offered and so selected, else null. */
      protocol: string | null;
    }
  | {
      accept: false;
      status: 400 | 403 | 405 | 426;
      /** Headers this refusal needs (Allow, Upgrade, Sec-WebSocket-Version); the caller adds Content-Type, Content-Length and Connection: close. */
      headers: [string, string][];
      /** A short plain-text body ending in a newline. */
      body: string;
    };

type Refusal = Extract<UpgradeDecision, { accept: false }>;

function refuse(status: Refusal['status'], body: string, headers: [string, string][] = []): Refusal {
  return { accept: false, status, headers, body: body + '\n' };
}

/** All values of one field, in order. */
function values(headers: UpgradeRequest['headers'], name: string): string[] {
  const out: string[] = [];
  for (const [n, v] of headers) if (n === name) out.push(v);
  return out;
}

/** The comma-separated list elements of every field of this name (RFC 9110 §5.6.1), trimmed, empty ones dropped. */
function listElements(headers: UpgradeRequest['headers'], name: string): string[] {
  const out: string[] = [];
  for (const v of values(headers, name)) {
    for (const part of v.split(',')) {
      const t = part.trim();
      if (t !== '') out.push(t);
    }
  }
  return out;
}

/**
 * base64 of exactly 16 bytes, canonically encoded: 22 characters, the last of which carries only
 * 2 data bits (so one of A Q g w), then "==".
 */
const KEY_PATTERN = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

export function isValidKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/**
 * An origin in a comparable form, RFC 6454 style: scheme and host lower-cased, the default port
 * of http (80) and https (443) dropped. Null for anything that is not `scheme://host[:port]`
 * (a path, userinfo, whitespace): it matches nothing. The opaque origin "null" stays "null".
 */
export function normalizeOrigin(origin: string): string | null {
  if (origin === 'null') return 'null';
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#@\s\\]+)$/.exec(origin);
  if (m === null) return null;
  const scheme = m[1]!.toLowerCase();
  let host = m[2]!.toLowerCase();
  if (scheme === 'http' && host.endsWith(':80')) host = host.slice(0, -3);
  else if (scheme === 'https' && host.endsWith(':443')) host = host.slice(0, -4);
  if (host === '' || host.endsWith(':')) return null;
  return `${scheme}://${host}`;
}

function originAllowed(origin: string, req: UpgradeRequest): boolean {
  if (req.allowedOrigins === '*') return true;
  const o = normalizeOrigin(origin);
  if (o === null) return false;
  if (req.host !== null && o !== 'null' && o === normalizeOrigin(`${req.scheme}://${req.host}`)) return true;
  for (const allowed of req.allowedOrigins) if (normalizeOrigin(allowed.trim()) === o) return true;
  return false;
}

/**
 * Decides an upgrade request, checks in this order: method (405), HTTP/1.0 (400), a body (400),
 * Upgrade: websocket (426), the Connection upgrade token (400), Sec-WebSocket-Key (400),
 * Sec-WebSocket-Version (426), Origin (403, RFC 6455 §10.2: a browser lets any site open a
 * WebSocket to us with the user's cookies, so a foreign Origin is refused; requests without
 * Origin come from non-browser clients and are allowed).
 */
export function decideUpgrade(req: UpgradeRequest): UpgradeDecision {
  const h = req.headers;
  if (req.method !== 'GET') return refuse(405, 'a WebSocket upgrade must be a GET', [['Allow', 'GET']]);
  if (req.versionMinor !== 1) return refuse(400, 'a WebSocket upgrade needs HTTP/1.1');
  const lengths = values(h, 'content-length');
  if (lengths.some((v) => v !== '0') || values(h, 'transfer-encoding').length > 0) {
    return refuse(400, 'a WebSocket upgrade request carries no body');
  }
  if (!listElements(h, 'upgrade').some((p) => p.toLowerCase() === 'websocket')) {
    return refuse(426, 'this path speaks WebSocket only: send Upgrade: websocket', [['Upgrade', 'websocket']]);
  }
  if (!listElements(h, 'connection').some((t) => t.toLowerCase() === 'upgrade')) {
    return refuse(400, 'a WebSocket upgrade needs Connection: Upgrade');
  }
  if (req.host === null) return refuse(400, 'a WebSocket upgrade needs a Host field');
  const keys = values(h, 'sec-websocket-key');
  if (keys.length !== 1 || !isValidKey(keys[0]!)) {
    return refuse(400, keys.length === 0 ? 'missing Sec-WebSocket-Key' : 'Sec-WebSocket-Key must be the base64 of 16 bytes');
  }
  const versions = values(h, 'sec-websocket-version');
  if (versions.length !== 1 || versions[0] !== WS_VERSION) {
    return refuse(426, 'only WebSocket version 13 is supported', [['Sec-WebSocket-Version', WS_VERSION]]);
  }
  const origins = values(h, 'origin');
  if (origins.length > 1 || (origins.length === 1 && !originAllowed(origins[0]!, req))) {
    return refuse(403, 'this Origin may not open a WebSocket here');
  }
  const protocol = listElements(h, 'sec-websocket-protocol').includes(MX_SUBPROTOCOL) ? MX_SUBPROTOCOL : null;
  const headers: [string, string][] = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', acceptKey(keys[0]!)],
  ];
  if (protocol !== null) headers.push(['Sec-WebSocket-Protocol', protocol]);
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [n, v] of headers) head += `${n}: ${v}\r\n`;
  head += '\r\n';
  return { accept: true, status: 101, head, headers, protocol };
}

/** The same decision for a head from our HTTP parser (its flat [name, value, ...] list). */
export function decideUpgradeForHead(head: RequestHead, scheme: 'http' | 'https', allowedOrigins: readonly string[] | '*'): UpgradeDecision {
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < head.headers.length; i += 2) headers.push([head.headers[i]!, head.headers[i + 1]!]);
  return decideUpgrade({ method: head.method, versionMinor: head.versionMinor, headers, scheme, host: head.host, allowedOrigins });
}

const REASON: Record<Refusal['status'], string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
};

/** A complete refusal response (head and body) for callers that write it as it is. */
export function refusalResponse(r: Refusal): string {
  let out = `HTTP/1.1 ${r.status} ${REASON[r.status]}\r\n`;
  for (const [n, v] of r.headers) out += `${n}: ${v}\r\n`;
  out += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(r.body)}\r\nConnection: close\r\n\r\n`;
  return out + r.body;
}

export type { Refusal as UpgradeRefusal };
