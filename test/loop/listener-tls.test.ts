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

// --- The handshake phase (src/loop/tls.ts), in this process with the test clock.
import net from 'node:net';
import { useTestClock } from '../helpers/test-clock.js';
import { waitFor } from '../helpers/wait.js';

function rawConnect(port: number): Promise<{ sock: net.Socket; closed: () => boolean; got: () => Buffer }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => (closed = true));
    sock.once('connect', () => resolve({ sock, closed: () => closed, got: () => Buffer.concat(chunks) }));
  });
}

test('tls handshake: the deadline runs from accept, to the millisecond on the test clock; a silent client is cut and counted', async () => {
  const clock = useTestClock();
  const opts = testServerOptions(handler, { tls: { ...secure, handshakeTimeoutMs: 2000 } });
  const server = await startHttpServer(opts);
  try {
    const c = await rawConnect(server.listener.port);
    await waitFor(() => opts.metrics.open['https'] === 1, { what: 'the accept' });
    clock.advance(1999);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.closed(), false, 'not before the deadline');
    clock.advance(1);
    await waitFor(c.closed, { what: 'the cut at the deadline' });
    assert.equal(c.got().length, 0);
    assert.equal(opts.metrics.counters['https.tls.handshakeTimeouts'], 1);
    await waitFor(() => opts.metrics.open['https'] === 0, { what: 'the count to drop' });
  } finally {
    clock.restore();
    await server.close();
  }
});

test('tls handshake: plaintext goes to onPlaintext, garbage and a bad record are closed, each counted; nothing crashes', async () => {
  const seen: string[] = [];
  const opts = testServerOptions(handler, {
    tls: {
      ...secure,
      onPlaintext: (socket: net.Socket, first: Buffer) => {
        seen.push(first.toString('latin1'));
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      },
    },
  });
  const server = await startHttpServer(opts);
  const port = server.listener.port;
  try {
    const plain = await rawConnect(port);
    plain.sock.write('G');
    await waitFor(plain.closed, { what: 'the plaintext answer and close' });
    assert.equal(plain.got().toString('latin1'), 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    assert.deepEqual(seen, ['G']);
    // A request in several pieces, with more bytes after it: the whole answer arrives, then the close.
    const split = await rawConnect(port);
    split.sock.write('GET / HTTP/1.1\r\n');
    await waitFor(() => seen.length === 2, { what: 'the first piece' });
    split.sock.write('Host: x\r\n\r\n' + 'x'.repeat(100_000));
    await waitFor(split.closed, { what: 'the close after the answer' });
    assert.equal(split.got().toString('latin1'), 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    // The server lets go of both once their clients close, well before the 10 s deadline.
    await waitFor(() => opts.metrics.open['https'] === 0, { what: 'both plaintext connections to be let go', timeoutMs: 3000 });
    for (const bytes of [Buffer.from([0x00]), Buffer.from([0xff, 0xfe, 0x7f]), Buffer.from('\r\n')]) {
      const g = await rawConnect(port);
      g.sock.write(bytes);
      await waitFor(g.closed, { what: `a close after ${bytes.toString('hex')}` });
      assert.equal(g.got().length, 0, bytes.toString('hex'));
    }
    // A handshake record with a bad body: OpenSSL's fatal alert (content type 21), then close.
    const bad = await rawConnect(port);
    bad.sock.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, 0x04]), Buffer.from([0xde, 0xad, 0xbe, 0xef])]));
    await waitFor(bad.closed, { what: 'a close after a bad ClientHello' });
    assert.ok(bad.got().length === 0 || bad.got()[0] === 0x15, bad.got().toString('hex'));
    assert.equal(opts.metrics.counters['https.tls.plaintext'], 2);
    assert.equal(opts.metrics.counters['https.tls.handshakeTimeouts'], 0);
    assert.equal(opts.metrics.counters['https.tls.notTls'], 3);
    assert.equal(opts.metrics.counters['https.tls.handshakeErrors'], 1);
    // A real client still gets through.
    assert.match(await get(port), /^HTTP\/1\.1 200 /);
    assert.equal(opts.metrics.counters['https.tls.handshakes'], 1);
  } finally {
    await server.close();
  }
});

