// Issue 8 on a real socket: temp files only on the first DATA, the server-wide transfer budget,
// the transfer and hello timeouts, upload tokens, a full disk, consistent GETs while a file is
// replaced, and the graceful-shutdown hooks of a connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { open, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ByteBudget, SlotBudget } from '../../src/loop/budget.js';
import { Metrics } from '../../src/loop/metrics.js';
import { tokenDigest } from '../../src/binary/core.js';
import { LocalRoom } from '../../src/chat/room.js';
import { StreamConnection, type StreamContext } from '../../src/binary/stream.js';
import { downloadPool } from '../../src/binary/file-effects.js';
import { isLocalAddress } from '../../src/loop/pipe.js';
import { FileStore, type StoreIo } from '../../src/store/files.js';
import * as P from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { RawClient, startTestServer } from './raw-client.js';
import { useTestClock } from '../helpers/test-clock.js';

const sha = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const temps = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => n.startsWith('.upload-'));

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('a PUT opens no temp file until its first DATA frame', async () => {
  const t = await startTestServer();
  const c = await RawClient.connect(t.port);
  try {
    for (let id = 1; id <= 8; id++) c.send(Type.PUT, id, P.encodePut(3, sha('abc'), `f${id}`));
    await c.request(Type.PING, 100);
    await sleep(50);
    assert.deepEqual(await temps(t.dir), []);
    c.send(Type.DATA, 1, Buffer.from('a'));
    await c.request(Type.PING, 101);
    await until('the temp file', async () => (await temps(t.dir)).length === 1);
    c.send(Type.DATA, 1, Buffer.from('bc'));
    assert.equal((await c.reply(1)).type, Type.PUT_OK);
    assert.deepEqual(await temps(t.dir), []);
  } finally {
    c.close();
    await t.stop();
  }
});

test('--max-transfers-total: past the server-wide budget PUT and GET get ERROR 51 naming the flag; a freed slot is reusable', async () => {
  const t = await startTestServer({ maxTransfersTotal: 3 });
  const conns = await Promise.all([RawClient.connect(t.port), RawClient.connect(t.port)]);
  const [a, b] = conns;
  try {
    await writeFile(path.join(t.dir, 'x.bin'), 'x');
    for (let id = 1; id <= 2; id++) a.send(Type.PUT, id, P.encodePut(1, sha('y'), `a${id}`));
    b.send(Type.PUT, 1, P.encodePut(1, sha('y'), 'b1'));
    await b.request(Type.PING, 9);
    const put = await b.expectError(Type.PUT, 2, P.encodePut(1, sha('y'), 'b2'));
    assert.equal(put.code, ErrorCode.BUSY);
    assert.match(put.message, /--max-transfers-total/);
    assert.equal((await b.expectError(Type.GET, 3, P.encodeGet(0, 'x.bin'))).code, ErrorCode.BUSY);
    a.send(Type.DATA, 1, Buffer.from('y'));
    assert.equal((await a.reply(1)).type, Type.PUT_OK);
    assert.equal((await b.request(Type.GET, 4, P.encodeGet(0, 'x.bin'))).type, Type.GET_OK);
  } finally {
    for (const c of conns) c.close();
    await t.stop();
  }
});

test('--transfer-timeout: a stalled PUT gets ERROR 27 and its temp file is gone; the connection stays usable', async () => {
  const t = await startTestServer({ transferTimeoutMs: 300 });
  const c = await RawClient.connect(t.port);
  try {
    const body = randomBytes(1000);
    c.send(Type.PUT, 1, P.encodePut(body.length, sha(body), 'stall.bin'));
    c.send(Type.DATA, 1, body.subarray(0, 100));
    await until('the temp file', async () => (await temps(t.dir)).length === 1);
    const e = await c.reply(1);
    const err = P.decodeError(e.payload);
    assert.equal(err.code, ErrorCode.TRANSFER_TIMEOUT);
    assert.match(err.message, /after 100 of 1000 bytes/);
    await until('the temp file to go', async () => (await temps(t.dir)).length === 0, 1000);
    assert.equal((await c.request(Type.PING, 2)).type, Type.PING_OK);
    // A PUT that never sends any DATA times out the same way.
    c.send(Type.PUT, 3, P.encodePut(5, sha('hello'), 'never.bin'));
    assert.equal(P.decodeError((await c.reply(3)).payload).code, ErrorCode.TRANSFER_TIMEOUT);
  } finally {
    c.close();
    await t.stop();
  }
});

