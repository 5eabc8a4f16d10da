// IPC between the primary and its workers (node:cluster's channel, JSON-serialised). The channel
// is only between our own processes, but every message is still checked before use: a worker
// that sends something malformed (a bug, a half-written upgrade) must never take the primary down.
import type { MetricsSnapshot } from '../loop/metrics.js';
import { parseChatDown, parseChatUp, type ChatDown, type ChatUp } from '../chat/events.js';

/** Worker -> primary. */
export type WorkerMessage =
  /** The worker listens: its ready lines (printed once by the primary) and the ports it got. */
  | { t: 'ready'; lines: string[]; ports: Record<string, number> }
  /** Sent about once a second: what STATS gathers into the whole-server view. */
  | { t: 'stats'; snapshot: MetricsSnapshot }
  /** A request of the worker's chat room to the primary's hub. */
  | { t: 'chat'; up: ChatUp };

/** Primary -> worker. */
export type PrimaryMessage =
  /** Drain and exit, as one process does on SIGTERM. */
  | { t: 'shutdown' }
  /** The latest whole-server view; a worker answers STATS and the stats route with it. */
  | { t: 'aggregate'; stats: unknown }
  /** The hub's next chat event, in the hub's order. */
  | { t: 'chat'; down: ChatDown };

/** Environment variable that makes a forked `muxd serve` a worker; its value is a WorkerInfo. */
export const WORKER_ENV = 'MUXD_CLUSTER_WORKER';

export interface WorkerInfo {
  /** Stable slot number 1..N: a respawned worker takes its predecessor's slot. */
  slot: number;
  /** Incremented by every SIGHUP reload. */
  generation: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPorts(v: unknown): v is Record<string, number> {
  return isRecord(v) && Object.values(v).every((p) => Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 65535);
}

export function parseWorkerMessage(m: unknown): WorkerMessage | null {
  if (!isRecord(m)) return null;
  switch (m.t) {
    case 'ready':
      return Array.isArray(m.lines) && m.lines.every((l) => typeof l === 'string') && isPorts(m.ports) ? (m as WorkerMessage) : null;
    case 'stats':
      return isRecord(m.snapshot) && isRecord(m.snapshot.connections) && isRecord(m.snapshot.counters) ? (m as WorkerMessage) : null;
    case 'chat': {
      const up = parseChatUp(m.up);
      return up === null ? null : { t: 'chat', up };
    }
    default:
      return null;
  }
}

export function parsePrimaryMessage(m: unknown): PrimaryMessage | null {
  if (!isRecord(m)) return null;
  switch (m.t) {
    case 'shutdown':
      return { t: 'shutdown' };
    case 'aggregate':
      return isRecord(m.stats) ? (m as PrimaryMessage) : null;
    case 'chat': {
      const down = parseChatDown(m.down);
      return down === null ? null : { t: 'chat', down };
    }
    default:
      return null;
  }
}

export function parseWorkerInfo(raw: string | undefined): WorkerInfo | null {
  if (raw === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isRecord(v) || !Number.isInteger(v.slot) || !Number.isInteger(v.generation)) return null;
  return v as unknown as WorkerInfo;
}
