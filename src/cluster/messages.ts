// IPC between the primary and its workers (node:cluster's channel, JSON-serialised). The channel
// is only between our own processes, but every message is still checked before use: a worker
// that sends something malformed (a bug, a half-written upgrade) must never take the primary down.
import type { MetricsSnapshot } from '../loop/metrics.js';
import type { ReadyListener } from '../server/ready.js';
import { parseChatDown, parseChatUp, type ChatDown, type ChatUp } from '../chat/events.js';

/** Worker -> primary. */
export type WorkerMessage =
  /** The worker listens: each of its listeners (the primary prints one ready line per name). */
  | { t: 'ready'; listeners: ReadyListener[] }
  /** Sent about once a second: what STATS gathers into the whole-server view. */
  | { t: 'stats'; snapshot: MetricsSnapshot }
  /** A request of the worker's chat room to the primary's hub. */
  | { t: 'chat'; up: ChatUp }
  /** With --tls-cert: the worker waits for the primary's TLS material before it listens. */
  | { t: 'tls-wanted' };

/** Primary -> worker. */
export type PrimaryMessage =
  /** Drain and exit, as one process does on SIGTERM. */
  | { t: 'shutdown' }
  /** The latest whole-server view; a worker answers STATS and the stats route with it. */
  | { t: 'aggregate'; stats: unknown }
  /** The hub's next chat event, in the hub's order. */
  | { t: 'chat'; down: ChatDown }
  /**
   * The pair (PEM) and session ticket keys (base64 of 48 bytes) for new handshakes: the same on
   * every worker, so a session resumes on any of them. Sent on 'tls-wanted' and on each rotation.
   */
  | { t: 'tls'; cert: string; key: string; ticketKeys: string };

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

function isReadyListener(v: unknown): v is ReadyListener {
  return isRecord(v) && typeof v.name === 'string' && /^[a-z0-9-]+$/.test(v.name) && typeof v.display === 'string' && !/[\r\n]/.test(v.display);
}

export function parseWorkerMessage(m: unknown): WorkerMessage | null {
  if (!isRecord(m)) return null;
  switch (m.t) {
    case 'ready':
      return Array.isArray(m.listeners) && m.listeners.every(isReadyListener) ? { t: 'ready', listeners: m.listeners.map((l) => ({ name: l.name, display: l.display })) } : null;
    case 'stats':
      return isRecord(m.snapshot) && isRecord(m.snapshot.connections) && isRecord(m.snapshot.counters) ? (m as WorkerMessage) : null;
    case 'chat': {
      const up = parseChatUp(m.up);
      return up === null ? null : { t: 'chat', up };
    }
    case 'tls-wanted':
      return { t: 'tls-wanted' };
    default:
      return null;
  }
}

/** base64 of exactly 48 bytes (Node's ticket key length). */
const TICKET_KEYS_B64 = /^[A-Za-z0-9+/]{64}$/;

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
    case 'tls':
      return typeof m.cert === 'string' && typeof m.key === 'string' && typeof m.ticketKeys === 'string' && TICKET_KEYS_B64.test(m.ticketKeys) ? { t: 'tls', cert: m.cert, key: m.key, ticketKeys: m.ticketKeys } : null;
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
