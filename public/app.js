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

/** Five minutes of once-a-second samples: what every small chart shows. */
const HISTORY = 300;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Appends a sample to a figure's history, keeping the last HISTORY. */
function record(values, value) {
  values.push(Number.isFinite(value) ? value : 0);
  if (values.length > HISTORY) values.shift();
}

/** An empty sparkline: a polyline in a fixed viewBox, scaled by CSS to its box. */
function sparkline(label) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${HISTORY} 40`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label + ', last five minutes');
  const line = document.createElementNS(SVG_NS, 'polyline');
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(line);
  return svg;
}

/** Redraws a sparkline: newest sample at the right edge, 0 at the bottom, the maximum at the top. */
function draw(svg, values) {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  const scale = max > 0 ? 36 / max : 0;
  const offset = HISTORY - values.length;
  let points = '';
  for (let i = 0; i < values.length; i++) points += `${offset + i},${(38 - values[i] * scale).toFixed(1)} `;
  svg.firstChild.setAttribute('points', points);
  svg.dataset.samples = String(values.length);
  svg.dataset.max = String(max);
}

const mib = (bytes) => (bytes / 1048576).toFixed(1) + ' MiB';
const lagText = (v) => v.toFixed(1) + ' ms';

/** The figures of one worker: key, column title, value in the snapshot, and how to show it. */
const WORKER_FIGURES = [
  { key: 'connections', title: 'Connections', show: String },
  { key: 'requestsPerSec', title: 'Requests/s', show: (v) => Math.round(v).toLocaleString() },
  { key: 'lagMsP99', title: 'Loop lag p99', show: lagText },
  { key: 'rssBytes', title: 'RSS', show: mib },
  { key: 'restarts', title: 'Restarts', show: String },
];

/**
 * The workers of a server run with --workers N: one row each (by slot, so a replaced worker
 * continues its slot's charts), every figure with its five-minute chart.
 */
function workersTable(section) {
  const body = section.querySelector('tbody');
  const rows = new Map();
  return (workers) => {
    const seen = new Set();
    for (const w of workers) {
      if (w.state === 'retiring') continue;
      seen.add(w.slot);
      let row = rows.get(w.slot);
      if (!row) {
        const tr = document.createElement('tr');
        tr.dataset.slot = String(w.slot);
        const head = document.createElement('th');
        head.scope = 'row';
        tr.append(head);
        const cells = {};
        for (const f of WORKER_FIGURES) {
          const td = document.createElement('td');
          const value = document.createElement('span');
          value.className = 'value';
          const chart = sparkline(`Worker ${w.slot} ${f.title}`);
          td.append(value, chart);
          tr.append(td);
          cells[f.key] = { value, chart, history: [] };
        }
        row = { tr, head, cells };
        rows.set(w.slot, row);
        // Rows in slot order.
        const after = [...body.children].find((other) => Number(other.dataset.slot) > w.slot);
        body.insertBefore(tr, after || null);
      }
      row.head.textContent = `${w.slot} · pid ${w.pid}${w.state === 'starting' ? ' (starting)' : ''}`;
      for (const f of WORKER_FIGURES) {
        const cell = row.cells[f.key];
        record(cell.history, w[f.key]);
        cell.value.textContent = f.show(w[f.key] ?? 0);
        draw(cell.chart, cell.history);
      }
    }
    for (const [slot, row] of rows) {
      if (seen.has(slot)) continue;
      row.tr.remove();
      rows.delete(slot);
    }
  };
}

/**
 * Polls the server's metrics once a second and fills the "Live" panel; rates come from deltas.
 * Every figure gets a chart of its last five minutes, drawn here from the polled snapshots.
 */
function startLiveStats() {
  const panel = document.getElementById('live-stats');
  if (!panel) return;
  // WebSocket members (MX/1 over WebSocket on the HTTP port) are their own figure, next to MX/1's.
  if (!panel.querySelector('dd[data-stat="ws"]')) {
    const binaryRow = panel.querySelector('dd[data-stat="binary"]')?.parentElement;
    if (binaryRow) {
      const row = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = 'WebSocket connections';
      const dd = document.createElement('dd');
      dd.dataset.stat = 'ws';
      dd.textContent = '–';
      row.append(dt, dd);
      binaryRow.after(row);
    }
  }
  const cells = {};
  for (const dd of panel.querySelectorAll('dd[data-stat]')) {
    const key = dd.dataset.stat;
    const label = dd.previousElementSibling ? dd.previousElementSibling.textContent : key;
    const chart = sparkline(label);
    dd.after(chart);
    cells[key] = { dd, chart, history: [] };
  }
  const workersSection = document.getElementById('live-workers');
  const showWorkers = workersSection ? workersTable(workersSection) : null;
  let previous = null;
  const set = (key, text, value) => {
    const cell = cells[key];
    if (!cell) return;
    cell.dd.textContent = text;
    if (value !== undefined) {
      record(cell.history, value);
      draw(cell.chart, cell.history);
    }
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
    const http = stats.connections?.http ?? 0;
    const binary = stats.connections?.binary ?? 0;
    const ws = stats.connections?.ws;
    const chat = stats.chatUsers ?? stats.gauges?.chatUsers ?? 0;
    set('http', String(http), http);
    set('binary', String(binary), binary);
    // Absent when the server runs with --ws-path off.
    if (ws === undefined) set('ws', 'off');
    else set('ws', String(ws), ws);
    set('chat', String(chat), chat);
    if (stats.gauges && 'udpMembers' in stats.gauges) set('udp', String(stats.gauges.udpMembers), stats.gauges.udpMembers);
    else set('udp', 'off');
    if (stats.eventLoop) {
      set('lag', lagText(stats.eventLoop.lagMs.p99), stats.eventLoop.lagMs.p99);
      set('busy', Math.round(stats.eventLoop.utilization * 100) + ' %', stats.eventLoop.utilization * 100);
    } else {
      set('lag', '–');
      set('busy', '–');
    }
    if (stats.memory) set('rss', mib(stats.memory.rssBytes), stats.memory.rssBytes);
    else set('rss', '–');
    if (previous) {
      const seconds = Math.max((now - previous.at) / 1000, 0.001);
      const rps = Math.max(0, Math.round((requests - previous.requests) / seconds));
      const fps = Math.max(0, Math.round((frames - previous.frames) / seconds));
      const dps = Math.max(0, Math.round((datagrams - previous.datagrams) / seconds));
      set('rps', rps.toLocaleString(), rps);
      set('fps', fps.toLocaleString(), fps);
      set('dps', dps.toLocaleString(), dps);
    }
    previous = { at: now, requests, frames, datagrams };
    if (workersSection && showWorkers) {
      const workers = Array.isArray(stats.workers) ? stats.workers : null;
      workersSection.hidden = workers === null;
      if (workers) {
        const count = workersSection.querySelector('[data-workers-count]');
        if (count) count.textContent = String(workers.filter((w) => w.state === 'running').length);
        showWorkers(workers);
      }
    }
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
