// The Outbox (src/loop/outbox.ts) on real loopback sockets, where libuv decides what is taken
// at once and what stays referenced by a pending write: the shared batch buffer must never be
// reused while a socket still holds it, held output must always be woken by a 'drain', and
// end() must wait for everything queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Outbox } from '../../src/loop/outbox.js';

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
