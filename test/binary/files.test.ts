// File transfer over MX/1: big verified uploads/downloads, interruption, resume, interleaving, slow readers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, pbkdf2, randomBytes } from 'node:crypto';
import { readdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BytePipe } from '../../src/loop/pipe.js';
import { storeErrorCode } from '../../src/binary/store-errors.js';
import { FileStore, StoreError, validateFileName } from '../../src/store/files.js';
import { encodeFrame } from '../../src/wire/frame.js';
import * as P from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { RawClient, startTestServer } from './raw-client.js';
import { waitFor } from '../helpers/wait.js';

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

function upload(c: RawClient, id: number, name: string, body: Buffer, chunk = 256 * 1024): void {
  c.send(Type.PUT, id, P.encodePut(body.length, sha(body), name));
  for (let at = 0; at < body.length; at += chunk) c.send(Type.DATA, id, body.subarray(at, at + chunk));
}

/** Reads DATA frames until `size` payload bytes came; their SHA-256. */
async function dataDigest(c: RawClient, size: number): Promise<Buffer> {
  const hash = createHash('sha256');
  for (let got = 0; got < size; ) {
    const f = await c.next((x) => x.type === Type.DATA);
    hash.update(f.payload);
    got += f.payload.length;
  }
  return hash.digest();
}

async function download(c: RawClient, id: number, name: string, offset = 0): Promise<{ size: number; sha256: Buffer; data: Buffer }> {
  const ok = await c.request(Type.GET, id, P.encodeGet(offset, name));
  assert.equal(ok.type, Type.GET_OK, ok.type === Type.ERROR ? P.decodeError(ok.payload).message : '');
  const info = P.decodeFileInfo(ok.payload);
  const parts: Buffer[] = [];
  let got = 0;
  while (got < info.size - offset) {
    const f = await c.next((x) => x.type === Type.DATA && x.id === id);
    parts.push(f.payload);
    got += f.payload.length;
  }
  return { ...info, data: Buffer.concat(parts) };
}

test('validateFileName: accepted and rejected names', () => {
  for (const ok of ['a.txt', '张三.txt', 'with space.txt', 'x'.repeat(255), 'a&b', 'café'.normalize('NFD')]) {
    assert.equal(validateFileName(ok), ok.normalize('NFC'));
  }
  for (const bad of ['', '.env', '..', 'a/b', 'a\\b', 'a\0b', 'a\nb', 'a\x7fb', 'a\u0085b', 'é'.repeat(128), '\ud800x']) {
    assert.throws(() => validateFileName(bad), (e: unknown) => e instanceof StoreError && storeErrorCode(e) === ErrorCode.BAD_FILE_NAME, JSON.stringify(bad));
  }
});

test('a multi-MiB file uploads and downloads intact, with matching digests; the file is on disk', async () => {
  const ts = await startTestServer();
  const c = await RawClient.connect(ts.port);
  const body = randomBytes(5 * 1024 * 1024 + 123);
  upload(c, 1, 'big.bin', body);
  const put = await c.reply(1);
  assert.equal(put.type, Type.PUT_OK, put.type === Type.ERROR ? P.decodeError(put.payload).message : '');
  assert.deepEqual(P.decodeFileInfo(put.payload), { size: body.length, sha256: sha(body) });
  assert.ok((await readFile(path.join(ts.dir, 'big.bin'))).equals(body));
  const got = await download(c, 2, 'big.bin');
  assert.equal(got.size, body.length);
  assert.ok(got.sha256.equals(sha(body)));
  assert.ok(got.data.equals(body));
  // Resume: GET with an offset sends only the remainder, the digest still covers the whole file.
  const rest = await download(c, 3, 'big.bin', 4 * 1024 * 1024 + 7);
  assert.ok(rest.sha256.equals(sha(body)));
  assert.ok(rest.data.equals(body.subarray(4 * 1024 * 1024 + 7)));
  c.close();
  await ts.stop();
});

