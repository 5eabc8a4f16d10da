// Consistent reads (issue 8): a response describes exactly the bytes it sends. A writer renames
// new versions over a file (as uploads and deploys do) while readers GET it whole and in
// ranges; every answer must be entirely one version, matching its own Content-Length, ETag
// and Content-Range. And every descriptor a response opened is closed when it ends, however
// it ends.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, mkdir, writeFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { StaticSite } from '../../src/http/static/site.js';
import { openFileCount } from '../../src/http/static/open-file.js';
import { testServerOptions } from '../helpers/http-scripted.js';

const SMALL = 200_000;
const LARGE = 300_000;

/** Version v: every byte is v % 200 (never 0 mod 200 collisions within a run), size by parity. */
function version(v: number): Buffer {
  const byte = v % 200;
  return Buffer.alloc(byte % 2 === 0 ? SMALL : LARGE, byte);
}

let dir = '';
const servers: HttpServer[] = [];
const sites: StaticSite[] = [];

async function serveSite(cacheMaxFileBytes: number): Promise<number> {
  const site = new StaticSite({ root: path.join(dir, 'root'), mounts: [{ prefix: '/files/', dir: path.join(dir, 'files'), download: true }], cacheMaxFileBytes });
  sites.push(site);
  const server = await startHttpServer(testServerOptions(site));
  servers.push(server);
  return server.listener.port;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'muxd-consistent-'));
  await mkdir(path.join(dir, 'root'));
  await mkdir(path.join(dir, 'files'));
  await writeFile(path.join(dir, 'root', 'deploy.bin'), version(0));
  await writeFile(path.join(dir, 'files', 'shared.bin'), version(0));
  await writeFile(path.join(dir, 'root', 'huge.bin'), Buffer.alloc(8 * 1024 * 1024, 1));
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const s of sites) s.close();
  await rm(dir, { recursive: true, force: true });
});

interface Tally {
  ok: number;
  bad: string[];
}

/** Checks one answer against the version its own bytes claim to be. */
function check(res: Response, body: Buffer, ranged: boolean, tally: Tally): void {
  const where = `${res.status} ${res.url}`;
  const length = Number(res.headers.get('content-length'));
  if (body.length !== length) return void tally.bad.push(`${where}: short: ${body.length} of ${length}`);
  const byte = body[0]!;
  if (!body.every((b) => b === byte)) return void tally.bad.push(`${where}: torn: mixed versions in one body`);
  const size = byte % 2 === 0 ? SMALL : LARGE;
  const etag = /^"([0-9a-f]+)-/.exec(res.headers.get('etag') ?? '');
  if (etag === null || parseInt(etag[1]!, 16) !== size) return void tally.bad.push(`${where}: ETag ${res.headers.get('etag')} but bytes of a ${size}-byte version`);
  if (res.status === 200) {
    if (length !== size) return void tally.bad.push(`${where}: Content-Length ${length} but bytes of a ${size}-byte version`);
  } else if (res.status === 206 && ranged) {
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
    if (range === null || Number(range[3]) !== size || Number(range[2]) - Number(range[1]) + 1 !== length) {
      return void tally.bad.push(`${where}: Content-Range ${res.headers.get('content-range')} for a ${size}-byte version`);
    }
  } else {
    return void tally.bad.push(`${where}: unexpected status`);
  }
  tally.ok++;
}

async function race(port: number, target: string, file: string): Promise<Tally> {
  const tally: Tally = { ok: 0, bad: [] };
  let writing = true;
  const writer = (async () => {
    const tmp = file + '.tmp';
    for (let v = 1; writing; v++) {
      await writeFile(tmp, version(v));
      await rename(tmp, file);
      await sleep(1);
    }
  })();
  const reader = async (ranged: boolean): Promise<void> => {
    const deadline = Date.now() + 2500;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}${target}`, { headers: ranged ? { range: 'bytes=100000-250000' } : {} });
        check(res, Buffer.from(await res.arrayBuffer()), ranged, tally);
      } catch (err) {
        tally.bad.push(`${target}: request failed: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all([reader(false), reader(false), reader(true), reader(true)]);
  writing = false;
  await writer;
  return tally;
}

describe('consistent reads while a file is replaced', () => {
  for (const [label, cacheMax] of [['streamed from disk', 64 * 1024], ['memory-cached', 1024 * 1024]] as const) {
    for (const [target, rel] of [['/files/shared.bin', 'files/shared.bin'], ['/deploy.bin', 'root/deploy.bin']] as const) {
      test(`${label}: ${target}: zero torn or short answers`, async () => {
        const port = await serveSite(cacheMax);
        const tally = await race(port, target, path.join(dir, rel));
        assert.deepEqual(tally.bad.slice(0, 5), [], `${tally.bad.length} bad of ${tally.ok + tally.bad.length}`);
        assert.ok(tally.ok > 20, `only ${tally.ok} answers checked`);
      });
    }
  }

  test('no descriptor outlives its response', async () => {
    await sleep(50);
    assert.equal(openFileCount(), 0);
  });
});

describe('descriptors of streamed responses', () => {
  test('a client that leaves mid-download releases the file', async () => {
    const port = await serveSite(64 * 1024);
    const before = openFileCount();
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 5; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => s.once('data', r));
      s.pause(); // reads nothing more: the server is mid-file
      sockets.push(s);
    }
    await sleep(50);
    assert.ok(openFileCount() > before, 'the downloads hold their file');
    assert.ok(openFileCount() - before <= 5, `at most one descriptor per connection: ${openFileCount() - before}`);
    for (const s of sockets) s.destroy();
    for (let i = 0; i < 100 && openFileCount() !== before; i++) await sleep(20);
    assert.equal(openFileCount(), before);
  });

  test('pipelined downloads on one connection hold one descriptor at a time; all released at the end', async () => {
    const port = await serveSite(64 * 1024);
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    let got = 0;
    let held = true;
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (held) s.pause(); // stop early: the server is mid-file with 7 requests behind
    });
    s.write('GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(8));
    await sleep(150);
    assert.equal(openFileCount(), 1);
    // Now read everything: 8 whole files arrive, then nothing stays open.
    held = false;
    s.resume();
    for (let i = 0; i < 500 && got < 8 * 8 * 1024 * 1024; i++) await sleep(20);
    assert.ok(got >= 8 * 8 * 1024 * 1024, `received ${got}`);
    s.destroy();
    await sleep(50);
    assert.equal(openFileCount(), 0);
  });

  test('HEAD, 304 and 416 of a large file open nothing that outlives them', async () => {
    const port = await serveSite(64 * 1024);
    const res = await fetch(`http://127.0.0.1:${port}/huge.bin`);
    const etag = res.headers.get('etag')!;
    await res.arrayBuffer();
    const inits: RequestInit[] = [{ method: 'HEAD' }, { headers: { 'if-none-match': etag } }, { headers: { range: 'bytes=99999999-' } }];
    for (const init of inits) {
      const r = await fetch(`http://127.0.0.1:${port}/huge.bin`, init);
      await r.arrayBuffer();
    }
    await sleep(50);
    assert.equal(openFileCount(), 0);
  });
});
