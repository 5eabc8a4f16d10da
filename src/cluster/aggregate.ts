// The whole server as one STATS view: the primary sums its workers' snapshots into the same shape
// one process reports (so `muxd stats`, the live page and scripts keep working unchanged) and adds
// a per-worker breakdown. Pure: the primary passes in what it holds and the time.
import type { MetricsSnapshot } from '../loop/metrics.js';

export interface WorkerView {
  slot: number;
  pid: number;
  generation: number;
  /** 'starting' until its first ready message, 'retiring' while an old generation drains. */
  state: 'starting' | 'running' | 'retiring';
  restarts: number;
  /** The latest snapshot it sent, and when it arrived. */
  snapshot: MetricsSnapshot | null;
  /** The snapshot before it, for rates. */
  previous: { snapshot: MetricsSnapshot; at: number } | null;
  receivedAt: number;
}

export interface WorkerSummary {
  slot: number;
  pid: number;
  generation: number;
  state: WorkerView['state'];
  uptimeSeconds: number;
  connections: number;
  /** HTTP requests plus MX/1 requests since the worker started. */
  requests: number;
  requestsPerSec: number;
  lagMsP99: number;
  utilization: number;
  rssBytes: number;
  restarts: number;
  /** Chat members connected to this worker. */
  chatMembers: number;
}

export interface ClusterStats extends MetricsSnapshot {
  /** The primary: it serves no client, so only its own memory and the supervision figures. */
  primary: { pid: number; rssBytes: number; workersWanted: number; deathsLastMinute: number; reloads: number };
  workers: WorkerSummary[];
  [extra: string]: unknown;
}

/** Requests of both faces: HTTP requests and MX/1 requests (frames that ask for a reply). */
export function requestCount(s: MetricsSnapshot): number {
  return (s.counters['http.requests'] ?? 0) + (s.counters['binary.requests'] ?? 0);
}

function sumInto(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
}

function sum(values: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(values)) n += v;
  return n;
}

export function summarise(w: WorkerView): WorkerSummary {
  const s = w.snapshot;
  let rate = 0;
  if (s && w.previous) {
    const seconds = (w.receivedAt - w.previous.at) / 1000;
    if (seconds > 0) rate = Math.max(0, Math.round((requestCount(s) - requestCount(w.previous.snapshot)) / seconds));
  }
  return {
    slot: w.slot,
    pid: w.pid,
    generation: w.generation,
    state: w.state,
    uptimeSeconds: s?.uptimeSeconds ?? 0,
    connections: s ? sum(s.connections) : 0,
    requests: s ? requestCount(s) : 0,
    requestsPerSec: rate,
    lagMsP99: s?.eventLoop.lagMs.p99 ?? 0,
    utilization: s?.eventLoop.utilization ?? 0,
    rssBytes: s?.memory.rssBytes ?? 0,
    restarts: w.restarts,
    chatMembers: s?.gauges.chatLocalMembers ?? 0,
  };
}

export function aggregate(
  primary: { pid: number; rssBytes: number; startedAt: number; workersWanted: number; deathsLastMinute: number; reloads: number },
  workers: readonly WorkerView[],
  now: number,
  /** The room as the hub sees it: every worker reports the whole room, so its gauges are not summed. */
  chat: { members: number; relay: Record<string, unknown> } = { members: 0, relay: {} },
): ClusterStats {
  const connections: Record<string, number> = {};
  const accepted: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const counters: Record<string, number> = {};
  const gauges: Record<string, number> = {};
  let rss = primary.rssBytes;
  let p50 = 0;
  let p99 = 0;
  let max = 0;
  let utilization = 0;
  for (const w of workers) {
    const s = w.snapshot;
    if (!s) continue;
    sumInto(connections, s.connections);
    sumInto(accepted, s.acceptedConnections);
    sumInto(refused, s.refusedConnections);
    sumInto(counters, s.counters);
    sumInto(gauges, s.gauges);
    rss += s.memory.rssBytes;
    // The loop figures are per loop: the whole server is as late as its latest loop.
    p50 = Math.max(p50, s.eventLoop.lagMs.p50);
    p99 = Math.max(p99, s.eventLoop.lagMs.p99);
    max = Math.max(max, s.eventLoop.lagMs.max);
    utilization = Math.max(utilization, s.eventLoop.utilization);
  }
  if ('chatUsers' in gauges) gauges.chatUsers = chat.members;
  return {
    uptimeSeconds: Math.round((now - primary.startedAt) / 100) / 10,
    connections,
    acceptedConnections: accepted,
    refusedConnections: refused,
    counters,
    gauges,
    eventLoop: { lagMs: { p50, p99, max }, utilization },
    memory: { rssBytes: rss },
    chatUsers: chat.members,
    chatRelay: chat.relay,
    primary: { pid: primary.pid, rssBytes: primary.rssBytes, workersWanted: primary.workersWanted, deathsLastMinute: primary.deathsLastMinute, reloads: primary.reloads },
    workers: workers.map(summarise).sort((a, b) => a.slot - b.slot || a.generation - b.generation),
  };
}
