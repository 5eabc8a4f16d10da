// StaticSite, driven without sockets: RequestHead objects in, Reply objects out. Every rule
// of the handler has a case here; fixtures live in a fresh temporary directory.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, symlink, rename, rm, utimes } from 'node:fs/promises';
import { readFileSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync, gunzipSync, brotliCompressSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { StaticSite } from '../../src/http/static/site.js';
import { releaseBody, type Reply, type RequestHead, type FileRegion } from '../../src/http/types.js';
import { openFileCount } from '../../src/http/static/open-file.js';

const SECRET = 'SECRET-OUTSIDE-THE-ROOT';
const BIG = 200 * 1024 + 7;

function request(method: string, target: string, headers: [string, string][] = []): RequestHead {
  return {
    method,
    target,
    versionMinor: 1,
    headers: [['host', 't'] as [string, string], ...headers].flatMap(([k, v]) => [k.toLowerCase(), v]),
    host: 't',
    contentLength: -1,
    chunked: false,
    keepAlive: true,
  };
}

interface Res {
  reply: Reply;
  status: number;
  headers: Map<string, string>;
  body: Buffer;
  sync: boolean;
}

function isRegion(p: Buffer | FileRegion): p is FileRegion {
  return !Buffer.isBuffer(p);
}

/** A region's bytes, read from its own descriptor as the connection would. */
function readRegion(p: FileRegion): Buffer {
  const out = Buffer.alloc(p.end - p.start + 1);
  let at = 0;
  while (at < out.length) {
    const n = readSync(p.file.fd, out, at, out.length - at, p.start + at);
    if (n === 0) break;
    at += n;
  }
  return out.subarray(0, at);
}

function parseHead(head: string): Map<string, string> {
  assert.ok(head.endsWith('\r\n'), 'head ends in CRLF');
  assert.ok(!head.includes('\r\n\r\n'), 'no blank line: the connection adds it');
  const lines = head.slice(0, -2).split('\r\n');
  assert.match(lines[0]!, /^HTTP\/1\.1 \d{3} [A-Za-z ]+$/);
  const map = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `header line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).toLowerCase();
    assert.ok(!map.has(name), `duplicate header ${name}`);
    map.set(name, line.slice(colon + 1).trim());
  }
  return map;
}

async function call(site: StaticSite, method: string, target: string, headers: [string, string][] = []): Promise<Res> {
  const result = site.handle(request(method, target, headers));
  const sync = !(result instanceof Promise);
  const reply = await result;
  const h = parseHead(reply.head);
  assert.equal(h.get('server'), 'muxd');
  assert.ok(!h.has('date') && !h.has('connection'), 'Date and Connection belong to the connection');
  const body = Buffer.concat(reply.body.map((p) => (isRegion(p) ? readRegion(p) : p)));
  // What the connection does once a reply is sent: let go of its open files.
  releaseBody(reply.body);
  assert.equal(body.length, method === 'HEAD' || reply.status === 304 || reply.status === 204 ? 0 : reply.bodyLength, 'bodyLength matches body');
  if (reply.status !== 304 && reply.status !== 204) assert.equal(h.get('content-length'), String(reply.bodyLength));
  return { reply, status: reply.status, headers: h, body, sync };
}

const get = (site: StaticSite, target: string, headers: [string, string][] = []) => call(site, 'GET', target, headers);

describe('StaticSite', () => {
  let dir = '';
  let root = '';
  let filesDir = '';
  let site: StaticSite;
  const appJs = Buffer.from('export const answer = 42;\n'.repeat(100));
  const big = Buffer.alloc(BIG, 0);
  for (let i = 0; i < BIG; i++) big[i] = (i * 7) & 0xff;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'muxd-static-'));
    root = path.join(dir, 'root');
    filesDir = path.join(dir, 'files');
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), SECRET);
    await mkdir(path.join(root, 'docs'), { recursive: true });
    await mkdir(path.join(root, 'empty-dir'));
    await mkdir(path.join(root, 'evil.example'));
    await mkdir(path.join(root, '.git'));
    await mkdir(path.join(root, '.well-known'));
    await mkdir(path.join(root, '%2e%2e'));
    await writeFile(path.join(root, 'index.html'), '<!doctype html><title>home</title>');
    await writeFile(path.join(root, '404.html'), '<!doctype html><title>lost</title>');
    await writeFile(path.join(root, 'docs', 'index.html'), '<!doctype html><title>docs</title>');
    await writeFile(path.join(root, 'evil.example', 'index.html'), 'evil index');
    await writeFile(path.join(root, 'hello.txt'), 'hello world\n');
    await writeFile(path.join(root, 'app.js'), appJs);
    await writeFile(path.join(root, 'app.js.gz'), gzipSync(appJs));
    await writeFile(path.join(root, 'app.js.br'), brotliCompressSync(appJs));
    await writeFile(path.join(root, 'app.3f9a2c.js'), 'fingerprinted');
    await writeFile(path.join(root, 'data.json'), '{}');
    await writeFile(path.join(root, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    await writeFile(path.join(root, 'pic.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    await writeFile(path.join(root, 'noext'), 'raw');
    await writeFile(path.join(root, '.env'), SECRET);
    await writeFile(path.join(root, '.git', 'config'), SECRET);
    await writeFile(path.join(root, '.well-known', 'security.txt'), 'Contact: mailto:a@b');
    await writeFile(path.join(root, 'a b.txt'), 'space');
    await writeFile(path.join(root, 'x&y.txt'), 'ampersand');
    await writeFile(path.join(root, '日本.txt'), 'cjk');
    await writeFile(path.join(root, '%2e%2e', 'literal.txt'), 'literal name');
    await writeFile(path.join(root, 'big.bin'), big);
    await writeFile(path.join(root, 'mutable.txt'), 'version 1');
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link-out.txt'));
    await symlink(outside, path.join(root, 'linkdir-out'));
    await symlink(path.join(root, 'hello.txt'), path.join(root, 'link-in.txt'));
    await symlink(path.join(root, '.env'), path.join(root, 'innocent.txt'));
    await mkdir(filesDir);
    await writeFile(path.join(filesDir, 'upload one & <two>.txt'), 'uploaded');
    await writeFile(path.join(filesDir, '.upload-123'), 'partial');
    // Two independent uploads whose names happen to look like a file and its gzip sibling.
    await writeFile(path.join(filesDir, 'report.txt'), 'victim report v1');
    await writeFile(path.join(filesDir, 'report.txt.gz'), gzipSync('ATTACKER CONTENT'));
    // A fixed mtime makes Last-Modified predictable.
    const t = new Date('2024-01-02T03:04:05Z');
    await utimes(path.join(root, 'hello.txt'), t, t);
    await writeFile(path.join(filesDir, 'évil "page".html'), '<script>alert(1)</script>');
    await writeFile(path.join(filesDir, 'big-upload.bin'), big);
    site = new StaticSite({ root, mounts: [{ prefix: '/files/', dir: filesDir, download: true }] });
  });

  after(async () => {
    site.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('every descriptor a test opened is closed once its reply was sent (no leak)', async () => {
    await sleep(20); // the loads' own references go in a setImmediate
    assert.equal(openFileCount(), 0);
  });

  describe('methods', () => {
    test('GET serves the file with the full set of headers', async () => {
      const r = await get(site, '/hello.txt');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'hello world\n');
      assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('accept-ranges'), 'bytes');
      assert.equal(r.headers.get('last-modified'), 'Tue, 02 Jan 2024 03:04:05 GMT');
      assert.match(r.headers.get('etag')!, /^"[0-9a-f]+-[0-9a-f]+"$/);
      assert.equal(r.headers.get('cache-control'), 'public, max-age=300');
      assert.equal(r.headers.has('vary'), false, 'no variants, no Vary');
    });
    test('HEAD: same head, no body', async () => {
      const g = await get(site, '/hello.txt');
      const h = await call(site, 'HEAD', '/hello.txt');
      assert.equal(h.status, 200);
      assert.equal(h.reply.body.length, 0);
      assert.equal(h.headers.get('content-length'), '12');
      assert.equal(h.reply.head, g.reply.head);
    });
    for (const target of ['/', '*', '/hello.txt']) {
      test(`OPTIONS ${target} -> 204 with Allow`, async () => {
        const r = await call(site, 'OPTIONS', target);
        assert.equal(r.status, 204);
        assert.equal(r.headers.get('allow'), 'GET, HEAD, OPTIONS');
        assert.equal(r.headers.has('content-length'), false, 'RFC 9110 §8.6: none on 204');
        assert.equal(r.reply.body.length, 0);
      });
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'CONNECT', 'TRACE']) {
      test(`${method} -> 405 with Allow`, async () => {
        const r = await call(site, method, '/hello.txt');
        assert.equal(r.status, 405);
        assert.equal(r.headers.get('allow'), 'GET, HEAD, OPTIONS');
        assert.ok(r.body.length > 0);
      });
    }
    for (const method of ['BREW', 'get', 'PROPFIND']) {
      test(`unknown method ${method} -> 501`, async () => {
        const r = await call(site, method, '/hello.txt');
        assert.equal(r.status, 501);
        assert.ok(r.body.length > 0);
      });
    }
    test('GET * -> 400', async () => assert.equal((await get(site, '*')).status, 400));
  });

  describe('traversal vectors never leave the root', () => {
    const vectors: [string, string][] = [
      ['../', '/../outside/secret.txt'],
      ['nested ../', '/docs/../../outside/secret.txt'],
      ['%2e%2e', '/%2e%2e/outside/secret.txt'],
      ['%2E%2E upper', '/%2E%2E/outside/secret.txt'],
      ['.%2e', '/.%2e/outside/secret.txt'],
      ['%2f', '/..%2foutside%2fsecret.txt'],
      ['%5c', '/..%5coutside%5csecret.txt'],
      ['backslash', '/..\\outside\\secret.txt'],
      ['NUL', '/hello.txt%00.png'],
      ['raw NUL', '/hello.txt\u0000'],
      ['double encoding', '/%252e%252e/outside/secret.txt'],
      ['overlong UTF-8', '/%c0%ae%c0%ae/outside/secret.txt'],
      ['absolute-form with ..', 'http://t/../outside/secret.txt'],
      ['absolute-form with %2e%2e', 'http://t/%2e%2e/outside/secret.txt'],
      ['symlink to a file out of root', '/link-out.txt'],
      ['symlink to a directory out of root', '/linkdir-out/secret.txt'],
      ['symlink to a dotfile inside root', '/innocent.txt'],
      ['mount ../', '/files/../../outside/secret.txt'],
      ['mount %2e%2e', '/files/%2e%2e/outside/secret.txt'],
    ];
    for (const [name, target] of vectors) {
      test(name, async () => {
        const r = await get(site, target);
        assert.ok(r.status === 400 || r.status === 404, `status ${r.status}`);
        assert.ok(!r.body.toString('latin1').includes(SECRET));
        assert.ok(r.body.length > 0, 'errors have a body');
      });
    }
    test('double encoding is a literal name, found as such', async () => {
      const r = await get(site, '/%252e%252e/literal.txt');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'literal name');
    });
    test('a symlink that stays inside the root is served', async () => {
      assert.equal((await get(site, '/link-in.txt')).body.toString(), 'hello world\n');
    });
  });

  describe('dotfiles', () => {
    for (const target of ['/.env', '/.git/config', '/.git/', '/files/.upload-123', '/.well-known/../.env']) {
      test(`${target} hidden`, async () => {
        const r = await get(site, target);
        assert.ok(r.status === 404 || r.status === 400);
        assert.ok(!r.body.toString().includes(SECRET) && !r.body.toString().includes('partial'));
      });
    }
    test('/.well-known/ reachable', async () => {
      const r = await get(site, '/.well-known/security.txt');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'Contact: mailto:a@b');
    });
  });

  describe('directories and redirects', () => {
    test('/ serves index.html as HTML', async () => {
      const r = await get(site, '/');
      assert.equal(r.status, 200);
      assert.match(r.body.toString(), /home/);
      assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(r.headers.get('cache-control'), 'no-cache');
    });
    test('directory without slash -> 301 to the slash form, query kept', async () => {
      const r = await get(site, '/docs?x=1&y=2');
      assert.equal(r.status, 301);
      assert.equal(r.headers.get('location'), '/docs/?x=1&y=2');
      assert.ok(r.body.length > 0);
      assert.match((await get(site, '/docs/')).body.toString(), /docs/);
    });
    test('open redirect: //evil.example/%2e%2e', async () => {
      const r = await get(site, '//evil.example/%2e%2e');
      assert.equal(r.status, 400);
      assert.equal(r.headers.has('location'), false);
    });
    test('open redirect: //evil.example (a real directory) redirects to a path, never //host', async () => {
      for (const target of ['//evil.example', '///evil.example', '/\\evil.example', 'http://t//evil.example']) {
        const r = await get(site, target);
        const loc = r.headers.get('location');
        if (loc !== undefined) {
          assert.equal(loc, '/evil.example/');
          assert.ok(!loc.startsWith('//') && !loc.includes('\\'));
        } else {
          assert.ok(r.status === 400 || r.status === 404, `${target}: ${r.status}`);
        }
      }
    });
    test('redirect re-encodes names and query', async () => {
      await mkdir(path.join(root, 'a dir & 日'));
      const r = await get(site, '/a%20dir%20%26%20%E6%97%A5?q="x"');
      assert.equal(r.status, 301);
      assert.equal(r.headers.get('location'), '/a%20dir%20%26%20%E6%97%A5/?q=%22x%22');
    });
    test('directory without index -> 404', async () => assert.equal((await get(site, '/empty-dir/')).status, 404));
    test('file with a trailing slash -> 404', async () => assert.equal((await get(site, '/hello.txt/')).status, 404));
    test('absolute-form target', async () => {
      const r = await get(site, 'http://example.com/hello.txt?x');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'hello world\n');
    });
  });

  describe('content types', () => {
    const table: [string, string][] = [
      ['/index.html', 'text/html; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/data.json', 'application/json; charset=utf-8'],
      ['/logo.svg', 'image/svg+xml; charset=utf-8'],
      ['/pic.png', 'image/png'],
      ['/noext', 'application/octet-stream'],
    ];
    for (const [target, type] of table) {
      test(target, async () => {
        const r = await get(site, target);
        assert.equal(r.headers.get('content-type'), type);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      });
    }
  });

  describe('UTF-8 names', () => {
    const table: [string, string][] = [
      ['/a%20b.txt', 'space'],
      ['/x%26y.txt', 'ampersand'],
      ['/%E6%97%A5%E6%9C%AC.txt', 'cjk'],
      ['/' + Buffer.from('日本.txt').toString('latin1'), 'cjk'],
    ];
    for (const [target, body] of table) {
      test(target, async () => {
        const r = await get(site, target);
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), body);
      });
    }
    test('invalid UTF-8 -> 400', async () => assert.equal((await get(site, '/%E6%97.txt')).status, 400));
  });

  describe('validators and conditional requests', () => {
    test('If-None-Match: exact, list, weak, * -> 304 without a body', async () => {
      const first = await get(site, '/hello.txt');
      const tag = first.headers.get('etag')!;
      for (const inm of [tag, `"nope", ${tag}`, `W/${tag}`, '*']) {
        const r = await get(site, '/hello.txt', [['If-None-Match', inm]]);
        assert.equal(r.status, 304, inm);
        assert.equal(r.reply.body.length, 0);
        assert.equal(r.headers.has('content-length'), false);
        assert.equal(r.headers.get('etag'), tag);
        assert.equal(r.headers.get('cache-control'), 'public, max-age=300');
        assert.equal(r.headers.get('last-modified'), first.headers.get('last-modified'));
      }
      assert.equal((await get(site, '/hello.txt', [['If-None-Match', '"other"']])).status, 200);
    });
    test('If-Modified-Since, and ignored when If-None-Match is present', async () => {
      const lm = 'Tue, 02 Jan 2024 03:04:05 GMT';
      assert.equal((await get(site, '/hello.txt', [['If-Modified-Since', lm]])).status, 304);
      assert.equal((await get(site, '/hello.txt', [['If-Modified-Since', 'Tue, 02 Jan 2024 03:04:04 GMT']])).status, 200);
      assert.equal((await get(site, '/hello.txt', [['If-None-Match', '"x"'], ['If-Modified-Since', lm]])).status, 200);
    });
    test('HEAD conditional -> 304', async () => {
      const tag = (await get(site, '/hello.txt')).headers.get('etag')!;
      assert.equal((await call(site, 'HEAD', '/hello.txt', [['If-None-Match', tag]])).status, 304);
    });
    test('If-Match and If-Unmodified-Since -> 412', async () => {
      const tag = (await get(site, '/hello.txt')).headers.get('etag')!;
      const fail = await get(site, '/hello.txt', [['If-Match', '"other"']]);
      assert.equal(fail.status, 412);
      assert.ok(fail.body.length > 0);
      assert.equal((await get(site, '/hello.txt', [['If-Match', tag]])).status, 200);
      assert.equal((await get(site, '/hello.txt', [['If-Match', `W/${tag}`]])).status, 412);
      assert.equal((await get(site, '/hello.txt', [['If-Unmodified-Since', 'Mon, 01 Jan 2024 00:00:00 GMT']])).status, 412);
      assert.equal((await get(site, '/hello.txt', [['If-Unmodified-Since', 'Tue, 02 Jan 2024 03:04:05 GMT']])).status, 200);
    });
  });

  describe('ranges', () => {
    const text = 'hello world\n';
    test('single', async () => {
      const r = await get(site, '/hello.txt', [['Range', 'bytes=0-4']]);
      assert.equal(r.status, 206);
      assert.equal(r.body.toString(), 'hello');
      assert.equal(r.headers.get('content-range'), `bytes 0-4/${text.length}`);
      assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    });
    test('suffix', async () => {
      const r = await get(site, '/hello.txt', [['Range', 'bytes=-6']]);
      assert.equal(r.body.toString(), 'world\n');
      assert.equal(r.headers.get('content-range'), `bytes 6-11/12`);
    });
    test('open-ended', async () => {
      const r = await get(site, '/hello.txt', [['Range', 'bytes=6-']]);
      assert.equal(r.status, 206);
      assert.equal(r.body.toString(), 'world\n');
    });
    test('multi-range -> multipart/byteranges', async () => {
      const r = await get(site, '/hello.txt', [['Range', 'bytes=0-1, 6-7']]);
      assert.equal(r.status, 206);
      const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(r.headers.get('content-type')!);
      assert.ok(m, r.headers.get('content-type'));
      const boundary = m[1]!;
      assert.equal(r.headers.has('content-range'), false);
      const expected =
        `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/12\r\n\r\nhe` +
        `\r\n--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 6-7/12\r\n\r\nwo` +
        `\r\n--${boundary}--\r\n`;
      assert.equal(r.body.toString(), expected);
    });
    test('several ranges of a compressed variant: the whole variant (200), never a "gzip" multipart', async () => {
      const r = await get(site, '/app.js', [['Range', 'bytes=0-1, 4-5'], ['Accept-Encoding', 'gzip']]);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-encoding'), 'gzip');
      assert.equal(gunzipSync(r.body).toString(), appJs.toString());
      const one = await get(site, '/app.js', [['Range', 'bytes=0-1'], ['Accept-Encoding', 'gzip']]);
      assert.equal(one.status, 206, 'a single range of the gzip bytes is fine');
      const plain = await get(site, '/app.js', [['Range', 'bytes=0-1, 4-5'], ['Accept-Encoding', 'identity']]);
      assert.equal(plain.status, 206);
      assert.match(plain.headers.get('content-type')!, /^multipart\/byteranges/);
      assert.equal(plain.headers.has('content-encoding'), false);
    });
    test('overlapping ranges are coalesced', async () => {
      const r = await get(site, '/hello.txt', [['Range', 'bytes=0-3,2-5,4-6']]);
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), 'bytes 0-6/12');
      assert.equal(r.body.toString(), 'hello w');
    });
    test('more than 16 ranges -> whole 200', async () => {
      const many = 'bytes=' + Array.from({ length: 17 }, (_, i) => `${i % 12}-${i % 12}`).join(',');
      assert.equal((await get(site, '/hello.txt', [['Range', many]])).status, 200);
    });
    test('If-Range with the strong ETag or exact date applies the range; otherwise 200', async () => {
      const first = await get(site, '/hello.txt');
      const tag = first.headers.get('etag')!;
      const lm = first.headers.get('last-modified')!;
      assert.equal((await get(site, '/hello.txt', [['Range', 'bytes=0-0'], ['If-Range', tag]])).status, 206);
      assert.equal((await get(site, '/hello.txt', [['Range', 'bytes=0-0'], ['If-Range', lm]])).status, 206);
      assert.equal((await get(site, '/hello.txt', [['Range', 'bytes=0-0'], ['If-Range', '"old"']])).status, 200);
      assert.equal((await get(site, '/hello.txt', [['Range', 'bytes=0-0'], ['If-Range', `W/${tag}`]])).status, 200);
      assert.equal((await get(site, '/hello.txt', [['Range', 'bytes=0-0'], ['If-Range', 'Mon, 01 Jan 2024 00:00:00 GMT']])).status, 200);
    });
    test('unsatisfiable -> 416 with bytes */size', async () => {
      const r = await get(site, '/hello.txt', [['Range', 'bytes=100-200']]);
      assert.equal(r.status, 416);
      assert.equal(r.headers.get('content-range'), 'bytes */12');
      assert.ok(r.body.length > 0);
    });
    for (const field of ['items=0-1', 'bytes=abc', 'bytes=5-2', 'bytes']) {
      test(`ignored: ${field}`, async () => {
        const r = await get(site, '/hello.txt', [['Range', field]]);
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), text);
      });
    }
    test('HEAD ignores Range', async () => assert.equal((await call(site, 'HEAD', '/hello.txt', [['Range', 'bytes=0-1']])).status, 200));
    test('range of a large file is a FileRegion', async () => {
      const r = await get(site, '/big.bin', [['Range', 'bytes=1000-1999']]);
      assert.equal(r.status, 206);
      const part = r.reply.body[0]!;
      assert.ok(isRegion(part));
      assert.equal(part.start, 1000);
      assert.equal(part.end, 1999);
      assert.deepEqual(r.body, big.subarray(1000, 2000));
    });
  });

  test('multi-range of a large file: FileRegions between part heads', async () => {
    const r = await get(site, '/big.bin', [['Range', 'bytes=0-9,-10']]);
    assert.equal(r.status, 206);
    const regions = r.reply.body.filter(isRegion);
    assert.deepEqual(regions.map((p) => [p.start, p.end]), [[0, 9], [BIG - 10, BIG - 1]]);
    assert.ok(r.body.includes(big.subarray(BIG - 10)));
    assert.match(r.body.toString('latin1'), new RegExp(`Content-Type: application/octet-stream\r\nContent-Range: bytes ${BIG - 10}-${BIG - 1}/${BIG}`));
  });

  describe('precompressed siblings', () => {
    test('br preferred on ties, with Content-Encoding and the original type', async () => {
      const r = await get(site, '/app.js', [['Accept-Encoding', 'gzip, deflate, br']]);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-encoding'), 'br');
      assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
      assert.equal(r.headers.get('vary'), 'Accept-Encoding');
      assert.deepEqual(r.body, readFileSync(path.join(root, 'app.js.br')));
    });
    test('gzip by q-value, br excluded by q=0', async () => {
      for (const ae of ['br;q=0.5, gzip', 'gzip, br;q=0']) {
        const r = await get(site, '/app.js', [['Accept-Encoding', ae]]);
        assert.equal(r.headers.get('content-encoding'), 'gzip', ae);
        assert.deepEqual(r.body, readFileSync(path.join(root, 'app.js.gz')));
      }
    });
    test('identity still says Vary', async () => {
      for (const headers of [[], [['Accept-Encoding', 'identity']]] as [string, string][][]) {
        const r = await get(site, '/app.js', headers);
        assert.equal(r.headers.has('content-encoding'), false);
        assert.equal(r.headers.get('vary'), 'Accept-Encoding');
        assert.deepEqual(r.body, appJs);
      }
    });
    test('ETags differ per representation; 304, HEAD and 206 carry Vary', async () => {
      const br = await get(site, '/app.js', [['Accept-Encoding', 'br']]);
      const gz = await get(site, '/app.js', [['Accept-Encoding', 'gzip']]);
      const id = await get(site, '/app.js');
      const tags = new Set([br, gz, id].map((r) => r.headers.get('etag')));
      assert.equal(tags.size, 3);
      const notModified = await get(site, '/app.js', [['Accept-Encoding', 'br'], ['If-None-Match', br.headers.get('etag')!]]);
      assert.equal(notModified.status, 304);
      assert.equal(notModified.headers.get('vary'), 'Accept-Encoding');
      // The identity tag does not validate the br representation.
      assert.equal((await get(site, '/app.js', [['Accept-Encoding', 'br'], ['If-None-Match', id.headers.get('etag')!]])).status, 200);
      const head = await call(site, 'HEAD', '/app.js', [['Accept-Encoding', 'br']]);
      assert.equal(head.headers.get('vary'), 'Accept-Encoding');
      assert.equal(head.headers.get('content-encoding'), 'br');
      const partial = await get(site, '/app.js', [['Accept-Encoding', 'br'], ['Range', 'bytes=0-9']]);
      assert.equal(partial.status, 206);
      assert.equal(partial.headers.get('vary'), 'Accept-Encoding');
      assert.equal(partial.headers.get('content-range'), `bytes 0-9/${br.body.length}`, 'ranges apply to the chosen representation');
      assert.deepEqual(partial.body, br.body.subarray(0, 10));
    });
  });

  describe('Cache-Control classes', () => {
    const table: [string, string][] = [
      ['/', 'no-cache'],
      ['/docs/', 'no-cache'],
      ['/app.3f9a2c.js', 'public, max-age=31536000, immutable'],
      ['/app.js', 'public, max-age=300'],
    ];
    for (const [target, cc] of table) test(target, async () => assert.equal((await get(site, target)).headers.get('cache-control'), cc));
    test('overridable', async () => {
      const custom = new StaticSite({ root, cacheControl: { html: 'no-store', other: 'max-age=5' } });
      try {
        assert.equal((await get(custom, '/')).headers.get('cache-control'), 'no-store');
        assert.equal((await get(custom, '/hello.txt')).headers.get('cache-control'), 'max-age=5');
        assert.equal((await get(custom, '/app.3f9a2c.js')).headers.get('cache-control'), 'public, max-age=31536000, immutable');
      } finally {
        custom.close();
      }
    });
  });

  describe('memory cache', () => {
    test('second request is a synchronous cache hit', async () => {
      const fresh = new StaticSite({ root });
      try {
        const first = await call(fresh, 'GET', '/data.json');
        assert.equal(first.sync, false);
        const second = await call(fresh, 'GET', '/data.json?ignored=query');
        assert.equal(second.sync, true);
        assert.equal(second.body.toString(), '{}');
        const cond = await call(fresh, 'GET', '/data.json', [['If-None-Match', first.headers.get('etag')!]]);
        assert.equal(cond.sync, true);
        assert.equal(cond.status, 304);
        assert.equal(fresh.cacheStats().entries, 1);
      } finally {
        fresh.close();
      }
    });
    test('a rewritten file is served fresh within ~2 s', async () => {
      const file = path.join(root, 'mutable.txt');
      assert.equal((await get(site, '/mutable.txt')).body.toString(), 'version 1');
      assert.equal((await get(site, '/mutable.txt')).sync, true);
      await writeFile(file, 'version 2, longer');
      let body = '';
      for (let i = 0; i < 100 && body !== 'version 2, longer'; i++) {
        await sleep(20);
        body = (await get(site, '/mutable.txt')).body.toString();
      }
      assert.equal(body, 'version 2, longer');
    });
    test('a re-pointed symlink (atomic deploy) is served fresh within ~2 s, file or directory', async () => {
      await mkdir(path.join(root, 'release-1'));
      await mkdir(path.join(root, 'release-2'));
      await writeFile(path.join(root, 'release-1', 'page.txt'), 'release 1');
      await writeFile(path.join(root, 'release-2', 'page.txt'), 'release 2');
      await symlink('release-1', path.join(root, 'current'));
      await symlink('release-1/page.txt', path.join(root, 'current-page.txt'));
      for (const target of ['/current/page.txt', '/current-page.txt']) {
        assert.equal((await get(site, target)).body.toString(), 'release 1');
        assert.equal((await get(site, target)).sync, true, 'cached');
      }
      // ln -sfn: a new link renamed over the old one; neither file changes.
      await symlink('release-2', path.join(root, 'current.new'));
      await rename(path.join(root, 'current.new'), path.join(root, 'current'));
      await symlink('release-2/page.txt', path.join(root, 'current-page.new'));
      await rename(path.join(root, 'current-page.new'), path.join(root, 'current-page.txt'));
      for (const target of ['/current/page.txt', '/current-page.txt']) {
        let body = '';
        for (let i = 0; i < 150 && body !== 'release 2'; i++) {
          await sleep(20);
          body = (await get(site, target)).body.toString();
        }
        assert.equal(body, 'release 2', target);
      }
    });
    test('large files are FileRegions, not cached', async () => {
      const r = await get(site, '/big.bin');
      assert.equal(r.status, 200);
      assert.equal(r.reply.body.length, 1);
      const part = r.reply.body[0]!;
      assert.ok(isRegion(part));
      assert.equal(part.start, 0);
      assert.equal(part.end, BIG - 1);
      assert.equal(r.headers.get('content-length'), String(BIG));
      assert.equal((await get(site, '/big.bin')).sync, false);
    });
    test('concurrent misses share one load and one entry', async () => {
      const fresh = new StaticSite({ root });
      try {
        const replies = await Promise.all(Array.from({ length: 5 }, () => call(fresh, 'GET', '/hello.txt')));
        for (const r of replies) assert.equal(r.body.toString(), 'hello world\n');
        assert.equal(fresh.cacheStats().entries, 1);
        assert.equal(fresh.cacheStats().bytes, 12);
      } finally {
        fresh.close();
      }
    });
    test('entry count is bounded', async () => {
      const small = new StaticSite({ root, cacheMaxEntries: 2 });
      try {
        for (const t of ['/hello.txt', '/data.json', '/noext', '/logo.svg']) await get(small, t);
        assert.equal(small.cacheStats().entries, 2);
      } finally {
        small.close();
      }
    });
  });

  describe('not found', () => {
    test('404.html served with status 404', async () => {
      const r = await get(site, '/no/such/file');
      assert.equal(r.status, 404);
      assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.match(r.body.toString(), /lost/);
      const h = await call(site, 'HEAD', '/missing');
      assert.equal(h.status, 404);
      assert.equal(h.reply.body.length, 0);
    });
    test('without 404.html: a short text error', async () => {
      const bare = new StaticSite({ root: path.join(root, 'docs') });
      try {
        const r = await get(bare, '/missing');
        assert.equal(r.status, 404);
        assert.equal(r.body.toString(), '404 Not Found\n');
      } finally {
        bare.close();
      }
    });
  });

  describe('/files/ mount', () => {
    test('serves uploads', async () => {
      const r = await get(site, '/files/upload%20one%20%26%20%3Ctwo%3E.txt');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'uploaded');
    });
    test('an upload named NAME.gz is never served as NAME: mounts have no precompressed siblings', async () => {
      const r = await get(site, '/files/report.txt', [['accept-encoding', 'gzip, br']]);
      assert.equal(r.status, 200);
      assert.equal(r.headers.has('content-encoding'), false);
      assert.equal(r.headers.has('vary'), false);
      assert.equal(r.body.toString(), 'victim report v1');
      const gz = await get(site, '/files/report.txt.gz', [['accept-encoding', 'gzip']]);
      assert.equal(gunzipSync(gz.body).toString(), 'ATTACKER CONTENT', 'the .gz upload itself is still served as is');
    });
    test('/files -> 301 /files/', async () => {
      const r = await get(site, '/files');
      assert.equal(r.status, 301);
      assert.equal(r.headers.get('location'), '/files/');
    });
    // Upload safety (issue 8): an uploaded page never runs on the site's origin.
    const target = '/files/%C3%A9vil%20%22page%22.html';
    test('a download mount: attachment with both filename forms, CSP sandbox, nosniff', async () => {
      const r = await get(site, target);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-disposition'), `attachment; filename="_vil _page_.html"; filename*=UTF-8''%C3%A9vil%20%22page%22.html`);
      assert.equal(r.headers.get('content-security-policy'), 'sandbox');
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    });
    test('every answer about an upload carries them: HEAD, 304, 206, 416, 412, streamed', async () => {
      const etag = (await get(site, target)).headers.get('etag')!;
      const answers = [
        await call(site, 'HEAD', target),
        await get(site, target, [['if-none-match', etag]]),
        await get(site, target, [['range', 'bytes=0-3']]),
        await get(site, target, [['range', 'bytes=9999-']]),
        await get(site, target, [['if-match', '"other"']]),
        await get(site, '/files/big-upload.bin', [['range', 'bytes=0-9']]),
      ];
      assert.deepEqual(answers.map((a) => a.status), [200, 304, 206, 416, 412, 206]);
      for (const a of answers) {
        assert.match(a.headers.get('content-disposition') ?? '', /^attachment; /, `${a.status}`);
        assert.equal(a.headers.get('content-security-policy'), 'sandbox', `${a.status}`);
      }
    });
    test('the site root carries none of them', async () => {
      const r = await get(site, '/hello.txt');
      assert.equal(r.headers.has('content-disposition'), false);
      assert.equal(r.headers.has('content-security-policy'), false);
    });
    test('/files/ lists files, escaped and linked, without dotfiles', async () => {
      const r = await get(site, '/files/');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
      // The listing renders (it is ours) but sandboxed, and is no download.
      assert.equal(r.headers.get('content-security-policy'), 'sandbox');
      assert.equal(r.headers.has('content-disposition'), false);
      const html = r.body.toString();
      assert.ok(html.includes('<a href="upload%20one%20%26%20%3Ctwo%3E.txt">upload one &amp; &lt;two&gt;.txt</a>'), html);
      assert.ok(!html.includes('.upload-123'));
    });
  });
});
