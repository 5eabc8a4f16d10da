// The layer rules of issue 14 part 4, checked on the TypeScript sources so that type-only imports
// count too: every file of a folder, and everything it reaches through relative imports, stays
// inside what that folder may use. Packages and node: modules are not followed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/layers.test.js -> the repository.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const RULES: { folder: string; why: string; allowed: string[] }[] = [
  { folder: 'src/store', why: 'the store knows no protocol', allowed: ['src/store/', 'src/loop/coded-error.ts', 'src/loop/open-file.ts'] },
  { folder: 'src/chat', why: 'binary/ uses the chat, never the reverse', allowed: ['src/chat/', 'src/wire/', 'src/loop/'] },
  {
    folder: 'src/client',
    why: 'the client pulls in no server code; of src/ws only the pure client-side codec',
    allowed: ['src/client/', 'src/wire/', 'src/loop/coded-error.ts', ...['keys', 'client-handshake', 'constants', 'mask', 'mx', 'queue', 'receiver', 'sender'].map((m) => `src/ws/${m}.ts`)],
  },
];

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));
}

/** Repository-relative .ts files reached from `file` through relative imports (static, dynamic, type-only). */
function reach(file: string, seen = new Map<string, string[]>(), via: string[] = []): Map<string, string[]> {
  const text = readFileSync(path.join(root, file), 'utf8');
  for (const m of text.matchAll(/\bfrom\s+['"](\.[^'"]+)['"]|\bimport\s*\(\s*['"](\.[^'"]+)['"]\s*\)|^\s*import\s+['"](\.[^'"]+)['"]/gm)) {
    const spec = (m[1] ?? m[2] ?? m[3])!;
    const next = path.relative(root, path.resolve(path.dirname(path.join(root, file)), spec.replace(/\.js$/, '.ts')));
    if (seen.has(next)) continue;
    const chain = [...via, file];
    seen.set(next, chain);
    reach(next, seen, chain);
  }
  return seen;
}

for (const rule of RULES) {
  test(`layers: ${rule.folder} reaches only ${rule.allowed.join(', ')} (${rule.why})`, () => {
    const files = sources(rule.folder);
    assert.ok(files.length > 0, `no sources under ${rule.folder}`);
    const bad: string[] = [];
    for (const file of files) {
      for (const [target, chain] of reach(file)) {
        if (!rule.allowed.some((a) => (a.endsWith('/') ? target.startsWith(a) : target === a))) bad.push(`${target} via ${[...chain, target].join(' -> ')}`);
      }
    }
    assert.deepEqual([...new Set(bad)], []);
  });
}
