// A clock the test moves: the HTTP and MX/1 stream connections read time through coarseNow()
// and their deadlines are swept by src/loop/sweeper.ts, so a test can step past a deadline (or
// just short of it) and sweep at once, instead of sleeping and hoping the machine kept up.
import { setTestClock } from '../../src/loop/clock.js';
import { sweepNow } from '../../src/loop/sweeper.js';

export interface TestClock {
  now(): number;
  /** Moves time forward by `ms` and runs every armed sweeper, as its next tick would. */
  advance(ms: number): void;
  /**
   * Moves time forward `stepMs` at a time (default 250, the sweeper's tick), letting I/O run
   * between steps, until `done()`; resolves with the clock time that took, and fails naming
   * `what` once `limitMs` of clock time (default 60 s) passed without it.
   */
  advanceUntil(done: () => boolean, opts: { what: string; stepMs?: number; limitMs?: number }): Promise<number>;
  /** Gives the real clock back. */
  restore(): void;
}

/** Freezes the process's coarse clock at the current time; call restore() when done. */
export function useTestClock(): TestClock {
  let now = Date.now();
  setTestClock(now);
  const advance = (ms: number): void => {
    now += ms;
    setTestClock(now);
    sweepNow();
  };
  return {
    now: () => now,
    advance,
    async advanceUntil(done, opts) {
      const start = now;
      const limit = opts.limitMs ?? 60_000;
      while (!done()) {
        if (now - start >= limit) throw new Error(`${limit} ms of test clock passed without ${opts.what}`);
        advance(opts.stepMs ?? 250);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      return now - start;
    },
    restore: () => setTestClock(null),
  };
}
