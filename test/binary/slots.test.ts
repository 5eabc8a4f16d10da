// Issue 8: every way a transfer can end gives its server-wide slot back, exactly once. Each
// scenario runs on a real socket against a real store, then waits for the budget to read 0
// with as many releases as acquisitions (SlotBudget.release clamps at 0, so a double release
// would otherwise hide as a budget that silently grants one slot too many) and no temp file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { SlotBudget } from '../../src/loop/budget.js';
import type { StoreIo } from '../../src/store/files.js';
import * as P from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { RawClient, startTestServer, type TestServer } from './raw-client.js';

const sha = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A budget that counts every acquire and release, and every release of a slot nobody held. */
class CountingBudget extends SlotBudget {
  acquired = 0;
  released = 0;
  overReleased = 0;
  override tryAcquire(): boolean {
    const ok = super.tryAcquire();
    if (ok) this.acquired++;
    return ok;
  }
  override release(): void {
    if (this.used === 0) this.overReleased++;
    this.released++;
    super.release();
  }
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 5000, step = 10): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await (step <= 1 ? new Promise((r) => setImmediate(r)) : sleep(step));
  }
}

async function settled(t: TestServer, budget: CountingBudget, what: string): Promise<void> {
  await until(`${what}: the budget back to 0 (used ${budget.used})`, () => budget.used === 0 && budget.acquired === budget.released);
  const temps = (await readdir(t.dir)).filter((n) => n.startsWith('.upload-'));
  assert.deepEqual(temps, [], `${what}: no temp file left`);
  assert.equal(budget.overReleased, 0, `${what}: no slot released twice`);
  assert.ok(budget.acquired > 0, `${what}: the scenario took a slot`);
}

interface Scenario {
  name: string;
  opts?: { transferTimeoutMs?: number; maxOutputBytes?: number; storeIo?: StoreIo };
  run(c: RawClient, t: TestServer, budget: CountingBudget): Promise<void>;
}

const BIG = randomBytes(8 * 1024 * 1024);