test('tls handshake: a drain closes a connection still in its handshake; the listener goes idle', async () => {
  const opts = testServerOptions(handler, { tls: secure });
  const server = await startHttpServer(opts);
  try {
    const c = await rawConnect(server.listener.port);
    await waitFor(() => opts.metrics.open['https'] === 1, { what: 'the accept' });
    server.listener.stopAccepting();
    server.listener.drain();
    await waitFor(c.closed, { what: 'the close' });
    await server.listener.idle();
  } finally {
    await server.close();
  }
});

// --- The per-address budget of handshakes in progress (--tls-handshakes-per-ip).

/** A TLS client from `localAddress`; `secured()` says whether its handshake finished. */
function tlsFrom(port: number, localAddress: string): { sock: tls.TLSSocket; secured: () => boolean; closed: () => boolean } {
  const o: tls.ConnectionOptions & { localAddress?: string } = { port, host: '127.0.0.1', localAddress, servername: 'localhost', ca: cert };
  const sock = tls.connect(o);
  let secured = false;
  let closed = false;
  sock.on('error', () => undefined);
  sock.once('secureConnect', () => (secured = true));
  sock.once('close', () => (closed = true));
  return { sock, secured: () => secured, closed: () => closed };
}

function rawFrom(port: number, localAddress: string): Promise<{ sock: net.Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    let closed = false;
    sock.on('error', () => undefined);
    sock.on('close', () => (closed = true));
    sock.once('connect', () => resolve({ sock, closed: () => closed }));
    setTimeout(() => reject(new Error('no connect in 5 s')), 5000).unref();
  });
}

test('tls budget: past 2 handshakes in progress from one address the next waits its turn, then completes; another address is not delayed', async () => {
  const opts = testServerOptions(handler, { tls: { ...secure, handshakesPerIp: 2 } });
  const server = await startHttpServer(opts);
  const port = server.listener.port;
  const m = opts.metrics;
  try {
    // Two connections that never send a ClientHello hold 127.0.0.1's two turns.
    const a = await rawFrom(port, '127.0.0.1');
    const b = await rawFrom(port, '127.0.0.1');
    await waitFor(() => m.open['https'] === 2, { what: 'two accepts' });
    assert.equal(m.counters['https.tls.handshakesQueued'], 0);
    const third = tlsFrom(port, '127.0.0.1');
    await waitFor(() => m.counters['https.tls.handshakesQueued'] === 1, { what: 'the third to be queued' });
    // Another address has its own turns: it completes while the third still waits.
    const other = tlsFrom(port, '127.0.0.2');
    await waitFor(other.secured, { what: "the other address's handshake" });
    // The server's side ends with the client's Finished, just after the client's.
    await waitFor(() => m.counters['https.tls.handshakes'] === 1, { what: "the server's end of it" });
    assert.equal(third.secured(), false, 'the third waits while both turns are held');
    assert.equal(m.counters['https.tls.handshakesQueued'], 1);
    // One turn ends (its client goes): the waiting one is read and completes.
    a.sock.destroy();
    await waitFor(third.secured, { what: 'the queued handshake to complete' });
    await waitFor(() => m.counters['https.tls.handshakes'] === 2, { what: "the server's end of the queued one" });
    assert.equal(b.closed(), false);
    // A finished handshake gives its turn back: two more from 127.0.0.1 (with b still holding one) both complete, one after the other.
    third.sock.destroy();
    const more = [tlsFrom(port, '127.0.0.1'), tlsFrom(port, '127.0.0.1')];
    await waitFor(() => more.every((c) => c.secured()), { what: 'two more handshakes through the one free turn' });
    await waitFor(() => m.counters['https.tls.handshakes'] === 4, { what: "the server's end of both" });
    assert.equal(m.counters['https.tls.handshakesQueued'], 2);
    for (const c of [b.sock, other.sock, ...more.map((c) => c.sock)]) c.destroy();
    await waitFor(() => m.open['https'] === 0, { what: 'every connection to close' });
  } finally {
    await server.close();
  }
});

