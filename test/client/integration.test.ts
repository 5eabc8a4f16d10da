// The client library against the real MX/1 server (src/binary), in-process on 127.0.0.1.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, LocalCode, MuxError, type MuxClient } from '../../src/client/index.js';
import { ABANDON_PAD_MAX } from '../../src/client/client.js';
import { ErrorCode } from '../../src/wire/protocol.js';
import { ADMIN_TOKEN, startRealServer, type RealServer } from './real-server.js';
import { collector } from '../helpers/collector.js';
import { waitFor } from '../helpers/wait.js';

let real: RealServer;
const clients: MuxClient[] = [];
before(async () => {
  real = await startRealServer();
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await real.stop();
});

async function client(): Promise<MuxClient> {
  const c = await connect({ port: real.port, timeoutMs: 5000 });
  clients.push(c);
  return c;
}


/** Resolves with the next `event` emission's arguments. */
function next(c: MuxClient, event: string): Promise<unknown[]> {
  return new Promise((resolve) => c.once(event, (...args: unknown[]) => resolve(args)));
}

describe('client against the real server', () => {
  test('ping and stats', async () => {
    const c = await client();
    const payload = randomBytes(1024);
    assert.deepEqual(await c.ping(payload), payload);
    const stats = await c.stats();
    assert.equal(typeof stats, 'object');
  });

  test('chat: join, pushes, say, names, announce, leave', async () => {
    const ann = await client();
    const bob = await client();
    assert.deepEqual(await ann.join('ann'), ['ann']);
    const joined = next(ann, 'userJoined');
    const names = await bob.join('bob');
    assert.deepEqual([...names].sort(), ['ann', 'bob']);
    assert.deepEqual(await joined, ['bob']);

    const msg = next(ann, 'message');
    await bob.say('hello 张三');
    assert.deepEqual(await msg, ['bob', 'hello 张三']);

    await assert.rejects(bob.join('bob2'), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.ALREADY_JOINED);
    const other = await client();
    await assert.rejects(other.join('ANN'), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.NAME_TAKEN);
    await assert.rejects(other.announce('wrong', 'x'), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.FORBIDDEN);

    const heard = Promise.all([next(ann, 'announcement'), next(bob, 'announcement')]);
    await other.announce(ADMIN_TOKEN, 'server restarts soon');
    assert.deepEqual(await heard, [['server restarts soon'], ['server restarts soon']]);

    const left = next(ann, 'userLeft');
    await bob.leave();
    assert.deepEqual(await left, ['bob']);
    assert.deepEqual(await ann.names(), ['ann']);
  });

  test('put, list, get whole and with an offset', async () => {
    const c = await client();
    const data = randomBytes(2 * 1024 * 1024 + 17);
    const digest = createHash('sha256').update(data).digest();
    const put = await c.put('blob.bin', data);
    assert.deepEqual(put, { size: data.length, sha256: digest });
    assert.ok(readFileSync(path.join(real.filesDir, 'blob.bin')).equals(data));
    assert.ok((await c.list()).some((e) => e.name === 'blob.bin' && e.size === data.length));

    const whole = collector();
    assert.deepEqual(await c.get('blob.bin', whole), put);
    assert.ok(whole.data().equals(data));

    const tail = collector();
    await c.get('blob.bin', tail, { offset: data.length - 100 });
    assert.ok(tail.data().equals(data.subarray(data.length - 100)));

    await assert.rejects(c.get('blob.bin', collector(), { offset: data.length + 1 }), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.OFFSET_BEYOND_END);
    await assert.rejects(c.get('missing', collector()), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.NOT_FOUND);
    await assert.rejects(c.put('.hidden', data), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.BAD_FILE_NAME);
    assert.equal(String(await c.ping(Buffer.from('ok'))), 'ok');
  });

  test('a Unix socket endpoint', { skip: process.platform === 'win32' }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muxd-sock-'));
    const sock = path.join(dir, 'mx.sock');
    const unix = await startRealServer({ path: sock });
    const c = await connect({ path: sock });
    try {
      assert.equal(String(await c.ping(Buffer.from('unix'))), 'unix');
    } finally {
      await c.close();
      await unix.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('abandoned uploads release their server slot (--max-transfers 1)', () => {
  let one: RealServer;
  before(async () => {
    one = await startRealServer(null, { maxTransfers: 1 });
  });
  after(() => one.stop());

  test('a put whose source shrinks mid-way fails locally; the next put on the connection succeeds', async () => {
    const c = await connect({ port: one.port, timeoutMs: 5000 });
    const errors: unknown[] = [];
    c.on('error', (e) => errors.push(e));
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'muxd-shrink-'));
      const file = path.join(dir, 'shrink.bin');
      writeFileSync(file, randomBytes(8 << 20));
      let truncated = false;
      await assert.rejects(
        c.put('shrink.bin', file, {
          onProgress() {
            if (!truncated) {
              truncated = true;
              truncateSync(file, 100_000);
            }
          },
        }),
        (e: unknown) => e instanceof MuxError && e.code === LocalCode.LOCAL,
      );
      rmSync(dir, { recursive: true, force: true });
      const data = randomBytes(1000);
      assert.deepEqual(await c.put('other.bin', data), { size: data.length, sha256: createHash('sha256').update(data).digest() });
      assert.deepEqual(readdirSync(one.filesDir), ['other.bin']);
      // The server's ERROR 4 for the padding answers an upload already settled: no one's error.
      assert.deepEqual(errors, []);
    } finally {
      await c.close();
    }
    await assert.rejects(c.ping(), (e: unknown) => e instanceof MuxError && e.code === LocalCode.CLOSED);
  });

  test('a put that times out (server stalled) is abandoned; once the server reads again the next put succeeds', async () => {
    const c = await connect({ port: one.port, timeoutMs: 300 });
    try {
      const serverSide = [...one.server.listener.sockets].at(-1)!;
      // Stall the server: it reads nothing, so the upload makes no progress once buffers are full.
      serverSide.pause();
      await assert.rejects(c.put('stalled.bin', randomBytes(12 << 20)), (e: unknown) => e instanceof MuxError && e.code === LocalCode.TIMEOUT);
      serverSide.resume();
      // Let the server read what the abandoned upload left in flight (its padding is all queued
      // at once) before the next put's 300 ms start: that put waits on nothing else, so a loaded
      // machine chewing megabytes cannot time it out.
      const clientSide = (c as unknown as { transport: { socket: Socket } }).transport.socket;
      await waitFor(() => clientSide.writableLength === 0 && serverSide.bytesRead >= clientSide.bytesWritten, {
        what: 'the server to read the abandoned upload',
        detail: () => `read ${serverSide.bytesRead} of ${clientSide.bytesWritten}`,
      });
      const data = randomBytes(1000);
      assert.equal((await c.put('after.bin', data)).size, data.length);
      assert.ok(!readdirSync(one.filesDir).includes('stalled.bin'));
    } finally {
      await c.close();
    }
  });

  test(`abandoning more than ${ABANDON_PAD_MAX} bytes closes the connection instead`, async () => {
    const c = await connect({ port: one.port, timeoutMs: 300 });
    const serverSide = [...one.server.listener.sockets].at(-1)!;
    serverSide.pause();
    await assert.rejects(c.put('huge.bin', Buffer.alloc(ABANDON_PAD_MAX + (8 << 20))), (e: unknown) => e instanceof MuxError && e.code === LocalCode.TIMEOUT);
    await assert.rejects(c.ping(), (e: unknown) => e instanceof MuxError && e.code === LocalCode.CLOSED);
    if (!c.isClosed) await new Promise((r) => c.once('close', r));
  });
});

describe('uploads with a token (server with --upload-token)', () => {
  let guarded: RealServer;
  before(async () => {
    guarded = await startRealServer(null, { uploadToken: 'up-t0k' });
  });
  after(() => guarded.stop());

  test('put without a token is ERROR 14; the connect option or put({ token }) sends AUTH first', async () => {
    const plain = await connect({ port: guarded.port, timeoutMs: 5000 });
    clients.push(plain);
    await assert.rejects(plain.put('a.txt', Buffer.from('a')), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.FORBIDDEN);
    assert.equal((await plain.put('a.txt', Buffer.from('a'), { token: 'up-t0k' })).size, 1);
    const withToken = await connect({ port: guarded.port, timeoutMs: 5000, token: 'up-t0k' });
    clients.push(withToken);
    assert.equal((await withToken.put('b.txt', Buffer.from('bb'))).size, 2);
    assert.equal((await withToken.put('c.txt', Buffer.from('ccc'))).size, 3);
    const wrong = await connect({ port: guarded.port, timeoutMs: 5000, token: 'nope' });
    clients.push(wrong);
    await assert.rejects(wrong.put('d.txt', Buffer.from('d')), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.FORBIDDEN && /bad upload token/.test(e.message));
  });
});
