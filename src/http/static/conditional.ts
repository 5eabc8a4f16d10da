// Conditional requests, RFC 9110 §13. Entity tags are compared without building arrays:
// the field value is scanned in place, tag by tag.

/** The validator fields of one request, gathered in a single pass over the headers. */
export interface Conditions {
  ifMatch: string | undefined;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
  ifUnmodifiedSince: string | undefined;
  ifRange: string | undefined;
  range: string | undefined;
  acceptEncoding: string | undefined;
}

/** Which names collectConditions looks for, with their slot. */
export function collectConditions(headers: readonly string[]): Conditions {
  const c: Conditions = {
    ifMatch: undefined,
    ifNoneMatch: undefined,
    ifModifiedSince: undefined,
    ifUnmodifiedSince: undefined,
    ifRange: undefined,
    range: undefined,
    acceptEncoding: undefined,
  };
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    switch (name) {
      case 'accept-encoding':
        // A list field sent on several lines is one list (RFC 9110 §5.3).
        c.acceptEncoding = c.acceptEncoding === undefined ? value : c.acceptEncoding + ', ' + value;
        break;
      case 'if-none-match':
        c.ifNoneMatch = c.ifNoneMatch === undefined ? value : c.ifNoneMatch + ', ' + value;
        break;
      case 'if-match':
        c.ifMatch = c.ifMatch === undefined ? value : c.ifMatch + ', ' + value;
        break;
      case 'if-modified-since':
        c.ifModifiedSince ??= value;
        break;
      case 'if-unmodified-since':
        c.ifUnmodifiedSince ??= value;
        break;
      case 'if-range':
        c.ifRange ??= value;
        break;
      case 'range':
        // Two Range fields make no sense together; a second one is ignored.
        c.range ??= value;
        break;
    }
  }
  return c;
}

/**
 * Does the If-Match / If-None-Match list contain `etag` (a strong tag like "\"a-b\"")?
 * `weak` selects weak comparison (RFC 9110 §8.8.3.2: W/ prefixes ignored), used by
 * If-None-Match; strong comparison (If-Match) never matches a weak tag. "*" matches any.
 */
export function etagListMatches(field: string, etag: string, weak: boolean): boolean {
  let i = 0;
  const n = field.length;
  while (i < n) {
    const c = field.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x2c) {
      i++;
      continue;
    }
    if (c === 0x2a /* * */) return true;
    let isWeak = false;
    if (c === 0x57 /* W */ && field.charCodeAt(i + 1) === 0x2f /* / */) {
      isWeak = true;
      i += 2;
    }
    if (field.charCodeAt(i) !== 0x22) return false; // malformed: stop, no match
    const close = field.indexOf('"', i + 1);
    if (close < 0) return false;
    if ((weak || !isWeak) && close + 1 - i === etag.length && field.startsWith(etag, i)) return true;
    i = close + 1;
  }
  return false;
}

/** An HTTP-date in ms (second precision), or NaN when it does not parse. */
export function parseHttpDate(value: string): number {
  // Date.parse accepts IMF-fixdate, RFC 850 and asctime forms (RFC 9110 §5.6.7).
  return Date.parse(value);
}

export type PreconditionOutcome = 200 | 304 | 412;

/**
 * RFC 9110 §13.2.2 order: If-Match, else If-Unmodified-Since (412 when false); then
 * If-None-Match, else If-Modified-Since (304 for GET/HEAD when false).
 * `lastModifiedMs` is whole seconds, as Last-Modified says.
 */
export function evaluatePreconditions(c: Conditions, etag: string, lastModifiedMs: number): PreconditionOutcome {
  if (c.ifMatch !== undefined) {
    if (!etagListMatches(c.ifMatch, etag, false)) return 412;
  } else if (c.ifUnmodifiedSince !== undefined) {
    const since = parseHttpDate(c.ifUnmodifiedSince);
    if (!Number.isNaN(since) && lastModifiedMs > since) return 412;
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagListMatches(c.ifNoneMatch, etag, true)) return 304;
  } else if (c.ifModifiedSince !== undefined) {
    const since = parseHttpDate(c.ifModifiedSince);
    if (!Number.isNaN(since) && lastModifiedMs <= since) return 304;
  }
  return 200;
}

/**
 * If-Range (RFC 9110 §13.1.5): the range applies only when the validator matches the current
 * representation: a strong entity tag equal to ours, or a date exactly equal to Last-Modified.
 */
export function ifRangeHolds(ifRange: string | undefined, etag: string, lastModified: string): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.charCodeAt(0) === 0x22) return v === etag;
  if (v.startsWith('W/')) return false; // a weak tag never validates a range
  return v === lastModified;
}
