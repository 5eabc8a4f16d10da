// Loaded into a server under measurement (node --import .../mem-probe.js): on SIGUSR2 it appends
// one JSON line to $MUXD_MEM_PROBE with what holds the process's memory, so a benchmark can say
// which part of RSS grew: V8's heap spaces, Buffer/ArrayBuffer memory outside the heap, and the
// kernel's view (/proc/self/smaps_rollup: anonymous vs file-backed pages). Benchmarks only.
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';

// Run by itself (node dist/bench/mem-probe.js --help) it only says what it is for; loaded into a
// server it never looks at that server's arguments.
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (isMain && (process.argv.includes('--help') || process.argv.includes('-h'))) {
  process.stdout.write(
    'Usage: MUXD_MEM_PROBE=FILE node --import ./dist/bench/mem-probe.js dist/src/cli/main.js serve ...\n' +
      'Not run by itself: loaded into a server, it appends one JSON line to FILE on each SIGUSR2\n' +
      "(V8 heap spaces, memory outside the heap, /proc/self/smaps_rollup). bench/slow-readers.ts --detail uses it.\n",
  );
  process.exit(0);
}

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
