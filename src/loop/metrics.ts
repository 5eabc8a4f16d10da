// Process-wide counters shared by every protocol. The loop layer counts connections;
// protocols add their own counters and gauges by name, so this module knows none of them.
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';

export type Gauge = () => number;

export class Metrics {
  readonly startedAt = Date.now();
  /** Open connections per listener name ("http", "binary"). */
  readonly open: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Accepted connections per listener name since start. */
  readonly accepted: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Connections refused because a listener was at its cap. */
  readonly refused: Record<string, number> = Object.create(null) as Record<string, number>;
  readonly counters: Record<string, number> = Object.create(null) as Record<string, number>;
  private readonly gauges = new Map<string, Gauge>();
  private readonly delay = monitorEventLoopDelay({ resolution: 10 });
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();

  constructor() {
    this.delay.enable();
  }

  count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  gauge(name: string, read: Gauge): void {
    this.gauges.set(name, read);
  }

  /** Event-loop utilisation since the previous call (0..1), as Node's perf_hooks measures it. */
  private utilization(): number {
    const elu = performance.eventLoopUtilization(this.lastElu);
    this.lastElu = performance.eventLoopUtilization();
    return elu.utilization;
  }

  snapshot(): MetricsSnapshot {
    const gauges: Record<string, number> = {};
    for (const [name, read] of this.gauges) gauges[name] = read();
    const empty = this.delay.count === 0;
    const ms = (ns: number): number => (empty ? 0 : Math.round(ns / 1e4) / 100);
    const snapshot: MetricsSnapshot = {
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
      connections: { ...this.open },
      acceptedConnections: { ...this.accepted },
      refusedConnections: { ...this.refused },
      counters: { ...this.counters },
      gauges,
      eventLoop: {
        lagMs: { p50: ms(this.delay.percentile(50)), p99: ms(this.delay.percentile(99)), max: ms(this.delay.max) },
        utilization: Math.round(this.utilization() * 1000) / 1000,
      },
      memory: { rssBytes: process.memoryUsage.rss() },
    };
    // Lag, like utilisation, covers the time since the previous snapshot: a live view, not a
    // lifetime average that hides what is happening now.
    this.delay.reset();
    return snapshot;
  }

  close(): void {
    this.delay.disable();
  }
}

export interface MetricsSnapshot {
  uptimeSeconds: number;
  connections: Record<string, number>;
  acceptedConnections: Record<string, number>;
  refusedConnections: Record<string, number>;
  counters: Record<string, number>;
  gauges: Record<string, number>;
  eventLoop: { lagMs: { p50: number; p99: number; max: number }; utilization: number };
  memory: { rssBytes: number };
}
