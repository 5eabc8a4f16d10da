// The file sender (src/loop/file-sender.ts), shared by HTTP bodies and MX/1 DATA. On a scripted
// socket whose "kernel" takes writes only when the test says so: the bytes and their order, the
// frame header room filled in place (header and payload leave in one write), at most one chunk
// beyond what the kernel took, errors, abort (file released after a read in flight, budget back
// to zero). On real loopback sockets: a whole file arrives intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { fstatSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ByteBudget } from '../../src/loop/budget.js';
import { ChunkPool, CHUNK_FULL, CHUNK_START } from '../../src/loop/chunk-pool.js';
import { FileSender } from '../../src/loop/file-sender.js';
import { adoptFile, openRegular, openFileCount, type OpenFile } from '../../src/loop/open-file.js';
import { Outbox, type OutboxSocket } from '../../src/loop/outbox.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'muxd-sender-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function tempFile(bytes: Buffer): string {
  const p = path.join(dir, randomBytes(6).toString('hex'));
  writeFileSync(p, bytes);
  return p;
}

/** An OpenFile whose closes are counted (and whose descriptor is closed for real). */
function countedFile(p: string): { file: OpenFile; closes: () => number } {
  const fd = openSync(p, 'r');
  let closes = 0;
  const file = adoptFile(fd, fstatSync(fd), (n) => {
    closes++;
    closeSync(n);
  });
  return { file, closes: () => closes };
}

/** Resolves once `cond` holds; fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A socket whose kernel takes a write only when take() is called. */
class ScriptedSocket implements OutboxSocket {
  readonly writableHighWaterMark = 16 * 1024;
  writableLength = 0;
  destroyed = false;
  ended = false;
  readonly pending: { buf: Buffer; cb: ((err?: Error | null) => void) | undefined }[] = [];
  readonly received: Buffer[] = [];
  /** Bytes of each write, in order. */
  readonly writes: number[] = [];

  get writableNeedDrain(): boolean {
    return this.writableLength >= this.writableHighWaterMark;
  }

  write(buf: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    this.pending.push({ buf: b, cb });
    this.writes.push(b.length);
    this.writableLength += b.length;
    return !this.writableNeedDrain;
  }

  end(): void {
    this.ended = true;
  }

  /** The kernel takes the oldest write (a copy: the sender may reuse the buffer after). */
  take(): boolean {
    const w = this.pending.shift();
    if (w === undefined) return false;
    this.received.push(Buffer.from(w.buf));
    this.writableLength -= w.buf.length;
    w.cb?.(null);
    return true;
  }

  /** The socket breaks: every pending write fails. */
  fail(): void {
    this.destroyed = true;
    for (const w of this.pending.splice(0)) {
      this.writableLength -= w.buf.length;
      w.cb?.(new Error('EPIPE'));
    }
  }
}

test('a range arrives whole and in order; the file and every chunk come back; the kernel taking slowly means one chunk at a time', async () => {
  const data = randomBytes(3 * CHUNK_FULL + 12345);
  const { file, closes } = countedFile(tempFile(data));
  const budget = new ByteBudget(1 << 30);
  const pool = new ChunkPool(budget);
  const socket = new ScriptedSocket();
  const outbox = new Outbox(socket);
  let done: Error | null | undefined;
  let chunks = 0;
  const start = 1000;
  const end = data.length - 7;
  const sender = new FileSender(pool, outbox, { file, start, end, onChunk: () => chunks++, onDone: (err) => (done = err) });
  sender.start();
  for (;;) {
    await until(() => socket.pending.length > 0 || done !== undefined, 'a chunk or the end');
    if (done !== undefined) break;
    // The kernel has not taken the chunk yet: the sender holds that one and reads no other.
    assert.equal(socket.pending.length, 1, 'one chunk beyond what the kernel took');
    assert.ok(budget.used <= CHUNK_FULL, `budget holds one chunk: ${budget.used}`);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(socket.pending.length, 1, 'still one: nothing is read ahead');
    socket.take();
  }
  assert.equal(done, null);
  assert.equal(Buffer.concat(socket.received).equals(data.subarray(start, end)), true, 'the bytes of [start, end)');
  assert.equal(chunks, socket.received.length);
  assert.equal(sender.position, end);
  assert.equal(sender.active, false);
  assert.equal(closes(), 1, 'the file released once');
  assert.equal(budget.used, 0, 'every chunk given back');
  // A reader that never takes anything at once: chunks shrink from the first size, never grow.
  assert.ok(socket.writes[0]! <= CHUNK_START);
  for (const n of socket.writes) assert.ok(n <= socket.writes[0]!, 'a slow reader\'s chunks only shrink');
});

