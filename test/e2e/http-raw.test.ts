// The HTTP face as an attacker and a benchmarker see it: raw bytes on a socket against the
// real `muxd serve` command. Every status code the server can answer, traversal vectors,
// open-redirect attempts, a request dribbled one byte at a time, and pipelining behind a
// large streamed file. The handler's finer rules are unit-tested in test/http/static*.test.ts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, mkdir, writeFile, symlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';
const BIG_SIZE = 2 * 1024 * 1024 + 3;

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** Splits a byte stream into HTTP/1.1 responses (Content-Length framed, as muxd always sends). */
function parseResponses(data: Buffer, headOnly = false): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) break;
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = headOnly || status === 304 || status === 204 ? 0 : Number(headers.get('content-length') ?? 0);
    out.push({ status, headers, body: data.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

/** Writes `parts` (with an optional pause between them) and reads until the server closes. */
function raw(port: number, parts: (string | Buffer)[], gapMs = 0): Promise<{ data: Buffer; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), closedByServer: false });
    }, 8000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closedByServer: true });
    });
    socket.on('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        if (gapMs > 0) await sleep(gapMs);
      }
    });
  });
}

async function one(port: number, request: string): Promise<RawResponse> {
  const { data } = await raw(port, [request]);
  const [res] = parseResponses(data);
  assert.ok(res, `no response to ${JSON.stringify(request)}: ${JSON.stringify(data.toString('latin1'))}`);
  return res;
}

