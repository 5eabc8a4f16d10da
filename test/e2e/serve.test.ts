// `muxd serve` as a user runs it: the real command, its flags and env vars, the public/ site
// over a real HTTP client (undici), and the load a benchmarker puts on it (autocannon).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, request } from 'undici';
import autocannon from 'autocannon';
import { startMuxd, runMuxd, REPO_ROOT, type MuxdProcess } from '../helpers/muxd-process.js';

let tmp = '';
let muxd: MuxdProcess;
let base = '';

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-e2e-'));
  muxd = await startMuxd(['--files-dir', path.join(tmp, 'files'), '--access-log', path.join(tmp, 'access.log')]);
  base = `http://127.0.0.1:${muxd.httpPort}`;
});

after(async () => {
  await muxd?.stop();
  await rm(tmp, { recursive: true, force: true });
});

describe('muxd serve', () => {
  test('prints one ready line per listener with the real address', () => {
    assert.match(muxd.output(), /^muxd http listening on http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(muxd.output(), /^muxd binary listening on 127\.0\.0\.1:\d+$/m);
    assert.notEqual(muxd.httpPort, 0);
  });

  test('the README\'s `npx muxd …` commands run the built bin from the repo', async () => {
    // The bin must be executable after `npm install` / `npm run build`, or every npx line fails.
    // It is run the way npx runs it (the package.json bin, executed through its shebang) but not
    // through npx itself: in a fresh clone npx installs the project first, whose prepare script
    // rebuilds dist/ under every other test file running at the same time.
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: { muxd: string } };
    const bin = path.join(REPO_ROOT, pkg.bin.muxd);
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(bin, ['ping', '--port', String(muxd.binaryPort), '--count', '1'], { cwd: REPO_ROOT }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /1 pings transmitted, 1 received/);
  });

  test('serves the landing page, its stylesheet, script and image', async () => {
    const page = await request(`${base}/`);
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html; charset=utf-8$/);
    const html = await page.body.text();
    assert.match(html, /muxd/);
    const assets = [...html.matchAll(/(?:href|src)="(\/[^"#?]+\.(?:css|js|svg|png))"/g)].map((m) => m[1]!);
    assert.ok(assets.some((a) => a.endsWith('.css')) && assets.some((a) => a.endsWith('.js')) && assets.some((a) => /\.(svg|png)$/.test(a)), `assets: ${assets.join(' ')}`);
    for (const asset of assets) {
      const res = await request(base + asset);
      assert.equal(res.statusCode, 200, asset);
      await res.body.arrayBuffer();
    }
  });

  test('missing pages get the site 404 page with status 404', async () => {
    const res = await request(`${base}/no/such/page`);
    assert.equal(res.statusCode, 404);
    assert.match(String(res.headers['content-type']), /text\/html/);
    const expected = await readFile(path.join(REPO_ROOT, 'public', '404.html'), 'utf8');
    assert.equal(await res.body.text(), expected);
  });

  test('revalidation with the ETag answers 304 without a body', async () => {
    const first = await request(`${base}/`);
    await first.body.text();
    const etag = String(first.headers.etag);
    assert.match(etag, /^"[^"]+"$/);
    const again = await request(`${base}/`, { headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    assert.equal((await again.body.arrayBuffer()).byteLength, 0);
  });

  test('HEAD answers the GET head without a body', async () => {
    const get = await request(`${base}/`);
    const getBody = await get.body.arrayBuffer();
    const head = await request(`${base}/`, { method: 'HEAD' });
    assert.equal(head.statusCode, 200);
    assert.equal(Number(head.headers['content-length']), getBody.byteLength);
    assert.equal((await head.body.arrayBuffer()).byteLength, 0);
  });

  test('many requests on one kept-alive undici connection', async () => {
    const client = new Client(base, { pipelining: 10 });
    const results = await Promise.all(Array.from({ length: 50 }, () => client.request({ path: '/', method: 'GET' }).then(async (r) => (await r.body.text(), r.statusCode))));
    assert.ok(results.every((s) => s === 200));
    await client.close();
  });

  test('autocannon, the benchmarkers tool, gets only 2xx answers (keep-alive and pipelined)', async () => {
    for (const pipelining of [1, 10]) {
      const result = await autocannon({ url: `${base}/`, connections: 20, pipelining, amount: 4000 });
      assert.equal(result.errors, 0, `errors with pipelining ${pipelining}`);
      assert.equal(result.timeouts, 0);
      assert.equal(result.non2xx, 0);
      // autocannon stops once `amount` requests are sent and drops what is still in flight:
      // with pipelining that is up to (pipelining - 1) answers per connection (node:http gives
      // the same 3820 of 4000 at 20 x 10). Nothing may be lost beyond that.
      assert.ok(result['2xx'] >= 4000 - 20 * (pipelining - 1), `2xx ${result['2xx']} with pipelining ${pipelining}`);
      assert.equal(result.requests.sent, 4000);
    }
  });

  test('the live metrics route answers JSON that is never cached, counting both faces', async () => {
    const res = await request(`${base}/.well-known/muxd/stats?t=1`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['cache-control'], 'no-store');
    const stats = (await res.body.json()) as { connections: Record<string, number>; counters: Record<string, number>; eventLoop: { utilization: number } };
    assert.ok(stats.connections.http! >= 1);
    assert.equal(typeof stats.connections.binary, 'number');
    assert.ok(stats.counters['http.requests']! >= 1);
    assert.equal(typeof stats.eventLoop.utilization, 'number');
    const post = await request(`${base}/.well-known/muxd/stats`, { method: 'DELETE' });
    assert.equal(post.statusCode, 405);
    assert.equal(post.headers.allow, 'GET, HEAD, OPTIONS');
    await post.body.dump();
    const options = await request(`${base}/.well-known/muxd/stats`, { method: 'OPTIONS' });
    assert.equal(options.statusCode, 204);
    assert.equal(options.headers.allow, 'GET, HEAD, OPTIONS');
    await options.body.dump();
    // Absolute-form (RFC 9112 §3.2.2) names the same resource.
    const text = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(muxd.httpPort, '127.0.0.1', () =>
        socket.write(`GET http://127.0.0.1:${muxd.httpPort}/.well-known/muxd/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
      );
      let out = '';
      socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
      socket.on('close', () => resolve(out));
      socket.on('error', reject);
    });
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /"uptimeSeconds":/);
    // What follows "?" is the query, even when it looks like a path: this is "/" of the site.
    const queried = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(muxd.httpPort, '127.0.0.1', () =>
        socket.write(`GET http://127.0.0.1?x/.well-known/muxd/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
      );
      let out = '';
      socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
      socket.on('close', () => resolve(out));
      socket.on('error', reject);
    });
    assert.match(queried, /^HTTP\/1\.1 200 /);
    assert.match(queried, /Content-Type: text\/html/);
    assert.doesNotMatch(queried, /"uptimeSeconds":/);
  });

  test('an access log that cannot be opened, or a --max-frame below 64KiB, is a usage error before anything listens', async () => {
    const log = await runMuxd(['serve', '--http-port', '0', '--binary-port', '0', '--access-log', path.join(tmp, 'no-such-dir', 'x.log')]);
    assert.equal(log.code, 2);
    assert.match(log.stderr, /--access-log: cannot open .*no-such-dir/);
    assert.doesNotMatch(log.stdout, /listening/);
    const frame = await runMuxd(['serve', '--max-frame', '16KiB']);
    assert.equal(frame.code, 2);
    assert.match(frame.stderr, /--max-frame: must be between 64KiB/);
  });

  test('--parser llhttp refuses a repeated Host, as ours does (RFC 9112 §3.2)', async () => {
    const ref = await startMuxd(['--parser', 'llhttp', '--files-dir', path.join(tmp, 'files-llhttp-host')]);
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(ref.httpPort, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'));
        let out = '';
        socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
        socket.on('close', () => resolve(out));
        socket.on('error', reject);
      });
      assert.match(text, /^HTTP\/1\.1 400 /);
    } finally {
      await ref.stop();
    }
  });

  test('--stats-path off removes the route; a bad path is a usage error', async () => {
    const quiet = await startMuxd(['--stats-path', 'off', '--files-dir', path.join(tmp, 'files-quiet')]);
    try {
      const res = await request(`http://127.0.0.1:${quiet.httpPort}/.well-known/muxd/stats`);
      assert.equal(res.statusCode, 404);
      await res.body.dump();
    } finally {
      await quiet.stop();
    }
    const bad = await runMuxd(['serve', '--stats-path', 'stats']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--stats-path/);
  });

  test('writes a Combined Log Format access log', async () => {
    const res = await request(`${base}/?from=log-test`, { headers: { 'user-agent': 'log-test-agent', referer: 'http://ref.example/' } });
    await res.body.text();
    let log = '';
    for (let i = 0; i < 50 && !log.includes('log-test-agent'); i++) {
      await sleep(50);
      log = await readFile(path.join(tmp, 'access.log'), 'utf8').catch(() => '');
    }
    assert.match(log, /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/\?from=log-test HTTP\/1\.1" 200 \d+ "http:\/\/ref\.example\/" "log-test-agent"$/m);
    // HEAD sends no body: the log says so, whatever the file's size.
    const head = await request(`${base}/?from=log-head`, { method: 'HEAD', headers: { 'user-agent': 'log-head-agent' } });
    await head.body.dump();
    for (let i = 0; i < 50 && !log.includes('log-head-agent'); i++) {
      await sleep(50);
      log = await readFile(path.join(tmp, 'access.log'), 'utf8').catch(() => '');
    }
    assert.match(log, /"HEAD \/\?from=log-head HTTP\/1\.1" 200 - "-" "log-head-agent"$/m);
  });
});

describe('muxd serve flags', () => {
  test('a bad flag prints a clear message and exits 2', async () => {
    const unknown = await runMuxd(['serve', '--no-such-flag']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no-such-flag/);
    const badPort = await runMuxd(['serve', '--http-port', 'eighty']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--http-port: expected a port number/);
    const badEnv = await runMuxd(['serve'], { env: { MUXD_HTTP_PORT: '70000' } });
    assert.equal(badEnv.code, 2);
    const badSize = await runMuxd(['serve', '--tcp-notsent-lowat', 'lots']);
    assert.equal(badSize.code, 2);
    assert.match(badSize.stderr, /--tcp-notsent-lowat: expected a size such as 65536/);
  });

  test('an unknown command exits 2 with the usage', async () => {
    const res = await runMuxd(['frobnicate']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /Usage: muxd/);
  });

  test('--help lists every flag with its env var', async () => {
    const res = await runMuxd(['serve', '--help']);
    assert.equal(res.code, 0);
    for (const flag of ['--tcp-notsent-lowat', '--listen-backlog', '--root', '--http-port', '--binary-port', '--files-dir', '--admin-token', '--parser', '--max-head', '--head-timeout', '--access-log', '--max-frame', '--max-upload', '--http-socket', '--socket-mode', '--shutdown-timeout', '--max-connections-per-ip']) {
      assert.ok(res.stdout.includes(flag), flag);
    }
    assert.match(res.stdout, /MUXD_HTTP_PORT/);
  });

  test('env vars configure the server; flags win over them', async () => {
    const site = path.join(tmp, 'env-site');
    await rm(site, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(site, { recursive: true }));
    await writeFile(path.join(site, 'index.html'), '<h1>from env root</h1>');
    const proc = await startMuxd(['--files-dir', path.join(tmp, 'files2')], { env: { MUXD_ROOT: site, MUXD_HTTP_PORT: '1' } });
    try {
      assert.notEqual(proc.httpPort, 1, 'the --http-port flag wins over MUXD_HTTP_PORT');
      const res = await request(`http://127.0.0.1:${proc.httpPort}/`);
      assert.equal(await res.body.text(), '<h1>from env root</h1>');
    } finally {
      await proc.stop();
    }
  });

  test('--max-connections-per-ip: past it an address gets 503 + Retry-After and a close; another address is served', async () => {
    const proc = await startMuxd(['--max-connections-per-ip', '2', '--files-dir', path.join(tmp, 'files-perip')]);
    const open: net.Socket[] = [];
    const exchange = (localAddress: string, target = '/'): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = net.connect({ port: proc.httpPort, host: '127.0.0.1', localAddress }, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
        let out = '';
        socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
        socket.on('close', () => resolve(out));
        socket.on('error', reject);
      });
    try {
      for (let i = 0; i < 2; i++) {
        const s = net.connect(proc.httpPort, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        open.push(s);
      }
      await sleep(100);
      const refused = await exchange('127.0.0.1');
      assert.match(refused, /^HTTP\/1\.1 503 /);
      assert.match(refused, /\r\nRetry-After: 1\r\n/);
      assert.match(refused, /\r\nConnection: close\r\n/);
      assert.match(await exchange('127.0.0.2'), /^HTTP\/1\.1 200 /);
      const stats = await exchange('127.0.0.3', '/.well-known/muxd/stats');
      assert.match(stats, /"http\.refused\.maxConnectionsPerIp":1[,}]/);
    } finally {
      for (const s of open) s.destroy();
      await proc.stop();
    }
  });

  test('--parser llhttp serves the same site through the reference parser', async () => {
    const proc = await startMuxd(['--parser', 'llhttp', '--files-dir', path.join(tmp, 'files3')]);
    try {
      const ours = await (await request(`${base}/`)).body.text();
      const theirs = await (await request(`http://127.0.0.1:${proc.httpPort}/`)).body.text();
      assert.equal(theirs, ours);
    } finally {
      await proc.stop();
    }
  });
});
