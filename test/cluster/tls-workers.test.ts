// TLS with --workers 2: the primary hands every worker the same pair and session ticket keys, so
// a session resumes on whichever worker the next connection lands on; SIGHUP swaps the
// certificate under a client loop (the zero-downtime worker reload, with the pair the primary
// just read); a bad pair keeps the one in force; SIGTERM drains a TLS download.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeTestCa, type ServerCert, type TestCa } from '../helpers/certs.js';
import { httpsDownload, httpsGet, httpsLoop, startTlsServe } from '../helpers/tls-serve.js';
import { waitFor } from '../helpers/wait.js';

let ca: TestCa;
let good: ServerCert;
let tmp = '';
before(() => {
  ca = makeTestCa();
  good = ca.issue('good');
  tmp = mkdtempSync(path.join(tmpdir(), 'muxd-tls-workers-'));
});
after(() => {
  ca.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

interface Summary {
  workers?: { pid: number; requests: number; generation: number; state: string }[];
}

test('--workers 2: one set of TLS ready lines; a session ticket from one worker resumes on the other', async () => {
  const m = await startTlsServe(['--workers', '2'], good, path.join(tmp, 'files'));
  try {
    assert.equal(m.output().match(/^muxd https listening on /gm)?.length, 1);
    assert.equal(m.output().match(/^muxd binary-tls listening on /gm)?.length, 1);
    const first = await httpsGet(m.ports.https, '/', ca.ca);
    assert.equal(first.status, 200);
    assert.equal(first.reused, false);
    let session = first.session;
    // Round-robin hands consecutive connections to alternating workers: each resumes the
    // ticket the other one issued.
    for (let i = 0; i < 6; i++) {
      assert.ok(session !== undefined, 'a session to resume');
      const next = await httpsGet(m.ports.https, '/', ca.ca, { session });
      assert.equal(next.status, 200);
      assert.equal(next.reused, true, `connection ${i + 2} resumed`);
      session = next.session ?? session;
    }
    const view = await waitFor(
      async () => {
        const s = JSON.parse((await httpsGet(m.ports.https, '/.well-known/muxd/stats', ca.ca)).body) as Summary;
        return s.workers?.length === 2 && s.workers.every((w) => w.requests >= 3) ? s : undefined;
      },
      { what: 'both workers to have served the resumed connections' },
    );
    assert.equal(new Set(view.workers!.map((w) => w.pid)).size, 2);
  } finally {
    assert.equal(await m.stop(), 0);
  }
});

test('--workers 2: SIGHUP swaps the certificate under a client loop with zero failed requests; a bad pair keeps the one in force', async () => {
  const live = { certFile: path.join(tmp, 'live.pem'), keyFile: path.join(tmp, 'live.key') };
  copyFileSync(good.certFile, live.certFile);
  copyFileSync(good.keyFile, live.keyFile);
  const next = ca.issue('next');
  const m = await startTlsServe(['--workers', '2'], live, path.join(tmp, 'files'));
  try {
    const port = m.ports.https;
    const loop = httpsLoop(port, '/', ca.ca);
    await waitFor(() => loop.ok >= 5, { what: 'requests before the reload' });
    copyFileSync(next.certFile, live.certFile);
    copyFileSync(next.keyFile, live.keyFile);
    m.proc.kill('SIGHUP');
    await waitFor(() => /generation 2 is listening/.test(m.output()), { what: 'the new workers', timeoutMs: 20_000, detail: () => m.output() });
    assert.match(m.output(), /^muxd: TLS certificate reloaded from .*; the new workers use it$/m);
    const atReload = loop.ok;
    await waitFor(() => loop.ok >= atReload + 10 && loop.serials.has(next.serial), { what: 'the new certificate under the loop', timeoutMs: 20_000 });
    await loop.stop();
    assert.deepEqual(loop.failures, []);
    assert.equal((await httpsGet(port, '/', ca.ca)).serial, next.serial);

    // A key that does not match: one line; the next generation still serves the pair in force.
    copyFileSync(good.certFile, live.certFile);
    m.proc.kill('SIGHUP');
    await waitFor(() => /generation 3 is listening/.test(m.output()), { what: 'generation 3', timeoutMs: 20_000, detail: () => m.output() });
    const failed = m.output().split('\n').filter((l) => l.includes('TLS reload failed'));
    assert.equal(failed.length, 1, m.output());
    assert.equal(failed[0], `muxd: TLS reload failed, the certificate in force stays: --tls-key ${live.keyFile}: does not match the certificate in --tls-cert ${live.certFile}`);
    for (let i = 0; i < 4; i++) assert.equal((await httpsGet(port, '/', ca.ca)).serial, next.serial);
  } finally {
    assert.equal(await m.stop(), 0);
  }
});

test('--workers 2: SIGTERM drains TLS connections: a download in flight completes', async () => {
  const root = path.join(tmp, 'big-site');
  mkdirSync(root, { recursive: true });
  const size = 8 << 20;
  writeFileSync(path.join(root, 'big.bin'), Buffer.alloc(size, 0x62));
  const m = await startTlsServe(['--workers', '2', '--root', root], good, path.join(tmp, 'files'));
  try {
    const got = await httpsDownload(m.ports.https, '/big.bin', ca.ca, () => m.proc.kill('SIGTERM'));
    assert.equal(got.status, 200);
    assert.equal(got.length, size);
    assert.equal(await m.exited, 0);
    assert.match(m.output(), /muxd: all workers stopped/);
  } finally {
    await m.stop();
  }
});
