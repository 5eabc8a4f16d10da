// A wall clock read at most once per second for the Date header (RFC 9110 §6.6.1):
// formatting a date per response costs more than the rest of a cached response.

let cachedSecond = -1;
let cachedDate = '';

/** IMF-fixdate of the current second, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedDate = new Date(second * 1000).toUTCString();
  }
  return cachedDate;
}

/** The second httpDate() last formatted; lets callers rebuild per-second caches lazily. */
export function httpDateSecond(): number {
  httpDate();
  return cachedSecond;
}
