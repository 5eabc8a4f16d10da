// The client library against a scripted fake server (node:net + src/wire only).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { connect, LocalCode, MuxError, type MuxClient } from '../../src/client/index.js';
import { encodeFileInfo, encodeMessage, encodeNames } from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { fileStoreHandler, startFake, type FakeServer, type Handler } from './fake-server.js';
import { collector } from '../helpers/collector.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'muxd-client-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Starts a fake server with `handler`, connects a client, and cleans both up after the test. */
async function setup(handler: Handler, opts: { timeoutMs?: number; maxFrame?: number } = {}): Promise<{ fake: FakeServer; client: MuxClient }> {
  const fake = await startFake(handler);
  const client = await connect({ port: fake.port, ...opts });
  after(async () => {
    await client.close();
    await fake.close();
  });
  return { fake, client };
}


const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

describe('requests and replies', () => {
  test('ping echoes an empty and a 1 KiB payload', async () => {
    const { client } = await setup(fileStoreHandler(new Map()));
    assert.equal((await client.ping()).length, 0);
    const payload = randomBytes(1024);
    assert.deepEqual(await client.ping(payload), payload);
  });

  test('pipelined requests resolve by id even when replies come back out of order', async () => {
    const held: { id: number; payload: Buffer }[] = [];
    const { client } = await setup((frame, conn) => {
      held.push({ id: frame.id, payload: frame.payload });
      if (held.length === 3) for (const h of held.reverse()) conn.send(Type.PING_OK, h.id, h.payload);
    });
    const payloads = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')];
    const replies = await Promise.all(payloads.map((p) => client.ping(p)));
    assert.deepEqual(replies.map(String), ['one', 'two', 'three']);
    // Distinct, non-zero ids.
    const ids = held.map((h) => h.id);
    assert.equal(new Set(ids).size, 3);
    assert.ok(!ids.includes(0));
  });

  test('an ERROR frame rejects with MuxError(code, message) and the connection stays usable', async () => {
    const { client } = await setup((frame, conn) => {
      if (frame.type === Type.JOIN) conn.error(frame.id, ErrorCode.NAME_TAKEN, 'name "bob" is taken');
      else conn.send(frame.type | 0x80, frame.id, frame.payload);
    });
    await assert.rejects(client.join('bob'), (err: unknown) => {
      assert.ok(err instanceof MuxError);
      assert.equal(err.code, ErrorCode.NAME_TAKEN);
      assert.equal(err.message, 'name "bob" is taken');
      return true;
    });
    assert.equal(String(await client.ping(Buffer.from('still here'))), 'still here');
  });

  test('join, names, say, leave, list and stats decode their replies', async () => {
    const { client } = await setup((frame, conn) => {
      switch (frame.type) {
        case Type.JOIN:
          return conn.send(Type.JOIN_OK, frame.id, encodeNames(['ann', String(frame.payload)]));
        case Type.NAMES:
          return conn.send(Type.NAMES_OK, frame.id, encodeNames(['张三']));
        case Type.STATS:
          return conn.send(Type.STATS_OK, frame.id, Buffer.from('{"uptime":5,"connections":{"binary":1}}'));
        default:
          return conn.send(frame.type | 0x80, frame.id);
      }
    });
    assert.deepEqual(await client.join('bob'), ['ann', 'bob']);
    assert.deepEqual(await client.names(), ['张三']);
    await client.say('hello');
    await client.leave();
    assert.deepEqual(await client.stats(), { uptime: 5, connections: { binary: 1 } });
  });

  test('a reply of the wrong type or shape rejects with PROTOCOL', async () => {
    const { client } = await setup((frame, conn) => {
      if (frame.type === Type.SAY) conn.send(Type.SAY_OK, frame.id, Buffer.from('unexpected'));
      else if (frame.type === Type.STATS) conn.send(Type.STATS_OK, frame.id, Buffer.from('[1,2]'));
      else conn.send(Type.LIST_OK, frame.id);
    });
    for (const p of [client.say('x'), client.stats(), client.ping()]) {
      await assert.rejects(p, (err: unknown) => err instanceof MuxError && err.code === LocalCode.PROTOCOL);
    }
  });

  test('a request without a reply times out, and a late reply is ignored', async () => {
    let late: (() => void) | null = null;
    const { client } = await setup(
      (frame, conn) => {
        if (frame.type === Type.STATS) late = () => conn.send(Type.STATS_OK, frame.id, Buffer.from('{}'));
        else conn.send(Type.PING_OK, frame.id, frame.payload);
      },
      { timeoutMs: 100 },
    );
    await assert.rejects(client.stats(), (err: unknown) => err instanceof MuxError && err.code === LocalCode.TIMEOUT);
    late!();
    assert.equal(String(await client.ping(Buffer.from('after'))), 'after');
  });

  test('the connection closing rejects every pending request and emits close', async () => {
    const { client } = await setup((frame, conn) => {
      if (frame.type === Type.LIST) conn.socket.destroy();
    });
    const closed = once(client, 'close');
    const pending = [client.ping(), client.names(), client.list()];
    for (const p of pending) await assert.rejects(p, (err: unknown) => err instanceof MuxError && err.code === LocalCode.CLOSED);
    await closed;
    await assert.rejects(client.ping(), (err: unknown) => err instanceof MuxError && err.code === LocalCode.CLOSED);
  });

  test('a frame larger than maxFrame closes the connection with FRAME_TOO_LARGE', async () => {
    const { client } = await setup((frame, conn) => conn.send(Type.PING_OK, frame.id, Buffer.alloc(2048)), { maxFrame: 1024 });
    await assert.rejects(client.ping(), (err: unknown) => err instanceof MuxError && err.code === ErrorCode.FRAME_TOO_LARGE);
  });

  test('connection refused rejects with ECONNREFUSED', async () => {
    const fake = await startFake(() => {});
    const port = fake.port;
    await fake.close();
    await assert.rejects(connect({ port }), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  });

  test('a Unix socket path works like TCP', { skip: process.platform === 'win32' }, async () => {
    const sock = path.join(tmp, 'mx.sock');
    const fake = await startFake(fileStoreHandler(new Map()), { path: sock });
    const client = await connect({ path: sock });
    try {
      assert.equal(String(await client.ping(Buffer.from('unix'))), 'unix');
    } finally {
      await client.close();
      await fake.close();
    }
  });
});

describe('pushes', () => {
  test('pushes become events, in order; malformed ones become error events', async () => {
    const { client } = await setup((frame, conn) => {
      conn.send(Type.JOIN_OK, frame.id, encodeNames(['me']));
      conn.send(Type.USER_JOINED, 0, Buffer.from('ann'));
      conn.send(Type.MESSAGE, 0, encodeMessage('ann', 'hi 👋'));
      conn.send(Type.ANNOUNCEMENT, 0, Buffer.from('maintenance at noon'));
      conn.send(Type.MESSAGE, 0, Buffer.from([0, 9, 0x41])); // str16 claims 9 bytes, has 1
      conn.send(Type.USER_LEFT, 0, Buffer.from('ann'));
    });
    const events: string[] = [];
    client.on('userJoined', (n: string) => events.push(`joined ${n}`));
    client.on('message', (from: string, text: string) => events.push(`${from}: ${text}`));
    client.on('announcement', (t: string) => events.push(`announce ${t}`));
    client.on('error', (e: Error) => events.push(`error ${e instanceof MuxError ? e.code : '?'}`));
    // Not events.once: it would reject on the 'error' event this test expects.
    const left = new Promise<string>((resolve) => client.once('userLeft', resolve));
    await client.join('me');
    assert.equal(await left, 'ann');
    assert.deepEqual(events, ['joined ann', 'ann: hi 👋', 'announce maintenance at noon', `error ${LocalCode.PROTOCOL}`]);
  });
});

describe('files', () => {
  const big = randomBytes(3 * 1024 * 1024 + 123);

  test('put then get a few MiB from a buffer, with digests and progress', async () => {
    const files = new Map<string, Buffer>();
    const { client } = await setup(fileStoreHandler(files));
    let lastSent = 0;
    const put = await client.put('big.bin', big, { onProgress: (sent, total) => ((lastSent = sent), assert.equal(total, big.length)) });
    assert.equal(put.size, big.length);
    assert.deepEqual(put.sha256, sha(big));
    assert.equal(lastSent, big.length);
    assert.deepEqual(files.get('big.bin'), big);

    const sink = collector();
    let started = -1;
    const got = await client.get('big.bin', sink, { onStart: (size) => (started = size) });
    assert.equal(started, big.length);
    assert.deepEqual(got.sha256, sha(big));
    assert.ok(sink.data().equals(big));
  });

  test('put from a file path streams it', async () => {
    const files = new Map<string, Buffer>();
    const { client } = await setup(fileStoreHandler(files));
    const file = path.join(tmp, 'upload.bin');
    writeFileSync(file, big);
    const put = await client.put('from-file', file);
    assert.deepEqual(put.sha256, sha(big));
    assert.ok(files.get('from-file')!.equals(big));
    // An empty upload sends no DATA and still completes.
    const empty = await client.put('empty', new Uint8Array(0));
    assert.equal(empty.size, 0);
  });

  test('put rejects with the server error and stops sending', async () => {
    // Large enough that the socket fills up, so the client waits for 'drain' and sees the error.
    const large = Buffer.alloc(32 * 1024 * 1024, 1);
    let dataFrames = 0;
    const { client } = await setup((frame, conn) => {
      if (frame.type === Type.PUT) conn.error(frame.id, ErrorCode.BAD_FILE_NAME, 'bad file name');
      else if (frame.type === Type.DATA) dataFrames++;
      else conn.send(Type.PING_OK, frame.id, frame.payload);
    });
    await assert.rejects(client.put('.hidden', large), (err: unknown) => err instanceof MuxError && err.code === ErrorCode.BAD_FILE_NAME);
    await client.ping(); // everything sent before it has arrived
    assert.ok(dataFrames < large.length / 65536, `sent all ${dataFrames} DATA frames despite the error`);
  });

  test('get with an offset receives only the tail; offset == size sends no DATA', async () => {
    const files = new Map([['f', big]]);
    const { client } = await setup(fileStoreHandler(files));
    const sink = collector();
    const progress: number[] = [];
    const got = await client.get('f', sink, { offset: 1000, onProgress: (r, total) => (progress.push(r), assert.equal(total, big.length)) });
    assert.equal(got.size, big.length);
    assert.ok(sink.data().equals(big.subarray(1000)));
    assert.equal(progress.at(-1), big.length);

    const none = collector();
    const end = await client.get('f', none, { offset: big.length });
    assert.equal(end.size, big.length);
    assert.equal(none.data().length, 0);
  });

  test('get of a missing file rejects NOT_FOUND', async () => {
    const { client } = await setup(fileStoreHandler(new Map()));
    await assert.rejects(client.get('nope', collector()), (err: unknown) => err instanceof MuxError && err.code === ErrorCode.NOT_FOUND);
  });

  test('more DATA than the file holds rejects with PROTOCOL', async () => {
    const { client } = await setup((frame, conn) => {
      conn.send(Type.GET_OK, frame.id, encodeFileInfo(4, Buffer.alloc(32)));
      conn.send(Type.DATA, frame.id, Buffer.from('12345'));
    });
    await assert.rejects(client.get('x', collector()), (err: unknown) => err instanceof MuxError && err.code === LocalCode.PROTOCOL);
  });

  test('timeoutMs is per stretch without progress: a steady GET longer than the timeout succeeds', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const chunk = 64 * 1024;
    const { client } = await setup(
      (frame, conn) => {
        if (frame.type !== Type.GET) return;
        // GET_OK after 100 ms, then a DATA frame every 10 ms: 64 frames, well over the 150 ms timeout.
        let at = 0;
        const step = (): void => {
          if (conn.socket.destroyed) return;
          conn.send(Type.DATA, frame.id, body.subarray(at, at + chunk));
          at += chunk;
          if (at < body.length) setTimeout(step, 10);
        };
        setTimeout(() => {
          conn.send(Type.GET_OK, frame.id, encodeFileInfo(body.length, sha(body)));
          setTimeout(step, 100);
        }, 100);
      },
      { timeoutMs: 150 },
    );
    const sink = collector();
    const started = Date.now();
    const got = await client.get('steady', sink);
    assert.ok(Date.now() - started > 500, 'the transfer took longer than the timeout');
    assert.equal(got.size, body.length);
    assert.ok(sink.data().equals(body));
  });

  test('a GET that stops making progress still times out', async () => {
    const { client } = await setup(
      (frame, conn) => {
        if (frame.type !== Type.GET) return;
        conn.send(Type.GET_OK, frame.id, encodeFileInfo(1000, Buffer.alloc(32)));
        conn.send(Type.DATA, frame.id, Buffer.alloc(100));
      },
      { timeoutMs: 150 },
    );
    const started = Date.now();
    await assert.rejects(client.get('stalls', collector()), (err: unknown) => err instanceof MuxError && err.code === LocalCode.TIMEOUT && /no reply or progress within 150 ms/.test(err.message));
    assert.ok(Date.now() - started < 2000);
  });

  test('a put to a server that stops reading times out instead of waiting for drain forever', async () => {
    const { client } = await setup((_frame, conn) => conn.socket.pause(), { timeoutMs: 200 });
    await assert.rejects(client.put('stuck', Buffer.alloc(12 * 1024 * 1024, 1)), (err: unknown) => err instanceof MuxError && err.code === LocalCode.TIMEOUT);
  });

  test('a stalled sink stops the client reading: the server is left holding the data', async () => {
    const huge = Buffer.alloc(48 * 1024 * 1024, 7);
    const files = new Map([['huge', huge]]);
    const { fake, client } = await setup(fileStoreHandler(files, 256 * 1024));
    let received = 0;
    let release: (() => void) | null = null;
    let firstWrite: () => void = () => {};
    const firstSeen = new Promise<void>((r) => (firstWrite = r));
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, done) {
        received += chunk.length;
        firstWrite();
        // Hold the very first chunk until the test lets go: the sink is stuck over its highWaterMark.
        if (release === null) release = done;
        else done();
      },
    });
    const result = client.get('huge', sink);
    await firstSeen;
    await new Promise((r) => setTimeout(r, 300));
    const serverSocket = fake.conns[0]!.socket;
    // The client took roughly one socket read, not the whole file; the rest waits on the server side.
    const accepted = sink.writableLength;
    assert.ok(accepted > 0 && accepted < huge.length / 4, `client wrote ${accepted} bytes into its stalled sink`);
    assert.ok(serverSocket.writableLength > 0, 'server still has unsent data');
    release!();
    const got = await result;
    assert.equal(got.size, huge.length);
    assert.equal(received, huge.length);
  });
});
