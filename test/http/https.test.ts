// The HTTPS handler wrappers and the plaintext answer, without sockets: HSTS on every reply (a
// cached reply's pre-encoded head included, shared constants never mutated), the redirect's
// Location, its exceptions and refusals, and the 400 for plain HTTP on the HTTPS port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plainHttpOnHttpsPort, withHsts, withHttpsRedirect } from '../../src/http/https.js';
import { errorReply } from '../../src/http/status.js';
import type { Answer, Handler, Reply, RequestHead } from '../../src/http/types.js';

function req(method: string, target: string, host: string | null = 'example.test:8080'): RequestHead {
  return { method, target, versionMinor: 1, headers: host === null ? [] : ['host', host], host, contentLength: -1, chunked: false, keepAlive: true };
}

const CACHED: Reply = { status: 200, head: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n', headBytes: Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n', 'latin1'), body: [Buffer.from('hi')], bodyLength: 2 };
const SHARED: Reply = { status: 204, head: 'HTTP/1.1 204 No Content\r\n', body: [], bodyLength: 0 };
const site: Handler = {
  handle: (h) => {
    if (h.target === '/cached') return CACHED;
    if (h.target === '/shared') return SHARED;
    if (h.target === '/async') return Promise.resolve(errorReply(404));
    return { status: 200, head: 'HTTP/1.1 200 OK\r\nX-Site: 1\r\n', body: [], bodyLength: 0 };
  },
};

async function answer(h: Handler, r: RequestHead): Promise<Reply> {
  const a: Answer = await h.handle(r);
  assert.ok(!('upgrade' in a));
  return a as Reply;
}

test('withHsts: every reply carries the header once; cached heads get a twin made once; shared replies stay untouched', async () => {
  const h = withHsts(site, 300);
  const line = 'Strict-Transport-Security: max-age=300\r\n';
  const fresh = await answer(h, req('GET', '/'));
  assert.equal(fresh.head, 'HTTP/1.1 200 OK\r\nX-Site: 1\r\n' + line);
  const c1 = await answer(h, req('GET', '/cached'));
  const c2 = await answer(h, req('GET', '/cached'));
  assert.equal(c1, c2, 'one twin per cached reply');
  assert.equal(c1.headBytes!.toString('latin1'), CACHED.head + line);
  assert.equal(CACHED.head.includes('Strict'), false);
  for (let i = 0; i < 3; i++) assert.equal((await answer(h, req('GET', '/shared'))).head, SHARED.head + line);
  assert.equal(SHARED.head, 'HTTP/1.1 204 No Content\r\n');
  assert.match((await answer(h, req('GET', '/async'))).head, /Strict-Transport-Security: max-age=300\r\n$/);
});

test('withHttpsRedirect: 308 to the same path and query on the HTTPS port, for GET and HEAD', async () => {
  let port = 8443;
  const h = withHttpsRedirect(site, { httpsPort: () => port, statsPath: '/.well-known/muxd/stats' });
  const get = await answer(h, req('GET', '/a/b?c=d'));
  assert.equal(get.status, 308);
  assert.match(get.head, /^HTTP\/1\.1 308 Permanent Redirect\r\n/);
  assert.match(get.head, /\r\nLocation: https:\/\/example\.test:8443\/a\/b\?c=d\r\n/);
  const head = await answer(h, req('HEAD', '/'));
  assert.equal(head.status, 308);
  assert.deepEqual(head.body, []);
  assert.ok(head.bodyLength > 0);
  port = 443;
  assert.match((await answer(h, req('GET', '/x'))).head, /\r\nLocation: https:\/\/example\.test\/x\r\n/);
  assert.match((await answer(h, req('GET', '/x', '[::1]:80'))).head, /\r\nLocation: https:\/\/\[::1\]\/x\r\n/);
  // Absolute-form names the same resource.
  assert.match((await answer(h, req('GET', 'http://example.test:8080/abs?q'))).head, /\r\nLocation: https:\/\/example\.test\/abs\?q\r\n/);
});

test('withHttpsRedirect: other methods, a missing or hostile Host, and "*" get 400; the stats route and ACME pass through', async () => {
  const h = withHttpsRedirect(site, { httpsPort: () => 8443, statsPath: '/stats' });
  for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS']) assert.equal((await answer(h, req(m, '/'))).status, 400, m);
  assert.equal((await answer(h, req('GET', '/', null))).status, 400);
  assert.equal((await answer(h, req('GET', '/', 'evil.test\r\nX: y'))).status, 400);
  assert.equal((await answer(h, req('GET', '/', 'a b'))).status, 400);
  assert.equal((await answer(h, req('OPTIONS', '*'))).status, 400);
  assert.equal((await answer(h, req('GET', '/stats'))).head, 'HTTP/1.1 200 OK\r\nX-Site: 1\r\n');
  assert.equal((await answer(h, req('GET', '/stats?x=1'))).head, 'HTTP/1.1 200 OK\r\nX-Site: 1\r\n');
  assert.equal((await answer(h, req('GET', '/.well-known/acme-challenge/tok'))).head, 'HTTP/1.1 200 OK\r\nX-Site: 1\r\n');
  assert.equal((await answer(h, req('GET', '/stats/more'))).status, 308, 'only the route itself');
  const none = withHttpsRedirect(site, { httpsPort: () => 8443, statsPath: null });
  assert.equal((await answer(none, req('GET', '/stats'))).status, 308);
});

test('plainHttpOnHttpsPort: a whole 400 naming the https:// URL, Host taken only when it is a plain name', () => {
  const date = 'Thu, 01 Jan 2026 00:00:00 GMT';
  const a = plainHttpOnHttpsPort(Buffer.from('GET / HTTP/1.1\r\nHost: muxd.test:8443\r\n\r\n'), '127.0.0.1', 8443, date).toString('latin1');
  const [head, body] = a.split('\r\n\r\n') as [string, string];
  assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(head, /\r\nConnection: close$|\r\nConnection: close\r\n/);
  assert.match(head, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(body)}(\\r\\n|$)`));
  assert.match(head, /\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT/);
  assert.equal(body, '400 Bad Request: this port speaks HTTPS; use https://muxd.test:8443/\n');
  const hostile = plainHttpOnHttpsPort(Buffer.from('GET / HTTP/1.1\r\nHost: <b>x</b>\r\n\r\n'), '127.0.0.1', 8443, date).toString('latin1');
  assert.ok(hostile.endsWith('use https://127.0.0.1:8443/\n'), hostile);
  const noHost = plainHttpOnHttpsPort(Buffer.from('GET / HTTP/1.0\r\n\r\n'), '[::1]', 443, date).toString('latin1');
  assert.ok(noHost.endsWith('use https://[::1]/\n'), noHost);
  // Only the first bytes are looked at, whatever arrives.
  const huge = plainHttpOnHttpsPort(Buffer.concat([Buffer.from('GET /'), Buffer.alloc(100_000, 0x41), Buffer.from('\r\nHost: late.test\r\n')]), 'h', 1, date).toString('latin1');
  assert.ok(huge.endsWith('use https://h:1/\n'));
});
