// Time for the hot path. Reading the clock per request (Date.now) and formatting a date per
// response cost more than the rest of a cached response, so both are cached: `coarseNow` is
// refreshed by a timer every CLOCK_TICK_MS, and the Date header (RFC 9110 §6.6.1, one-second
// resolution) is formatted at most once per second.

const CLOCK_TICK_MS = 50;

let now = 0;
let ticking = false;
/** Set by tests only (setTestClock): time stands still at this value until moved. */
let fixed: number | null = null;

/** Milliseconds since the epoch, at most CLOCK_TICK_MS old: for deadlines and cache ages. */
export function coarseNow(): number {
  if (fixed !== null) return fixed;
  if (!ticking) {
    ticking = true;
    now = Date.now();
    // unref: the clock never keeps the process alive on its own.
    setInterval(() => {
      now = Date.now();
    }, CLOCK_TICK_MS).unref();
  }
  return now;
}

/** Exact milliseconds since the epoch (Date.now()), or the test clock when one is set. */
export function preciseNow(): number {
  return fixed ?? Date.now();
}

/**
 * Tests only: make coarseNow() and preciseNow() return `ms` until the next call; null gives the
 * real clock back. Deadline tests move time themselves instead of racing sleeps against timers.
 */
export function setTestClock(ms: number | null): void {
  fixed = ms;
}

let cachedSecond = -1;
let cachedDate = '';
let cachedDateLine = '';

/** IMF-fixdate of the current second, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
export function httpDate(): string {
  const second = Math.floor(coarseNow() / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedDate = new Date(second * 1000).toUTCString();
    cachedDateLine = 'Date: ' + cachedDate + '\r\n';
  }
  return cachedDate;
}

/** "Date: <IMF-fixdate>\r\n", built once per second. */
export function dateHeaderLine(): string {
  httpDate();
  return cachedDateLine;
}

/** The second httpDate() last formatted; lets callers rebuild per-second caches lazily. */
export function httpDateSecond(): number {
  httpDate();
  return cachedSecond;
}
