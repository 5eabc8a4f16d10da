// --max-output against a client that pipelines small requests with large replies and never reads:
// the server stops taking frames, so its queued output stays near the limit instead of growing
// with the number of requests, and every request is still answered once the client reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Socket } from 'node:net';
import { encodeFrame } from '../../src/wire/frame.js';
import { Type } from '../../src/wire/protocol.js';
import { RawClient, startTestServer, type TestServer } from './raw-client.js';
import { waitFor } from '../helpers/wait.js';

const MAX_OUTPUT = 256 * 1024;
const MAX_FRAME = 64 * 1024;
/** What the server may hold beyond the limit: the reply that crossed it, a LIST being built, headers. */
const SLACK = 2 * (MAX_FRAME + 12);

/** Writes `count` bodiless requests of `type` (ids 1..count) in one write. */
function burst(c: RawClient, type: number, count: number): void {
  const frames: Buffer[] = [];
  for (let id = 1; id <= count; id++) frames.push(...encodeFrame(type, id));
  c.writeRaw(Buffer.concat(frames));
}

/** Samples the server side's unsent output every turn of the loop until `stop` resolves. */
function watchOutput(ts: TestServer, stop: Promise<unknown>): Promise<number> {
  let peak = 0;
  let done = false;
  void stop.finally(() => (done = true));
  return new Promise((resolve) => {
    const tick = (): void => {
      for (const s of ts.server.listener.sockets as ReadonlySet<Socket>) peak = Math.max(peak, s.writableLength);
      if (done) resolve(peak);
      else setImmediate(tick);
    };
    tick();
  });
}

/** Waits until the server stops answering (it is stalled on our unread replies); returns requests handled. */
async function settled(ts: TestServer): Promise<number> {
  let last = '';
  return waitFor(
    () => {
      // bytesWritten counts what is still buffered too: it moves whenever a reply is produced.
      let produced = 0;
      for (const s of ts.server.listener.sockets as ReadonlySet<Socket>) produced += s.bytesWritten;
      const requests = ts.metrics.counters['binary.requests'] ?? 0;
      const now = `${requests}/${produced}`;
      const same = now === last && produced > 0;
      last = now;
      return same ? requests : undefined;
    },
    { what: 'the server to stall on unread replies', detail: () => `requests/bytes ${last}`, stepMs: 200, timeoutMs: 20_000 },
  );
}

async function nonReader(ts: TestServer, type: number, count: number, replyType: number, ordered: boolean): Promise<void> {
  const c = await RawClient.connect(ts.port);
  try {
    c.socket.pause();
    const before = ts.metrics.counters['binary.requests'] ?? 0;
    const quiet = settled(ts);
    const peak = watchOutput(ts, quiet);
    burst(c, type, count);
    const handled = (await quiet) - before;
    const maxSeen = await peak;
    assert.ok(maxSeen <= MAX_OUTPUT + SLACK, `server queued ${maxSeen} bytes for a client that does not read (limit ${MAX_OUTPUT})`);
    assert.ok(handled < count, `all ${count} requests were answered into buffers`);
    // Once the client reads, every request gets its reply.
    c.socket.resume();
    const ids: number[] = [];
    for (let k = 0; k < count; k++) {
      const f = await c.next();
      assert.equal(f.type, replyType);
      ids.push(f.id);
    }
    const expected = Array.from({ length: count }, (_, k) => k + 1);
    assert.deepEqual(ordered ? ids : [...ids].sort((a, b) => a - b), expected);
  } finally {
    c.close();
  }
}

test('a client that never reads: thousands of NAMES keep the server output near --max-output; all answered in order', async () => {
  const ts = await startTestServer({ maxOutputBytes: MAX_OUTPUT, maxFrame: MAX_FRAME, maxConnections: 100 });
  const members: RawClient[] = [];
  try {
    // 60 members with 32-character names: each NAMES_OK is ~2 KB, for a 12-byte request.
    for (let k = 0; k < 60; k++) {
      const m = await RawClient.connect(ts.port);
      members.push(m);
      assert.equal((await m.request(Type.JOIN, 1, Buffer.from(`member${String(k).padStart(3, '0')}${'x'.repeat(23)}`))).type, Type.JOIN_OK);
    }
    // 8000 x 2 KB = 16 MB of replies: more than loopback buffering plus the limit.
    await nonReader(ts, Type.NAMES, 8000, Type.NAMES_OK, true);
  } finally {
    for (const m of members) m.close();
    await ts.stop();
  }
});

test('a client that never reads: thousands of LIST (built asynchronously) stay bounded too; all answered', async () => {
  const ts = await startTestServer({ maxOutputBytes: MAX_OUTPUT, maxFrame: MAX_FRAME });
  try {
    // 40 files with 200-byte names: each LIST_OK is ~8.4 KB.
    await Promise.all(Array.from({ length: 40 }, (_, k) => writeFile(path.join(ts.dir, `${String(k).padStart(3, '0')}${'n'.repeat(197)}`), 'x')));
    await nonReader(ts, Type.LIST, 2000, Type.LIST_OK, false);
  } finally {
    await ts.stop();
  }
});
