// The authority of a request: Host field values and absolute-form targets, RFC 9112 §3.2 and RFC 3986 §3.2.2:
//   Host      = uri-host [ ":" port ]
//   uri-host  = IP-literal / IPv4address / reg-name
//   reg-name  = *( unreserved / pct-encoded / sub-delims )
//   port      = *DIGIT
// A server MUST answer 400 to a Host field with an invalid value (§3.2). Run once per request
// on a short string, shared by both parsers so they agree.

function table(chars: string, ranges: [number, number][] = []): Uint8Array {
  const t = new Uint8Array(128);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  for (const [a, b] of ranges) for (let i = a; i <= b; i++) t[i] = 1;
  return t;
}

const ALNUM: [number, number][] = [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]];
/** unreserved / sub-delims (pct-encoded is checked apart). IPv4address is a reg-name too. */
const REG_NAME_CHAR = table("-._~!$&'()*+,;=", ALNUM);
/** Inside "[ ]": IPv6address or IPvFuture ("v" HEXDIG "." 1*( unreserved / sub-delims / ":" )). */
const IP_LITERAL_CHAR = table("-._~!$&'()*+,;=:", ALNUM);

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Is `value` a valid Host field value (empty included: a target with no authority)? */
export function isValidHost(value: string): boolean {
  const n = value.length;
  let i = 0;
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    i = 1;
    while (i < n && value.charCodeAt(i) < 128 && IP_LITERAL_CHAR[value.charCodeAt(i)] === 1) i++;
    if (i === 1 || value.charCodeAt(i) !== 0x5d /* ] */) return false;
    i++;
  } else {
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c === 0x25 /* % */) {
        if (!isHex(value.charCodeAt(i + 1)) || !isHex(value.charCodeAt(i + 2))) return false;
        i += 3;
      } else if (c < 128 && REG_NAME_CHAR[c] === 1) i++;
      else break;
    }
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 0x3a /* : */) return false;
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Index of the path in "http(s)://authority/path?query", where the authority ends at the first
 * "/", "?" or "#" (RFC 3986 §3.2); the end when there is nothing after it; -1 when the target
 * is not http(s) absolute-form.
 */
export function absoluteFormPathStart(target: string): number {
  const sep = target.indexOf('://');
  if (sep !== 4 && sep !== 5) return -1;
  const scheme = target.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return -1;
  for (let i = sep + 3; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */ || c === 0x23 /* # */) return i;
  }
  return target.length;
}

/**
 * For an http(s) absolute-form target, why its authority is invalid; null when it is fine or
 * the target is not such a form. RFC 9110 §4.2.1: an http URI with an empty host is invalid
 * and MUST be rejected; §4.2.4: userinfo is an error.
 */
export function absoluteAuthorityProblem(target: string): string | null {
  const end = absoluteFormPathStart(target);
  if (end === -1) return null;
  const authority = target.slice(target.indexOf('://') + 3, end);
  if (authority === '' || authority.charCodeAt(0) === 0x3a /* : */) return 'empty host in absolute-form';
  return isValidHost(authority) ? null : 'invalid authority in absolute-form';
}