test('an interrupted upload leaves nothing visible; a restart removes stale temps', async () => {
  const ts = await startTestServer();
  const c = await RawClient.connect(ts.port);
  const body = randomBytes(2 * 1024 * 1024);
  c.send(Type.PUT, 1, P.encodePut(body.length, sha(body), 'partial.bin'));
  c.send(Type.DATA, 1, body.subarray(0, 1024 * 1024));
  await c.request(Type.PING, 2); // the server has seen the PUT and the first half
  c.close();
  const other = await RawClient.connect(ts.port);
  // The abort is asynchronous: wait until the temp is gone (bounded by the test runner's timeout).
  for (let k = 0; k < 200 && (await readdir(ts.dir)).length > 0; k++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(await readdir(ts.dir), []);
  assert.deepEqual(P.decodeList((await other.request(Type.LIST, 1)).payload), []);
  other.close();
  await ts.stop();

  // A crash mid-upload leaves a temp behind; the next start removes it, and LIST never shows it.
  await writeFile(path.join(ts.dir, '.upload-deadbeef'), 'half a file');
  await writeFile(path.join(ts.dir, 'kept.txt'), 'kept');
  const store = await FileStore.open(ts.dir, 1000);
  assert.deepEqual(await readdir(ts.dir), ['kept.txt']);
  await writeFile(path.join(ts.dir, '.upload-again'), 'x');
  assert.deepEqual(await store.list(), [{ size: 4, name: 'kept.txt' }]);
  const ts2 = await startTestServer({ filesDir: ts.dir });
  assert.deepEqual(await readdir(ts.dir), ['kept.txt']);
  await ts2.stop();
});

test('interleaved uploads and downloads on one connection', async () => {
  const ts = await startTestServer();
  const c = await RawClient.connect(ts.port);
  const a = randomBytes(300_000);
  const b = randomBytes(200_000);
  await writeFile(path.join(ts.dir, 'existing.bin'), b);
  c.send(Type.PUT, 1, P.encodePut(a.length, sha(a), 'a.bin'));
  c.send(Type.PUT, 2, P.encodePut(b.length, sha(b), 'b.bin'));
  const dl = download(c, 3, 'existing.bin');
  for (let at = 0; at < a.length; at += 50_000) {
    c.send(Type.DATA, 1, a.subarray(at, at + 50_000));
    if (at < b.length) c.send(Type.DATA, 2, b.subarray(at, at + 50_000));
  }
  assert.equal((await c.reply(1)).type, Type.PUT_OK);
  assert.equal((await c.reply(2)).type, Type.PUT_OK);
  assert.ok((await dl).data.equals(b));
  assert.ok((await download(c, 4, 'a.bin')).data.equals(a));
  assert.deepEqual(P.decodeList((await c.request(Type.LIST, 5)).payload).map((e) => e.name), ['a.bin', 'b.bin', 'existing.bin']);
  c.close();
  await ts.stop();
});

test('concurrent PUTs of one name: last rename wins, never a partial file', async () => {
  const ts = await startTestServer();
  const [c1, c2] = await Promise.all([RawClient.connect(ts.port), RawClient.connect(ts.port)]);
  const x = Buffer.alloc(100_000, 0x78);
  const y = Buffer.alloc(150_000, 0x79);
  upload(c1, 1, 'same.bin', x, 10_000);
  upload(c2, 1, 'same.bin', y, 10_000);
  assert.equal((await c1.reply(1)).type, Type.PUT_OK);
  assert.equal((await c2.reply(1)).type, Type.PUT_OK);
  const on = await readFile(path.join(ts.dir, 'same.bin'));
  assert.ok(on.equals(x) || on.equals(y));
  assert.deepEqual(await readdir(ts.dir), ['same.bin']);
  c1.close();
  c2.close();
  await ts.stop();
});

test('a slow reader: the server stops reading the file while the socket buffer is over half the limit', async () => {
  const maxOutputBytes = 256 * 1024;
  let pausedAt: BytePipe | null = null;
  let pauses = 0;
  let maxSeen = 0;
  const ts = await startTestServer({
    maxOutputBytes,
    onDownloadPaused: (s) => {
      pausedAt = s;
      pauses++;
      maxSeen = Math.max(maxSeen, s.writableLength);
    },
  });
  // Bigger than any loopback socket buffering, so the server must hit its own limit.
  const body = randomBytes(48 * 1024 * 1024);
  await writeFile(path.join(ts.dir, 'huge.bin'), body);
  const c = await RawClient.connect(ts.port);
  const ok = c.reply(1);
  c.send(Type.GET, 1, P.encodeGet(0, 'huge.bin'));
  assert.equal((await ok).type, Type.GET_OK);
  c.socket.pause();
  await waitFor(() => pauses > 0, { what: 'the server to stop reading the file for the slow reader' });
  const server = pausedAt as BytePipe | null;
  assert.ok(server);
  // Plain TCP: the listener's socket is that pipe; only the socket counts bytes written.
  const [socket] = ts.server.listener.sockets;
  assert.ok(socket === server);
  // While paused the server holds at most the threshold plus one DATA frame, and sent far less than the file.
  assert.ok(server.writableLength <= maxOutputBytes / 2 + 64 * 1024 + 12, `writableLength ${server.writableLength}`);
  assert.ok(socket.bytesWritten < body.length, 'the whole file was not pushed into buffers');
  c.socket.resume();
  assert.ok((await dataDigest(c, body.length)).equals(sha(body)));
  assert.ok(maxSeen <= maxOutputBytes / 2 + 64 * 1024 + 12, `max writableLength seen ${maxSeen}`);
  c.close();
  await ts.stop();
});

test('a slow reader costs at most one read chunk beyond what the kernel took, whatever --max-output (issue 8)', async () => {
  // The default 4 MiB output limit: half of it per slow reader was 2 MiB of file bytes held.
  let server: BytePipe | null = null;
  let maxSeen = 0;
  const ts = await startTestServer({
    maxOutputBytes: 4 * 1024 * 1024,
    onDownloadPaused: (s) => {
      server = s;
      maxSeen = Math.max(maxSeen, s.writableLength);
    },
  });
  const body = randomBytes(48 * 1024 * 1024);
  await writeFile(path.join(ts.dir, 'huge.bin'), body);
  const c = await RawClient.connect(ts.port);
  try {
    const ok = c.reply(1);
    c.send(Type.GET, 1, P.encodeGet(0, 'huge.bin'));
    assert.equal((await ok).type, Type.GET_OK);
    c.socket.pause();
    const until = Date.now() + 5000;
    while (server === null && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    const s = server as BytePipe | null;
    assert.ok(s, 'the download paused');
    const bound = s.writableHighWaterMark + 64 * 1024 + 12;
    assert.ok(s.writableLength <= bound, `writableLength ${s.writableLength} > ${bound}`);
    assert.ok(maxSeen <= bound, `max writableLength seen ${maxSeen} > ${bound}`);
    c.socket.resume();
    assert.ok((await dataDigest(c, body.length)).equals(sha(body)));
  } finally {
    c.close();
    await ts.stop();
  }
});

test('GET never follows a symlink out of the store (error 20, as LIST and HTTP hide it)', async () => {
  const t = await startTestServer();
  const outside = path.join(t.dir, '..', `outside-${process.pid}.txt`);
  await writeFile(outside, 'secret outside the store');
  await symlink(outside, path.join(t.dir, 'link.txt'));
  const c = await RawClient.connect(t.port);
  try {
    assert.equal((await c.expectError(Type.GET, 1, P.encodeGet(0, 'link.txt'))).code, ErrorCode.NOT_FOUND);
    assert.deepEqual(P.decodeList((await c.request(Type.LIST, 2)).payload), []);
  } finally {
    c.close();
    await t.stop();
    await unlink(outside);
  }
});

test('at most --max-transfers transfers per connection: the next PUT gets ERROR 51 (busy, retryable), the connection stays usable', async () => {
  const t = await startTestServer({ maxTransfers: 4 });
  const c = await RawClient.connect(t.port);
  try {
    const digest = createHash('sha256').update('x').digest();
    // Four uploads that never receive their DATA stay open...
    for (let id = 1; id <= 4; id++) c.send(Type.PUT, id, P.encodePut(1, digest, `open-${id}.bin`));
    const refused = await c.expectError(Type.PUT, 5, P.encodePut(1, digest, 'fifth.bin'));
    assert.equal(refused.code, ErrorCode.BUSY);
    assert.match(refused.message, /too many transfers in progress on this connection \(limit 4, --max-transfers\)/);
    assert.equal((await c.expectError(Type.GET, 6, P.encodeGet(0, 'open-1.bin'))).code, ErrorCode.BUSY);
    // ...and finishing one frees a slot.
    c.send(Type.DATA, 1, Buffer.from('x'));
    assert.equal((await c.reply(1)).type, Type.PUT_OK);
    assert.equal((await c.request(Type.GET, 7, P.encodeGet(0, 'open-1.bin'))).type, Type.GET_OK);
  } finally {
    c.close();
    await t.stop();
  }
});

test('an upload whose DATA stops coming is closed by the idle timeout, leaving nothing behind', async () => {
  const t = await startTestServer({ idleTimeoutMs: 200 });
  const c = await RawClient.connect(t.port);
  const data = randomBytes(1000);
  c.send(Type.PUT, 1, P.encodePut(data.length, createHash('sha256').update(data).digest(), 'stalled.bin'));
  c.send(Type.DATA, 1, data.subarray(0, 10));
  await c.waitClose();
  // The temp file goes once the aborted upload is cleaned up.
  for (let i = 0; i < 50 && (await readdir(t.dir)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await readdir(t.dir), []);
  await t.stop();
});

test('LIST_OK never exceeds the server max frame: the first entries that fit, in order', async () => {
  const maxFrame = 64 * 1024;
  const t = await startTestServer({ maxFrame });
  // 400 files with 200-byte names: 400 x 210 bytes = 84,000 > 64 KiB of payload.
  const names = Array.from({ length: 400 }, (_, i) => `${String(i).padStart(4, '0')}-${'n'.repeat(195)}`);
  await Promise.all(names.map((n) => writeFile(path.join(t.dir, n), 'x')));
  const c = await RawClient.connect(t.port);
  try {
    const reply = await c.request(Type.LIST, 1);
    assert.equal(reply.type, Type.LIST_OK);
    assert.ok(reply.payload.length <= maxFrame, `LIST_OK of ${reply.payload.length} bytes`);
    const listed = P.decodeList(reply.payload).map((e) => e.name);
    assert.equal(listed.length, Math.floor((maxFrame - 4) / 210));
    assert.deepEqual(listed, names.slice(0, listed.length));
  } finally {
    c.close();
    await t.stop();
  }
});

test('half-close: a client that ends its side after PUT+DATA still gets PUT_OK, and the file is stored', async () => {
  const t = await startTestServer();
  const c = await RawClient.connect(t.port);
  const data = randomBytes(300_000);
  c.send(Type.PUT, 1, P.encodePut(data.length, createHash('sha256').update(data).digest(), 'half.bin'));
  for (let at = 0; at < data.length; at += 65536) c.send(Type.DATA, 1, data.subarray(at, at + 65536));
  c.socket.end();
  await c.waitClose();
  assert.deepEqual(c.frames.map((f) => f.type), [Type.PUT_OK]);
  assert.deepEqual(await readFile(path.join(t.dir, 'half.bin')), data);
  await t.stop();
});

test('half-close: PING, LIST and a GET sent before ending all get their replies and every byte', async () => {
  const t = await startTestServer();
  const data = randomBytes(500_000);
  await writeFile(path.join(t.dir, 'big.bin'), data);
  const c = await RawClient.connect(t.port);
  c.send(Type.PING, 1, Buffer.from('hi'));
  c.send(Type.LIST, 2);
  c.send(Type.GET, 3, P.encodeGet(0, 'big.bin'));
  c.socket.end();
  await c.waitClose();
  assert.deepEqual(c.frames.find((f) => f.id === 1)?.payload.toString(), 'hi');
  assert.equal(c.frames.find((f) => f.id === 2)?.type, Type.LIST_OK);
  assert.equal(c.frames.find((f) => f.id === 3 && f.type !== Type.DATA)?.type, Type.GET_OK);
  const received = Buffer.concat(c.frames.filter((f) => f.id === 3 && f.type === Type.DATA).map((f) => f.payload));
  assert.deepEqual(received, data);
  await t.stop();
});

test('half-close in the middle of an upload: ERROR 4 for it, nothing stored, then the server closes', async () => {
  const t = await startTestServer();
  const c = await RawClient.connect(t.port);
  const data = randomBytes(1000);
  c.send(Type.PUT, 1, P.encodePut(data.length, createHash('sha256').update(data).digest(), 'partial.bin'));
  c.send(Type.DATA, 1, data.subarray(0, 400));
  c.socket.end();
  await c.waitClose();
  const error = c.frames.find((f) => f.id === 1);
  assert.equal(error?.type, Type.ERROR);
  const decoded = P.decodeError(error!.payload);
  assert.equal(decoded.code, ErrorCode.MALFORMED);
  assert.match(decoded.message, /half-closed after 400 of 1000 bytes/);
  for (let i = 0; i < 50 && (await readdir(t.dir)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await readdir(t.dir), []);
  await t.stop();
});

test('DATA after all declared bytes arrived is discarded: PUT_OK and the file stored, or ERROR 23 and nothing', async () => {
  const t = await startTestServer();
  const c = await RawClient.connect(t.port);
  try {
    const data = randomBytes(200_000);
    const put = (id: number, name: string, digest = sha(data)): Buffer =>
      Buffer.concat([...encodeFrame(Type.PUT, id, P.encodePut(data.length, digest, name)), ...encodeFrame(Type.DATA, id, data)]);
    const extra = Buffer.concat(encodeFrame(Type.DATA, 0, Buffer.from('X')));
    const withId = (frame: Buffer, id: number): Buffer => (frame.writeUInt32BE(id, 4), frame);
    // The extra byte in the same write as the last DATA: handled while the commit has just begun.
    c.writeRaw(Buffer.concat([put(1, 'same-write.bin'), withId(Buffer.from(extra), 1)]));
    // In a separate write a little later: the commit (fsync, rename) is under way or done.
    c.writeRaw(put(2, 'later.bin'));
    await new Promise((r) => setTimeout(r, 3));
    c.writeRaw(withId(Buffer.from(extra), 2));
    // A wrong digest stays a wrong digest, extra bytes or not.
    c.writeRaw(Buffer.concat([put(3, 'bad.bin', Buffer.alloc(32)), withId(Buffer.from(extra), 3)]));
    for (const [id, name] of [[1, 'same-write.bin'], [2, 'later.bin']] as const) {
      const reply = await c.reply(id);
      assert.equal(reply.type, Type.PUT_OK, reply.type === Type.ERROR ? P.decodeError(reply.payload).message : '');
      assert.ok((await readFile(path.join(t.dir, name))).equals(data));
    }
    assert.equal(P.decodeError((await c.reply(3)).payload).code, ErrorCode.CHECKSUM_MISMATCH);
    // Exactly one reply per PUT: everything sent before this PING has been handled.
    c.writeRaw(withId(Buffer.from(extra), 2));
    assert.equal((await c.request(Type.PING, 4)).type, Type.PING_OK);
    assert.deepEqual(c.frames.filter((f) => f.id !== 4), []);
    assert.deepEqual((await readdir(t.dir)).sort(), ['later.bin', 'same-write.bin']);
    assert.ok((t.metrics.counters['binary.dataDiscarded'] ?? 0) >= 3);
  } finally {
    c.close();
    await t.stop();
  }
});

test('an upload is visible exactly when PUT_OK is sent, whatever the timing of an extra DATA byte', async () => {
  const t = await startTestServer();
  const c = await RawClient.connect(t.port);
  try {
    const data = randomBytes(50_000);
    for (let k = 0; k < 40; k++) {
      const id = k + 1;
      const name = `r${k}.bin`;
      c.writeRaw(Buffer.concat([...encodeFrame(Type.PUT, id, P.encodePut(data.length, sha(data), name)), ...encodeFrame(Type.DATA, id, data)]));
      // Spread the extra byte over the commit: 0..4 ms after the last DATA.
      if (k % 5 > 0) await new Promise((r) => setTimeout(r, k % 5));
      c.send(Type.DATA, id, Buffer.from('X'));
      const reply = await c.reply(id);
      const visible = (await readdir(t.dir)).includes(name);
      assert.equal(reply.type === Type.PUT_OK, visible, `reply 0x${reply.type.toString(16)}, file ${visible ? '' : 'not '}visible`);
      assert.equal(reply.type, Type.PUT_OK);
    }
  } finally {
    c.close();
    await t.stop();
  }
});

test('a GET frees its id with its last DATA frame (or GET_OK when offset == size): reusing it at once never gets 24', async () => {
  const t = await startTestServer({ maxTransfers: 1 });
  await writeFile(path.join(t.dir, 's.bin'), randomBytes(100));
  // A busy libuv thread pool (a loaded disk) delays close(2) after the last byte is sent; keep
  // it busy so that a close still pending must not keep the id busy.
  let stopBusy = false;
  const busyJobs: Promise<void>[] = [];
  const spin = async (): Promise<void> => {
    while (!stopBusy) await new Promise<void>((r) => pbkdf2('x', 'y', 5_000, 32, 'sha256', () => r()));
  };
  for (let k = 0; k < 6; k++) busyJobs.push(spin());
  const c = await RawClient.connect(t.port);
  try {
    const busy: string[] = [];
    for (let k = 0; k < 30; k++) {
      // The next GET on id 5 goes out as soon as the previous one's last byte (or GET_OK) is read.
      const offset = k % 2 === 0 ? 0 : 100;
      const first = await c.request(Type.GET, 5, P.encodeGet(offset, 's.bin'));
      if (first.type === Type.ERROR) busy.push(`${k}: ${P.decodeError(first.payload).message}`);
      else if (offset === 0) assert.equal((await c.next((f) => f.type === Type.DATA && f.id === 5)).payload.length, 100);
    }
    assert.deepEqual(busy, []);
    // With --max-transfers 1 the slot is free at the same moment: a GET on another id is accepted too.
    assert.equal((await c.request(Type.GET, 6, P.encodeGet(100, 's.bin'))).type, Type.GET_OK);
  } finally {
    stopBusy = true;
    await Promise.all(busyJobs);
    c.close();
    await t.stop();
  }
});
