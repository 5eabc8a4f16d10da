// Every benchmark entry point answers --help with its usage and exit 0, at once, instead of
// starting the run (the soak takes five minutes and spawns servers).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench');
// Imported by http.js (`--workers N`), not run by itself.
const LIBRARIES = new Set(['workers.js']);
const entries = readdirSync(BENCH).filter((f) => f.endsWith('.js') && !LIBRARIES.has(f));

test('the benchmark entry points are found', () => {
  for (const f of ['soak.js', 'http.js', 'binary.js', 'mx-load.js', 'slow-readers.js', 'mem-probe.js']) assert.ok(entries.includes(f), f);
});

for (const file of entries) {
  test(`node dist/bench/${file} --help prints its usage and exits 0`, async () => {
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, [path.join(BENCH, file), '--help'], { timeout: 15_000 }, (err, out) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout: out });
      });
    });
    assert.equal(code, 0, stdout);
    assert.match(stdout, new RegExp(`(Usage: .*|^)${file.replace(/\.js$/, '')}`, 'm'));
    assert.match(stdout, /--/, 'names its flags');
  });
}
