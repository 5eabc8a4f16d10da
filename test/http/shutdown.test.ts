// Graceful shutdown hooks of one HTTP connection (the contract in src/loop/sweeper.ts's Timed
// users: drain() finishes what is in flight, abort() cuts it). The listener that calls them is
// tested elsewhere; here a bare net.Server hands each socket to an HttpConnection we keep.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpConnection } from '../../src/http/connection.js';
import { parserFactory } from '../../src/http/parsers.js';
import { DEFAULT_PARSER_LIMITS, type Handler } from '../../src/http/types.js';
import { openFileCount } from '../../src/http/static/open-file.js';
import { ChunkPool } from '../../src/http/chunk-pool.js';
import { ByteBudget } from '../../src/loop/budget.js';
import { scriptedHandler } from '../helpers/http-scripted.js';

const BIG_SIZE = 32 * 1024 * 1024 + 5; // more than loopback socket buffers absorb
let dir = '';
let bigFile = '';

const handler: Handler = scriptedHandler(() => bigFile, BIG_SIZE);

interface Harness {
  port: number;
  /** The connection objects, in accept order. */
  conns: HttpConnection[];
  close(): Promise<void>;
}

const pool = new ChunkPool(new ByteBudget(256 * 1024 * 1024));

async function harness(): Promise<Harness> {
  const conns: HttpConnection[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    conns.push(
      new HttpConnection(socket, {
        handler,
        parserFactory: parserFactory('muxd'),
        limits: DEFAULT_PARSER_LIMITS,
        headTimeoutMs: 10_000,
        idleTimeoutMs: 10_000,
        sendTimeoutMs: 10_000,
        maxPipeline: 16,
        maxOutputBytes: 1 << 20,
        accessLog: null,
        pool,
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

interface Client {
  socket: net.Socket;
  received: () => Buffer;
  closed: Promise<void>;
  waitFor(bytes: number): Promise<void>;
}

function client(port: number): Promise<Client> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let size = 0;
    let waiter: { bytes: number; done: () => void } | null = null;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (waiter !== null && size >= waiter.bytes) waiter.done();
    });
    socket.on('error', () => {});
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('connect', () =>
      resolve({
        socket,
        received: () => Buffer.concat(chunks),
        closed,
        waitFor: (bytes) => new Promise<void>((done) => (size >= bytes ? done() : (waiter = { bytes, done }))),
      }),
    );
  });
}

async function connectionFor(h: Harness, count: number): Promise<HttpConnection> {
  for (let i = 0; i < 100 && h.conns.length < count; i++) await sleep(5);
  return h.conns[count - 1]!;
}

function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'muxd-shutdown-'));
  bigFile = path.join(dir, 'big.bin');
  await writeFile(bigFile, Buffer.alloc(BIG_SIZE, 9));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('HttpConnection.drain / abort', () => {
  test('drain: an idle keep-alive connection closes at once', async () => {
    const h = await harness();
    const c = await client(h.port);
    c.socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor(20);
    const conn = await connectionFor(h, 1);
    conn.drain();
    conn.drain(); // idempotent
    await Promise.race([c.closed, sleep(2000).then(() => assert.fail('not closed at once'))]);
    assert.deepEqual(statuses(c.received().toString('latin1')), [200]);
    await h.close();
  });

  test('drain: the request in flight is answered with Connection: close; a pipelined one not started gets nothing', async () => {
    const h = await harness();
    const c = await client(h.port);
    c.socket.write('GET /slow/300 HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n');
    const conn = await connectionFor(h, 1);
    await sleep(50);
    conn.drain();
    await c.closed;
    const text = c.received().toString('latin1');
    assert.deepEqual(statuses(text), [200], text);
    assert.match(text, /Connection: close\r\n/);
    assert.match(text, /slow 300$/);
    assert.doesNotMatch(text, /second/);
    await h.close();
  });

  test('drain: a streaming download continues to its end, then the connection closes', async () => {
    const h = await harness();
    const c = await client(h.port);
    c.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor(1);
    c.socket.pause(); // mid-file
    const conn = await connectionFor(h, 1);
    await sleep(50);
    conn.drain();
    c.socket.resume();
    await c.closed;
    const text = c.received().toString('latin1');
    assert.deepEqual(statuses(text), [200]);
    const body = c.received().subarray(c.received().indexOf('\r\n\r\n') + 4);
    assert.equal(body.length, BIG_SIZE, 'the whole file');
    assert.doesNotMatch(text.slice(-200), /after/);
    await sleep(20);
    assert.equal(openFileCount(), 0);
    await h.close();
  });

  test('abort: cuts a streaming download (true) and releases its file; on an idle connection: false', async () => {
    const h = await harness();
    const c = await client(h.port);
    c.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor(1);
    c.socket.pause();
    const conn = await connectionFor(h, 1);
    await sleep(50);
    assert.equal(openFileCount(), 1);
    assert.equal(conn.abort(), true);
    c.socket.resume();
    await c.closed;
    assert.ok(c.received().length < BIG_SIZE);
    for (let i = 0; i < 50 && openFileCount() !== 0; i++) await sleep(10);
    assert.equal(openFileCount(), 0);

    const idle = await client(h.port);
    idle.socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    await idle.waitFor(20);
    const conn2 = await connectionFor(h, 2);
    assert.equal(conn2.abort(), false);
    await idle.closed;
    assert.equal(conn2.abort(), false, 'already gone');
    await h.close();
  });

  test('abort with a reply still being computed: true, and the late reply is dropped', async () => {
    const h = await harness();
    const c = await client(h.port);
    c.socket.write('GET /slow/100 HTTP/1.1\r\nHost: x\r\n\r\n');
    const conn = await connectionFor(h, 1);
    await sleep(20);
    assert.equal(conn.abort(), true);
    await c.closed;
    await sleep(150);
    assert.equal(c.received().length, 0);
    await h.close();
  });
});
