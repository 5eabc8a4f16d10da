// The store's upload path as the MX/1 face drives it: bytes accepted in bursts while earlier
// ones are being written (one writev per burst), write-back started every 8 MiB, the previous
// file replaced without freeing it inside rename, and nothing partial ever visible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileStore } from '../../src/store/files.js';

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

async function withStore(run: (store: FileStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'muxd-upload-'));
  try {
    await run(await FileStore.open(dir, 1 << 30), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Feeds `body` in `piece`-byte writes, `burst` at a time, yielding between bursts (socket reads). */
async function feed(upload: { write(b: Buffer): void }, body: Buffer, piece: number, burst: number): Promise<void> {
  let n = 0;
  for (let at = 0; at < body.length; at += piece) {
    upload.write(body.subarray(at, Math.min(body.length, at + piece)));
    if (++n % burst === 0) await new Promise((r) => setImmediate(r));
  }
}

test('a 20 MiB upload fed in bursts of 64 KiB pieces is stored whole, past two write-backs, with nothing else left', async () => {
  await withStore(async (store, dir) => {
    const body = randomBytes(20 * 1024 * 1024 + 5);
    const upload = store.beginUpload('big.bin', body.length, sha(body));
    await feed(upload, body, 64 * 1024, 16);
    assert.equal(upload.received, body.length);
    const info = await upload.commit();
    assert.equal(info.size, body.length);
    assert.ok(info.sha256.equals(sha(body)));
    assert.equal(upload.queued, 0);
    assert.ok((await readFile(path.join(dir, 'big.bin'))).equals(body));
    assert.deepEqual(await readdir(dir), ['big.bin']);
  });
});

test('replacing a file: a reader holding the old one reads it whole, the name has the new one, no temp is left', async () => {
  await withStore(async (store, dir) => {
    const old = randomBytes(3 * 1024 * 1024);
    await writeFile(path.join(dir, 'r.bin'), old);
    const reader = await open(path.join(dir, 'r.bin'), 'r');
    try {
      const body = randomBytes(2 * 1024 * 1024);
      const upload = store.beginUpload('r.bin', body.length, sha(body));
      await feed(upload, body, 50_000, 8);
      await upload.commit();
      assert.deepEqual(await readdir(dir), ['r.bin'], 'only the name: no temp, no second link');
      assert.ok((await readFile(path.join(dir, 'r.bin'))).equals(body));
      const kept = Buffer.alloc(old.length);
      await reader.read(kept, 0, old.length, 0);
      assert.ok(kept.equals(old), 'the replaced file is intact for whoever has it open');
    } finally {
      await reader.close();
    }
  });
});

test('a wrong digest after write-backs: nothing visible, the temp file removed', async () => {
  await withStore(async (store, dir) => {
    const body = randomBytes(9 * 1024 * 1024);
    const upload = store.beginUpload('bad.bin', body.length, sha(Buffer.from('something else')));
    await feed(upload, body, 256 * 1024, 4);
    await assert.rejects(upload.commit(), (e: unknown) => (e as { code?: string }).code === 'digest-mismatch');
    assert.deepEqual(await readdir(dir), []);
  });
});

test('abort while bytes are queued and a write-back may run: the temp file is gone at once and stays gone', async () => {
  await withStore(async (store, dir) => {
    const body = randomBytes(12 * 1024 * 1024);
    const upload = store.beginUpload('cut.bin', body.length + 1, sha(body));
    for (let at = 0; at < body.length; at += 1024 * 1024) upload.write(body.subarray(at, at + 1024 * 1024));
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(upload.started, true);
    const aborted = upload.abort();
    assert.deepEqual(await readdir(dir), [], 'the temp name is removed inside abort()');
    await aborted;
    assert.deepEqual(await readdir(dir), []);
    await upload.drained();
    assert.equal(upload.queued, 0);
  });
});
