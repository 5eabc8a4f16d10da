// The shipped site in public/: committed .br/.gz siblings must still match their sources
// (never stale), the pages must be well-formed and accessible, and every local link must
// resolve. Also precompressDir itself, on a temporary directory.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { mkdtemp, writeFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { StaticSite, precompressDir } from '../../src/http/static/site.js';
import { isCompressible } from '../../src/http/static/mime.js';
import type { RequestHead } from '../../src/http/types.js';

// dist/test/http/ -> the repository root
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PUBLIC = path.join(REPO, 'public');

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(full));
    else out.push(full);
  }
  return out.sort();
}

const files = walk(PUBLIC);
const pages = files.filter((f) => f.endsWith('.html'));

describe('public/ precompressed siblings', () => {
  test('the stylesheet and script have both siblings', () => {
    for (const f of ['style.css', 'app.js']) {
      assert.ok(existsSync(path.join(PUBLIC, f + '.br')), `${f}.br`);
      assert.ok(existsSync(path.join(PUBLIC, f + '.gz')), `${f}.gz`);
    }
  });
  for (const sibling of files.filter((f) => f.endsWith('.br') || f.endsWith('.gz'))) {
    test(`${path.relative(PUBLIC, sibling)} matches its source (regenerate with: muxd compress public)`, () => {
      const source = sibling.slice(0, -3);
      assert.ok(existsSync(source), 'orphan sibling');
      const decoded = sibling.endsWith('.br') ? brotliDecompressSync(readFileSync(sibling)) : gunzipSync(readFileSync(sibling));
      assert.ok(decoded.equals(readFileSync(source)), 'stale: the source changed after compression');
    });
  }
  test('every compressible file over 1 KiB has siblings', () => {
    for (const f of files) {
      if (f.endsWith('.br') || f.endsWith('.gz') || !isCompressible(f) || statSync(f).size <= 1024) continue;
      assert.ok(existsSync(f + '.br') && existsSync(f + '.gz'), `${path.relative(PUBLIC, f)} lacks siblings`);
    }
  });
});

/** Void elements never close (HTML Living Standard §13.1.2). */
const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);

describe('public/ pages', () => {
  for (const page of pages) {
    const name = path.relative(PUBLIC, page);
    const html = readFileSync(page, 'utf8');
    test(`${name}: doctype, lang, charset, viewport, title`, () => {
      assert.match(html, /^<!doctype html>/i);
      assert.match(html, /<html lang="en">/);
      assert.match(html, /<meta charset="utf-8">/);
      assert.match(html, /<meta name="viewport"/);
      assert.match(html, /<title>[^<]+<\/title>/);
      assert.match(html, /<link rel="stylesheet" href="\/style.css">/);
    });
    test(`${name}: tags balanced, ids unique, images have alt`, () => {
      const stack: string[] = [];
      const body = html.replace(/<!--[\s\S]*?-->/g, '').replace(/^<!doctype html>/i, '');
      for (const m of body.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>/g)) {
        const [, closing, rawTag, attrs] = m;
        const tag = rawTag!.toLowerCase();
        if (VOID.has(tag)) continue;
        if (closing) assert.equal(stack.pop(), tag, `</${tag}> closes the wrong element`);
        else if (!attrs!.endsWith('/')) stack.push(tag);
      }
      assert.deepEqual(stack, [], 'unclosed elements');
      const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
      assert.equal(new Set(ids).size, ids.length, 'duplicate id');
      for (const img of html.matchAll(/<img\b[^>]*>/g)) assert.match(img[0], /\salt="/, img[0]);
    });
    test(`${name}: local links resolve`, () => {
      for (const m of html.matchAll(/\s(?:href|src)="(\/[^"#?]*)/g)) {
        const url = m[1]!;
        if (url.startsWith('/files/')) continue; // the upload store, not part of public/
        if (url === '/.well-known/muxd/stats') continue; // the live metrics route, answered by muxd itself (e2e-tested)
        const rel = decodeURIComponent(url).replace(/\/$/, '/index.html');
        assert.ok(existsSync(path.join(PUBLIC, rel)), `${url} is missing`);
      }
    });
  }
  test('index.html explains both ports and every CLI command', () => {
    const html = readFileSync(path.join(PUBLIC, 'index.html'), 'utf8');
    for (const s of ['8080', '9000', 'one event loop', 'curl', 'npx muxd ping', 'muxd stats', 'muxd chat --name ada', 'muxd put FILE', 'muxd get NAME', 'muxd ls', 'muxd announce TEXT', 'href="/files/"', 'href="/docs/"', '/logo.svg', '/app.js', '/favicon.svg']) {
      assert.ok(html.includes(s), s);
    }
  });
  test('404.html links home', () => assert.match(readFileSync(path.join(PUBLIC, '404.html'), 'utf8'), /href="\/"/));
});

describe('public/ through StaticSite', () => {
  const head = (target: string, headers: string[] = []): RequestHead => ({
    method: 'GET', target, versionMinor: 1, headers, host: 't', contentLength: -1, chunked: false, keepAlive: true,
  });
  test('home, brotli stylesheet, styled 404', async () => {
    const site = new StaticSite({ root: PUBLIC });
    try {
      const home = await site.handle(head('/'));
      assert.equal(home.status, 200);
      const css = await site.handle(head('/style.css', ['accept-encoding', 'gzip, deflate, br']));
      assert.match(css.head, /\r\nContent-Encoding: br\r\n/);
      assert.match(css.head, /\r\nContent-Type: text\/css; charset=utf-8\r\n/);
      const missing = await site.handle(head('/nope'));
      assert.equal(missing.status, 404);
      assert.match(missing.head, /text\/html/);
    } finally {
      site.close();
    }
  });
});

describe('precompressDir', () => {
  test('writes .gz and .br for text over 1 KiB only, and they decode to the source', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'muxd-compress-'));
    try {
      const text = 'body { color: red; }\n'.repeat(200);
      await mkdir(path.join(dir, 'sub'));
      await writeFile(path.join(dir, 'sub', 'big.css'), text);
      await writeFile(path.join(dir, 'small.js'), 'let a = 1;\n');
      await writeFile(path.join(dir, 'photo.png'), Buffer.alloc(5000, 1));
      await writeFile(path.join(dir, '.hidden.css'), text);
      const written = await precompressDir(dir);
      const big = path.join(dir, 'sub', 'big.css');
      assert.deepEqual(written.sort(), [big + '.br', big + '.gz']);
      assert.equal(brotliDecompressSync(readFileSync(big + '.br')).toString(), text);
      assert.equal(gunzipSync(readFileSync(big + '.gz')).toString(), text);
      // Running again does not compress the siblings themselves.
      assert.deepEqual((await precompressDir(dir)).sort(), [big + '.br', big + '.gz']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
