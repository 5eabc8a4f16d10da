// What `npm pack` ships (package.json "files"): the built server, client and CLI with their type
// declarations, the shipped site, the docs, README and LICENSE. Not the tests, the benchmarks,
// the TypeScript sources or source maps that point at them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  exports: Record<string, { types: string; default: string }>;
};

/** Every file under dir, relative to the repository root, with '/' separators. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(REPO_ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

describe('npm pack', async () => {
  // --ignore-scripts: list what the build already in dist/ would ship, without rebuilding it.
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  const listed = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  const shipped = new Set(listed);

  test('ships only dist/src, public/, docs/, README.md, LICENSE and package.json', () => {
    for (const file of listed) {
      assert.match(file, /^(dist\/src\/.*\.(js|d\.ts)|public\/.+|docs\/.+|README\.md|LICENSE|package\.json)$/, file);
    }
  });

  test('no tests, benchmarks, TypeScript sources or source maps', () => {
    for (const file of listed) {
      assert.ok(!file.startsWith('dist/test/') && !file.startsWith('dist/bench/'), file);
      assert.ok(!/^(src|test|bench)\//.test(file), file);
      assert.ok(!file.endsWith('.map'), file);
      assert.ok(!file.endsWith('.ts') || file.endsWith('.d.ts'), file);
    }
  });

  test('every built module of dist/src and every file of public/ and docs/ is in it', () => {
    const wanted = [...filesUnder('dist/src').filter((f) => !f.endsWith('.map')), ...filesUnder('public'), ...filesUnder('docs')];
    assert.ok(wanted.length > 50, `only ${wanted.length} files found`);
    for (const file of wanted) assert.ok(shipped.has(file), `${file} is not shipped`);
    for (const file of ['README.md', 'LICENSE', 'package.json']) assert.ok(shipped.has(file), file);
  });

  test('the muxd command and the muxd/client entry points are in it', () => {
    const entries = [...Object.values(pkg.bin), ...Object.values(pkg.exports).flatMap((e) => [e.default, e.types])];
    assert.ok(entries.length >= 3);
    for (const entry of entries) assert.ok(shipped.has(entry.replace(/^\.\//, '')), `${entry} is not shipped`);
  });

  test('the MIT licence names its holders', () => {
    const license = readFileSync(path.join(REPO_ROOT, 'LICENSE'), 'utf8');
    assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 muxd contributors\n/);
  });
});
