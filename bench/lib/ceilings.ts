// What the machine allows an upload, measured the way the store spends it: the disk's write +
// fsync rate for one file of `size` bytes in the files directory's file system, and SHA-256
// over the same bytes on this CPU. Run as a child pinned to the server's core (the store runs
// there too), by bench/binary.ts's transfer load:
//   node dist/bench/lib/ceilings.js --dir DIR --size BYTES      -> one JSON line
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { patterned } from './fixtures.js';

export interface Ceilings {
  /** Write + fsync of `size` bytes into a new file of the directory, MB/s (10^6 bytes). */
  diskMBps: number;
  /** CPU seconds that write + fsync took (copying into the page cache is CPU work, not the disk's). */
  diskCpuSeconds: number;
  /** SHA-256 over `size` bytes in 64 KiB updates (a DATA payload each), MB/s. */
  sha256MBps: number;
}

/** Bytes per write(2) for the disk figure: large, so the figure is the disk's and not syscalls'. */
const DISK_WRITE = 1024 * 1024;
/** Bytes per hash update, as big as the DATA payloads the client library sends. */
const HASH_UPDATE = 64 * 1024;

/** Write + fsync rate of a fresh file in `dir` (removed again), like an upload's temp file. */
export function diskRate(dir: string, content: Buffer): number {
  return diskRun(dir, content).mbps;
}

/** The rate and the CPU seconds the writes and the fsync used. */
export function diskRun(dir: string, content: Buffer): { mbps: number; cpuSeconds: number } {
  const file = path.join(dir, `.bench-disk-${process.pid}`);
  const fd = openSync(file, 'wx', 0o644);
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let at = 0; at < content.length; at += DISK_WRITE) {
      const end = Math.min(content.length, at + DISK_WRITE);
      let done = at;
      while (done < end) done += writeSync(fd, content, done, end - done);
    }
    fsyncSync(fd);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    return { mbps: content.length / 1e6 / seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
}

/** SHA-256 rate: the best of three passes (the first warms caches and the JIT). */
export function sha256Rate(content: Buffer): number {
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    const t0 = performance.now();
    const h = createHash('sha256');
    for (let at = 0; at < content.length; at += HASH_UPDATE) h.update(content.subarray(at, Math.min(content.length, at + HASH_UPDATE)));
    h.digest();
    best = Math.max(best, content.length / 1e6 / ((performance.now() - t0) / 1000));
  }
  return best;
}

/**
 * The store hashes each DATA payload on the main thread as it arrives while the previous
 * payloads' writes run in libuv's thread pool, and fsyncs once at the end: hashing and the disk
 * overlap, so an upload's ceiling is the slower of the two (min), not their serial sum. The
 * serial figure is printed too, for a store that would do them one after the other.
 */
export function putCeiling(disk: number, sha256: number): { overlapped: number; serial: number } {
  return { overlapped: Math.min(disk, sha256), serial: 1 / (1 / disk + 1 / sha256) };
}

/**
 * The ceiling on ONE core, which is where the bench pins the whole server (libuv's pool
 * threads too): hashing may overlap the disk's waiting but not the CPU the writes take to copy
 * into the page cache, so `size` bytes take at least max(disk time, SHA-256 time + the disk's
 * CPU time). Between min() and the serial figure.
 */
export function oneCoreCeiling(c: Ceilings, size: number): number {
  const mb = size / 1e6;
  return mb / Math.max(mb / c.diskMBps, mb / c.sha256MBps + c.diskCpuSeconds);
}

/** The disk figure is the median of three files (one disk run varies by tens of percent). */
export function measureCeilings(dir: string, size: number): Ceilings {
  const content = patterned(size);
  const disk = [diskRun(dir, content), diskRun(dir, content), diskRun(dir, content)].sort((a, b) => a.mbps - b.mbps);
  return { diskMBps: disk[1]!.mbps, diskCpuSeconds: disk[1]!.cpuSeconds, sha256MBps: sha256Rate(content) };
}

// Run as a script (argv[1] may reach this file through a symlink; import.meta.url is the real path).
if (process.argv[1] !== undefined && realpathSync(path.resolve(process.argv[1])) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, size: { type: 'string', default: String(64 * 1024 * 1024) } } });
  if (values.dir === undefined) {
    process.stderr.write('Usage: node dist/bench/lib/ceilings.js --dir DIR [--size BYTES]\n');
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(measureCeilings(values.dir, Number(values.size))) + '\n');
}
