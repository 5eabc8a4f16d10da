// `muxd stats` for people: the STATS JSON (docs/protocol.md §7) as a short aligned summary.
// Fields the server may add later are ignored here; `--json` prints everything.
import { humanSize } from './client-format.js';

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return typeof v === 'object' && v !== null ? (v as Json) : {};
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** "http 3 · binary 1" from { http: 3, binary: 1 }. */
function perFace(v: unknown): string {
  const entries = Object.entries(obj(v)).filter(([, n]) => num(n) !== null);
  return entries.length === 0 ? '-' : entries.map(([k, n]) => `${k} ${String(n)}`).join(' · ');
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatStats(stats: Json): string {
  const counters = obj(stats.counters);
  const loop = obj(stats.eventLoop);
  const lag = obj(loop.lagMs);
  const limits = obj(stats.limits);
  const rss = num(obj(stats.memory).rssBytes);
  const uptime = num(stats.uptimeSeconds);
  const utilization = num(loop.utilization);
  const size = (v: unknown): string => (num(v) === null ? '-' : humanSize(num(v)!));
  const rows: [string, string][] = [
    ['uptime', uptime === null ? '-' : duration(uptime)],
    ['connections', `${perFace(stats.connections)}   (accepted: ${perFace(stats.acceptedConnections)}; refused: ${perFace(stats.refusedConnections)})`],
    ['HTTP requests', String(num(counters['http.requests']) ?? 0)],
    ['MX/1 frames', `${String(num(counters['binary.frames']) ?? 0)} (${String(num(counters['binary.errors']) ?? 0)} errors)`],
    ['chat members', String(num(stats.chatUsers) ?? num(obj(stats.gauges).chatUsers) ?? 0)],
    ['UDP datagrams', `in ${String(num(counters['udp.datagramsIn']) ?? 0)} · out ${String(num(counters['udp.datagramsOut']) ?? 0)} · dropped ${String(num(counters['udp.dropped']) ?? 0)} · members ${String(num(obj(stats.gauges).udpMembers) ?? 0)}`],
    ['event loop', `lag p50 ${String(num(lag.p50) ?? '-')} ms, p99 ${String(num(lag.p99) ?? '-')} ms · busy ${utilization === null ? '-' : (utilization * 100).toFixed(1)} %`],
    ['memory (RSS)', rss === null ? '-' : humanSize(rss)],
    ['limits', `frame ${size(limits.maxFrameBytes)} · upload ${size(limits.maxUploadBytes)} · say ${size(limits.maxSayBytes)} · output ${size(limits.maxOutputBytes)}`],
  ];
  // A server run with --workers N: one row for the set, one per worker.
  if (Array.isArray(stats.workers)) {
    const workers = stats.workers.map(obj);
    const primary = obj(stats.primary);
    const running = workers.filter((w) => w.state === 'running').length;
    rows.push(['workers', `${running} running of ${String(num(primary.workersWanted) ?? workers.length)} · primary pid ${String(num(primary.pid) ?? '-')} · ${String(num(primary.deathsLastMinute) ?? 0)} deaths in the last minute`]);
    for (const w of workers) {
      const state = w.state === 'running' ? '' : ` (${String(w.state)})`;
      rows.push([
        `  worker ${String(num(w.slot) ?? '?')}`,
        `pid ${String(num(w.pid) ?? '-')}${state} · ${String(num(w.connections) ?? 0)} connections · ${String(num(w.requestsPerSec) ?? 0)} req/s · lag p99 ${String(num(w.lagMsP99) ?? '-')} ms · RSS ${size(w.rssBytes)} · ${String(num(w.restarts) ?? 0)} restarts`,
      ]);
    }
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
}
