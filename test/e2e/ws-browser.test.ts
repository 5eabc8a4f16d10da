// A real browser speaking MX/1 over WebSocket to `muxd serve`: Chromium's own WebSocket (the
// client the issue is for) on the landing page's origin is upgraded and answered; a page of
// another origin (localhost vs 127.0.0.1: another host) is refused, which is the cross-site
// WebSocket hijacking defence; the live panel counts the WebSocket connection as its own figure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { browserServe, browserSkip } from '../helpers/browser.js';

const skip = browserSkip;
const s = browserServe('muxd-ws-browser-', (tmp) => ['--files-dir', path.join(tmp, 'files'), '--udp-port', 'off', '--host', '127.0.0.1']);

/**
 * Page-side: opens the WebSocket, sends MX/1 PING id 7 "hi" with DataView, resolves with what
 * came back (or how it failed). Passed as a string: the project compiles without the DOM library.
 */
const PING_SCRIPT = (url: string): string => `new Promise((resolve) => {
  const ws = new WebSocket(${JSON.stringify(url)}, 'mx1');
  ws.binaryType = 'arraybuffer';
  const timer = setTimeout(() => resolve({ error: 'timeout' }), 5000);
  ws.onopen = () => {
    const f = new DataView(new ArrayBuffer(14));
    f.setUint16(0, 0x4d58); f.setUint8(2, 1); f.setUint8(3, 0x01); f.setUint32(4, 7); f.setUint32(8, 2);
    f.setUint8(12, 104); f.setUint8(13, 105);
    ws.send(f.buffer);
  };
  ws.onmessage = (e) => {
    const d = new DataView(e.data);
    window.__mxSocket = ws;
    clearTimeout(timer);
    resolve({ protocol: ws.protocol, extensions: ws.extensions, length: e.data.byteLength, type: d.getUint8(3), id: d.getUint32(4), text: String.fromCharCode(d.getUint8(12), d.getUint8(13)) });
  };
  ws.onclose = (e) => { clearTimeout(timer); resolve({ error: 'closed ' + e.code }); };
})`;

test('Chromium on our own origin: upgraded with mx1, PING answered as one message; the live panel counts it under WebSocket', { skip }, async () => {
  const page = await s.browser.newPage();
  try {
    const base = `http://127.0.0.1:${s.muxd.httpPort}`;
    await page.goto(`${base}/`, { waitUntil: 'load' });
    const got = await page.evaluate(PING_SCRIPT(`ws://127.0.0.1:${s.muxd.httpPort}/.well-known/muxd/mx`));
    assert.deepEqual(got, { protocol: 'mx1', extensions: '', length: 14, type: 0x81, id: 7, text: 'hi' });
    await page.waitForFunction(`document.querySelector('#live-stats dd[data-stat="ws"]')?.textContent === '1'`, undefined, { timeout: 5000 }).catch(async (e: Error) => {
      throw new Error(e.message + ': ' + String(await page.evaluate(`document.getElementById('live-stats').outerHTML.slice(0, 3000)`)));
    });
    assert.equal(await page.evaluate<string>(`document.querySelector('#live-stats dd[data-stat="ws"]').previousElementSibling.textContent`), 'WebSocket connections');
  } finally {
    await page.close();
  }
});

test('Chromium on another origin (localhost) is refused: the page sees the WebSocket fail', { skip }, async () => {
  const page = await s.browser.newPage();
  try {
    // Same server, other host name: http://localhost:PORT is another origin than http://127.0.0.1:PORT.
    const resp = await page.goto(`http://localhost:${s.muxd.httpPort}/`, { waitUntil: 'load' }).catch(() => null);
    if (resp === null) return; // no localhost name here: nothing to show
    const got = await page.evaluate(PING_SCRIPT(`ws://127.0.0.1:${s.muxd.httpPort}/.well-known/muxd/mx`));
    assert.deepEqual(got, { error: 'closed 1006' });
  } finally {
    await page.close();
  }
});
