// Range header parsing, RFC 9110 §14.1.1 (bytes unit only):
//   Range = ranges-specifier; ranges-specifier = range-unit "=" range-set
//   range-set = 1#range-spec; int-range = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length

/** An inclusive byte range. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Most ranges honoured in one request; more is answered with the whole representation. */
export const MAX_RANGES = 16;

/**
 * null: ignore the header and send 200 (unknown unit, malformed, or a pathological set);
 * "unsatisfiable": 416; otherwise the ranges to send (sorted and coalesced when they overlap).
 */
export function parseRange(field: string, size: number): ByteRange[] | 'unsatisfiable' | null {
  const eq = field.indexOf('=');
  if (eq < 0) return null;
  // range-unit is case-insensitive (RFC 9110 §14.1).
  if (field.slice(0, eq).trim().toLowerCase() !== 'bytes') return null;
  const specs = field.slice(eq + 1).split(',');
  let count = 0;
  const ranges: ByteRange[] = [];
  for (const raw of specs) {
    const spec = raw.trim();
    if (spec === '') continue; // empty list elements are allowed (RFC 9110 §5.6.1)
    if (++count > MAX_RANGES) return null;
    const dash = spec.indexOf('-');
    if (dash < 0) return null;
    const first = spec.slice(0, dash);
    const last = spec.slice(dash + 1);
    if (first === '') {
      const suffix = parseDigits(last);
      if (suffix < 0) return null;
      if (suffix === 0 || size === 0) continue; // unsatisfiable on its own
      ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    const start = parseDigits(first);
    if (start < 0) return null;
    let end = size - 1;
    if (last !== '') {
      end = parseDigits(last);
      // last < first is invalid syntax (§14.1.1); past 2^53 both saturate: compare the digits.
      if (end < 0 || end < start || (end === HUGE && start === HUGE && digitsLess(last, first))) return null;
      if (end > size - 1) end = size - 1;
    }
    if (start >= size) continue;
    ranges.push({ start, end });
  }
  if (count === 0) return null;
  if (ranges.length === 0) return 'unsatisfiable';
  return coalesce(ranges);
}

/** Where positions saturate: beyond any file, so they still compare right against a size. */
const HUGE = 2 ** 53;

/** A non-negative decimal integer (saturated at HUGE), or -1 when it is not 1*DIGIT. */
function parseDigits(s: string): number {
  if (s.length === 0) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
    if (n > HUGE) n = HUGE;
  }
  return n;
}

/** a < b for digit strings of any length. */
function digitsLess(a: string, b: string): boolean {
  a = a.replace(/^0+/, '');
  b = b.replace(/^0+/, '');
  return a.length !== b.length ? a.length < b.length : a < b;
}

/**
 * When ranges overlap or touch, sort and merge them: RFC 9110 §14.2 lets a server coalesce
 * ranges regardless of order, and it defeats "many overlapping ranges" amplification.
 * Disjoint ranges keep the order the client asked for.
 */
function coalesce(ranges: ByteRange[]): ByteRange[] {
  if (ranges.length === 1) return ranges;
  const sorted = ranges.slice().sort((a, b) => a.start - b.start);
  let overlap = false;
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.start <= sorted[i - 1]!.end + 1) {
      overlap = true;
      break;
    }
  }
  if (!overlap) return ranges;
  const out: ByteRange[] = [{ ...sorted[0]! }];
  for (let i = 1; i < sorted.length; i++) {
    const r = sorted[i]!;
    const prev = out[out.length - 1]!;
    if (r.start <= prev.end + 1) prev.end = Math.max(prev.end, r.end);
    else out.push({ ...r });
  }
  return out;
}
