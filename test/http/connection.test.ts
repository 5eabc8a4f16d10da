// The connection layer over real sockets, with a scripted handler: ordering, keep-alive,
// timeouts, caps and pipelining bounds. Static-file behaviour is tested in static*.test.ts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metrics } from '../../src/loop/metrics.js';
import { startHttpServer, type HttpServer, type HttpServerOptions } from '../../src/http/server.js';
import { parserFactory } from '../../src/http/parsers.js';
import { DEFAULT_PARSER_LIMITS, type Handler } from '../../src/http/types.js';
import { openFileCount } from '../../src/http/static/open-file.js';
import { ByteBudget } from '../../src/loop/budget.js';
import { scriptedHandler, testServerOptions, textReply } from '../helpers/http-scripted.js';
import { waitFor } from '../helpers/wait.js';
import { useTestClock, type TestClock } from '../helpers/test-clock.js';

let bigFile = '';
const BIG_SIZE = 3 * 1024 * 1024 + 17;

/** scriptedHandler, plus: /boom throws; /mem/N answers N bytes from memory. */
const handler: Handler = scriptedHandler(() => bigFile, BIG_SIZE, (head) => {
  if (head.target === '/boom') throw new Error('handler failure');
  if (head.target.startsWith('/mem/')) return textReply('m'.repeat(Number(head.target.slice(5))));
  return undefined;
});

let dir = '';
const servers: HttpServer[] = [];

async function start(overrides: Partial<HttpServerOptions> = {}): Promise<{ port: number; metrics: Metrics; server: HttpServer }> {
  const metrics = new Metrics();
  const server = await startHttpServer(testServerOptions(handler, { metrics, ...overrides }));
  servers.push(server);
  return { port: server.listener.port, metrics, server };
}

/** Sends raw bytes and collects everything until the server closes (or `untilBytes` arrive). */
function exchange(port: number, data: string | Buffer, opts: { untilBytes?: number; end?: boolean } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let size = 0;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (opts.untilBytes !== undefined && size >= opts.untilBytes) {
        socket.destroy();
        resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
      }
    });
    socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true }));
    socket.on('error', reject);
    socket.write(data);
    if (opts.end) socket.end();
  });
}

/**
 * Pipelines `count` GETs of /mem/SIZE (the last one closing) and reads the answers at a steady
 * few MB/s, one chunk every 15 ms of `clock` time (so a loaded machine cannot make it look
 * stalled); resolves with the bytes received once the server closes.
 */
