// Headers for files other people uploaded (the /files/ mount): whatever a file contains, a
// browser saves it rather than rendering it on the site's origin, and if it renders it anyway
// (a user's "open", a plugin, an old browser) the document runs in a sandbox with an opaque
// origin and no script (stored XSS through an uploaded page or SVG).

/** RFC 8187 attr-char: what may stay unencoded in an ext-value. */
const ATTR_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/;

/** `filename*` value (RFC 6266 §4.3, RFC 8187 §3.2): UTF-8, percent-encoded. */
export function extValue(name: string): string {
  let out = "UTF-8''";
  for (const ch of name) {
    if (ATTR_CHAR.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * The ASCII `filename` fallback for clients that ignore `filename*` (RFC 6266 §4.3): printable
 * ASCII only, with the quoted-string specials, "%" (some clients decode it) and anything else
 * replaced by "_".
 */
export function asciiFallback(name: string): string {
  let out = '';
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    out += c >= 0x20 && c < 0x7f && ch !== '"' && ch !== '\\' && ch !== '%' ? ch : '_';
  }
  return out === '' ? 'download' : out;
}

/** Content-Disposition for `name`: attachment, with both filename forms. */
export function contentDisposition(name: string): string {
  return `Content-Disposition: attachment; filename="${asciiFallback(name)}"; filename*=${extValue(name)}\r\n`;
}

/**
 * CSP sandbox (CSP3 §6.3.2, no allow-* tokens): no script, no forms, an opaque origin, so
 * nothing in the document can read the site's cookies or storage.
 */
const SANDBOX_LINES = 'Content-Security-Policy: sandbox\r\nX-Content-Type-Options: nosniff\r\n';

/** Every answer about an uploaded file (200, 206, 304, 412, 416) carries these. */
export function downloadLines(name: string): string {
  return contentDisposition(name) + SANDBOX_LINES;
}

/** A listing of uploads renders (it is ours), but as a sandboxed document all the same. */
export const DOWNLOAD_LISTING_LINES = 'Content-Security-Policy: sandbox\r\n';
