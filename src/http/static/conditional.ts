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

const MONTHS = 'JanFebMarAprMayJunJulAugSepOctNovDec';
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d\\d):(\\d\\d):(\\d\\d)';
// RFC 9110 §5.6.7: the preferred IMF-fixdate and the two obsolete forms, exactly as written.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * An HTTP-date (RFC 9110 §5.6.7) in ms, or NaN. Strict: a value that is not an HTTP-date must
 * be ignored (§13.1.3), and Date.parse would take "3000" or a date without "GMT" as one.
 */
export function parseHttpDate(value: string): number {
  let m = IMF_FIXDATE.exec(value);
  if (m !== null) return utc(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = RFC850_DATE.exec(value);
  if (m !== null) {
    // A two-digit year more than 50 years ahead is the most recent past year with those digits.
    const yy = Number(m[3]);
    const now = new Date().getUTCFullYear();
    let year = now - (now % 100) + yy;
    if (year > now + 50) year -= 100;
    return utc(year, m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  }
  m = ASCTIME_DATE.exec(value);
  if (m !== null) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  return NaN;
}

function utc(year: number, month: string, day: number, hh: string, mm: string, ss: string): number {
  const mon = MONTHS.indexOf(month) / 3;
  const h = Number(hh);
  const min = Number(mm);
  const sec = Number(ss);
  // Leap second 60 allowed by the grammar; it reads as the next second.
  if (h > 23 || min > 59 || sec > 60 || day < 1) return NaN;
  const t = Date.UTC(year, mon, day, h, min, sec);
  // Date.UTC rolls 31 Feb over into March: such a day is not a date.
  return new Date(t).getUTCDate() === day || sec === 60 ? t : NaN;
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
