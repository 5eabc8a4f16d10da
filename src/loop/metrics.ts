// Process-wide counters shared by every protocol. The loop layer counts connections;
// protocols add their own counters and gauges by name, so this module knows none of them.
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';

export type Gauge = () => number;

/**
 * Lag and utilisation describe the last full window of this length: a live view, not a
 * lifetime average that hides what is happening now, and the same for every reader however
 * many poll (a reader-driven window would shrink as pollers are added).
 */
export const LOOP_WINDOW_MS = 1000;

type LoopStats = MetricsSnapshot['eventLoop'];

/** Sampling period of the delay histogram. */
const LAG_RESOLUTION_MS = 10;

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
  private readonly delay = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  private windowStart: EventLoopUtilization = performance.eventLoopUtilization();
  /** The last full window; null until the first one closes. */
  private lastWindow: LoopStats | null = null;
  private readonly roller: NodeJS.Timeout;

  constructor() {
    this.delay.enable();
    this.roller = setInterval(() => {
      this.lastWindow = this.currentWindow();
      this.delay.reset();
      this.windowStart = performance.eventLoopUtilization();
    }, LOOP_WINDOW_MS);
    // Sampling never keeps the process alive.
    this.roller.unref();
  }

  count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  gauge(name: string, read: Gauge): void {
    this.gauges.set(name, read);
  }

  /** Lag percentiles and utilisation (0..1, as perf_hooks measures it) of the open window. */
  private currentWindow(): LoopStats {
    const empty = this.delay.count === 0;
    // The histogram records the time between its timer's runs, so an idle loop reads as the
    // resolution itself; the lag is what exceeds it.
    const ms = (ns: number): number => (empty ? 0 : Math.max(0, Math.round((ns - LAG_RESOLUTION_MS * 1e6) / 1e4) / 100));
    const utilization = performance.eventLoopUtilization(this.windowStart).utilization;
    return {
      lagMs: { p50: ms(this.delay.percentile(50)), p99: ms(this.delay.percentile(99)), max: ms(this.delay.max) },
      utilization: Math.round(utilization * 1000) / 1000,
    };
  }

  snapshot(): MetricsSnapshot {
    const gauges: Record<string, number> = {};
    for (const [name, read] of this.gauges) gauges[name] = read();
    const snapshot: MetricsSnapshot = {
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
      connections: { ...this.open },
      acceptedConnections: { ...this.accepted },
      refusedConnections: { ...this.refused },
      counters: { ...this.counters },
      gauges,
      // Reading never resets anything: every reader sees the same last window.
      eventLoop: this.lastWindow ?? this.currentWindow(),
      memory: { rssBytes: process.memoryUsage.rss() },
    };
    return snapshot;
  }

  close(): void {
    clearInterval(this.roller);
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
