// The upgrade decision (src/ws/handshake.ts): one table, a name per case, from the RFC 6455 §1.3
// sample key to every refusal of issue 15 and the cross-site hijacking defence (§10.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptKey, decideUpgrade, decideUpgradeForHead, isValidKey, normalizeOrigin, refusalResponse, type UpgradeRequest } from '../../src/ws/handshake.js';
import type { RequestHead } from '../../src/http/types.js';

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

type Headers = [string, string][];
const BASE: Headers = [
  ['host', '127.0.0.1:8080'],
  ['upgrade', 'websocket'],
  ['connection', 'Upgrade'],
  ['sec-websocket-key', SAMPLE_KEY],
  ['sec-websocket-version', '13'],
];

function req(over: Partial<UpgradeRequest> & { set?: Headers; drop?: string[]; add?: Headers } = {}): UpgradeRequest {
  let headers: Headers = BASE.filter(([n]) => !(over.drop ?? []).includes(n) && !(over.set ?? []).some(([s]) => s === n));
  headers = [...headers, ...(over.set ?? []), ...(over.add ?? [])];
  return {
    method: over.method ?? 'GET',
    versionMinor: over.versionMinor ?? 1,
    headers,
    scheme: over.scheme ?? 'http',
    host: over.host !== undefined ? over.host : '127.0.0.1:8080',
    allowedOrigins: over.allowedOrigins ?? [],
  };
}

interface Case {
  name: string;
  request: UpgradeRequest;
  status: number;
  /** Headers the answer must carry (name, value). */
  has?: Headers;
  /** Header names the answer must not carry. */
  lacks?: string[];
  protocol?: string | null;
}

