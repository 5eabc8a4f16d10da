// The files every HTTP server serves: one temp directory, made once per bench run.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Fixtures {
  /** The site root: index.html, 1k.txt, 64k.bin, 10m.bin. */
  dir: string;
  /** Scratch space next to the files (configs, pid files, uploads). */
  tmp: string;
  cleanup(): void;
}

export function makeFixtures(): Fixtures {
  const base = mkdtempSync(path.join(tmpdir(), 'muxd-bench-'));
  const dir = path.join(base, 'site');
  const tmp = path.join(base, 'tmp');
  mkdirSync(dir);
  mkdirSync(tmp);
  // nginx workers may run as another user: the tree must be world-readable (mkdtemp makes 0700).
  for (const d of [base, dir, tmp]) chmodSync(d, 0o755);
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html>\n<title>bench</title>\n<p>muxd bench fixture</p>\n');
  writeFileSync(path.join(dir, '1k.txt'), Buffer.alloc(1024, 'a'));
  writeFileSync(path.join(dir, '64k.bin'), patterned(64 * 1024));
  writeFileSync(path.join(dir, '10m.bin'), patterned(10 * 1024 * 1024));
  return { dir, tmp, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

/** Non-repeating bytes (xorshift32) so nothing along the way can cheat by compressing. */
export function patterned(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
