// STATS_OK's payload, built for the reply limit it must fit: the whole report when it fits, else
// its small fixed part marked truncated (docs/protocol.md §11: a datagram cannot carry a big one).
// Built from the report object, so nobody parses encoded JSON to shrink it.

/** Builds STATS_OK's payload, at most `maxBytes` long whenever the fixed part fits. */
export type StatsSource = (maxBytes: number) => Buffer;

/** The fields every STATS report carries; the fixed part is made of these alone. */
export interface StatsReport {
  uptimeSeconds?: unknown;
  chatUsers?: unknown;
  limits?: unknown;
  [field: string]: unknown;
}

/** A StatsSource over a report built when asked (the metrics snapshot of that moment). */
export function statsSource(report: () => StatsReport): StatsSource {
  return (maxBytes) => encodeStats(report(), maxBytes);
}

export function encodeStats(report: StatsReport, maxBytes: number): Buffer {
  const full = Buffer.from(JSON.stringify(report), 'utf8');
  if (full.length <= maxBytes) return full;
  const { uptimeSeconds, chatUsers, limits } = report;
  return Buffer.from(JSON.stringify({ truncated: true, uptimeSeconds, chatUsers, limits }), 'utf8');
}
