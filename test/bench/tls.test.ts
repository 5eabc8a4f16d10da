// The TLS rows' plumbing: the openssl certificate serves node:tls, nginx's ssl config stays under
// its prefix with a session cache, and the connection loop tells full handshakes from resumed ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeBenchCert } from '../../bench/lib/certs.js';
import { nginxConf } from '../../bench/lib/servers.js';
import { runTlsConnectLoad } from '../../bench/lib/tls-connect-load.js';
import { rawGet } from '../../bench/lib/raw-http.js';

test('nginxConf with tls listens with ssl on loopback, names the pair and turns the session cache on', () => {
  const conf = nginxConf('/tmp/p', '/tmp/site', 8443, false, { cert: '/tmp/c.pem', key: '/tmp/k.pem' });
  assert.match(conf, /listen 127\.0\.0\.1:8443 ssl;/);
  assert.match(conf, /ssl_certificate \/tmp\/c\.pem;/);
  assert.match(conf, /ssl_certificate_key \/tmp\/k\.pem;/);
  assert.match(conf, /ssl_session_cache shared:SSL:/);
  assert.match(conf, /worker_processes 1;/);
  assert.doesNotMatch(nginxConf('/tmp/p', '/tmp/site', 8080, false), /ssl/);
});

test('the bench certificate serves HTTPS; the node:tls loop resumes only when asked', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'muxd-bench-tls-'));
  let server: Server | null = null;
  try {
    const cert = makeBenchCert('ec', dir);
    assert.match(readFileSync(cert.cert, 'latin1'), /BEGIN CERTIFICATE/);
    server = createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (_req, res) => res.end('ok'));
    const port = await new Promise<number>((resolve) => server!.listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port)));
    const check = await rawGet(port, '/', {}, 'GET', 5000, true);
    assert.equal(check.status, 200);
    const full = await runTlsConnectLoad({ port, path: '/', concurrency: 2, durationSeconds: 1, resume: false }, 1, process.pid);
    assert.equal(full.errors, 0, full.firstError);
    assert.ok(full.connectionsPerSecond > 0);
    assert.equal(full.resumedFraction, 0);
    const resumed = await runTlsConnectLoad({ port, path: '/', concurrency: 2, durationSeconds: 1, resume: true }, 1, process.pid);
    assert.equal(resumed.errors, 0, resumed.firstError);
    assert.ok(resumed.resumedFraction > 0.5, `resumed ${resumed.resumedFraction}`);
  } finally {
    server?.closeAllConnections();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
