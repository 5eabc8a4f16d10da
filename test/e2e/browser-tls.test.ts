// The site over HTTPS in headless Chromium: the landing page and its live panel (which polls the
// stats route over the same origin) and the chat page (MX/1 over wss:// on the HTTPS port) load
// with no certificate error, no mixed content and no failed request, single process and with
// --workers 2. Chromium has no flag to add a CA; it is
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
  // The chat page: its WebSocket is wss:// to the same origin; two people hear each other.
  const wsUrls: string[] = [];
  const people = [await browser.newPage(), await browser.newPage()];
  for (const p of people) {
    p.on('websocket', (ws) => wsUrls.push(ws.url()));
    p.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
    p.on('pageerror', (e) => problems.push(e.message));
    p.on('console', (msg) => {
      if (/mixed content|certificate|insecure/i.test(msg.text())) problems.push(msg.text());
    });
    const chat = await p.goto(`${base}/chat/`, { waitUntil: 'load' });
    assert.equal(chat?.status(), 200);
    await p.waitForSelector('html[data-js="ready"]', { timeout: 15_000 });
  }
  for (const [i, p] of people.entries()) {
    await p.fill('#name', `tls${i}`);
    await p.keyboard.press('Enter');
    await p.waitForSelector('#status[data-state="joined"]', { timeout: 15_000 });
  }
  await people[0]!.fill('#text', 'over wss');
  await people[0]!.keyboard.press('Enter');
  await people[1]!.waitForFunction(`Array.from(document.querySelectorAll('#log li.msg .text'), (t) => t.textContent).includes('over wss')`, undefined, { timeout: 15_000 });
  assert.ok(wsUrls.length >= 2 && wsUrls.every((u) => u.startsWith(`wss://localhost:${m.ports.https}/`)), JSON.stringify(wsUrls));
  assert.deepEqual(failed, [], 'every request succeeded');
  assert.deepEqual(problems, [], 'no script, certificate or mixed-content error');
  for (const p of [page, ...people]) await p.close();
}

test('Chromium trusting the test key: the landing page, its live panel and the chat page over https/wss, no certificate or mixed-content error', { skip }, async () => {
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
