// muxd site script: copy buttons on command blocks, and how this page was delivered
// (from the Navigation Timing API, so the numbers are the browser's own).
'use strict';

/** Adds a "Copy" button to every command block. */
function addCopyButtons() {
  for (const block of document.querySelectorAll('.cmd')) {
    const code = block.querySelector('code');
    if (!code || block.querySelector('.copy')) continue;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy';
    button.textContent = 'Copy';
    button.setAttribute('aria-label', 'Copy command: ' + code.textContent);
    button.addEventListener('click', async () => {
      const text = code.textContent || '';
      let ok = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(text);
          ok = true;
        }
      } catch {
        ok = false;
      }
      if (!ok) ok = copyWithSelection(code);
      button.textContent = ok ? 'Copied' : 'Select and copy';
      setTimeout(() => {
        button.textContent = 'Copy';
      }, 1500);
    });
    block.append(button);
  }
}

/** Fallback for plain http:// origins, where the async clipboard API is unavailable. */
function copyWithSelection(node) {
  const selection = window.getSelection();
  if (!selection) return false;
  const range = document.createRange();
  range.selectNodeContents(node);
  selection.removeAllRanges();
  selection.addRange(range);
  try {
    return document.execCommand('copy');
  } catch {
    return false;
  } finally {
    selection.removeAllRanges();
  }
}

/** Formats milliseconds with one decimal below 10 ms. */
function ms(value) {
  return (value < 10 ? value.toFixed(1) : Math.round(value).toString()) + ' ms';
}

/** Shows time to first byte, total load time and transfer size for this document. */
function showTiming() {
  const out = document.getElementById('timing');
  if (!out) return;
  const [nav] = performance.getEntriesByType('navigation');
  if (!nav) {
    out.textContent = 'Your browser does not expose navigation timing.';
    return;
  }
  const ttfb = nav.responseStart - nav.requestStart;
  const total = nav.responseEnd - nav.startTime;
  const parts = [`First byte after ${ms(ttfb)}`, `whole page in ${ms(total)}`];
  if (nav.transferSize > 0) {
    parts.push(`${nav.transferSize.toLocaleString()} bytes over the wire`);
  } else if (nav.transferSize === 0 && nav.decodedBodySize > 0) {
    parts.push('served from your browser cache');
  }
  if (nav.nextHopProtocol) parts.push(`via ${nav.nextHopProtocol}`);
  out.textContent = parts.join(', ') + '.';
}

/**
 * The server's default stats path; a server started with --stats-path /x is watched by opening
 * this page as /?stats=/x.
 */
function statsUrl() {
  const asked = new URLSearchParams(location.search).get('stats');
  if (asked && asked.startsWith('/')) {
    // "//host" and "/\\host" both resolve off-site; only a path on this origin is taken.
    try {
      const url = new URL(asked, location.href);
      if (url.origin === location.origin) return url.pathname;
    } catch {
      // Not a URL at all: fall back to the default.
    }
  }
  return '/.well-known/muxd/stats';
}
const STATS_URL = statsUrl();

/** Polls the server's metrics once a second and fills the "Live" panel; rates come from deltas. */
function startLiveStats() {
  const panel = document.getElementById('live-stats');
  if (!panel) return;
  const cells = {};
  for (const dd of panel.querySelectorAll('dd[data-stat]')) cells[dd.dataset.stat] = dd;
  let previous = null;
  const set = (key, text) => {
    if (cells[key]) cells[key].textContent = text;
  };
  const tick = async () => {
    let stats;
    try {
      const res = await fetch(STATS_URL, { cache: 'no-store' });
      if (!res.ok) throw new Error(String(res.status));
      stats = await res.json();
    } catch {
      // Disabled (--stats-path off) or the server went away: say so once and stop polling.
      panel.dataset.state = 'unavailable';
      set('http', 'n/a');
      return;
    }
    const now = performance.now();
    const counters = stats.counters || {};
    const requests = counters['http.requests'] || 0;
    const frames = counters['binary.frames'] || 0;
    // In and out together: the UDP face's load (dropped ones are in STATS, `muxd stats --udp`).
    const datagrams = (counters['udp.datagramsIn'] || 0) + (counters['udp.datagramsOut'] || 0);
    set('http', String(stats.connections?.http ?? 0));
    set('binary', String(stats.connections?.binary ?? 0));
    set('chat', String(stats.gauges?.chatUsers ?? 0));
    set('udp', stats.gauges && 'udpMembers' in stats.gauges ? String(stats.gauges.udpMembers) : 'off');
    set('lag', stats.eventLoop ? stats.eventLoop.lagMs.p99.toFixed(1) + ' ms' : '–');
    set('busy', stats.eventLoop ? Math.round(stats.eventLoop.utilization * 100) + ' %' : '–');
    set('rss', stats.memory ? (stats.memory.rssBytes / 1048576).toFixed(1) + ' MiB' : '–');
    if (previous) {
      const seconds = Math.max((now - previous.at) / 1000, 0.001);
      set('rps', Math.round((requests - previous.requests) / seconds).toLocaleString());
      set('fps', Math.round((frames - previous.frames) / seconds).toLocaleString());
      set('dps', Math.round((datagrams - previous.datagrams) / seconds).toLocaleString());
    }
    previous = { at: now, requests, frames, datagrams };
    panel.dataset.state = 'live';
    setTimeout(tick, 1000);
  };
  void tick();
}

document.addEventListener('DOMContentLoaded', () => {
  addCopyButtons();
  startLiveStats();
  // Lets styles and tests tell that the script ran.
  document.documentElement.dataset.js = 'ready';
});
// responseEnd is only final once the load event has finished.
window.addEventListener('load', () => setTimeout(showTiming, 0));
