// The read-chunk accounting for streamed files: sizes follow the server-wide budget and the
// connection's own pace, every byte taken is counted until given back, the free list is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteBudget } from '../../src/loop/budget.js';
import { ChunkPool, CHUNK_FULL, CHUNK_MIN } from '../../src/http/chunk-pool.js';

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
  assert.equal(pool.take(CHUNK_FULL - 1).length, CHUNK_FULL / 2, 'rounded down to a size class');
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