function readSlowly(port: number, count: number, size: number, clock: TestClock): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = 0;
    socket.on('data', (c: Buffer) => {
      received += c.length;
      socket.pause();
      clock.advance(15);
      setTimeout(() => socket.resume(), 1);
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(received));
    socket.write(`GET /mem/${size} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(count - 1) + `GET /mem/${size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}

/** Bytes the server has read from its clients (a socket's bytesRead moves as its 'data' is handled). */
function bytesRead(server: HttpServer): number {
  let n = 0;
  for (const s of server.listener.sockets as ReadonlySet<net.Socket>) n += s.bytesRead;
  return n;
}

/**
 * Drips `pieces` in turn, one per `everyMs` of test-clock time, each once the server has read
 * the one before (so the clock never runs ahead of the bytes), until `stop()` or `limitMs` of
 * clock time.
 */
async function dripOnClock(clock: TestClock, server: HttpServer, socket: net.Socket, pieces: string[], everyMs: number, limitMs: number, stop: () => boolean): Promise<void> {
  const started = clock.now();
  for (let n = 0; !stop() && clock.now() - started < limitMs; n++) {
    const target = bytesRead(server) + pieces[n % pieces.length]!.length;
    if (socket.writable) socket.write(pieces[n % pieces.length]!);
    await waitFor(() => stop() || bytesRead(server) >= target || server.listener.sockets.size === 0, { what: 'the server to read the dripped bytes' });
    clock.advance(everyMs);
  }
}

/** Splits a stream of responses (each with Content-Length) into status and body. */
function responses(raw: Buffer): { status: number; body: Buffer }[] {
  const out: { status: number; body: Buffer }[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at);
    assert.ok(end > 0, `a head at byte ${at}`);
    const head = raw.subarray(at, end).toString('latin1');
    const length = Number(/\r\nContent-Length: (\d+)/i.exec(head)![1]);
    out.push({ status: Number(head.slice(9, 12)), body: raw.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'muxd-conn-'));
  bigFile = path.join(dir, 'big.bin');
  const buf = Buffer.alloc(BIG_SIZE);
  for (let i = 0; i < buf.length; i++) buf[i] = i % 251;
  await writeFile(bigFile, buf);
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('HTTP connection', () => {
  test('keep-alive: two requests on one connection, Date and no Connection header on 1.1', async () => {
    const { port } = await start();
    const req = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const { text, closed } = await exchange(port, req);
    assert.equal(closed, true);
    assert.deepEqual(statuses(text), [200, 200]);
    const [first, second] = text.split('HTTP/1.1 200 OK').slice(1);
    assert.match(first!, /\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
    assert.doesNotMatch(first!, /Connection:/);
    assert.ok(first!.endsWith('GET /a'));
    assert.match(second!, /\r\nConnection: close\r\n/);
    assert.ok(second!.endsWith('GET /b'));
  });

  test('pipelined responses come back in request order even when an earlier one is slow or streamed', async () => {
    const { port } = await start();
    const req =
      'GET /slow/80 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /fast HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /big HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /after-big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const { text } = await exchange(port, req);
    assert.deepEqual(statuses(text), [200, 200, 200, 200]);
    const iSlow = text.indexOf('slow 80');
    const iFast = text.indexOf('GET /fast');
    const iAfter = text.indexOf('GET /after-big');
    assert.ok(iSlow > 0 && iSlow < iFast, 'slow answered before fast');
    assert.ok(iAfter > iFast + BIG_SIZE, 'the streamed file sits whole between its neighbours');
    const bigStart = text.indexOf('\r\n\r\n', text.indexOf(`Content-Length: ${BIG_SIZE}`)) + 4;
    const body = Buffer.from(text.slice(bigStart, bigStart + BIG_SIZE), 'latin1');
    assert.equal(body.length, BIG_SIZE);
    for (const i of [0, 1, 250, 251, 1 << 20, BIG_SIZE - 1]) assert.equal(body[i], i % 251, `byte ${i}`);
  });

  test('HTTP/1.0 closes by default and keeps alive on request', async () => {
    const { port } = await start();
    const plain = await exchange(port, 'GET /x HTTP/1.0\r\n\r\n');
    assert.equal(plain.closed, true);
    assert.match(plain.text, /Connection: close/);
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => (closed = true));
    socket.write('GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await waitFor(() => text.endsWith('GET /x'), { what: 'the answer to GET /x', detail: () => JSON.stringify(text) });
    await sleep(100);
    assert.match(text, /\r\nConnection: keep-alive\r\n/);
    assert.equal(closed, false, 'still open after the answer');
    socket.destroy();
  });

  test('a rejected request gets its status, Connection: close, and the connection closes', async () => {
    const { port } = await start();
    const { text, closed } = await exchange(port, 'GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(closed, true);
    assert.deepEqual(statuses(text), [200, 400]);
    assert.match(text.slice(text.indexOf('400 Bad Request')), /Connection: close\r\n/);
    assert.doesNotMatch(text, /never/);
  });

  test('a handler that throws answers 500 and closes, the process survives', async () => {
    const { port } = await start();
    const { text, closed } = await exchange(port, 'GET /boom HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(closed, true);
    assert.deepEqual(statuses(text), [500]);
  });

  test('a request body is consumed, never read as the next request', async () => {
    const { port } = await start();
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const req = `POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
    const { text } = await exchange(port, req);
    assert.deepEqual(statuses(text), [200, 200]);
    assert.doesNotMatch(text, /GET \/smuggled/);
    assert.match(text, /POST \/p/);
    assert.match(text, /GET \/last/);
  });

  test('slowloris: a head that does not finish in time gets 408 and is closed', async () => {
    const { port } = await start({ headTimeoutMs: 300 });
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET / HTTP/1.1\r\n');
    // Keep dribbling bytes: they must not extend the head deadline.
    const drip = setInterval(() => socket.write('X-A: b\r\n'), 50);
    await closed;
    clearInterval(drip);
    const text = Buffer.concat(chunks).toString('latin1');
    assert.deepEqual(statuses(text), [408]);
    assert.match(text, /Connection: close/);
  });

  test('an idle keep-alive connection is closed after the idle timeout', async () => {
    const { port } = await start({ idleTimeoutMs: 300 });
    const started = Date.now();
    const { text, closed } = await exchange(port, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(closed, true);
    assert.deepEqual(statuses(text), [200]);
    assert.ok(Date.now() - started >= 250);
  });

  test('past the connection cap new clients get 503 and the others are unaffected', async () => {
    const { port, metrics } = await start({ maxConnections: 2 });
    const held = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
    await Promise.all(held.map((s) => new Promise((r) => s.once('connect', r))));
    await waitFor(() => metrics.open.http === 2, { what: 'both held connections accepted', detail: () => `open ${metrics.open.http}` });
    const refused = await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.deepEqual(statuses(refused.text), [503]);
    assert.equal(metrics.refused.http, 1);
    const reply = new Promise<string>((resolve) => held[0]!.once('data', (c: Buffer) => resolve(c.toString('latin1'))));
    held[0]!.write('GET /still-fine HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(await reply, /GET \/still-fine/);
    held.forEach((s) => s.destroy());
  });

  test('a client that pipelines without reading makes the server stop reading, not buffer without bound', async () => {
    const { port, metrics, server } = await start({ maxPipeline: 8, maxOutputBytes: 64 * 1024 });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.pause(); // never read
    const one = 'GET /streamed HTTP/1.1\r\nHost: x\r\n\r\n';
    const batch = one.repeat(2000);
    for (let i = 0; i < 100 && !socket.destroyed; i++) socket.write(batch); // 200k requests offered
    // Stopped for good: reading paused, and output the kernel refused waits in the socket (the
    // client never reads, so no 'drain' will come). A fixed sleep here raced a loaded machine.
    const stuck = (): boolean => [...(server.listener.sockets as ReadonlySet<net.Socket>)].some((s) => s.isPaused() && s.writableLength > 0);
    await waitFor(stuck, { what: 'the server to stop reading with its output stuck', detail: () => `${metrics.counters['http.requests']} answered` });
    const answered = metrics.counters['http.requests']!;
    assert.ok(answered < 200_000, `server stopped reading at ${answered} requests`);
    await sleep(300);
    assert.equal(metrics.counters['http.requests'], answered, 'no progress while the client does not read');
    socket.destroy();
  });

  test('a thousand pipelined requests in one write are all answered, however small the output bound', async () => {
    const many = 'GET /p HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1000) + 'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    // Each bound makes the server stop parsing mid-chunk and resume once its output is taken,
    // which on a fast socket happens inside write(), with no 'drain' to wake it.
    for (const bound of [{}, { maxOutputBytes: 1 }, { maxOutputBytes: 16 * 1024 }, { maxPipeline: 1 }]) {
      const { port } = await start(bound);
      const { text, closed } = await exchange(port, many);
      assert.equal(closed, true, JSON.stringify(bound));
      assert.equal(statuses(text).length, 1001, `${JSON.stringify(bound)}: every request answered`);
      assert.match(text, /GET \/last$/);
    }
  });

  /**
   * Sends `first`, waits until the server answered or `settleMs` passed, sends `rest`, and
   * returns everything until the server closes.
   */
  async function twoPart(port: number, first: string, rest: string, waitForAnswer: boolean): Promise<string> {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(first);
    if (waitForAnswer) await new Promise((r) => socket.once('data', r));
    else await sleep(15);
    if (!socket.destroyed && rest !== '') socket.write(rest);
    await closed;
    return Buffer.concat(chunks).toString('latin1');
  }

  /** Index of the byte at which the parser rejects `data` (fed whole). */
  function errorIndex(data: string, limits = DEFAULT_PARSER_LIMITS): number {
    for (let j = 1; j <= data.length; j++) {
      const p = parserFactory('muxd')(limits, { onHead() {}, onBody() {}, onComplete() {} });
      const failed = p.execute(Buffer.from(data.slice(0, j), 'latin1')) === -1;
      p.destroy();
      if (failed) return j - 1;
    }
    throw new Error('no error');
  }

  // Strict body errors (issue 8): the answer has started when the first part held the whole
  // head (so its synchronous answer left at once) but not yet the byte that breaks the body.
  describe('a body whose framing breaks', () => {
    const headPart = 'POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const req = headPart + 'zz\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n';
    const headEnd = headPart.length;

    test('before its answer started: 400 and close instead of the answer, at every split point', async () => {
      const { port } = await start();
      const bad = errorIndex(req);
      assert.equal(bad, headEnd);
      for (let k = 1; k < req.length; k++) {
        const started = k >= headEnd && k <= bad;
        const text = await twoPart(port, req.slice(0, k), req.slice(k), started);
        assert.deepEqual(statuses(text), [started ? 200 : 400], `split at ${k}: ${text}`);
        assert.doesNotMatch(text, /\/after/);
        if (!started) assert.match(text, /Connection: close\r\n/);
      }
    });

    test('whole, behind a reply still being computed: 400 replaces it (the late reply is dropped)', async () => {
      const { port } = await start();
      const text = await twoPart(port, req.replace('POST /p', 'POST /slow/100'), '', false);
      assert.deepEqual(statuses(text), [400], text);
      assert.doesNotMatch(text, /slow 100/);
    });

    test('pipelined behind an answered request: that answer, then 400 for the broken one', async () => {
      const { port } = await start();
      const text = await twoPart(port, 'GET /first HTTP/1.1\r\nHost: x\r\n\r\n' + req, '', false);
      assert.deepEqual(statuses(text), [200, 400], text);
      assert.match(text, /GET \/first/);
    });

    test('a chunked body past --max-body before its answer: 413 and close, at every split point', async () => {
      const limits = { ...DEFAULT_PARSER_LIMITS, maxBodyBytes: 8 };
      const { port } = await start({ limits });
      const big = headPart + '10\r\n0123456789abcdef\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n';
      const bad = errorIndex(big, limits);
      for (let k = 1; k < big.length; k++) {
        const started = k >= headEnd && k <= bad;
        const text = await twoPart(port, big.slice(0, k), big.slice(k), started);
        // Split after the head: the answer started, so the connection just closes after it.
        assert.deepEqual(statuses(text), [started ? 200 : 413], `split at ${k}: ${text}`);
        assert.doesNotMatch(text, /\/after/);
      }
    });

    test('after its answer started: that answer, then close with nothing more', async () => {
      const { port } = await start();
      const text = await twoPart(port, headPart, 'zz\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n', true);
      assert.deepEqual(statuses(text), [200], text);
      assert.doesNotMatch(text, /\/after/);
    });
  });

  // Issue 8: a fresh connection gets the head timeout from accept, not the idle timeout.
  describe('the first head is due within the head timeout of accept', () => {
    test('silent: closed without a word', async () => {
      const { port } = await start({ headTimeoutMs: 400, idleTimeoutMs: 60_000 });
      const t0 = Date.now();
      const { text, closed } = await exchange(port, '');
      assert.ok(closed);
      assert.equal(text, '');
      assert.ok(Date.now() - t0 < 5000, `closed after ${Date.now() - t0} ms`);
    });
    test('part of a head: 408 and close', async () => {
      const { port } = await start({ headTimeoutMs: 400, idleTimeoutMs: 60_000 });
      const { text, closed } = await exchange(port, 'GET / HTTP/1.1\r\nHo');
      assert.ok(closed);
      assert.deepEqual(statuses(text), [408]);
      assert.match(text, /Connection: close\r\n/);
    });
    test('stray empty lines do not turn it into an idle wait', async () => {
      const { port } = await start({ headTimeoutMs: 600, idleTimeoutMs: 60_000 });
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      const t0 = Date.now();
      // The server's FIN: its side is done (a 408, since empty lines count as the head's start).
      const ended = new Promise<void>((r) => socket.on('end', () => r()));
      socket.resume();
      const drip = setInterval(() => socket.writable && socket.write('\r\n'), 100);
      await ended;
      clearInterval(drip);
      socket.destroy();
      assert.ok(Date.now() - t0 < 4000, `closed after ${Date.now() - t0} ms`);
    });
    test('after the first answer, the idle timeout applies again', async () => {
      const clock = useTestClock();
      try {
        const { port } = await start({ headTimeoutMs: 300, idleTimeoutMs: 60_000 });
        const socket = net.connect(port, '127.0.0.1');
        let closed = false;
        socket.on('close', () => (closed = true));
        socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
        await new Promise((r) => socket.once('data', r));
        clock.advance(1200); // four head timeouts, swept at once
        // Anything the sweep did to the connection would reach us before this answer.
        socket.write('GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
        const b = await new Promise<string>((r) => socket.once('data', (c: Buffer) => r(c.toString('latin1'))));
        assert.equal(closed, false, 'a kept-alive connection waits the idle timeout');
        assert.match(b, /GET \/b$/);
        socket.destroy();
      } finally {
        clock.restore();
      }
    });
  });

  test('the head deadline runs from each head\'s own first byte, not the previous one\'s', async () => {
    const clock = useTestClock();
    try {
      const { port, server } = await start({ headTimeoutMs: 1200 });
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      const first = 'GET /a HTTP/1.1\r\n';
      socket.write(first);
      await waitFor(() => bytesRead(server) === first.length, { what: 'the server to read the start of A' });
      clock.advance(900);
      // Finishes A and starts B in one chunk: B's deadline starts now, not when A's did.
      socket.write('Host: x\r\n\r\nGET /b HTTP/1.1\r\n');
      await waitFor(() => statuses(Buffer.concat(chunks).toString('latin1')).length === 1, { what: 'the answer to A' });
      clock.advance(900); // past A's deadline, short of B's
      socket.write('Host: x\r\nConnection: close\r\n\r\n');
      await closed;
      assert.deepEqual(statuses(Buffer.concat(chunks).toString('latin1')), [200, 200]);
    } finally {
      clock.restore();
    }
  });

  test('empty lines dripped before a request line do not hold a connection past the head deadline', async () => {
    // Whole empty lines, and the CR and LF of each in separate writes.
    for (const drip of [['\r\n'], ['\r', '\n']]) {
      const clock = useTestClock();
      try {
        const { port, server, metrics } = await start({ headTimeoutMs: 500, idleTimeoutMs: 500 });
        const socket = net.connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', () => {});
        let closed = false;
        socket.on('close', () => (closed = true));
        await waitFor(() => metrics.open.http === 1, { what: 'the connection accepted' });
        // A drip every 100 ms of clock time; the clock stops once the server answered.
        const started = clock.now();
        await dripOnClock(clock, server, socket, drip, 100, 3000, () => closed || chunks.length > 0);
        const elapsed = clock.now() - started;
        if (chunks.length > 0) await waitFor(() => closed, { what: 'the close after the 408' });
        assert.ok(socket.destroyed || socket.readableEnded, `${JSON.stringify(drip)}: still open after ${elapsed} ms`);
        assert.ok(elapsed < 2000, `${JSON.stringify(drip)}: closed after ${elapsed} ms`);
        socket.destroy();
        assert.deepEqual(statuses(Buffer.concat(chunks).toString('latin1')), [408]);
      } finally {
        clock.restore();
      }
    }
  });

  test('a request body dripped a byte at a time is cut off at the send timeout', async () => {
    const clock = useTestClock();
    try {
      const { port, server } = await start({ sendTimeoutMs: 500 });
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => {});
      let closed = false;
      socket.on('close', () => (closed = true));
      const started = clock.now();
      const head = 'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n';
      socket.write(head);
      await waitFor(() => bytesRead(server) === head.length, { what: 'the server to read the head' });
      // A byte every 50 ms of clock time, until the server cuts the body off.
      await dripOnClock(clock, server, socket, ['a'], 50, 3000, () => closed || server.listener.sockets.size === 0);
      const elapsed = clock.now() - started;
      // As before, the verdict is the elapsed time, not whether the client saw the close yet.
      await waitFor(() => closed, { what: 'the client to see the close', timeoutMs: 3000 }).catch(() => undefined);
      socket.destroy();
      assert.ok(elapsed < 2000, `still open after ${elapsed} ms`);
      assert.deepEqual(statuses(Buffer.concat(chunks).toString('latin1')), [200], 'the head was answered at once');
    } finally {
      clock.restore();
    }
  });

  test('a slow reader that keeps reading is not cut off by the send timeout; a stalled one is', async () => {
    const clock = useTestClock();
    try {
      const { port, metrics, server } = await start({ sendTimeoutMs: 500, maxPipeline: 64 });
      const count = 150;
      const size = 60_000;
      // About 9 MB of in-memory answers, read at a few MB/s: seconds, many times the send timeout.
      const started = clock.now();
      const received = await readSlowly(port, count, size, clock);
      const elapsed = clock.now() - started;
      assert.ok(elapsed > 1000, `took ${elapsed} ms: the reader was not slow enough to test anything`);
      assert.ok(received > count * size, `received ${received} of ${count * size}+ bytes in ${elapsed} ms`);

      const stalled = net.connect(port, '127.0.0.1');
      stalled.on('error', () => {});
      await new Promise((r) => stalled.once('connect', r));
      stalled.pause();
      const asked = `GET /mem/${size} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(count);
      stalled.write(asked);
      // Stalled for good: the requests are in and the output the kernel refused waits in the socket.
      const sockets = server.listener.sockets as ReadonlySet<net.Socket>;
      await waitFor(() => [...sockets].some((s) => s.bytesRead === asked.length && s.writableLength > 0), { what: 'the stalled reader\'s output to back up' });
      // A client that does not read does not see the close either: watch the server's side.
      const t0 = clock.now();
      clock.advance(1100); // two send timeouts without progress
      await waitFor(() => metrics.open.http === 0, { what: 'the server to let the stalled reader go', timeoutMs: 5000 });
      assert.equal(metrics.open.http, 0, `a reader that never reads was still connected after ${clock.now() - t0} ms`);
      stalled.destroy();
    } finally {
      clock.restore();
    }
  });

  test('after a 408 the connection is let go even if the peer never closes its half', async () => {
    const clock = useTestClock();
    try {
      const { port, metrics, server } = await start({ headTimeoutMs: 300, sendTimeoutMs: 500 });
      const firsts = ['\r\n', 'GET / HT'];
      const answers = firsts.map(() => ({ text: '' }));
      const socks = firsts.map((first, i) => {
        const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        c.on('error', () => {});
        c.on('data', (d: Buffer) => (answers[i]!.text += d.toString('latin1')));
        c.write(first);
        return c;
      });
      const t0 = clock.now();
      await waitFor(() => metrics.open.http === 2 && bytesRead(server) === firsts.join('').length, { what: 'both connections and their first bytes' });
      clock.advance(400); // past the head timeout: a 408 each
      await waitFor(() => answers.every((a) => statuses(a.text)[0] === 408), { what: 'a 408 on each', detail: () => JSON.stringify(answers) });
      // The peers never close their halves: one send timeout sees the 408 leave (progress),
      // the next sees nothing more.
      clock.advance(600);
      clock.advance(600);
      await waitFor(() => metrics.open.http === 0, { what: 'the server to let both go', timeoutMs: 5000 });
      assert.equal(metrics.open.http, 0, `still open after ${clock.now() - t0} ms`);
      socks.forEach((c) => c.destroy());
    } finally {
      clock.restore();
    }
  });

  test('a reply that closes the connection is judged on progress too, not on a deadline from before it', async () => {
    // Idle shorter than the transfer: the closing reply's bytes must keep the connection alive.
    const clock = useTestClock();
    try {
      const { port } = await start({ idleTimeoutMs: 300, sendTimeoutMs: 500, maxPipeline: 256, maxOutputBytes: 64 << 20 });
      const count = 100;
      const size = 60_000;
      const received = await readSlowly(port, count, size, clock);
      assert.ok(received > count * size, `received ${received} of ${count * size}+ bytes`);
    } finally {
      clock.restore();
    }
  });

  test('each pipelined body has its own deadline', async () => {
    const clock = useTestClock();
    try {
      const { port, server } = await start({ sendTimeoutMs: 1000 });
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => {});
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      const post = 'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n';
      let sent = post + '12345';
      socket.write(post + '12345');
      await waitFor(() => bytesRead(server) === sent.length, { what: 'the server to read the first body\'s start' });
      clock.advance(700);
      socket.write('67890' + post + '12345'); // the second body starts here: its 1 s runs from now
      sent += '67890' + post + '12345';
      await waitFor(() => bytesRead(server) === sent.length, { what: 'the server to read the second body\'s start' });
      clock.advance(700); // 1.4 s after the first body began, 0.7 s into the second
      socket.write('67890GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await closed;
      assert.deepEqual(statuses(Buffer.concat(chunks).toString('latin1')), [200, 200, 200]);
    } finally {
      clock.restore();
    }
  });

  test('pipelined: output bigger than a write slice, streamed files and small replies arrive whole and in order; the chunk budget returns to zero', async () => {
    const outputBudget = new ByteBudget(1 << 30);
    const { port } = await start({ outputBudget });
    const files = openFileCount();
    const big = Buffer.alloc(BIG_SIZE);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const targets = ['/mem/600000', '/big', '/a', '/mem/20000', '/big', '/mem/300', '/big'];
    const req = targets.map((t, i) => `GET ${t} HTTP/1.1\r\nHost: x\r\n${i === targets.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // Read in bursts, so that the server's output backs up and is held, sliced and resumed.
      socket.pause();
      setTimeout(() => socket.resume(), 1);
    });
    const closed = new Promise((r) => socket.on('close', r));
    socket.write(req);
    await closed;
    const got = responses(Buffer.concat(chunks));
    assert.deepEqual(got.map((r) => r.status), targets.map(() => 200));
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      const want = t === '/big' ? big : t === '/a' ? Buffer.from('GET /a') : Buffer.alloc(Number(t.slice(5)), 'm');
      assert.ok(got[i]!.body.equals(want), `${t} (#${i}) arrived whole`);
    }
    for (let i = 0; i < 100 && (outputBudget.used !== 0 || openFileCount() !== files); i++) await sleep(20);
    assert.equal(outputBudget.used, 0, 'every file chunk went back to the pool');
    assert.equal(openFileCount(), files);
  });

  test('a reader that leaves while a file waits behind held output: the chunk budget returns to zero and the file is released', async () => {
    const outputBudget = new ByteBudget(1 << 30);
    const { port, metrics } = await start({ outputBudget });
    const files = openFileCount();
    for (const [readFirst, wait] of [[false, 50], [true, 50], [true, 0]] as const) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('GET /mem/2000000 HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n');
      if (readFirst) {
        // Take the in-memory answer and part of the file, then stop: a chunk is in flight.
        let received = 0;
        await new Promise<void>((resolve) => {
          socket.on('data', (c: Buffer) => {
            received += c.length;
            if (received > 2_300_000) {
              socket.pause();
              resolve();
            }
          });
        });
      } else socket.pause();
      await sleep(wait);
      socket.destroy();
    }
    for (let i = 0; i < 150 && (metrics.open.http > 0 || outputBudget.used !== 0 || openFileCount() !== files); i++) await sleep(20);
    assert.equal(metrics.open.http, 0);
    assert.equal(outputBudget.used, 0, 'chunks in flight were given back');
    assert.equal(openFileCount(), files, 'the file was released');
  });

  test('a client that half-closes after sending still gets every answer', async () => {
    const { port } = await start();
    const { text, closed } = await exchange(port, 'GET /slow/50 HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n', { end: true });
    assert.equal(closed, true);
    assert.deepEqual(statuses(text), [200, 200]);
  });
});
