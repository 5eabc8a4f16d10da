// A person opening the site: headless Chromium (the system browser, driven by playwright-core)
// loads the landing page from `muxd serve`, with its stylesheet, script and image, then a missing page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { browserServe, browserSkip } from '../helpers/browser.js';
import { startMuxd, runMuxd, REPO_ROOT } from '../helpers/muxd-process.js';

const skip = browserSkip;

const s = browserServe('muxd-browser-', (tmp) => ['--files-dir', path.join(tmp, 'files')]);

test('the landing page renders with its stylesheet, script and image; a missing page shows the 404 page', { skip }, async () => {
  const page = await s.browser.newPage();
  const failed: string[] = [];
  page.on('requestfailed', (r) => failed.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) failed.push(`${r.status()} ${r.url()}`);
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  const base = `http://127.0.0.1:${s.muxd.httpPort}`;
  const res = await page.goto(`${base}/`, { waitUntil: 'load' });
  assert.equal(res?.status(), 200);
  assert.match(await page.title(), /muxd/i);
  assert.deepEqual(failed, [], 'every subresource loaded');
  assert.deepEqual(errors, [], 'no script errors');

  // The stylesheet applied: the body no longer has the browser's default 8px margin or serif font.
  // Page-side code is passed as strings: the project compiles without the DOM library.
  const styled = await page.evaluate<boolean>(
    `(() => { const cs = getComputedStyle(document.body);
      return cs.margin !== '8px' || !/serif/.test(cs.fontFamily) || cs.backgroundColor !== 'rgba(0, 0, 0, 0)'; })()`,
  );
  assert.ok(styled, 'stylesheet applied');
  const images = await page.evaluate<{ src: string; ok: boolean }[]>(
    `Array.from(document.images).map((i) => ({ src: i.src, ok: i.complete && i.naturalWidth > 0 }))`,
  );
  assert.ok(images.length > 0 && images.every((i) => i.ok), JSON.stringify(images));
  const scripted = await page.evaluate<string>(`document.documentElement.dataset.js ?? ''`);
  assert.equal(scripted, 'ready', 'the page script ran (it sets <html data-js="ready">)');
  // The live panel polls the server's metrics: it shows at least this page's own connection.
  await page.waitForSelector('#live-stats[data-state="live"]', { timeout: 5000 });
  const httpConnections = await page.evaluate<string>(`document.querySelector('#live-stats dd[data-stat="http"]').textContent`);
  assert.ok(Number(httpConnections) >= 1, `live HTTP connections: ${httpConnections}`);

  await mkdir(path.join(REPO_ROOT, '.bench-out'), { recursive: true });
  await page.screenshot({ path: path.join(REPO_ROOT, '.bench-out', 'landing.png'), fullPage: true });

  const missing = await page.goto(`${base}/definitely-missing`, { waitUntil: 'load' });
  assert.equal(missing?.status(), 404);
  assert.match(await page.content(), /href="\/"/);
  await page.close();
});

test('with --stats-path moved, /?stats=PATH points the live panel at it; off-site values are ignored', { skip }, async () => {
  const moved = await startMuxd(['--files-dir', path.join(s.tmp, 'files-moved'), '--stats-path', '/ops/stats.json']);
  const page = await s.browser.newPage();
  const asked: string[] = [];
  page.on('request', (r) => asked.push(r.url()));
  try {
    const base = `http://127.0.0.1:${moved.httpPort}`;
    await page.goto(`${base}/?stats=/ops/stats.json`, { waitUntil: 'load' });
    await page.waitForSelector('#live-stats[data-state="live"]', { timeout: 5000 });
    // "//host" and "/\host" would leave the site: the page keeps to the default path (absent here).
    for (const offSite of ['//evil.example/x', '/\\evil.example/x']) {
      await page.goto(`${base}/?stats=${encodeURIComponent(offSite)}`, { waitUntil: 'load' });
      await page.waitForSelector('#live-stats[data-state="unavailable"]', { timeout: 5000 });
    }
    assert.deepEqual(asked.filter((u) => !u.startsWith(base)), [], 'no request left the site');
  } finally {
    await page.close();
    await moved.stop();
  }
});

test('a page or SVG uploaded over MX/1 and opened from /files/ runs no script on the site origin', { skip }, async () => {
  const base = `http://127.0.0.1:${s.muxd.httpPort}`;
  // Each payload tries everything a stored-XSS page would: call home, write same-origin storage,
  // retitle the page.
  const payload = (tag: string): string =>
    `fetch('/marker?${tag}');try{localStorage.setItem('pwned','${tag}')}catch(e){};document.title='PWNED-${tag}';`;
  const html = `<!doctype html><title>evil</title><script>${payload('html')}</script><img src=x onerror="${payload('img')}">`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" onload="${payload('svgload')}"><script>${payload('svg')}</script></svg>`;
  for (const [name, body] of [['evil.html', html], ['evil.svg', svg]] as const) {
    const local = path.join(s.tmp, name);
    await writeFile(local, body);
    const put = await runMuxd(['put', local, '--port', String(s.muxd.binaryPort), '--as', name]);
    assert.equal(put.code, 0, put.stdout + put.stderr);
  }

  const context = await s.browser.newContext();
  const markers: string[] = [];
  context.on('request', (r) => {
    if (r.url().includes('/marker')) markers.push(r.url());
  });
  const page = await context.newPage();
  try {
    // Opened directly: a download, not a document (Content-Disposition: attachment).
    for (const name of ['evil.html', 'evil.svg']) {
      const res = await fetch(`${base}/files/${name}`);
      assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="evil\.(html|svg)"/);
      assert.equal(res.headers.get('content-security-policy'), 'sandbox');
      await res.arrayBuffer();
      await page.goto(`${base}/files/${name}`).catch(() => {
        // Chromium aborts a navigation that turns into a download: expected.
      });
    }
    // Embedded from a page on the site's own origin: iframes, an object, an image.
    await page.goto(`${base}/`, { waitUntil: 'load' });
    await page.evaluate(`(() => {
      for (const src of ['/files/evil.html', '/files/evil.svg']) {
        const f = document.createElement('iframe'); f.src = src; document.body.appendChild(f);
        const o = document.createElement('object'); o.data = src; document.body.appendChild(o);
      }
      const i = document.createElement('img'); i.src = '/files/evil.svg'; document.body.appendChild(i);
    })()`);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(markers, [], 'no uploaded script ran');
    assert.equal(await page.evaluate<string | null>(`localStorage.getItem('pwned')`), null, 'no same-origin storage was touched');
    assert.doesNotMatch(await page.title(), /PWNED/);
  } finally {
    await context.close();
  }
});
