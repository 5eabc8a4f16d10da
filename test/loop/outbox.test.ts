// The Outbox (src/loop/outbox.ts), shared by the HTTP and MX/1 faces. On real loopback
// sockets, where libuv decides what is taken at once and what stays referenced by a pending
// write: the shared batch buffer must never be reused while a socket still holds it, held
// output must always be woken by a 'drain', and end() must wait for everything queued. On a
// scripted socket: write-completion callbacks (pooled buffers go back only when the socket is
// done with them, and always come back).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Outbox, type OutboxSocket } from '../../src/loop/outbox.js';

interface Pair {
  writer: net.Socket;
  /** Resolves with everything the reader received, once it sees the end. */
  received: Promise<Buffer>;
  /** Starts reading (the reader is paused until then). */
  startReading(): void;
  close(): void;
}

async function pair(writerOpts: net.NetConnectOpts | object = {}): Promise<Pair> {
  let startReading!: () => void;
  let received!: Promise<Buffer>;
  const accepted = new Promise<void>((resolveAccepted) => {
    received = new Promise((resolve, reject) => {
      const server = net.createServer((s) => {
        server.close();
        s.pause();
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => resolve(Buffer.concat(chunks)));
        s.on('error', reject);
        startReading = () => s.resume();
        resolveAccepted();
      });
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        writer = net.connect({ port, host: '127.0.0.1', ...writerOpts });
        writer.on('error', reject);
      });
    });
  });
  let writer!: net.Socket;
  await accepted;
  if (writer.connecting) await new Promise((r) => writer.once('connect', r));
  return { writer, received, startReading: () => startReading(), close: () => writer.destroy() };
}

function wire(socket: net.Socket, outbox: Outbox): void {
  socket.on('drain', () => outbox.drained());
}

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('outbox: held output is always woken, even on a socket whose high-water mark is above the slice', async () => {
  // A 4 MiB high-water mark: a 256 KiB slice in the socket never sets writableNeedDrain, so no
  // 'drain' would ever come for the rest.
  const p = await pair({ writableHighWaterMark: 4 * 1024 * 1024 });
  try {
    const outbox = new Outbox(p.writer);
    wire(p.writer, outbox);
    const body = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32BE(i, i);
    outbox.write(body);
    outbox.end();
    p.startReading();
    const got = await Promise.race([
      p.received,
      new Promise<Buffer>((_, reject) => setTimeout(() => reject(new Error(`stalled: ${outbox.backlog} bytes never sent`)), 10_000)),
    ]);
    assert.equal(got.length, body.length);
    assert.equal(digest(got), digest(body));
  } finally {
    p.close();
  }
});

test('outbox: the shared batch buffer is never reused while a socket still holds it (two outboxes, a reader that waits)', async () => {
  const a = await pair();
  const b = await pair();
  try {
    const oa = new Outbox(a.writer);
    const ob = new Outbox(b.writer);
    wire(a.writer, oa);
    wire(b.writer, ob);
    const expectA: Buffer[] = [];
    const expectB: Buffer[] = [];
    // Batches of small writes, alternating between the two outboxes, while neither reader
    // reads: the kernel buffers fill, writes go pending, and every batch must arrive as written.
    let seq = 0;
    for (let round = 0; round < 2000; round++) {
      for (const [o, expect] of [[oa, expectA], [ob, expectB]] as const) {
        o.cork();
        for (let k = 0; k < 40; k++) {
          const piece = Buffer.alloc(100 + (seq % 900), seq & 0xff);
          piece.writeUInt32BE(seq++, 0);
          expect.push(piece);
          o.write(piece);
        }
        o.uncork();
      }
      // Let some writes complete (or not) between rounds.
      if (round % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    oa.end();
    ob.end();
    a.startReading();
    b.startReading();
    const [gotA, gotB] = await Promise.all([a.received, b.received]);
    assert.equal(digest(gotA), digest(Buffer.concat(expectA)));
    assert.equal(digest(gotB), digest(Buffer.concat(expectB)));
  } finally {
    a.close();
    b.close();
  }
});

test('outbox: end() with output held waits for all of it; writes after end() are refused and send nothing', async () => {
  const p = await pair();
  try {
    const outbox = new Outbox(p.writer, { slice: 64 * 1024 });
    wire(p.writer, outbox);
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    outbox.cork();
    outbox.write(Buffer.from('head'));
    outbox.write(body);
    outbox.write(Buffer.from('tail'));
    outbox.uncork();
    outbox.end();
    assert.equal(outbox.isEnded, true);
    assert.equal(outbox.write(Buffer.from('late')), false);
    assert.equal(outbox.writeLatin1('late'), false);
    p.startReading();
    const got = await p.received;
    assert.equal(got.length, 4 + body.length + 4);
    assert.equal(got.subarray(0, 4).toString(), 'head');
    assert.equal(got.subarray(-4).toString(), 'tail');
    assert.ok(outbox.sent >= got.length - 0, 'sent counts what the kernel took');
  } finally {
    p.close();
  }
});

/**
 * A socket whose writes complete only when the test says so: writableLength counts what it
 * still holds, and each write's callback runs at complete().
 */
class ScriptedSocket implements OutboxSocket {
  readonly writableHighWaterMark = 16 * 1024;
  destroyed = false;
  ended = false;
  /** Every buffer given to write(), in order, as given (same object: never copied). */
  readonly writes: Buffer[] = [];
  private readonly pending: { buf: Buffer; cb: ((err?: Error | null) => void) | undefined }[] = [];

  get writableLength(): number {
    let n = 0;
    for (const p of this.pending) n += p.buf.length;
    return n;
  }

  get writableNeedDrain(): boolean {
    return this.writableLength >= this.writableHighWaterMark;
  }

  write(buf: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    const piece = buf as Buffer;
    this.writes.push(piece);
    this.pending.push({ buf: piece, cb });
    return !this.writableNeedDrain;
  }

  end(): this {
    this.ended = true;
    return this;
  }

  /** The kernel takes the oldest pending write. */
  complete(): void {
    const p = this.pending.shift();
    assert.ok(p !== undefined, 'nothing pending');
    p.cb?.(null);
  }
}

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r));