test('tls budget: a waiting connection keeps its deadline from accept; past it, it is cut and counted', async () => {
  const clock = useTestClock();
  const opts = testServerOptions(handler, { tls: { ...secure, handshakeTimeoutMs: 2000, handshakesPerIp: 1 } });
  const server = await startHttpServer(opts);
  const port = server.listener.port;
  const m = opts.metrics;
  try {
    const holder = await rawFrom(port, '127.0.0.1');
    await waitFor(() => m.open['https'] === 1, { what: 'the first accept' });
    clock.advance(1000);
    const waiting = await rawFrom(port, '127.0.0.1');
    await waitFor(() => m.counters['https.tls.handshakesQueued'] === 1, { what: 'the second to be queued' });
    // The holder's deadline: it is cut, and the waiting one gets its turn (still silent).
    clock.advance(1000);
    await waitFor(holder.closed, { what: 'the holder cut at its deadline' });
    assert.equal(m.counters['https.tls.handshakeTimeouts'], 1);
    clock.advance(999);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(waiting.closed(), false, 'not before its own deadline');
    // 2000 ms from its accept, not from its turn.
    clock.advance(1);
    await waitFor(waiting.closed, { what: 'the waiting one cut at 2000 ms from its accept' });
    assert.equal(m.counters['https.tls.handshakeTimeouts'], 2);
    await waitFor(() => m.open['https'] === 0, { what: 'the count to drop' });
    // Both turns are free again: a real client gets through at once.
    clock.restore();
    assert.match(await get(port), /^HTTP\/1\.1 200 /);
  } finally {
    clock.restore();
    await server.close();
  }
});

test('tls budget: a waiting connection reset by its client leaves the queue at once', async () => {
  const clock = useTestClock();
  const opts = testServerOptions(handler, { tls: { ...secure, handshakeTimeoutMs: 2000, handshakesPerIp: 1 } });
  const server = await startHttpServer(opts);
  const port = server.listener.port;
  const m = opts.metrics;
  try {
    const holder = await rawFrom(port, '127.0.0.1');
    await waitFor(() => m.open['https'] === 1, { what: 'the first accept' });
    const waiting = await rawFrom(port, '127.0.0.1');
    await waitFor(() => m.counters['https.tls.handshakesQueued'] === 1, { what: 'the second to be queued' });
    // The waiting one's client resets: noticed though unread, it leaves the queue without a turn.
    // (One that only half-closes is noticed at its turn or its deadline: its socket is not read.)
    waiting.sock.resetAndDestroy();
    await waitFor(() => m.open['https'] === 1, { what: 'the waiting one to close' });
    clock.advance(2000);
    await waitFor(holder.closed, { what: 'the holder cut' });
    assert.equal(m.counters['https.tls.handshakeTimeouts'], 1);
    clock.restore();
    assert.match(await get(port), /^HTTP\/1\.1 200 /);
    assert.equal(m.counters['https.tls.handshakesQueued'], 1);
    assert.equal(m.counters['https.tls.handshakes'], 1);
  } finally {
    clock.restore();
    await server.close();
  }
});

test('tls budget: 0 is no limit', async () => {
  const opts = testServerOptions(handler, { tls: { ...secure, handshakesPerIp: 0 } });
  const server = await startHttpServer(opts);
  const port = server.listener.port;
  try {
    const silent = await Promise.all(Array.from({ length: 3 }, () => rawFrom(port, '127.0.0.1')));
    await waitFor(() => opts.metrics.open['https'] === 3, { what: 'three accepts' });
    assert.match(await get(port), /^HTTP\/1\.1 200 /);
    assert.equal(opts.metrics.counters['https.tls.handshakesQueued'], 0);
    for (const s of silent) s.sock.destroy();
  } finally {
    await server.close();
  }
});

test('tls handshake: a client that closes right after its own TLS 1.3 handshake is let go at once, not at the deadline', async () => {
  const opts = testServerOptions(handler, { tls: { ...secure, handshakesPerIp: 1 } });
  const server = await startHttpServer(opts);
  const port = server.listener.port;
  try {
    // Each closes as soon as its handshake ends; with one turn per address the next can only
    // start once the server has let the last one go (the deadline is 10 s, the wait 5 s).
    for (let i = 0; i < 5; i++) {
      const c = tlsFrom(port, '127.0.0.1');
      // In the same turn as its handshake ends, before the server has read its Finished.
      c.sock.once('secureConnect', () => c.sock.destroy());
      await waitFor(c.closed, { what: `handshake ${i + 1} and its close`, timeoutMs: 5000 });
      assert.equal(c.secured(), true, `handshake ${i + 1}`);
    }
    await waitFor(() => opts.metrics.open['https'] === 0, { what: 'the server to let every one go', timeoutMs: 5000 });
    assert.equal(opts.metrics.counters['https.tls.handshakeTimeouts'], 0);
  } finally {
    await server.close();
  }
});
