// The read-chunk accounting for streamed files: sizes follow the server-wide budget and the
// connection's own pace, every byte taken is counted until given back, the free list is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteBudget } from '../../src/loop/budget.js';
import { ChunkPool, CHUNK_FULL, CHUNK_MIN, CHUNK_START, RETAIN_BYTES, SLAB_BYTES } from '../../src/loop/chunk-pool.js';

test('chunk sizes: full while the budget is low, shrinking to the minimum as it fills, never over a cap', () => {
  const budget = new ByteBudget(1024 * 1024);
  const pool = new ChunkPool(budget);
  const a = pool.take();
  assert.equal(a.length, CHUNK_FULL);
  assert.equal(budget.used, CHUNK_FULL);
  budget.add(1024 * 1024); // the server as a whole holds its limit
  const b = pool.take();
  assert.equal(b.length, CHUNK_MIN);
  budget.sub(1024 * 1024);
  assert.equal(pool.take(CHUNK_MIN).length, CHUNK_MIN, 'a slow connection\'s own cap');
  const roomy = new ChunkPool(new ByteBudget(1 << 30));
  assert.equal(roomy.take(CHUNK_FULL - 1).length, CHUNK_FULL / 2, 'rounded down to a size class');
});

test('chunks past CHUNK_START only while the server holds under 1/16 of its budget', () => {
  const budget = new ByteBudget(16 * 1024 * 1024);
  const pool = new ChunkPool(budget);
  assert.equal(pool.take().length, CHUNK_FULL, 'a first reader may grow');
  budget.add(1024 * 1024 - CHUNK_FULL + 1); // just past 1 MiB held in all
  assert.equal(pool.take().length, CHUNK_START, 'many readers each hold at most the first size');
  assert.equal(pool.take(CHUNK_MIN).length, CHUNK_MIN, 'a smaller cap still wins');
});

test('every byte taken is counted until given back; given-back buffers are reused, a bounded number', () => {
  const budget = new ByteBudget(1 << 30);
  const pool = new ChunkPool(budget);
  const taken = Array.from({ length: 40 }, () => pool.take());
  assert.equal(budget.used, 40 * CHUNK_FULL);
  for (const b of taken) pool.give(b, true);
  assert.equal(budget.used, 0);
  assert.ok(pool.pooledBytes <= 1024 * 1024, `pool keeps at most 1 MiB per size: ${pool.pooledBytes}`);
  assert.ok(taken.includes(pool.take()), 'a pooled buffer is handed out again');
  const failed = pool.take();
  pool.give(failed, false); // a failed write: uncounted, not reused
  assert.equal(budget.used, CHUNK_FULL);
});

test("a connection's chunk halves when the socket had to queue it and doubles back when taken at once", () => {
  const pool = new ChunkPool(new ByteBudget(1 << 30));
  let size = CHUNK_FULL;
  for (let i = 0; i < 10; i++) size = pool.nextSize(size, false);
  assert.equal(size, CHUNK_MIN);
  size = pool.nextSize(size, true);
  assert.equal(size, CHUNK_MIN * 2);
  for (let i = 0; i < 10; i++) size = pool.nextSize(size, true);
  assert.equal(size, CHUNK_FULL);
});

// Slabs: chunks are carved from resizable ArrayBuffers of SLAB_BYTES, and a slab's memory is
// unmapped (resize(0)) as soon as its last chunk is back, beyond RETAIN_BYTES kept for reuse.

test('chunks of one size fill a slab before another is mapped, and never overlap', () => {
  const pool = new ChunkPool(new ByteBudget(1 << 30));
  const perSlab = SLAB_BYTES / CHUNK_MIN;
  const taken = Array.from({ length: perSlab }, () => pool.take(CHUNK_MIN));
  assert.equal(pool.mappedBytes, SLAB_BYTES, 'one slab for a slab-full of chunks');
  taken.push(pool.take(CHUNK_MIN));
  assert.equal(pool.mappedBytes, 2 * SLAB_BYTES);
  taken.push(pool.take(CHUNK_FULL), pool.take(CHUNK_FULL / 2));
  assert.equal(pool.mappedBytes, 4 * SLAB_BYTES, 'each size class has its own slabs');
  taken.forEach((b, i) => b.fill(i));
  taken.forEach((b, i) => assert.ok(b.every((x) => x === (i & 0xff)), `chunk ${i} kept its bytes`));
  assert.equal(new Set(taken).size, taken.length, 'no chunk handed out twice');
});

