// When to replace a dead worker, and when to give up: pure (time is passed in), so the table of
// cases in test/cluster/policy.test.ts pins it down without waiting for real seconds.
//
// Each slot has its own backoff: 1 s, doubling to 30 s; a worker that stayed up for 60 s was
// healthy, so its successor starts again at 1 s. Deaths of every slot are counted together:
// more than 5 in any 60 s is a crash loop (a bad deploy, a full disk), and restarting faster
// or slower would not fix it: the primary stops everything and exits 1.

export interface RestartPolicyOptions {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** A worker up this long resets its slot's backoff. */
  healthyAfterMs: number;
  /** More deaths than this within windowMs is a crash loop. */
  maxDeaths: number;
  windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  initialBackoffMs: 1000,
  maxBackoffMs: 30_000,
  healthyAfterMs: 60_000,
  maxDeaths: 5,
  windowMs: 60_000,
};

export type DeathVerdict = { action: 'respawn'; delayMs: number } | { action: 'crash-loop'; deaths: number };

interface SlotState {
  startedAt: number;
  nextBackoffMs: number;
  restarts: number;
}

export class RestartPolicy {
  private readonly opts: RestartPolicyOptions;
  private readonly slots = new Map<number, SlotState>();
  /** Times of recent deaths, oldest first, none older than the window. */
  private readonly deaths: number[] = [];

  constructor(opts: Partial<RestartPolicyOptions> = {}) {
    this.opts = { ...DEFAULT_RESTART_POLICY, ...opts };
  }

  /** A worker for this slot was forked. */
  started(slot: number, now: number): void {
    const state = this.slots.get(slot);
    if (state) state.startedAt = now;
    else this.slots.set(slot, { startedAt: now, nextBackoffMs: this.opts.initialBackoffMs, restarts: 0 });
  }

  /** The slot's worker died unasked: respawn after a delay, or declare a crash loop. */
  died(slot: number, now: number): DeathVerdict {
    this.deaths.push(now);
    while (this.deaths.length > 0 && this.deaths[0]! <= now - this.opts.windowMs) this.deaths.shift();
    if (this.deaths.length > this.opts.maxDeaths) return { action: 'crash-loop', deaths: this.deaths.length };
    const state = this.slots.get(slot) ?? { startedAt: now, nextBackoffMs: this.opts.initialBackoffMs, restarts: 0 };
    if (now - state.startedAt >= this.opts.healthyAfterMs) state.nextBackoffMs = this.opts.initialBackoffMs;
    const delayMs = state.nextBackoffMs;
    state.nextBackoffMs = Math.min(delayMs * 2, this.opts.maxBackoffMs);
    state.restarts++;
    this.slots.set(slot, state);
    return { action: 'respawn', delayMs };
  }

  /** How many times this slot's worker was replaced after dying. */
  restarts(slot: number): number {
    return this.slots.get(slot)?.restarts ?? 0;
  }

  /** Deaths within the window ending now. */
  recentDeaths(now: number): number {
    return this.deaths.filter((t) => t > now - this.opts.windowMs).length;
  }
}
