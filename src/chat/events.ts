// The messages of a chat room that spans processes (and, through Redis, machines). A room in each
// serving process (RelayedRoom) sends requests up to a hub; the hub (the cluster primary, or the
// Redis relay) decides names and puts every event into one order, which every room applies.
// Plain JSON-safe objects: they cross node:cluster's IPC channel and Redis pub/sub as they are.

/** Room -> hub. `m` numbers a member within its process (never reused there). */
export type ChatUp =
  | { c: 'join'; m: number; name: string }
  | { c: 'leave'; m: number }
  | { c: 'say'; m: number; text: string }
  | { c: 'announce'; text: string };

/**
 * Hub -> room, in the one order of the hub. `origin` is set only in the copy sent to the process
 * the event came from: it names that process's member, which must not be echoed (say) or which
 * the join answers (joined).
 */
export type ChatDown =
  /** The whole room, in join order: first thing a process hears, and after a resynchronisation. */
  | { c: 'roster'; names: string[] }
  | { c: 'joined'; name: string; origin?: number }
  | { c: 'left'; name: string; origin?: number }
  | { c: 'said'; name: string; text: string; origin?: number }
  | { c: 'announced'; text: string }
  /** A join of this process that the hub refused (name taken, relay unavailable). */
  | { c: 'refused'; m: number; code: number; message: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isMemberId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isOrigin = (v: unknown): boolean => v === undefined || isMemberId(v);

export function parseChatUp(v: unknown): ChatUp | null {
  if (!isRecord(v)) return null;
  switch (v.c) {
    case 'join':
      return isMemberId(v.m) && typeof v.name === 'string' ? { c: 'join', m: v.m, name: v.name } : null;
    case 'leave':
      return isMemberId(v.m) ? { c: 'leave', m: v.m } : null;
    case 'say':
      return isMemberId(v.m) && typeof v.text === 'string' ? { c: 'say', m: v.m, text: v.text } : null;
    case 'announce':
      return typeof v.text === 'string' ? { c: 'announce', text: v.text } : null;
    default:
      return null;
  }
}

export function parseChatDown(v: unknown): ChatDown | null {
  if (!isRecord(v)) return null;
  switch (v.c) {
    case 'roster':
      return Array.isArray(v.names) && v.names.every((n) => typeof n === 'string') ? (v as ChatDown) : null;
    case 'joined':
    case 'left':
      return typeof v.name === 'string' && isOrigin(v.origin) ? (v as ChatDown) : null;
    case 'said':
      return typeof v.name === 'string' && typeof v.text === 'string' && isOrigin(v.origin) ? (v as ChatDown) : null;
    case 'announced':
      return typeof v.text === 'string' ? (v as ChatDown) : null;
    case 'refused':
      return isMemberId(v.m) && Number.isInteger(v.code) && typeof v.message === 'string' ? (v as ChatDown) : null;
    default:
      return null;
  }
}
