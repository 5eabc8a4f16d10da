// From a request-target to the decoded path segments to look up, or the status to refuse with.
// Segments are decoded one by one (RFC 3986 §2.1, UTF-8 per §2.5), so an encoded slash or
// backslash can never become a separator, and `..` (raw or encoded) is refused outright: a
// target that survives this function names a path under its base directory by construction.
import { absoluteFormPathStart } from '../authority.js';

export interface ParsedTarget {
  /** Decoded, non-empty segments ("//a///b" gives ["a", "b"]). */
  segments: string[];
  /** The path named a directory form: it ended in "/" (or was "/"). */
  trailingSlash: boolean;
  /** The query including its "?", or "" (kept for redirects). */
  query: string;
}

export type TargetResult = ParsedTarget | { error: 400 };

const BAD: { error: 400 } = { error: 400 };
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Hex digit value per byte, -1 when not a hex digit. */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

/**
 * Strips absolute-form (RFC 9112 §3.2.2: "http://host/p" is looked up as "/p"), the query and
 * any fragment, then splits and decodes the path.
 */
export function parseTarget(target: string): TargetResult {
  let start = 0;
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    const schemeEnd = absoluteFormPathStart(target);
    if (schemeEnd < 0) return BAD;
    start = schemeEnd;
  }
  let end = target.length;
  let query = '';
  const q = target.indexOf('?', start);
  if (q >= 0) {
    end = q;
    const hash = target.indexOf('#', q);
    query = hash < 0 ? target.slice(q) : target.slice(q, hash);
  } else {
    const hash = target.indexOf('#', start);
    if (hash >= 0) end = hash;
  }
  const segments: string[] = [];
  let segStart = start;
  for (let i = start; i <= end; i++) {
    if (i < end && target.charCodeAt(i) !== 0x2f) continue;
    if (i > segStart) {
      const seg = decodeSegment(target, segStart, i);
      if (seg === null) return BAD;
      segments.push(seg);
    }
    segStart = i + 1;
  }
  // An absolute-form target without a path ("http://h") means "/" (RFC 9112 §3.2.2).
  const trailingSlash = end === start || target.charCodeAt(end - 1) === 0x2f;
  return { segments, trailingSlash, query };
}

/**
 * One segment, decoded; null when it is invalid (bad percent-encoding, invalid UTF-8) or
 * dangerous once decoded ("." / "..", or containing "/", "\" or NUL).
 */
function decodeSegment(target: string, from: number, to: number): string | null {
  let plain = true;
  for (let i = from; i < to; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x25 /* % */ || c >= 0x80 || c === 0x5c /* \ */ || c === 0) {
      plain = false;
      break;
    }
  }
  let seg: string;
  if (plain) {
    seg = target.slice(from, to);
  } else {
    // The target is a latin1 view of the bytes as sent: rebuild the bytes, then decode.
    const raw = Buffer.from(target.slice(from, to), 'latin1');
    const out = Buffer.allocUnsafe(raw.length);
    let n = 0;
    for (let i = 0; i < raw.length; i++) {
      let b = raw[i]!;
      if (b === 0x25) {
        if (i + 2 >= raw.length) return null;
        const hi = HEX[raw[i + 1]!]!;
        const lo = HEX[raw[i + 2]!]!;
        if (hi < 0 || lo < 0) return null;
        b = (hi << 4) | lo;
        i += 2;
      }
      // Decoded separators and NUL never reach the file system.
      if (b === 0x2f || b === 0x5c || b === 0) return null;
      out[n++] = b;
    }
    try {
      seg = utf8.decode(out.subarray(0, n));
    } catch {
      return null;
    }
  }
  if (seg === '.' || seg === '..') return null;
  return seg;
}

/** Dotfiles and dot-directories are hidden, except a leading /.well-known/ (RFC 8615). */
export function isHidden(segments: readonly string[], allowWellKnown: boolean): boolean {
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s.charCodeAt(0) !== 0x2e) continue;
    if (i === 0 && allowWellKnown && s === '.well-known') continue;
    return true;
  }
  return false;
}

/**
 * The path-only Location for a directory's slash form. Leading slashes collapse to one (a
 * "//host" Location would be protocol-relative: an open redirect) and every segment is
 * percent-encoded again, so nothing in it can be read as a scheme or authority.
 */
export function directoryLocation(segments: readonly string[], query: string): string {
  let loc = '/';
  for (const s of segments) loc += encodeSegment(s) + '/';
  return loc + encodeQuery(query);
}

/** Percent-encodes a decoded segment for use in a URL path (names with spaces, "&", CJK...). */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s);
}

/** The query as sent may hold any byte the parser let through; keep it to safe ASCII. */
function encodeQuery(query: string): string {
  if (query === '') return '';
  let out = '';
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    out += c > 0x20 && c < 0x7f && c !== 0x22 && c !== 0x3c && c !== 0x3e && c !== 0x5c
      ? query[i]
      : '%' + (c < 16 ? '0' : '') + (c & 0xff).toString(16).toUpperCase();
  }
  return out;
}
