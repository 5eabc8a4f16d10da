// Issue 9: the MX/1 core is sans-IO. Not only its own imports: nothing it loads, transitively,
// may bring in sockets, the file system, timers or processes, nor use the globals that schedule
// work or read the time (issue 14): the driver passes `now` in. Walks the compiled import graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeFindings, findGlobals, scanGraph, staticImports } from '../helpers/sans-io-scan.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, '..', '..', 'src');

for (const mod of ['binary/core.js', 'chat/room.js', 'binary/udp/face.js', 'binary/udp/addresses.js']) {
  test(`sans-IO: ${mod} loads no socket, file-system, timer or process module`, () => {
    const { findings } = scanGraph(path.join(src, mod), src);
    const bad = describeFindings(findings.filter((f) => f.what.startsWith('import ')));
    assert.deepEqual(bad, []);
  });

  test(`sans-IO: nothing ${mod} loads uses timers, the clock, performance or process`, () => {
    const { files, findings } = scanGraph(path.join(src, mod), src);
    assert.ok(files.length >= 1 && files[0] === mod, `the walk starts at ${mod}: ${files.join(', ')}`);
    const bad = describeFindings(findings.filter((f) => !f.what.startsWith('import ')));
    assert.deepEqual(bad, []);
  });
}

test('sans-IO: the walk follows the graph (the face reaches the core, the room and the wire code)', () => {
  const { files } = scanGraph(path.join(src, 'binary/udp/face.js'), src);
  for (const f of ['binary/udp/addresses.js', 'wire/frame.js']) assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
  // However helper modules are split, the core's entry and something below it are scanned.
  assert.ok(files.some((f) => f.startsWith('binary/') && f !== 'binary/udp/face.js' && !f.startsWith('binary/udp/')), files.join(', '));
});

test('the guard can fail: a global two imports away, an I/O import, and decoys in comments and strings', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'muxd-sansio-'));
  try {
    const write = (name: string, text: string): void => writeFileSync(path.join(dir, name), text);
    write('entry.js', [
      "// import { x } from './missing.js'; setTimeout(f, 1)",
      "/* Date.now() process.exit() import 'node:fs' */",
      "import { a } from './a.js';",
      "export { b } from './b.js';",
      "const s = 'setTimeout(f, 1) and Date.now()';",
      'const t = `process ${a + 1} new Date()`;',
      'const r = /setInterval|process/g;',
      'const o = { process: 1, setTimeout: 2 };',
      'export const y = o.process + this.setImmediate + new Date(0).getTime() + Date.UTC(2020, 0) + s + t + r;',
    ].join('\n'));
    write('a.js', "import { c } from './c.js';\nexport const a = c;\n");
    write('b.js', "import { readFileSync } from 'node:fs';\nexport const b = readFileSync;\n");
    write('c.js', [
      'export const c = 1;',
      'export function later(f) { return setTimeout(f, 10); }',
      'export const at = () => Date.now() + performance.now();',
      'export const made = new Date();',
      'export const bare = new Date;',
      'export const id = () => process.pid + globalThis.queueMicrotask.length;',
      'export const str = `${`${clearTimeout}`}`;',
      'export const lazy = () => import("./d.js");',
    ].join('\n'));
    const { files, findings } = scanGraph(path.join(dir, 'entry.js'), dir);
    assert.deepEqual(files.sort(), ['a.js', 'b.js', 'c.js', 'entry.js']);
    assert.deepEqual(describeFindings(findings).sort(), [
      'Date.now at c.js:3 via entry.js -> a.js',
      'clearTimeout at c.js:7 via entry.js -> a.js',
      'dynamic import() at c.js:8 via entry.js -> a.js',
      'globalThis at c.js:6 via entry.js -> a.js',
      'import node:fs at b.js:1 via entry.js',
      'new Date() at c.js:4 via entry.js -> a.js',
      'new Date() at c.js:5 via entry.js -> a.js',
      'performance at c.js:3 via entry.js -> a.js',
      'process at c.js:6 via entry.js -> a.js',
      'queueMicrotask at c.js:6 via entry.js -> a.js',
      'setTimeout at c.js:2 via entry.js -> a.js',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the tokenizer: a division is not a regular expression, and imports in comments are not imports', () => {
  assert.deepEqual(findGlobals('const x = a / b / process; const y = (c) / 2;'), [{ what: 'process', line: 1 }]);
  assert.deepEqual(findGlobals('if (x) /setTimeout/.test(s);\nreturn /Date.now()/;'), []);
  assert.deepEqual(staticImports("// import a from './no.js'\nimport b from './yes.js';\nimport './side.js';\nexport * from './all.js';\nexport { q };\nconst m = import.meta.url;").map((i) => i.spec), ['./yes.js', './side.js', './all.js']);
});
