// The live page of a server run with --workers 2, in headless Chromium: the workers appear with
// their figures, and every figure's five-minute chart fills from the polled snapshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : false;

let tmp = '';
let muxd: MuxdProcess;
let browser: Browser;

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-live-'));
  muxd = await startMuxd(['--workers', '2', '--files-dir', path.join(tmp, 'files')]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
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