test('outbox: a write with a callback is never copied, even corked, and keeps its place after the batch', async () => {
  const sock = new ScriptedSocket();
  const outbox = new Outbox(sock, { copyLimit: 16 * 1024 });
  const chunk = Buffer.alloc(100, 1);
  const calls: (Error | null | undefined)[] = [];
  outbox.cork();
  outbox.writeLatin1('head\r\n');
  outbox.write(chunk, (err) => calls.push(err));
  outbox.write(Buffer.from('tail'));
  outbox.uncork();
  assert.equal(sock.writes.length, 3);
  assert.equal(sock.writes[0]!.toString('latin1'), 'head\r\n');
  assert.equal(sock.writes[1], chunk, 'the buffer itself, not a copy');
  assert.equal(sock.writes[2]!.toString('latin1'), 'tail');
  sock.complete();
  await tick();
  assert.deepEqual(calls, [], 'not done before the socket is done with it');
  sock.complete();
  assert.deepEqual(calls, [null]);
});

test('outbox: a held buffer\'s callback runs once its last slice is written, not before', async () => {
  const sock = new ScriptedSocket();
  const outbox = new Outbox(sock, { slice: 64 * 1024 });
  let done = 0;
  outbox.write(Buffer.alloc(64 * 1024)); // the socket now holds a slice
  const big = Buffer.alloc(150 * 1024, 2);
  outbox.write(big, () => done++);
  assert.equal(outbox.holding, true);
  assert.equal(sock.writes.length, 1);
  // Each completion and 'drain' moves one slice: 64 KiB, 64 KiB, then the last 22 KiB with the callback.
  for (let i = 0; i < 3; i++) {
    sock.complete();
    outbox.drained();
    assert.equal(done, 0, `slice ${i}: not done yet`);
  }
  assert.equal(outbox.holding, false);
  assert.deepEqual(sock.writes.slice(1).map((b) => b.length), [64 * 1024, 64 * 1024, 22 * 1024]);
  assert.equal(Buffer.concat(sock.writes.slice(1)).equals(big), true);
  sock.complete();
  assert.equal(done, 1);
  assert.equal(outbox.sent, 64 * 1024 + big.length);
});

test('outbox: a callback always runs, with an error, when its buffer will never be written (never inside write())', async () => {
  const cases: [string, (o: Outbox, s: ScriptedSocket, cb: (err?: Error | null) => void) => void][] = [
    ['held, then discarded (the socket closed)', (o, s, cb) => {
      o.write(Buffer.alloc(300 * 1024));
      o.write(Buffer.alloc(10), cb);
      assert.equal(o.holding, true);
      s.destroyed = true;
      o.discard();
    }],
    ['written after end()', (o, _s, cb) => {
      o.end();
      assert.equal(o.write(Buffer.alloc(10), cb), false);
    }],
    ['written to a destroyed socket', (o, s, cb) => {
      s.destroyed = true;
      assert.equal(o.write(Buffer.alloc(10), cb), false);
    }],
  ];
  for (const [name, run] of cases) {
    const sock = new ScriptedSocket();
    const outbox = new Outbox(sock);
    const errors: (Error | null | undefined)[] = [];
    run(outbox, sock, (err) => errors.push(err));
    assert.deepEqual(errors, [], `${name}: not called synchronously`);
    await tick();
    assert.equal(errors.length, 1, `${name}: called once`);
    const err: unknown = errors[0];
    assert.ok(err instanceof Error, `${name}: with an error`);
  }
});

test('outbox: end() with a held buffer that has a callback ends only after it was handed over', () => {
  const sock = new ScriptedSocket();
  const outbox = new Outbox(sock, { slice: 64 * 1024 });
  let done = 0;
  outbox.write(Buffer.alloc(64 * 1024));
  outbox.write(Buffer.alloc(1000), () => done++);
  outbox.end();
  assert.equal(sock.ended, false, 'held output first');
  sock.complete();
  outbox.drained();
  assert.equal(sock.ended, true);
  sock.complete();
  assert.equal(done, 1);
});