const scenarios: Scenario[] = [
  {
    name: 'PUT without DATA, then disconnect',
    async run(c) {
      c.send(Type.PUT, 1, P.encodePut(10, sha('0123456789'), 'a.bin'));
      await c.request(Type.PING, 2);
      c.close();
    },
  },
  {
    name: 'PUT with part of its DATA, then disconnect',
    async run(c, t) {
      c.send(Type.PUT, 1, P.encodePut(10, sha('0123456789'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('01234'));
      await until('the temp file', async () => (await readdir(t.dir)).some((n) => n.startsWith('.upload-')));
      c.close();
    },
  },
  {
    name: 'PUT with all its DATA, disconnect at once (commit racing the close)',
    async run(c, _t, budget) {
      const body = randomBytes(256 * 1024);
      c.send(Type.PUT, 1, P.encodePut(body.length, sha(body), 'a.bin'));
      c.send(Type.DATA, 1, body);
      // Closed as soon as the server took the PUT (not before: unread bytes would be lost to the RST).
      await until('the PUT', () => budget.acquired > 0, 5000, 1);
      c.close();
    },
  },
  {
    name: 'checksum mismatch',
    async run(c) {
      c.send(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('abd'));
      assert.equal(P.decodeError((await c.reply(1)).payload).code, ErrorCode.CHECKSUM_MISMATCH);
    },
  },
  {
    name: 'DATA beyond the declared size',
    async run(c) {
      c.send(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('abcd'));
      assert.equal(P.decodeError((await c.reply(1)).payload).code, ErrorCode.MALFORMED);
    },
  },
  {
    name: 'full disk (ENOSPC on the temp file)',
    opts: {
      storeIo: {
        openTemp: () => Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })),
      },
    },
    async run(c) {
      c.send(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('a'));
      assert.equal(P.decodeError((await c.reply(1)).payload).code, ErrorCode.STORAGE_FULL);
    },
  },
  {
    name: 'full disk on a write, disconnect before the answer',
    opts: {
      storeIo: {
        openTemp: async (p) => {
          const h = await open(p, 'wx', 0o644);
          // Every write fails as a full disk would.
          h.write = (() => Promise.reject(Object.assign(new Error('no space'), { code: 'ENOSPC' }))) as typeof h.write;
          h.writev = (() => Promise.reject(Object.assign(new Error('no space'), { code: 'ENOSPC' }))) as typeof h.writev;
          return h;
        },
      },
    },
    async run(c, _t, budget) {
      c.send(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('a'));
      await until('the PUT', () => budget.acquired > 0, 5000, 1);
      c.close();
    },
  },
  {
    name: 'PUT transfer timeout',
    opts: { transferTimeoutMs: 200 },
    async run(c) {
      c.send(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('a'));
      assert.equal(P.decodeError((await c.reply(1)).payload).code, ErrorCode.TRANSFER_TIMEOUT);
    },
  },
  {
    name: 'half-close in the middle of an upload',
    async run(c) {
      c.send(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('a'));
      c.socket.end();
      assert.equal(P.decodeError((await c.reply(1)).payload).code, ErrorCode.MALFORMED);
    },
  },
  {
    name: 'GET to the end',
    async run(c) {
      c.send(Type.GET, 1, P.encodeGet(0, 'big.bin'));
      let got = 0;
      while (got < BIG.length) {
        const f = await c.next((x) => x.id === 1 && x.type === Type.DATA);
        got += f.payload.length;
      }
    },
  },
  {
    name: 'GET of a missing file, GET past the end',
    async run(c) {
      assert.equal(P.decodeError((await c.request(Type.GET, 1, P.encodeGet(0, 'nope.bin'))).payload).code, ErrorCode.NOT_FOUND);
      assert.equal(P.decodeError((await c.request(Type.GET, 2, P.encodeGet(BIG.length + 1, 'big.bin'))).payload).code, ErrorCode.OFFSET_BEYOND_END);
    },
  },
  {
    name: 'GET abandoned mid-way by a disconnect',
    opts: { maxOutputBytes: 256 * 1024 },
    async run(c) {
      c.send(Type.GET, 1, P.encodeGet(0, 'big.bin'));
      await c.next((x) => x.id === 1 && x.type === Type.DATA);
      c.socket.pause();
      await sleep(50);
      c.close();
    },
  },
  {
    name: 'GET abandoned by a disconnect right after the request (file still opening)',
    async run(c, _t, budget) {
      for (let id = 1; id <= 8; id++) c.send(Type.GET, id, P.encodeGet(0, 'big.bin'));
      await until('the GETs', () => budget.acquired > 0, 5000, 1);
      c.close();
    },
  },
  {
    name: 'GET transfer timeout (a reader that takes nothing)',
    opts: { transferTimeoutMs: 200, maxOutputBytes: 256 * 1024 },
    async run(c, t) {
      c.send(Type.GET, 1, P.encodeGet(0, 'big.bin'));
      c.socket.pause();
      await until('the timeout', () => (t.metrics.counters['binary.transferTimeouts'] ?? 0) === 1);
      c.close();
    },
  },
  {
    name: 'a fatal framing error with transfers in flight',
    async run(c) {
      c.send(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a.bin'));
      c.send(Type.DATA, 1, Buffer.from('a'));
      c.send(Type.GET, 2, P.encodeGet(0, 'big.bin'));
      c.writeRaw(Buffer.alloc(12, 0xff));
      await c.waitClose();
    },
  },
];

for (const s of scenarios) {
  test(`slot released: ${s.name}`, async () => {
    const budget = new CountingBudget(64);
    const t = await startTestServer({ transfers: budget, ...s.opts });
    await writeFile(path.join(t.dir, 'big.bin'), BIG);
    const c = await RawClient.connect(t.port);
    try {
      await s.run(c, t, budget);
      await settled(t, budget, s.name);
      // The budget still works: one more transfer takes and gives back a slot.
      const d = await RawClient.connect(t.port);
      try {
        assert.equal((await d.request(Type.GET, 1, P.encodeGet(BIG.length, 'big.bin'))).type, Type.GET_OK);
        await until('the probe GET to close', () => budget.used === 0);
      } finally {
        d.close();
      }
    } finally {
      c.close();
      await t.stop();
    }
  });
}
