// The live page of a server run with --workers 2, in headless Chromium: the workers appear with
// their figures, and every figure's five-minute chart fills from the polled snapshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { browserServe, browserSkip } from '../helpers/browser.js';

const skip = browserSkip;

const s = browserServe('muxd-live-', (tmp) => ['--workers', '2', '--files-dir', path.join(tmp, 'files')]);

test('the live page lists both workers and charts every figure', { skip }, async () => {
  const page = await s.browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${s.muxd.httpPort}/`, { waitUntil: 'load' });
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