const get = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: t\r\n${extra}Connection: close\r\n\r\n`;

describe('HTTP on the wire (muxd serve, raw sockets)', () => {
  let base = '';
  let root = '';
  let files = '';
  let muxd: MuxdProcess;

  before(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'muxd-raw-'));
    root = path.join(base, 'site');
    files = path.join(base, 'files');
    await mkdir(path.join(root, 'sub'), { recursive: true });
    await mkdir(path.join(root, '.well-known'), { recursive: true });
    await mkdir(files, { recursive: true });
    await writeFile(path.join(base, 'secret.txt'), SECRET);
    await writeFile(path.join(root, 'index.html'), '<!doctype html><title>t</title><p>home</p>');
    await writeFile(path.join(root, '404.html'), '<!doctype html><title>missing</title><a href="/">home</a>');
    await writeFile(path.join(root, 'sub', 'index.html'), '<p>sub</p>');
    await writeFile(path.join(root, 'a b&c.txt'), 'spaces and ampersand');
    await writeFile(path.join(root, '张三.txt'), 'cjk name');
    await writeFile(path.join(root, '.env'), 'hidden');
    await writeFile(path.join(root, '.well-known', 'security.txt'), 'Contact: mailto:x@example.com');
    await writeFile(path.join(root, 'small.txt'), 'small file');
    await writeFile(path.join(files, 'uploaded.bin'), 'from the file store');
    const big = Buffer.alloc(BIG_SIZE);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 256;
    await writeFile(path.join(root, 'big.bin'), big);
    await symlink(path.join(base, 'secret.txt'), path.join(root, 'link-out.txt'));
    await symlink(base, path.join(root, 'dir-out'));
    muxd = await startMuxd([
      '--root', root, '--files-dir', files,
      '--max-request-line', '1KiB', '--max-head', '4KiB', '--max-headers', '20', '--max-body', '1KiB',
      '--head-timeout', '1s',
    ]);
  });

  after(async () => {
    await muxd?.stop();
    await rm(base, { recursive: true, force: true });
  });

  test('serves files with UTF-8, space and ampersand names, and /files/ from the file store', async () => {
    assert.equal((await one(muxd.httpPort, get('/small.txt'))).body.toString(), 'small file');
    assert.equal((await one(muxd.httpPort, get('/a%20b%26c.txt'))).body.toString(), 'spaces and ampersand');
    assert.equal((await one(muxd.httpPort, get('/%E5%BC%A0%E4%B8%89.txt'))).body.toString(), 'cjk name');
    assert.equal((await one(muxd.httpPort, get('/small.txt?v=1&w=%20'))).status, 200, 'query ignored for lookup');
    assert.equal((await one(muxd.httpPort, get('/files/uploaded.bin'))).body.toString(), 'from the file store');
  });

  test('traversal vectors never reach a file outside the root', async () => {
    const vectors = [
      '/../secret.txt', '/../../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E/secret.txt', '/.%2e/secret.txt',
      '/..%2fsecret.txt', '/%2e%2e%2fsecret.txt', '/..%5csecret.txt', '/..\\secret.txt', '/%252e%252e/secret.txt',
      '/sub/../../secret.txt', '/sub/%2e%2e/%2e%2e/secret.txt', '/link-out.txt', '/dir-out/secret.txt',
      '/small.txt%00.html', '/%c0%ae%c0%ae/secret.txt', '/files/../secret.txt', '/files/%2e%2e/secret.txt',
      '//secret.txt', '/./../secret.txt',
    ];
    for (const target of vectors) {
      const res = await one(muxd.httpPort, get(target));
      assert.ok([400, 403, 404].includes(res.status), `${target} answered ${res.status}`);
      assert.ok(!res.body.toString('latin1').includes(SECRET), `${target} leaked the secret`);
    }
  });

  test('dotfiles are hidden, /.well-known/ is not', async () => {
    assert.equal((await one(muxd.httpPort, get('/.env'))).status, 404);
    assert.equal((await one(muxd.httpPort, get('/%2eenv'))).status, 404);
    assert.equal((await one(muxd.httpPort, get('/.well-known/security.txt'))).status, 200);
  });

  test('a directory without its slash redirects to the slash form, never off-site', async () => {
    const res = await one(muxd.httpPort, get('/sub'));
    assert.equal(res.status, 301);
    assert.equal(res.headers.get('location'), '/sub/');
    assert.equal((await one(muxd.httpPort, get('/sub/'))).body.toString(), '<p>sub</p>');
    for (const target of ['//evil.example/%2e%2e', '//evil.example/sub', '/\\evil.example/sub', '/%2fevil.example/sub', '//evil.example']) {
      const r = await one(muxd.httpPort, get(target));
      const location = r.headers.get('location');
      if (location !== undefined) {
        assert.ok(location.startsWith('/') && !location.startsWith('//') && !location.startsWith('/\\'), `${target} -> Location ${location}`);
      }
    }
  });

  test('every status code, each with a short body, Content-Length and the right Connection', async () => {
    const port = muxd.httpPort;
    const cases: { name: string; request: string; status: number; closes?: boolean; check?: (r: RawResponse) => void }[] = [
      { name: 'ok', request: get('/small.txt'), status: 200 },
      { name: 'partial', request: get('/small.txt', 'Range: bytes=0-4\r\n'), status: 206, check: (r) => assert.equal(r.body.toString(), 'small') },
      { name: 'options', request: 'OPTIONS / HTTP/1.1\r\nHost: t\r\n\r\n', status: 204, check: (r) => assert.match(r.headers.get('allow') ?? '', /GET/) },
      { name: 'moved', request: get('/sub'), status: 301 },
      { name: 'missing', request: get('/nope.html'), status: 404, check: (r) => assert.match(r.body.toString(), /href="\/"/) },
      { name: 'known method not allowed', request: 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n', status: 405, check: (r) => assert.match(r.headers.get('allow') ?? '', /GET, HEAD/) },
      { name: 'unknown method', request: 'BREW / HTTP/1.1\r\nHost: t\r\n\r\n', status: 501 },
      { name: 'range not satisfiable', request: get('/small.txt', 'Range: bytes=999-\r\n'), status: 416, check: (r) => assert.equal(r.headers.get('content-range'), 'bytes */10') },
      { name: 'missing host', request: 'GET / HTTP/1.1\r\n\r\n', status: 400, closes: true },
      { name: 'two hosts', request: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', status: 400, closes: true },
      { name: 'space before colon', request: 'GET / HTTP/1.1\r\nHost : t\r\n\r\n', status: 400, closes: true },
      { name: 'obs-fold', request: 'GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n', status: 400, closes: true },
      { name: 'NUL in value', request: 'GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n', status: 400, closes: true },
      { name: 'CL and TE', request: 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, closes: true },
      { name: 'conflicting CL', request: 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', status: 400, closes: true },
      { name: 'CL list, even identical', request: 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc', status: 400, closes: true },
      { name: 'CL twice, even identical', request: 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', status: 400, closes: true },
      { name: 'non-digit CL', request: 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc', status: 400, closes: true },
      { name: 'unknown TE', request: 'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n', status: 501, closes: true },
      { name: 'body too large', request: 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n', status: 413, closes: true },
      { name: 'request line too long', request: `GET /${'a'.repeat(2000)} HTTP/1.1\r\nHost: t\r\n\r\n`, status: 414, closes: true },
      { name: 'head too large', request: `GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`, status: 431, closes: true },
      { name: 'too many fields', request: `GET / HTTP/1.1\r\nHost: t\r\n${'X-A: 1\r\n'.repeat(30)}\r\n`, status: 431, closes: true },
      { name: 'unsupported version', request: 'GET / HTTP/2.0\r\nHost: t\r\n\r\n', status: 505, closes: true },
      { name: 'garbage', request: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', status: 400, closes: true },
    ];
    for (const c of cases) {
      const { data, closedByServer } = await raw(port, [c.request]);
      const [res] = parseResponses(data, false);
      assert.ok(res, `${c.name}: no response`);
      assert.equal(res.status, c.status, `${c.name}: ${data.toString('latin1').slice(0, 200)}`);
      assert.ok(res.headers.has('date') && res.headers.get('server')?.startsWith('muxd'), `${c.name}: Date and Server`);
      if (c.status !== 204 && c.status !== 304) assert.ok(res.headers.has('content-length'), `${c.name}: Content-Length`);
      if (c.status >= 400) assert.ok(res.body.length > 0, `${c.name}: short body`);
      if (c.closes) {
        assert.equal(res.headers.get('connection'), 'close', `${c.name}: says Connection: close`);
        assert.ok(closedByServer, `${c.name}: closed`);
      }
      c.check?.(res);
    }
  });

  test('304 on revalidation, with no body', async () => {
    const first = await one(muxd.httpPort, get('/small.txt'));
    const etag = first.headers.get('etag');
    assert.ok(etag);
    const { data } = await raw(muxd.httpPort, [get('/small.txt', `If-None-Match: ${etag}\r\n`)]);
    const [res] = parseResponses(data);
    assert.equal(res?.status, 304);
    assert.ok(data.toString('latin1').endsWith('\r\n\r\n'), 'nothing after the head');
  });

  test('slowloris: a head that never finishes gets 408 and the socket closes', async () => {
    const { data, closedByServer } = await raw(muxd.httpPort, ['GET / HTTP/1.1\r\n', 'Host: t\r\n'], 300);
    assert.ok(closedByServer);
    assert.equal(parseResponses(data)[0]?.status, 408);
  });

  test('a request dribbled one byte at a time is answered normally', async () => {
    const request = get('/small.txt');
    const parts = [...Buffer.from(request)].map((b) => Buffer.from([b]));
    const { data } = await raw(muxd.httpPort, parts, 2);
    const [res] = parseResponses(data);
    assert.equal(res?.status, 200);
    assert.equal(res?.body.toString(), 'small file');
  });

  test('pipelined answers stay in order behind a large streamed file, byte for byte', async () => {
    const pipeline = 'GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n' + 'GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n' + 'HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n' + get('/sub/');
    const { data } = await raw(muxd.httpPort, [pipeline]);
    const first = parseResponses(data.subarray(0, data.indexOf('\r\n\r\n') + 4 + BIG_SIZE));
    assert.equal(first[0]?.status, 200);
    const big = first[0]!.body;
    assert.equal(big.length, BIG_SIZE);
    for (let i = 0; i < big.length; i += 4099) assert.equal(big[i], (i * 7) % 256, `byte ${i}`);
    const rest = data.subarray(data.indexOf('\r\n\r\n') + 4 + BIG_SIZE);
    const small = parseResponses(rest.subarray(0, rest.indexOf('\r\n\r\n') + 4 + 10));
    assert.equal(small[0]?.body.toString(), 'small file');
    const afterSmall = rest.subarray(rest.indexOf('\r\n\r\n') + 4 + 10);
    const headEnd = afterSmall.indexOf('\r\n\r\n') + 4;
    const head = parseResponses(afterSmall.subarray(0, headEnd), true)[0];
    assert.equal(head?.status, 200);
    assert.equal(head?.headers.get('content-length'), String(BIG_SIZE));
    const last = parseResponses(afterSmall.subarray(headEnd))[0];
    assert.equal(last?.body.toString(), '<p>sub</p>');
  });

  test('a body sent with a request is consumed, never read as the next request', async () => {
    const smuggled = 'GET /.env HTTP/1.1\r\nHost: t\r\n\r\n';
    const request = `POST /small.txt HTTP/1.1\r\nHost: t\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}` + get('/small.txt');
    const { data } = await raw(muxd.httpPort, [request]);
    const responses = parseResponses(data);
    assert.deepEqual(responses.map((r) => r.status), [405, 200]);
  });

  test('past --max-connections a new client gets 503 and the others keep working', async () => {
    const capped = await startMuxd(['--root', root, '--files-dir', files, '--max-connections', '2']);
    try {
      const holders = [net.connect(capped.httpPort, '127.0.0.1'), net.connect(capped.httpPort, '127.0.0.1')];
      await Promise.all(holders.map((s) => new Promise((r) => s.once('connect', r))));
      await sleep(100);
      const refused = await raw(capped.httpPort, [get('/small.txt')]);
      const [res] = parseResponses(refused.data);
      assert.equal(res?.status, 503);
      assert.ok(res?.headers.has('retry-after'));
      const answer = new Promise<string>((resolve) => {
        let text = '';
        holders[0]!.on('data', (c: Buffer) => (text += c.toString('latin1')));
        holders[0]!.on('close', () => resolve(text));
      });
      holders[0]!.write(get('/small.txt'));
      assert.match(await answer, /^HTTP\/1\.1 200 /);
      holders[1]!.destroy();
    } finally {
      await capped.stop();
    }
  });
});