test('--transfer-timeout: a GET whose reader takes nothing gets cut (ERROR 27 queued behind its DATA)', async () => {
  const t = await startTestServer({ transferTimeoutMs: 300, maxOutputBytes: 256 * 1024 });
  const body = randomBytes(32 * 1024 * 1024);
  await writeFile(path.join(t.dir, 'big.bin'), body);
  const c = await RawClient.connect(t.port);
  try {
    c.send(Type.GET, 1, P.encodeGet(0, 'big.bin'));
    c.socket.pause();
    // The slot is given back once the cut download's file is closed.
    await until('the cut download to free its slot', () => t.server.transfers.used === 0 && (t.metrics.counters['binary.transferTimeouts'] ?? 0) === 1);
    c.socket.resume();
    const err = await c.next((f) => f.type === Type.ERROR && f.id === 1);
    assert.equal(P.decodeError(err.payload).code, ErrorCode.TRANSFER_TIMEOUT);
  } finally {
    c.close();
    await t.stop();
  }
});

test('--binary-hello-timeout: a connection that sends nothing, or half a frame, is closed; a whole frame in time is not', async () => {
  const clock = useTestClock();
  const t = await startTestServer({ helloTimeoutMs: 300 });
  try {
    const silent = await RawClient.connect(t.port);
    const half = await RawClient.connect(t.port);
    half.writeRaw(Buffer.from([0x4d, 0x58, 1, 1, 0, 0]));
    const good = await RawClient.connect(t.port);
    assert.equal((await good.request(Type.PING, 1)).type, Type.PING_OK);
    // Time passes on the test clock, swept at once: no race between sleeps and the sweeper.
    const started = clock.now();
    await clock.advanceUntil(() => silent.closed && half.closed, { what: 'the hello timeout to close both', stepMs: 50 });
    await Promise.all([silent.waitClose(), half.waitClose()]);
    assert.ok(clock.now() - started < 3000);
    clock.advance(400);
    assert.equal(good.closed, false);
    assert.equal((await good.request(Type.PING, 2)).type, Type.PING_OK);
    good.close();
    assert.equal(t.metrics.counters['binary.helloTimeouts'], 2);
  } finally {
    clock.restore();
    await t.stop();
  }
});

test('--upload-token: PUT needs AUTH; a wrong token gets 14 and three lock the connection out', async () => {
  const t = await startTestServer({ uploadToken: 's3cret' });
  const c = await RawClient.connect(t.port);
  const d = await RawClient.connect(t.port);
  try {
    const e = await c.expectError(Type.PUT, 1, P.encodePut(1, sha('x'), 'x.txt'));
    assert.equal(e.code, ErrorCode.FORBIDDEN);
    assert.match(e.message, /AUTH/);
    assert.equal((await c.expectError(Type.AUTH, 2, P.encodeStr16('wrong'))).code, ErrorCode.FORBIDDEN);
    const ok = await c.request(Type.AUTH, 3, P.encodeStr16('s3cret'));
    assert.deepEqual([ok.type, ok.payload.length], [Type.AUTH_OK, 0]);
    c.send(Type.PUT, 4, P.encodePut(1, sha('x'), 'x.txt'));
    c.send(Type.DATA, 4, Buffer.from('x'));
    assert.equal((await c.reply(4)).type, Type.PUT_OK);
    // Lockout is per connection: d is locked, c is not affected.
    for (let k = 0; k < 3; k++) assert.equal((await d.expectError(Type.AUTH, 10 + k, P.encodeStr16('guess'))).code, ErrorCode.FORBIDDEN);
    assert.match((await d.expectError(Type.AUTH, 20, P.encodeStr16('s3cret'))).message, /locked out/);
  } finally {
    c.close();
    d.close();
    await t.stop();
  }
});

