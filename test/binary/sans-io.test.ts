// Issue 9: the MX/1 core is sans-IO. Not only its own imports: nothing it loads, transitively,
// may bring in sockets, the file system, timers or processes. Walks the compiled import graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FORBIDDEN = /^node:(fs|fs\/promises|net|dgram|timers|timers\/promises|child_process|http|worker_threads|cluster)$/;
const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, '..', '..', 'src');

/** Every module specifier imported (statically) by `file` and the files it imports, with the path that led there. */
function walk(file: string, seen = new Map<string, string[]>(), via: string[] = []): Map<string, string[]> {
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)) {
    const spec = (m[1] ?? m[2])!;
    const chain = [...via, path.relative(src, file)];
    if (spec.startsWith('.')) {
      const next = path.resolve(path.dirname(file), spec);
      if (!seen.has(next)) {
        seen.set(next, chain);
        walk(next, seen, chain);
      }
    } else if (!seen.has(spec)) seen.set(spec, chain);
  }
  return seen;
}

for (const mod of ['binary/core.js', 'chat/room.js', 'binary/udp/face.js', 'binary/udp/addresses.js']) {
  test(`sans-IO: ${mod} loads no socket, file-system, timer or process module`, () => {
    const graph = walk(path.join(src, mod));
    const bad = [...graph].filter(([spec]) => FORBIDDEN.test(spec)).map(([spec, chain]) => `${spec} via ${chain.join(' -> ')}`);
    assert.deepEqual(bad, []);
  });
}
