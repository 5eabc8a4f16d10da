// A wall clock read at most once per second for the Date header (RFC 9110 §6.6.1):
// formatting a date per response costs more than the rest of a cached response.

let cachedSecond = -1;
let cachedDate = '';
let cachedDateLine = '';

/** IMF-fixdate of the current second, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
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
