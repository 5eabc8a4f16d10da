// `import { connect } from 'muxd/client'` must load no server code and no server-only
// dependency: koffi (native, an install script) and @redis/client are optionalDependencies that
// a client-library user leaves out (npm install --omit=optional). This walks the import graph of
// the built client, the JavaScript and the type declarations, with TypeScript's own import
// scanner (static imports, re-exports and literal dynamic imports alike).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DIST_SRC = path.join(REPO_ROOT, 'dist/src');
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, { types: string; default: string }>;
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};

interface Graph {
  /** Files of this package reached, relative to dist/src. */
  files: string[];
  /** Bare specifiers (packages and builtins) reached. */
  bare: Set<string>;
}

/** Every module reachable from `entry`; `.d.ts` entries follow `./x.js` to `./x.d.ts`. */
function walk(entry: string): Graph {
  const types = entry.endsWith('.d.ts');
  const seen = new Set<string>();
  const bare = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
      if (!spec.startsWith('.')) {
        bare.add(spec);
        continue;
      }
      let target = path.resolve(path.dirname(file), spec);
      if (types) target = target.replace(/\.js$/, '.d.ts');
      assert.ok(existsSync(target), `${path.relative(REPO_ROOT, file)} imports ${spec}, which is not there`);
      todo.push(target);
    }
  }
  return { files: [...seen].map((f) => path.relative(DIST_SRC, f)).sort(), bare };
}

/** The package a bare specifier names: `@redis/client/dist/x` -> `@redis/client`. */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

const isBuiltin = (spec: string): boolean => spec.startsWith('node:') || builtinModules.includes(spec);
const SERVER_ONLY = Object.keys(pkg.optionalDependencies ?? {});
// The folders a client never needs: everything but the client and the wire format it shares.
const SERVER_FOLDERS = ['loop', 'http', 'binary', 'store', 'chat', 'chat-relay', 'server', 'cluster', 'cli'];
// The one shared leaf every layer may import: the coded-error base (no imports of its own), and
// the pure client side of the WebSocket codec (sans-IO; src/ws/handshake.ts, the server's side,
// and connection.ts stay out).
const SHARED_LEAVES = ['loop/coded-error', ...['keys', 'client-handshake', 'constants', 'mask', 'mx', 'queue', 'receiver', 'sender'].map((m) => `ws/${m}`)];
const isSharedLeaf = (file: string): boolean => SHARED_LEAVES.some((leaf) => file.split(path.sep).join('/').replace(/\.(js|d\.ts)$/, '') === leaf);

describe("muxd/client's import graph", () => {
  const entry = pkg.exports['./client']!;
  const js = walk(path.join(REPO_ROOT, entry.default));
  const dts = walk(path.join(REPO_ROOT, entry.types));

  test('the server-only dependencies are optional, so a client install may leave them out', () => {
    assert.deepEqual([...SERVER_ONLY].sort(), ['@redis/client', 'koffi']);
    for (const dep of SERVER_ONLY) assert.equal(pkg.dependencies[dep], undefined, `${dep} is also a plain dependency`);
  });

  for (const [label, graph] of [['JavaScript', js], ['type declarations', dts]] as const) {
    test(`${label}: only the client and the wire format, no server module`, () => {
      assert.ok(graph.files.includes(path.join('client', 'client' + (label === 'JavaScript' ? '.js' : '.d.ts'))), graph.files.join(', '));
      for (const file of graph.files) {
        if (isSharedLeaf(file)) continue;
        const folder = file.split(path.sep)[0]!;
        assert.ok(!SERVER_FOLDERS.includes(folder), `the client reaches ${file}`);
        assert.ok(folder === 'client' || folder === 'wire', `the client reaches ${file}, outside src/client and src/wire`);
      }
    });

    test(`${label}: no package but Node's builtins and plain dependencies, never koffi or @redis`, () => {
      for (const spec of graph.bare) {
        if (isBuiltin(spec)) continue;
        const name = packageOf(spec);
        assert.ok(!SERVER_ONLY.includes(name), `the client reaches ${spec}`);
        assert.ok(!name.startsWith('@redis/'), `the client reaches ${spec}`);
        assert.ok(name in pkg.dependencies, `the client reaches ${spec}, which is not a dependency`);
      }
    });
  }

  test('no import the walk cannot see: no computed import(), no require', () => {
    for (const file of js.files) {
      const text = readFileSync(path.join(DIST_SRC, file), 'utf8');
      assert.doesNotMatch(text, /\bimport\s*\(\s*[^'"\s]/, `${file} has an import() of a computed name`);
      assert.doesNotMatch(text, /\b(require|createRequire)\s*\(/, `${file} requires a module at run time`);
    }
  });

  test('the walk sees what it must reject: from the CLI it reaches the server and @redis/client', () => {
    const cli = walk(path.join(DIST_SRC, 'cli/main.js'));
    assert.ok(cli.files.some((f) => f.startsWith('http' + path.sep)), cli.files.join(', '));
    assert.ok(cli.files.some((f) => f.startsWith('binary' + path.sep)), cli.files.join(', '));
    assert.ok([...cli.bare].some((s) => packageOf(s) === '@redis/client'), [...cli.bare].join(', '));
  });
});
