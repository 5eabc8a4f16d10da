// The site over HTTPS in headless Chromium: the landing page and its live panel (which polls the
// stats route over the same origin) load with no certificate error, no mixed content and no
// failed request, single process and with --workers 2. Chromium has no flag to add a CA; it is
// told to trust exactly the test server's key (--ignore-certificate-errors-spki-list, the base64
// SHA-256 of its SubjectPublicKeyInfo), and a certificate with another key is still refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { browserSkip, launchBrowser } from '../helpers/browser.js';
import { makeTestCa, type ServerCert, type TestCa } from '../helpers/certs.js';
import { startTlsServe, type TlsProc } from '../helpers/tls-serve.js';

const skip = browserSkip;
let ca: TestCa;
let good: ServerCert;
let tmp = '';
let browser: Browser;

before(async () => {
  if (skip) return;
  ca = makeTestCa();
  good = ca.issue('good');
  tmp = mkdtempSync(path.join(tmpdir(), 'muxd-browser-tls-'));
  browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${good.spki}`]);
});
after(async () => {
  await browser?.close();
  ca?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function landingOverHttps(m: TlsProc): Promise<void> {
  const page = await browser.newPage();
  const failed: string[] = [];
  const problems: string[] = [];
  page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) failed.push(`${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (msg) => {
    if (/mixed content|certificate|insecure/i.test(msg.text())) problems.push(msg.text());
  });
  const base = `https://localhost:${m.ports.https}`;
  const res = await page.goto(`${base}/`, { waitUntil: 'load' });
  assert.equal(res?.status(), 200);
  const security = await res!.securityDetails();
  assert.ok(security !== null, 'served over TLS');
  assert.equal(security.protocol, 'TLS 1.3');
  assert.equal(security.subjectName, 'localhost');
  assert.equal(await page.evaluate<boolean>('window.isSecureContext'), true);
  // The live panel's polls go to the same https origin and come back.
  await page.waitForSelector('#live-stats[data-state="live"]', { timeout: 15_000 });
  assert.deepEqual(failed, [], 'every request succeeded');
  assert.deepEqual(problems, [], 'no script, certificate or mixed-content error');
  await page.close();
}

test('Chromium trusting the test key: the landing page and its live panel over https, no certificate or mixed-content error', { skip }, async () => {
  const m = await startTlsServe([], good, path.join(tmp, 'files'));
  try {
    await landingOverHttps(m);
  } finally {
    assert.equal(await m.stop(), 0);
  }
});

test('the same with --workers 2', { skip }, async () => {
  const m = await startTlsServe(['--workers', '2'], good, path.join(tmp, 'files-2'));
  try {
    await landingOverHttps(m);
  } finally {
    assert.equal(await m.stop(), 0);
  }
});

test('a certificate with another key is refused: the trust is in exactly that key, not a blanket bypass', { skip }, async () => {
  const other = ca.issue('other');
  const m = await startTlsServe([], other, path.join(tmp, 'files-3'));
  const page = await browser.newPage();
  try {
    await assert.rejects(page.goto(`https://localhost:${m.ports.https}/`), /ERR_CERT_AUTHORITY_INVALID/);
  } finally {
    await page.close();
    assert.equal(await m.stop(), 0);
  }
});
