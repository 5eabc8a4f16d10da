// The listener with TLS (src/loop/tls.ts): HTTP served through the unchanged HTTP connection
// over TLS, and the caps counting TLS connections at TCP accept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHttpServer } from '../../src/http/server.js';
import { testServerOptions, textReply } from '../helpers/http-scripted.js';

const dir = mkdtempSync(path.join(tmpdir(), 'muxd-tls-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
const key = readFileSync(path.join(dir, 'k.pem'));
const cert = readFileSync(path.join(dir, 'c.pem'));
rmSync(dir, { recursive: true, force: true });

const context = tls.createSecureContext({ key, cert });
const secure = { context: () => context, alpn: ['http/1.1'], handshakeTimeoutMs: 10_000 };
const handler = { handle: () => textReply('over tls') };

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: cert }, () => s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    setTimeout(() => reject(new Error('no answer in 5 s')), 5000).unref();
  });
}

test('tls: the same listener and HTTP connection answer over TLS', async () => {
  const server = await startHttpServer(testServerOptions(handler, { tls: secure }));
  try {
    const got = await get(server.listener.port);
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.ok(got.endsWith('over tls'), got);
  } finally {
    await server.close();
  }
});

test('tls: the connection cap counts TLS connections; a refused one is closed without a word', async () => {
  const opts = testServerOptions(handler, { tls: secure, maxConnections: 1 });
  const server = await startHttpServer(opts);
  const port = server.listener.port;
  try {
    const first = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: cert });
    await new Promise<void>((r, j) => {
      first.once('secureConnect', () => r());
      first.once('error', j);
    });
    assert.equal(opts.metrics.open['https'] as number, 1);
    const second = await new Promise<string>((resolve) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: cert });
      s.once('secureConnect', () => resolve('handshake'));
      s.once('error', () => resolve('refused'));
      s.once('close', () => resolve('refused'));
      setTimeout(() => resolve('timeout'), 5000).unref();
    });
    assert.equal(second, 'refused');
    assert.equal(opts.metrics.refused['https'], 1);
    first.destroy();
    const end = Date.now() + 5000;
    while (opts.metrics.open['https'] !== 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(opts.metrics.open['https'], 0);
  } finally {
    await server.close();
  }
});
