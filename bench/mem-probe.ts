// Loaded into a server under measurement (node --import .../mem-probe.js): on SIGUSR2 it appends
// one JSON line to $MUXD_MEM_PROBE with what holds the process's memory, so a benchmark can say
// which part of RSS grew: V8's heap spaces, Buffer/ArrayBuffer memory outside the heap, and the
// kernel's view (/proc/self/smaps_rollup: anonymous vs file-backed pages). Benchmarks only.
import { appendFileSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';

const out = process.env.MUXD_MEM_PROBE;
if (out !== undefined && out !== '') {
  // Under --expose-gc (diagnosis only: is it garbage or is it held?), a full GC runs first.
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('SIGUSR2', () => {
    gc?.();
    const m = process.memoryUsage();
    const rollup: Record<string, number> = {};
    for (const line of readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n')) {
      const hit = /^(\w+):\s+(\d+) kB/.exec(line);
      if (hit) rollup[hit[1]!] = Number(hit[2]) * 1024;
    }
    const spaces: Record<string, number> = {};
    for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.space_size;
    appendFileSync(out, JSON.stringify({ ...m, rollup, spaces }) + '\n');
  });
}
