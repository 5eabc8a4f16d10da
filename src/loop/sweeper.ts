// One coarse interval checks every armed deadline, instead of a timer object per
// connection per request: arming a deadline is a field store, so the hot path allocates nothing.

export interface Timed {
  /** Epoch milliseconds at which onDeadline fires; 0 = disarmed. */
  deadline: number;
  onDeadline(now: number): void;
}

export class Sweeper {
  private readonly members = new Set<Timed>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly resolutionMs = 250) {}

  add(member: Timed): void {
    this.members.add(member);
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(Date.now()), this.resolutionMs);
      this.timer.unref();
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
  }
}