test('frames: headerRoom bytes in front of every payload, filled by frame() before the write; header and payload are one write; isLast on the last only', async () => {
  const data = randomBytes(200_000);
  const { file } = countedFile(tempFile(data));
  const pool = new ChunkPool(new ByteBudget(1 << 30));
  const socket = new ScriptedSocket();
  const outbox = new Outbox(socket);
  const HEADER = 12;
  const lasts: boolean[] = [];
  let done: Error | null | undefined;
  const sender = new FileSender(pool, outbox, {
    file,
    start: 0,
    end: data.length,
    headerRoom: HEADER,
    maxPayload: 50_000,
    frame: (chunk, payloadLength, isLast) => {
      assert.equal(chunk.length, HEADER + payloadLength, 'the chunk is exactly header + payload');
      chunk.fill(0xee, 0, 8);
      chunk.writeUInt32BE(payloadLength, 8);
      lasts.push(isLast);
    },
    onDone: (err) => (done = err),
  });
  sender.start();
  while (done === undefined) {
    await until(() => socket.pending.length > 0 || done !== undefined, 'a frame or the end');
    socket.take();
  }
  assert.equal(done, null);
  const payloads: Buffer[] = [];
  for (const frame of socket.received) {
    assert.ok(frame.subarray(0, 8).every((b) => b === 0xee), 'header filled in place');
    const n = frame.readUInt32BE(8);
    assert.ok(n <= 50_000, 'maxPayload respected');
    assert.equal(frame.length, HEADER + n, 'one write carries the header and its payload');
    payloads.push(frame.subarray(HEADER));
  }
  assert.equal(Buffer.concat(payloads).equals(data), true);
  assert.deepEqual(lasts, lasts.map((_, i) => i === lasts.length - 1));
});

/** A socket whose kernel takes every write at once (a fast reader), keeping what it took. */
class EagerSocket implements OutboxSocket {
  readonly writableHighWaterMark = 16 * 1024;
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  destroyed = false;
  readonly received: Buffer[] = [];
  write(buf: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    this.received.push(Buffer.from(buf));
    if (cb) process.nextTick(cb, null);
    return true;
  }
  end(): void {}
}

/** Splits `frames` written by the framed tests: 8 bytes 0xee, u32 payload length, payload. */
function framePayloads(writes: Buffer[], header: number, maxPayload: number): Buffer[] {
  return writes.map((w) => {
    assert.ok(w.subarray(0, 8).every((b) => b === 0xee), 'header filled in place');
    const n = w.readUInt32BE(8);
    assert.ok(n > 0 && n <= maxPayload, `payload ${n} within 1..${maxPayload}`);
    assert.equal(w.length, header + n, 'one write is exactly one frame');
    return w.subarray(header);
  });
}