test('isLocalAddress: loopback v4, v6, v4-mapped and Unix sockets are local; others are not', () => {
  for (const a of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1', undefined]) assert.equal(isLocalAddress(a), true, String(a));
  for (const a of ['10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', '192.168.1.127', 'fe80::1']) assert.equal(isLocalAddress(a), false, a);
});

/** A store seam whose temp files fail writes with `code` once `after` bytes were written. */
function fullDiskIo(code: string, after: number): StoreIo {
  return {
    openTemp: async (p) => {
      const real = await open(p, 'wx', 0o644);
      let written = 0;
      return new Proxy(real, {
        get(target, prop, receiver) {
          if (prop === 'write') {
            return async (buf: Buffer, offset: number, length: number) => {
              if (written + length > after) throw Object.assign(new Error(`${code}: no space left on device, write`), { code });
              written += length;
              return target.write(buf, offset, length);
            };
          }
          // The store writes what queued up during a write in one writev: it fills the disk the same way.
          if (prop === 'writev') {
            return async (bufs: Buffer[]) => {
              const length = bufs.reduce((n, b) => n + b.length, 0);
              if (written + length > after) throw Object.assign(new Error(`${code}: no space left on device, write`), { code });
              written += length;
              return target.writev(bufs);
            };
          }
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      }) as FileHandle;
    },
  };
}

for (const code of ['ENOSPC', 'EDQUOT']) {
  test(`a full disk (${code}) answers ERROR 26 with the free space, removes the temp file and keeps serving`, async () => {
    const t = await startTestServer({ storeIo: fullDiskIo(code, 100_000) });
    const c = await RawClient.connect(t.port);
    try {
      const body = randomBytes(1_000_000);
      c.send(Type.PUT, 1, P.encodePut(body.length, sha(body), 'big.bin'));
      for (let at = 0; at < body.length; at += 50_000) c.send(Type.DATA, 1, body.subarray(at, at + 50_000));
      const e = P.decodeError((await c.reply(1)).payload);
      assert.equal(e.code, ErrorCode.STORAGE_FULL);
      assert.match(e.message, /storage full.*\d+ bytes free/);
      await until('the temp file to go', async () => (await readdir(t.dir)).length === 0);
      assert.equal((await c.request(Type.PING, 2)).type, Type.PING_OK);
      // A small upload that fits still works.
      c.send(Type.PUT, 3, P.encodePut(5, sha('small'), 's.txt'));
      c.send(Type.DATA, 3, Buffer.from('small'));
      assert.equal((await c.reply(3)).type, Type.PUT_OK);
    } finally {
      c.close();
      await t.stop();
    }
  });
}

test('GET while the file is replaced: every GET_OK digest and size match the bytes that follow it', async () => {
  const t = await startTestServer();
  const versions = [randomBytes(200_000), randomBytes(300_000), randomBytes(250_000)];
  const writer = await RawClient.connect(t.port);
  const readers = await Promise.all([1, 2, 3].map(() => RawClient.connect(t.port)));
  try {
    writer.send(Type.PUT, 1, P.encodePut(versions[0]!.length, sha(versions[0]!), 'r.bin'));
    writer.send(Type.DATA, 1, versions[0]!);
    assert.equal((await writer.reply(1)).type, Type.PUT_OK);
    let stop = false;
    const replacing = (async () => {
      for (let k = 1; !stop; k++) {
        const v = versions[k % versions.length]!;
        writer.send(Type.PUT, 1, P.encodePut(v.length, sha(v), 'r.bin'));
        writer.send(Type.DATA, 1, v);
        assert.equal((await writer.reply(1)).type, Type.PUT_OK);
      }
    })();
    const torn: string[] = [];
    let gets = 0;
    await Promise.all(
      readers.map(async (r) => {
        for (let k = 0; k < 30; k++) {
          const ok = await r.request(Type.GET, 7, P.encodeGet(0, 'r.bin'));
          assert.equal(ok.type, Type.GET_OK);
          const info = P.decodeFileInfo(ok.payload);
          const hash = createHash('sha256');
          let got = 0;
          while (got < info.size) {
            const f = await r.next((x) => x.type === Type.DATA && x.id === 7);
            hash.update(f.payload);
            got += f.payload.length;
          }
          gets++;
          if (got !== info.size || !hash.digest().equals(info.sha256)) torn.push(`size ${info.size}, got ${got}`);
        }
      }),
    );
    stop = true;
    await replacing;
    assert.equal(gets, 90);
    assert.deepEqual(torn, []);
  } finally {
    writer.close();
    for (const r of readers) r.close();
    await t.stop();
  }
});

test('--max-output-total: GET chunks shrink while the server holds more than the budget, and every counted byte is given back', async () => {
  // Another face (or other readers) already holds more than the whole budget.
  const budget = new ByteBudget(64 * 1024);
  budget.add(100_000);
  const t = await startTestServer({ outputBudget: budget });
  const c = await RawClient.connect(t.port);
  try {
    const body = randomBytes(200_000);
    await writeFile(path.join(t.dir, 'big.bin'), body);
    assert.equal((await c.request(Type.GET, 1, P.encodeGet(0, 'big.bin'))).type, Type.GET_OK);
    const parts: Buffer[] = [];
    let got = 0;
    while (got < body.length) {
      const f = await c.next((x) => x.type === Type.DATA && x.id === 1);
      assert.ok(f.payload.length <= 16 * 1024, `a DATA frame of ${f.payload.length} bytes under pressure`);
      parts.push(f.payload);
      got += f.payload.length;
    }
    assert.ok(Buffer.concat(parts).equals(body));
    await c.request(Type.PING, 2);
    await until('the download to give its bytes back', () => budget.used === 100_000);
  } finally {
    c.close();
    await t.stop();
  }
  assert.equal(budget.used, 100_000);
});

// ---- graceful shutdown hooks, on connections held by the test ----------------------------

async function driverServer(): Promise<{ port: number; dir: string; conns: StreamConnection[]; close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'muxd-drain-'));
  const metrics = new Metrics();
  const store = await FileStore.open(dir, 1 << 30);
  const ctx: StreamContext = {
    room: new LocalRoom(1 << 20),
    store,
    metrics,
    maxUpload: 1 << 30,
    maxTransfers: 16,
    transfers: new SlotBudget(256),
    pool: downloadPool(new ByteBudget(1 << 28)),
    transferTimeoutMs: 30_000,
    adminDigest: null,
    uploadDigest: tokenDigest(null),
    stats: () => Buffer.from('{}'),
    log: () => undefined,
    maxFrame: 1 << 20,
    maxOutputBytes: 1 << 20,
    idleTimeoutMs: 60_000,
    helloTimeoutMs: 60_000,
  };
  const conns: StreamConnection[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => conns.push(new StreamConnection(s, ctx)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    dir,
    conns,
    close: async () => {
      await new Promise((r) => server.close(r));
      metrics.close();
    },
  };
}

test('drain(): idle connections close at once; a member is told and closed; an upload in flight finishes, new requests get 51', async () => {
  const s = await driverServer();
  const idle = await RawClient.connect(s.port);
  const member = await RawClient.connect(s.port);
  const uploader = await RawClient.connect(s.port);
  try {
    await member.request(Type.JOIN, 1, Buffer.from('m'));
    const body = randomBytes(100_000);
    uploader.send(Type.PUT, 1, P.encodePut(body.length, sha(body), 'u.bin'));
    uploader.send(Type.DATA, 1, body.subarray(0, 50_000));
    await uploader.request(Type.PING, 2);
    await idle.request(Type.PING, 1);
    for (const c of s.conns) c.drain();
    await idle.waitClose();
    const notice = await member.push(Type.ANNOUNCEMENT);
    assert.match(P.decodeText(notice.payload), /shutting down/);
    await member.waitClose();
    const refused = await uploader.expectError(Type.PING, 3);
    assert.equal(refused.code, ErrorCode.BUSY);
    assert.match(refused.message, /shutting down/);
    uploader.send(Type.DATA, 1, body.subarray(50_000));
    assert.equal((await uploader.reply(1)).type, Type.PUT_OK);
    await uploader.waitClose();
    assert.deepEqual(await readdir(s.dir), ['u.bin']);
  } finally {
    for (const c of [idle, member, uploader]) c.close();
    await s.close();
  }
});

test('abort(): an unfinished upload gets ERROR 51, its temp file is gone when abort() returns, and it reports the cut', async () => {
  const s = await driverServer();
  const c = await RawClient.connect(s.port);
  const quiet = await RawClient.connect(s.port);
  try {
    const body = randomBytes(100_000);
    c.send(Type.PUT, 1, P.encodePut(body.length, sha(body), 'cut.bin'));
    c.send(Type.DATA, 1, body.subarray(0, 10_000));
    await c.request(Type.PING, 2);
    await until('the temp file', async () => (await temps(s.dir)).length === 1);
    await quiet.request(Type.PING, 1);
    const [conn, idle] = s.conns;
    conn!.drain();
    idle!.drain();
    assert.equal(conn!.abort(), true);
    assert.deepEqual(await temps(s.dir), [], 'removed synchronously');
    await c.waitClose();
    const err = c.frames.find((f) => f.type === Type.ERROR && f.id === 1);
    assert.ok(err, 'the upload got an ERROR before the close');
    assert.equal(P.decodeError(err.payload).code, ErrorCode.BUSY);
    assert.equal(idle!.abort(), false);
  } finally {
    c.close();
    quiet.close();
    await s.close();
  }
});
