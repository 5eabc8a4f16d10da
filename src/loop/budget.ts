// Server-wide budgets. A per-connection limit bounds one client; these bound all of them
// together, so that a thousand connections each at its own limit still leave room for everyone
// else (nginx's worker_connections, Redis's maxclients). They know no protocol: the caller
// names the limit in the error it answers with.

/** A count of slots (open transfers, say): taken one at a time, given back exactly once. */
export class SlotBudget {
  private inUse = 0;

  constructor(
    /** Most slots held at once. */
    readonly limit: number,
  ) {}

  get used(): number {
    return this.inUse;
  }

  /** Takes a slot, or returns false when none is free. */
  tryAcquire(): boolean {
    if (this.inUse >= this.limit) return false;
    this.inUse++;
    return true;
  }

  release(): void {
    if (this.inUse > 0) this.inUse--;
  }
}

/**
 * Bytes the whole server holds on behalf of clients (unsent output, say). Nothing is refused:
 * callers add and subtract what they hold and ask `pressure()` to size their next step.
 */
export class ByteBudget {
  private held = 0;

  constructor(
    /** Bytes past which the server counts as under pressure. */
    readonly limit: number,
  ) {}

  get used(): number {
    return this.held;
  }

  add(n: number): void {
    this.held += n;
  }

  sub(n: number): void {
    this.held = Math.max(0, this.held - n);
  }

  /** True once the server as a whole holds more than its limit. */
  get over(): boolean {
    return this.held > this.limit;
  }

  /**
   * A chunk size scaled down as the budget fills: `full` while under half the limit, then
   * shrinking linearly to `min` at the limit and beyond.
   */
  chunk(full: number, min: number): number {
    const half = this.limit / 2;
    if (this.held <= half) return full;
    if (this.held >= this.limit) return min;
    const scaled = Math.floor(full - ((full - min) * (this.held - half)) / half);
    return Math.max(min, scaled);
  }
}
