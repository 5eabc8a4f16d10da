// One coarse interval checks every armed deadline, instead of a timer object per
// connection per request: arming a deadline is a field store, so the hot path allocates nothing.
import { preciseNow } from './clock.js';

export interface Timed {
  /** Epoch milliseconds at which onDeadline fires; 0 = disarmed. */
  deadline: number;
  onDeadline(now: number): void;
}

/** Sweepers whose timer runs, so that a test that moved the clock can sweep them now. */
const running = new Set<Sweeper>();

export class Sweeper {
  private readonly members = new Set<Timed>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly resolutionMs = 250) {}

  add(member: Timed): void {
    this.members.add(member);
    if (this.timer === null) {
      // preciseNow, not Date.now: deadlines armed on a test clock are swept on the same clock.
      this.timer = setInterval(() => this.sweep(preciseNow()), this.resolutionMs);
      this.timer.unref();
      running.add(this);
    }
  }

  delete(member: Timed): void {
    this.members.delete(member);
  }

  get size(): number {
    return this.members.size;
  }

  sweep(now: number): void {
    for (const member of this.members) {
      if (member.deadline !== 0 && member.deadline <= now) {
        member.deadline = 0;
        member.onDeadline(now);
      }
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.members.clear();
    running.delete(this);
  }
}

/** Tests only: what every running sweeper's next tick would do, at preciseNow(), without waiting for it. */
export function sweepNow(): void {
  const now = preciseNow();
  for (const sweeper of running) sweeper.sweep(now);
}
