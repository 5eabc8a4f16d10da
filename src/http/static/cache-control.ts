// Cache-Control classes: HTML is always revalidated (its URL never changes), fingerprinted
// names are immutable (a new build gets a new name), the rest is cached briefly.

export interface CacheControlOptions {
  html?: string;
  immutable?: string;
  other?: string;
}

export const DEFAULT_CACHE_CONTROL: Required<CacheControlOptions> = {
  html: 'no-cache',
  immutable: 'public, max-age=31536000, immutable',
  other: 'public, max-age=300',
};

export function resolveCacheControl(opts: CacheControlOptions | undefined): Required<CacheControlOptions> {
  return {
    html: opts?.html ?? DEFAULT_CACHE_CONTROL.html,
    immutable: opts?.immutable ?? DEFAULT_CACHE_CONTROL.immutable,
    other: opts?.other ?? DEFAULT_CACHE_CONTROL.other,
  };
}

export function cacheControlFor(name: string, contentType: string, cc: Required<CacheControlOptions>): string {
  if (contentType.startsWith('text/html')) return cc.html;
  return isFingerprinted(name) ? cc.immutable : cc.other;
}

/**
 * A build hash segment between "." or "-" separators, before the extension: "app.3f9a2c.js",
 * "app-3F9A2C1B.css". Hex needs 6+ chars with a digit; base36 needs 8+ with a digit and a
 * letter (so "script.js" or "logo-dark2x.png" are not mistaken for hashes).
 */
export function isFingerprinted(name: string): boolean {
  const lastDot = name.lastIndexOf('.');
  const stem = lastDot > 0 ? name.slice(0, lastDot) : name;
  for (const seg of stem.split(/[.-]/)) {
    if (seg.length < 6) continue;
    let digits = 0;
    let hexLetters = 0;
    let otherLetters = 0;
    let ok = true;
    for (let i = 0; i < seg.length; i++) {
      const c = seg.charCodeAt(i) | 0x20; // fold ASCII case
      if (c >= 0x30 && c <= 0x39) digits++;
      else if (c >= 0x61 && c <= 0x66) hexLetters++;
      else if (c >= 0x67 && c <= 0x7a) otherLetters++;
      else {
        ok = false;
        break;
      }
    }
    if (!ok || digits === 0) continue;
    if (otherLetters === 0) return true;
    if (seg.length >= 8 && hexLetters + otherLetters > 0) return true;
  }
  return false;
}