test('framed: a fast reader gets chunks of several frames (one read each), written one frame per write, in order', async () => {
  const data = randomBytes(3 * CHUNK_FULL + 777);
  const { file, closes } = countedFile(tempFile(data));
  const budget = new ByteBudget(1 << 30);
  const socket = new EagerSocket();
  const HEADER = 12;
  const MAX = 64 * 1024 - HEADER;
  const lasts: boolean[] = [];
  const chunkBytes: number[] = [];
  let done: Error | null | undefined;
  new FileSender(new ChunkPool(budget), new Outbox(socket), {
    file,
    start: 5,
    end: data.length,
    headerRoom: HEADER,
    maxPayload: MAX,
    frame: (chunk, n, isLast) => {
      chunk.fill(0xee, 0, 8);
      chunk.writeUInt32BE(n, 8);
      lasts.push(isLast);
    },
    onChunk: (n) => chunkBytes.push(n),
    onDone: (err) => (done = err),
  }).start();
  await until(() => done !== undefined, 'the end');
  assert.equal(done, null);
  const payloads = framePayloads(socket.received, HEADER, MAX);
  assert.equal(Buffer.concat(payloads).equals(data.subarray(5)), true, 'every byte, in order');
  assert.deepEqual(chunkBytes, payloads.map((p) => p.length), 'onChunk once per frame, with its payload length');
  assert.deepEqual(lasts, lasts.map((_, i) => i === lasts.length - 1), 'isLast on the last frame only');
  // The chunk grew past one frame: most frames are full, far fewer reads than frames.
  assert.ok(payloads.filter((p) => p.length === MAX).length >= payloads.length - 4, 'frames are full but at chunk ends');
  assert.equal(closes(), 1);
  await until(() => budget.used === 0, 'every chunk back');
});

/** A scripted socket that takes every write at once while `eager`, and only on take() after. */
class TurningSocket extends ScriptedSocket {
  eager = true;
  override write(buf: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    if (!this.eager) return super.write(buf, cb);
    this.received.push(Buffer.from(buf));
    this.writes.push(buf.length);
    if (cb) process.nextTick(cb, null);
    return true;
  }
}

test('framed: a fast reader that stops taking holds one frame in the socket; the rest of its chunk waits in the sender, and abort gives every byte back', async () => {
  const data = randomBytes(4 * 1024 * 1024);
  const p = tempFile(data);
  const { file, closes } = countedFile(p);
  const budget = new ByteBudget(1 << 30);
  const socket = new TurningSocket();
  const outbox = new Outbox(socket);
  const HEADER = 12;
  const MAX = 64 * 1024 - HEADER;
  let frames = 0;
  let done: Error | null | undefined;
  const sender = new FileSender(new ChunkPool(budget), outbox, {
    file,
    start: 0,
    end: data.length,
    headerRoom: HEADER,
    maxPayload: MAX,
    frame: (chunk, n) => {
      chunk.fill(0xee, 0, 8);
      chunk.writeUInt32BE(n, 8);
      // The reader stops right after the first frame of a full-size chunk.
      if (++frames === 9) socket.eager = false;
    },
    onDone: (err) => (done = err),
  });
  sender.start();
  await until(() => socket.pending.length > 0, 'a frame the kernel did not take');
  await new Promise((r) => setTimeout(r, 10));
  // Chunks grew (64, 128, then 256 KiB: frames 1, 2-3, 4-7, 8-11): frame 9 is the second of a four-frame chunk.
  assert.equal(budget.used, CHUNK_FULL, 'the sender holds the rest of one full chunk, read at once');
  assert.equal(socket.pending.length, 1, 'one frame beyond what the kernel took');
  assert.ok(socket.writableLength <= 64 * 1024, `the socket holds one frame: ${socket.writableLength}`);
  // The file changes now: frames 10 and 11 were read with frame 9 (one read), the next chunk is read after.
  const fd = openSync(p, 'r+');
  writeSync(fd, Buffer.alloc(data.length - 9 * MAX), 0, data.length - 9 * MAX, 9 * MAX);
  closeSync(fd);
  // Taken one at a time: the rest of that chunk follows a frame at a time, and chunks shrink.
  for (let i = 0; i < 6; i++) {
    socket.take();
    await until(() => socket.pending.length > 0, 'the next frame');
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(socket.pending.length, 1, 'still one frame beyond what the kernel took');
    assert.ok(budget.used <= CHUNK_FULL, `one chunk at most: ${budget.used}`);
  }
  sender.abort();
  assert.equal(closes(), 1, 'no read in flight: the file goes at once');
  socket.take();
  assert.equal(budget.used, 0, 'frames never written and the written one: all given back');
  assert.equal(done, undefined);
  const got = framePayloads(socket.received, HEADER, MAX);
  assert.equal(got.length, 15);
  assert.equal(Buffer.concat(got.slice(0, 11)).equals(data.subarray(0, 11 * MAX)), true, 'frames 1-11 as the file was when their chunks were read');
  assert.equal(Buffer.concat(got.slice(11)).every((b) => b === 0), true, 'frames 12-15 read after the change');
});

