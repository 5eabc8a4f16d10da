// Waiting in tests: every wait has a deadline and says what it waited for, so a regression
// fails in seconds with a message instead of hanging until the runner's timeout.

export interface WaitOptions {
  /** What is awaited, for the failure message: "the server to close the connection". */
  what: string;
  /** Fail after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll period (default 10 ms); 0 re-checks on the next turn of the event loop. */
  stepMs?: number;
  /** Appended to the failure message: the state that kept the condition false. */
  detail?: () => string;
}

const pause = (ms: number): Promise<void> =>
  new Promise((resolve) => (ms <= 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));

/**
 * Polls `check` until it returns something other than undefined or false, and resolves with
 * that; rejects with "timed out after N ms waiting for <what>" once the deadline passes.
 */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    const elapsed = Date.now() - started;
    if (elapsed >= timeoutMs) {
      const detail = opts.detail ? ` (${opts.detail()})` : '';
      throw new Error(`timed out after ${elapsed} ms waiting for ${opts.what}${detail}`);
    }
    await pause(Math.min(opts.stepMs ?? 10, timeoutMs - elapsed));
  }
}

/** Rejects with "timed out after N ms waiting for <what>" unless `promise` settles first. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${Date.now() - started} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