test('memory goes back to the OS when the chunks come back: all but RETAIN_BYTES of empty slabs are unmapped', () => {
  const budget = new ByteBudget(1 << 30);
  const pool = new ChunkPool(budget);
  // A burst: 1,000 slow readers' worth of chunks in all three sizes.
  const taken: Buffer[] = [];
  for (let i = 0; i < 1000; i++) taken.push(pool.take([CHUNK_MIN, CHUNK_FULL / 2, CHUNK_FULL][i % 3]));
  const peak = pool.mappedBytes;
  assert.ok(peak >= budget.used && peak <= budget.used + 3 * SLAB_BYTES, `mapped ${peak} for ${budget.used} held`);
  for (const b of taken) pool.give(b, true);
  assert.equal(budget.used, 0);
  assert.ok(pool.mappedBytes <= RETAIN_BYTES, `mapped after: ${pool.mappedBytes}`);
  const released = taken.filter((b) => b.length === 0).length;
  assert.ok(released > 900, `chunks of unmapped slabs have no memory behind them: ${released}`);
  // The next burst maps them again and works as before.
  const again = Array.from({ length: 100 }, () => pool.take());
  again.forEach((b) => assert.equal(b.length, CHUNK_FULL));
  for (const b of again) pool.give(b, true);
  assert.ok(pool.mappedBytes <= RETAIN_BYTES);
});

test('a slab still lent out stays mapped; the last chunk back unmaps it', () => {
  const pool = new ChunkPool(new ByteBudget(1 << 30));
  const slabs = (RETAIN_BYTES / SLAB_BYTES + 2) * (SLAB_BYTES / CHUNK_FULL);
  const taken = Array.from({ length: slabs }, () => pool.take());
  const mapped = pool.mappedBytes;
  // Give back all but the first chunk of each slab: nothing can be unmapped yet.
  const perSlab = SLAB_BYTES / CHUNK_FULL;
  taken.forEach((b, i) => i % perSlab !== 0 && pool.give(b, true));
  assert.equal(pool.mappedBytes, mapped);
  taken.forEach((b, i) => i % perSlab === 0 && pool.give(b, true));
  assert.equal(pool.mappedBytes, RETAIN_BYTES);
});

test('a chunk whose write failed is never handed out again; its slab is unmapped, not kept, once the rest are back', () => {
  const budget = new ByteBudget(1 << 30);
  // Chunks of the first size, several to a slab (a full-size chunk is a whole slab).
  const pool = new ChunkPool(budget, CHUNK_START);
  const perSlab = SLAB_BYTES / CHUNK_START;
  const taken = Array.from({ length: perSlab }, () => pool.take());
  const failed = taken[1]!;
  pool.give(failed, false);
  assert.equal(budget.used, (perSlab - 1) * CHUNK_START, 'uncounted');
  const next = pool.take();
  assert.notEqual(next, failed, 'not reused while its slab is mapped');
  assert.equal(pool.mappedBytes, 2 * SLAB_BYTES, 'a new slab rather than the failed chunk');
  pool.give(next, true);
  for (const b of taken) if (b !== failed) pool.give(b, true);
  assert.equal(budget.used, 0);
  assert.equal(failed.length, 0, 'its memory is unmapped: whatever still held it reads nothing');
  assert.equal(pool.mappedBytes, SLAB_BYTES, 'only the clean slab is kept for reuse');
  for (let i = 0; i < 3 * perSlab; i++) assert.notEqual(pool.take(), failed);
});