test('framed: a file shorter than its range fails once its frames are out, whatever frame the read ended in', async () => {
  for (const size of [64 * 1024 * 2 + 100, 64 * 1024 * 3 - 36]) {
    const data = randomBytes(size);
    const { file, closes } = countedFile(tempFile(data));
    const budget = new ByteBudget(1 << 30);
    const socket = new EagerSocket();
    let done: Error | null | undefined;
    new FileSender(new ChunkPool(budget), new Outbox(socket), {
      file,
      start: 0,
      end: size + 50_000,
      headerRoom: 12,
      maxPayload: 64 * 1024 - 12,
      frame: (chunk, n) => {
        chunk.fill(0xee, 0, 8);
        chunk.writeUInt32BE(n, 8);
      },
      onDone: (err) => (done = err),
    }).start();
    await until(() => done !== undefined, 'the end');
    assert.ok(done instanceof Error, `size ${size}`);
    assert.equal(Buffer.concat(framePayloads(socket.received, 12, 64 * 1024 - 12)).equals(data), true);
    assert.equal(closes(), 1);
    await until(() => budget.used === 0, 'every chunk back');
  }
});

test('an empty range is done at once, inside start(), and releases the file', () => {
  const { file, closes } = countedFile(tempFile(Buffer.from('abc')));
  const socket = new ScriptedSocket();
  let done: Error | null | undefined;
  new FileSender(new ChunkPool(new ByteBudget(1 << 20)), new Outbox(socket), { file, start: 3, end: 3, onDone: (err) => (done = err) }).start();
  assert.equal(done, null);
  assert.equal(closes(), 1);
  assert.equal(socket.writes.length, 0);
});

test('a file shorter than its range fails with an error once what it has is out', async () => {
  const data = randomBytes(10_000);
  const { file, closes } = countedFile(tempFile(data));
  const budget = new ByteBudget(1 << 30);
  const socket = new ScriptedSocket();
  let done: Error | null | undefined;
  new FileSender(new ChunkPool(budget), new Outbox(socket), { file, start: 0, end: 20_000, onDone: (err) => (done = err) }).start();
  while (done === undefined) {
    await until(() => socket.pending.length > 0 || done !== undefined, 'a chunk or the end');
    socket.take();
  }
  assert.ok(done instanceof Error);
  assert.equal(Buffer.concat(socket.received).equals(data), true);
  assert.equal(closes(), 1);
  assert.equal(budget.used, 0);
});

test('a failed write ends the transfer with that error; chunks return uncounted, the file once', async () => {
  const { file, closes } = countedFile(tempFile(randomBytes(500_000)));
  const budget = new ByteBudget(1 << 30);
  const socket = new ScriptedSocket();
  let done: Error | null | undefined;
  new FileSender(new ChunkPool(budget), new Outbox(socket), { file, start: 0, end: 500_000, onDone: (err) => (done = err) }).start();
  await until(() => socket.pending.length > 0, 'the first chunk');
  socket.fail();
  assert.ok(done instanceof Error);
  assert.equal(closes(), 1);
  assert.equal(budget.used, 0);
});

