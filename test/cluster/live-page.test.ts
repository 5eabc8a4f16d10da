// The live page of a server run with --workers 2, in headless Chromium: the workers appear with
// their figures, and every figure's five-minute chart fills from the polled snapshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { browserSkip, launchBrowser } from '../helpers/browser.js';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';

const skip = browserSkip;

let tmp = '';
let muxd: MuxdProcess;
let browser: Browser;

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-live-'));
  muxd = await startMuxd(['--workers', '2', '--files-dir', path.join(tmp, 'files')]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await muxd?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('the live page lists both workers and charts every figure', { skip }, async () => {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${muxd.httpPort}/`, { waitUntil: 'load' });
  // Page-side code is passed as strings: the project compiles without the DOM library.
  await page.waitForFunction(`document.querySelectorAll('#live-workers tbody tr').length === 2 && !document.getElementById('live-workers').hidden`, undefined, { timeout: 15000 });
  // A few polls later every chart has several samples.
  await page.waitForFunction(`[...document.querySelectorAll('svg.spark')].every((s) => Number(s.dataset.samples) >= 2)`, undefined, { timeout: 15000 });
  const view = await page.evaluate<{ rows: string[]; charts: number; count: string }>(
    `(() => ({
      rows: [...document.querySelectorAll('#live-workers tbody th')].map((th) => th.textContent),
      charts: document.querySelectorAll('svg.spark').length,
      count: document.querySelector('[data-workers-count]').textContent,
    }))()`,
  );
  assert.equal(view.count, '2');
  assert.match(view.rows[0]!, /^1 · pid \d+$/);
  assert.match(view.rows[1]!, /^2 · pid \d+$/);
  // One chart per whole-server figure, five per worker.
  const figures = await page.evaluate<number>(`document.querySelectorAll('#live-stats dd[data-stat]').length`);
  assert.equal(view.charts, figures + 2 * 5);
  assert.deepEqual(errors, []);
});
