// Graceful shutdown of a set of listeners: stop accepting on all of them at once, let every
// connection finish what it is doing, and cut what is left when the timeout passes.
import type { Listener } from './listener.js';

export interface ShutdownReport {
  /** Connections open when shutdown began. */
  draining: number;
  /** Connections still open at the timeout whose work was cut (0 = a clean stop). */
  cut: number;
  /** Connections still open at the timeout (cut or merely idle). */
  leftAtTimeout: number;
}

export async function drainListeners(listeners: readonly Listener[], timeoutMs: number, log: (line: string) => void): Promise<ShutdownReport> {
  for (const l of listeners) l.stopAccepting();
  const draining = listeners.reduce((n, l) => n + l.sockets.size, 0);
  log(`muxd stopping: ${draining} connection${draining === 1 ? '' : 's'} draining`);
  for (const l of listeners) l.drain();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    Promise.all(listeners.map((l) => l.idle())).then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!timedOut) return { draining, cut: 0, leftAtTimeout: 0 };
  const leftAtTimeout = listeners.reduce((n, l) => n + l.sockets.size, 0);
  const cut = listeners.reduce((n, l) => n + l.abort(), 0);
  await Promise.all(listeners.map((l) => l.idle()));
  return { draining, cut, leftAtTimeout };
}
