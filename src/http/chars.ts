// Byte-class tables for the HTTP/1.1 request parser: one 256-entry lookup per grammar rule,
// so classifying a byte is a single indexed load (the httparse / picohttpparser idea).
// Each table quotes the ABNF it encodes.

export const SP = 0x20;
export const HTAB = 0x09;
export const CR = 0x0d;
export const LF = 0x0a;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const EQUALS = 0x3d;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;

function table(accept: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = accept(b) ? 1 : 0;
  return t;
}

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isAlpha = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const isVchar = (b: number): boolean => b >= 0x21 && b <= 0x7e;
const isObsText = (b: number): boolean => b >= 0x80;

/**
 * RFC 9110 §5.6.2
 *   token  = 1*tchar
 *   tchar  = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *            "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
 * Used for methods, field names, transfer codings and chunk-extension names.
 */
export const TCHAR = table((b) => isDigit(b) || isAlpha(b) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b)));

/**
 * RFC 9112 §3.2 request-target; RFC 3986 §3.3/§3.4:
 *   origin-form = absolute-path [ "?" query ]
 *   pchar       = unreserved / pct-encoded / sub-delims / ":" / "@"
 *   query       = *( pchar / "/" / "?" )
 * We accept every VCHAR except "#": a fragment is never part of a request-target, and real
 * clients send some characters RFC 3986 excludes ("|", "^", "{", "}", "\", "`") unencoded,
 * which the handler decodes and checks anyway. SP, CTLs, DEL and obs-text are refused: a
 * target is where request smuggling and log injection start.
 */
export const TARGET_CHAR = table((b) => isVchar(b) && b !== 0x23);

/**
 * RFC 9110 §5.5
 *   field-value = *field-content
 *   field-vchar = VCHAR / obs-text
 *   (with SP / HTAB allowed between field-vchars)
 * NUL, CR, LF and every other CTL are refused (RFC 9110 §5.5: "MUST either reject ... or
 * replace" them; we reject).
 */
export const FIELD_VALUE_CHAR = table((b) => isVchar(b) || isObsText(b) || b === SP || b === HTAB);

/**
 * RFC 9112 §7.1.1
 *   quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
 *   qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
 * (quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) is FIELD_VALUE_CHAR after the "\".)
 */
export const QDTEXT = table((b) => b === HTAB || b === SP || b === 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e) || isObsText(b));

/**
 * RFC 9112 §7.1
 *   chunk-size = 1*HEXDIG
 * Value of each hex digit, or 0xff for a byte that is not one.
 */
export const HEX_VALUE = (() => {
  const t = new Uint8Array(256).fill(0xff);
  for (let d = 0; d < 10; d++) t[0x30 + d] = d;
  for (let d = 0; d < 6; d++) {
    t[0x41 + d] = 10 + d;
    t[0x61 + d] = 10 + d;
  }
  return t;
})();

/** RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (absolute-form targets). */
export const SCHEME_CHAR = table((b) => isAlpha(b) || isDigit(b) || b === 0x2b || b === 0x2d || b === 0x2e);

export function isAlphaByte(b: number): boolean {
  return isAlpha(b);
}

/** Buffer's own latin1 decoder, typed: Node has it on every Buffer but @types/node omits it. */
interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}

/**
 * buf[start, end) as a latin1 string. Calls the decoder directly: toString('latin1', …)
 * re-checks its arguments and looks the encoding up on every call, which shows in profiles.
 */
export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Slicer).latin1Slice(start, end);
}
