// A clock the test moves: the HTTP and MX/1 stream connections read time through coarseNow()
// and their deadlines are swept by src/loop/sweeper.ts, so a test can step past a deadline (or
// just short of it) and sweep at once, instead of sleeping and hoping the machine kept up.
import { setTestClock } from '../../src/loop/clock.js';
import { sweepNow } from '../../src/loop/sweeper.js';

export interface TestClock {
  now(): number;
  /** Moves time forward by `ms` and runs every armed sweeper, as its next tick would. */
  advance(ms: number): void;
  /** Gives the real clock back. */
  restore(): void;
}

/** Freezes the process's coarse clock at the current time; call restore() when done. */
export function useTestClock(): TestClock {
  let now = Date.now();
  setTestClock(now);
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
      setTestClock(now);
      sweepNow();
    },
    restore: () => setTestClock(null),
  };
}