test('abort while a read is in flight: no onDone, the file is released only after the read returns, the budget goes back to zero', async () => {
  const { file, closes } = countedFile(tempFile(randomBytes(500_000)));
  const budget = new ByteBudget(1 << 30);
  const socket = new ScriptedSocket();
  let done: Error | null | undefined;
  const sender = new FileSender(new ChunkPool(budget), new Outbox(socket), { file, start: 0, end: 500_000, onDone: (err) => (done = err) });
  sender.start(); // the first read is now outstanding
  assert.ok(budget.used > 0, 'the chunk being read is counted');
  sender.abort();
  assert.equal(closes(), 0, 'not closed under a pending read');
  await until(() => closes() === 1, 'the file released after the read');
  assert.equal(budget.used, 0);
  assert.equal(socket.writes.length, 0, 'the chunk read after abort is never written');
  // A chunk already handed to the socket comes back when its write completes.
  const second = countedFile(tempFile(randomBytes(500_000)));
  const s2 = new FileSender(new ChunkPool(budget), new Outbox(socket), { file: second.file, start: 0, end: 500_000, onDone: (err) => (done = err) });
  s2.start();
  await until(() => socket.pending.length > 0, 'a chunk written');
  s2.abort();
  assert.equal(second.closes(), 1, 'no read in flight: released at once');
  assert.ok(budget.used > 0, 'the written chunk is still the socket\'s');
  socket.take();
  assert.equal(budget.used, 0);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, undefined, 'onDone never runs after abort');
  assert.equal(socket.pending.length, 0, 'nothing more was read');
});

test('output held in the outbox goes first: the next chunk waits for writable()', async () => {
  const data = randomBytes(100_000);
  const { file } = countedFile(tempFile(data));
  const socket = new ScriptedSocket();
  const outbox = new Outbox(socket, { slice: 16 * 1024 });
  outbox.write(Buffer.alloc(40 * 1024, 1)); // more than a slice: the outbox holds the rest
  assert.equal(outbox.holding, true);
  let done: Error | null | undefined;
  const sender = new FileSender(new ChunkPool(new ByteBudget(1 << 30)), outbox, { file, start: 0, end: data.length, onDone: (err) => (done = err) });
  sender.start();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(socket.writes.length, 1, 'no file bytes while other output is held');
  while (done === undefined) {
    await until(() => socket.pending.length > 0 || done !== undefined, 'output');
    socket.take();
    if (outbox.drained()) sender.writable();
  }
  assert.equal(done, null);
  const all = Buffer.concat(socket.received);
  assert.equal(all.subarray(0, 40 * 1024).every((b) => b === 1), true);
  assert.equal(all.subarray(40 * 1024).equals(data), true, 'the file follows what was queued before it');
});

test('over loopback: a 5 MiB file arrives intact through a real socket, and the descriptor is closed', async () => {
  const data = randomBytes(5 * 1024 * 1024 + 3);
  const p = tempFile(data);
  const before = openFileCount();
  const file = await openRegular(p);
  assert.equal(file.stats.size, data.length, 'the fstat it was opened with');
  const budget = new ByteBudget(1 << 30);
  const pool = new ChunkPool(budget);
  const received = new Promise<Buffer>((resolve, reject) => {
    const server = net.createServer((s) => {
      server.close();
      const hash = createHash('sha256');
      s.on('data', (c: Buffer) => hash.update(c));
      s.on('end', () => resolve(hash.digest()));
      s.on('error', reject);
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const writer = net.connect({ port, host: '127.0.0.1' }, () => {
        const outbox = new Outbox(writer);
        let sender: FileSender | null = null;
        writer.on('drain', () => {
          if (outbox.drained()) sender?.writable();
        });
        sender = new FileSender(pool, outbox, {
          file,
          start: 0,
          end: data.length,
          onDone: (err) => {
            if (err !== null) reject(err);
            else outbox.end();
          },
        });
        sender.start();
      });
      writer.on('error', reject);
    });
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('transfer timed out')), 20_000).unref());
  const digest = await Promise.race([received, timeout]);
  assert.equal(digest.equals(createHash('sha256').update(data).digest()), true);
  assert.equal(openFileCount(), before, 'closed');
  await until(() => budget.used === 0, 'every chunk back');
});