const CASES: Case[] = [
  // Accepted
  { name: 'RFC 6455 §1.3 sample key', request: req(), status: 101, has: [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Accept', SAMPLE_ACCEPT]], lacks: ['Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions'], protocol: null },
  { name: 'mx1 offered: selected', request: req({ add: [['sec-websocket-protocol', 'mx1']] }), status: 101, has: [['Sec-WebSocket-Protocol', 'mx1']], protocol: 'mx1' },
  { name: 'mx1 among several offers, over two fields', request: req({ add: [['sec-websocket-protocol', 'chat, superchat'], ['sec-websocket-protocol', ' mx1 ']] }), status: 101, has: [['Sec-WebSocket-Protocol', 'mx1']], protocol: 'mx1' },
  { name: 'other subprotocols only: none selected, not refused', request: req({ add: [['sec-websocket-protocol', 'chat, MX1']] }), status: 101, lacks: ['Sec-WebSocket-Protocol'], protocol: null },
  { name: 'permessage-deflate offered: declined by not answering', request: req({ add: [['sec-websocket-extensions', 'permessage-deflate; client_max_window_bits']] }), status: 101, lacks: ['Sec-WebSocket-Extensions'] },
  { name: 'Connection with several tokens, any case', request: req({ set: [['connection', 'keep-alive, UPGRADE']] }), status: 101 },
  { name: 'Connection split over two fields', request: req({ set: [['connection', 'keep-alive']], add: [['connection', 'upgrade']] }), status: 101 },
  { name: 'Upgrade: WebSocket in another case, among others', request: req({ set: [['upgrade', 'h2c, WebSocket']] }), status: 101 },
  { name: 'Content-Length: 0 is no body', request: req({ add: [['content-length', '0']] }), status: 101 },
  { name: 'no Origin (a non-browser client): allowed', request: req(), status: 101 },
  { name: 'Origin is our own (scheme + Host)', request: req({ add: [['origin', 'http://127.0.0.1:8080']] }), status: 101 },
  { name: 'Origin is our own, in another case', request: req({ add: [['origin', 'HTTP://LocalHost:8080']], host: 'localhost:8080', set: [['host', 'localhost:8080']] }), status: 101 },
  { name: 'Origin our own on https, default port omitted by the browser', request: req({ scheme: 'https', host: 'chat.example:443', add: [['origin', 'https://chat.example']] }), status: 101 },
  { name: 'Origin our own on http, Host without the default port, Origin with it', request: req({ host: 'chat.example', add: [['origin', 'http://chat.example:80']] }), status: 101 },
  { name: 'Origin in the allowed list', request: req({ allowedOrigins: ['https://app.example', 'https://other.example'], add: [['origin', 'https://other.example']] }), status: 101 },
  { name: 'any Origin with the list *', request: req({ allowedOrigins: '*', add: [['origin', 'https://evil.example']] }), status: 101 },

  // Refused
  { name: 'POST: 405 with Allow: GET', request: req({ method: 'POST' }), status: 405, has: [['Allow', 'GET']] },
  { name: 'lower-case get is another method: 405', request: req({ method: 'get' }), status: 405, has: [['Allow', 'GET']] },
  { name: 'HTTP/1.0: 400', request: req({ versionMinor: 0 }), status: 400 },
  { name: 'a Content-Length body: 400', request: req({ add: [['content-length', '5']] }), status: 400 },
  { name: 'any Transfer-Encoding: 400', request: req({ add: [['transfer-encoding', 'chunked']] }), status: 400 },
  { name: 'plain GET without Upgrade: 426 with Upgrade: websocket', request: req({ drop: ['upgrade', 'connection'] }), status: 426, has: [['Upgrade', 'websocket']] },
  { name: 'Upgrade to something else: 426', request: req({ set: [['upgrade', 'h2c']] }), status: 426, has: [['Upgrade', 'websocket']] },
  { name: 'Connection without the upgrade token: 400', request: req({ set: [['connection', 'keep-alive']] }), status: 400 },
  { name: 'no Connection field: 400', request: req({ drop: ['connection'] }), status: 400 },
  { name: 'no Host: 400', request: req({ host: null, drop: ['host'] }), status: 400 },
  { name: 'missing Sec-WebSocket-Key: 400', request: req({ drop: ['sec-websocket-key'] }), status: 400 },
  { name: 'key of 15 bytes: 400', request: req({ set: [['sec-websocket-key', Buffer.alloc(15, 1).toString('base64')]] }), status: 400 },
  { name: 'key of 17 bytes: 400', request: req({ set: [['sec-websocket-key', Buffer.alloc(17, 1).toString('base64')]] }), status: 400 },
  { name: 'key not base64: 400', request: req({ set: [['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ!=']] }), status: 400 },
  { name: 'key without padding: 400', request: req({ set: [['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ']] }), status: 400 },
  { name: 'key not canonically encoded (stray low bits): 400', request: req({ set: [['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZR==']] }), status: 400 },
  { name: 'two keys: 400', request: req({ add: [['sec-websocket-key', SAMPLE_KEY]] }), status: 400 },
  { name: 'version 8: 426 with Sec-WebSocket-Version: 13', request: req({ set: [['sec-websocket-version', '8']] }), status: 426, has: [['Sec-WebSocket-Version', '13']] },
  { name: 'no version: 426', request: req({ drop: ['sec-websocket-version'] }), status: 426, has: [['Sec-WebSocket-Version', '13']] },
  { name: 'version list "13, 8": 426', request: req({ set: [['sec-websocket-version', '13, 8']] }), status: 426, has: [['Sec-WebSocket-Version', '13']] },
  { name: 'cross-site Origin: 403', request: req({ add: [['origin', 'https://evil.example']] }), status: 403 },
  { name: 'our host on the other scheme: 403', request: req({ add: [['origin', 'https://127.0.0.1:8080']] }), status: 403 },
  { name: 'our host on another port: 403', request: req({ add: [['origin', 'http://127.0.0.1:8081']] }), status: 403 },
  { name: 'Origin with userinfo that names our host after the @: 403', request: req({ add: [['origin', 'http://evil.example@127.0.0.1:8080']] }), status: 403 },
  { name: 'Origin with a path: 403', request: req({ add: [['origin', 'http://127.0.0.1:8080/']] }), status: 403 },
  { name: 'opaque Origin "null": 403', request: req({ add: [['origin', 'null']] }), status: 403 },
  { name: 'Origin not in the allowed list: 403', request: req({ allowedOrigins: ['https://app.example'], add: [['origin', 'https://app.example.evil']] }), status: 403 },
  { name: 'two Origin fields: 403', request: req({ add: [['origin', 'http://127.0.0.1:8080'], ['origin', 'http://127.0.0.1:8080']] }), status: 403 },
  { name: 'cross-site Origin on a request that is also bad otherwise: the protocol refusal comes first', request: req({ method: 'POST', add: [['origin', 'https://evil.example']] }), status: 405 },
];

for (const c of CASES) {
  test(`ws handshake: ${c.name}`, () => {
    const d = decideUpgrade(c.request);
    assert.equal(d.status, c.status, d.accept ? 'accepted' : d.body);
    for (const [n, v] of c.has ?? []) assert.ok(d.headers.some(([hn, hv]) => hn === n && hv === v), `has ${n}: ${v}`);
    for (const n of c.lacks ?? []) assert.ok(!d.headers.some(([hn]) => hn.toLowerCase() === n.toLowerCase()), `lacks ${n}`);
    if (d.accept) {
      if (c.protocol !== undefined) assert.equal(d.protocol, c.protocol);
      assert.ok(d.head.startsWith('HTTP/1.1 101 Switching Protocols\r\n'));
      assert.ok(d.head.endsWith('\r\n\r\n'));
      for (const [n, v] of d.headers) assert.ok(d.head.includes(`\r\n${n}: ${v}\r\n`));
    } else {
      assert.ok(d.body.length > 0 && d.body.length < 200 && d.body.endsWith('\n'), 'a short body');
    }
  });
}

test('ws handshake: case names are unique', () => {
  assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length);
});

test('ws handshake: the 101 head for the RFC sample, byte for byte', () => {
  const d = decideUpgrade(req({ add: [['sec-websocket-protocol', 'mx1']] }));
  assert.ok(d.accept);
  assert.equal(d.head, `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\nSec-WebSocket-Protocol: mx1\r\n\r\n`);
  assert.equal(acceptKey(SAMPLE_KEY), SAMPLE_ACCEPT);
});

test('ws handshake: every 16-byte key is valid, other lengths are not', () => {
  for (let i = 0; i < 500; i++) {
    const bytes = Buffer.alloc(16);
    for (let j = 0; j < 16; j++) bytes[j] = (i * 31 + j * 17) & 0xff;
    assert.ok(isValidKey(bytes.toString('base64')));
  }
  for (const n of [0, 1, 14, 15, 17, 18, 32]) assert.equal(isValidKey(Buffer.alloc(n, 7).toString('base64')), false, `${n} bytes`);
  assert.equal(isValidKey(` ${SAMPLE_KEY}`), false);
});

test('ws handshake: normalizeOrigin', () => {
  assert.equal(normalizeOrigin('HTTPS://Chat.Example:443'), 'https://chat.example');
  assert.equal(normalizeOrigin('http://[::1]:80'), 'http://[::1]');
  assert.equal(normalizeOrigin('http://[::1]:8080'), 'http://[::1]:8080');
  assert.equal(normalizeOrigin('https://a.example:80'), 'https://a.example:80');
  assert.equal(normalizeOrigin('null'), 'null');
  for (const bad of ['', 'chat.example', 'http://', 'http://a.example/', 'http://u@a.example', 'http://a b', 'http://a.example?x', 'http://a.example:', 'http://a\\b']) {
    assert.equal(normalizeOrigin(bad), null, JSON.stringify(bad));
  }
});

test('ws handshake: decideUpgradeForHead reads our parser\'s flat header list', () => {
  const head: RequestHead = {
    method: 'GET',
    target: '/.well-known/muxd/mx',
    versionMinor: 1,
    headers: BASE.flat(),
    host: '127.0.0.1:8080',
    contentLength: -1,
    chunked: false,
    keepAlive: true,
  };
  const ok = decideUpgradeForHead(head, 'http', []);
  assert.ok(ok.accept);
  const foreign = decideUpgradeForHead({ ...head, headers: [...BASE.flat(), 'origin', 'https://evil.example'] }, 'http', []);
  assert.equal(foreign.status, 403);
  assert.equal(decideUpgradeForHead({ ...head, headers: [...BASE.flat(), 'origin', 'https://evil.example'] }, 'http', ['https://evil.example']).status, 101);
});

test('ws handshake: refusalResponse is a complete response that closes', () => {
  const d = decideUpgrade(req({ method: 'PUT' }));
  assert.ok(!d.accept);
  const text = refusalResponse(d);
  assert.ok(text.startsWith('HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n'));
  assert.ok(text.includes('\r\nConnection: close\r\n'));
  const [head, body] = text.split('\r\n\r\n');
  assert.equal(body, d.body);
  assert.ok(head!.includes(`Content-Length: ${Buffer.byteLength(d.body)}`));
});
