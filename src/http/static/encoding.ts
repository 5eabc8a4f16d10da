// Accept-Encoding negotiation, RFC 9110 §12.5.3, over the codings a file has siblings for.
// Field values repeat (browsers send the same few strings), so choices are memoised per value.

/** Index 0 is identity; siblings: 1 = br (".br"), 2 = gzip (".gz"). */
export const IDENTITY = 0;
export const BR = 1;
export const GZIP = 2;
export const CODING_NAMES = ['identity', 'br', 'gzip'] as const;
export const SIBLING_SUFFIX = ['', '.br', '.gz'] as const;

/** Bit (1 << coding) set for each sibling present. */
export type AvailableMask = number;

const MEMO_LIMIT = 512;
const memo = new Map<string, Uint8Array>();

/**
 * The coding to send for this Accept-Encoding value, given the siblings available. Highest
 * q wins; ties prefer br, then gzip, then identity (smallest first). q=0 excludes; "*" covers
 * codings not named; identity is acceptable unless excluded (§12.5.3). If nothing
 * acceptable is available we still send identity rather than 406.
 */
export function chooseCoding(acceptEncoding: string | undefined, available: AvailableMask): number {
  if (acceptEncoding === undefined || available === 0) return IDENTITY;
  let choices = memo.get(acceptEncoding);
  if (choices === undefined) {
    choices = computeChoices(acceptEncoding);
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(acceptEncoding, choices);
  }
  return choices[available & 7]!;
}

/** Choices for all 8 availability masks at once. */
function computeChoices(field: string): Uint8Array {
  const q = parseQValues(field);
  const out = new Uint8Array(8);
  for (let mask = 0; mask < 8; mask++) {
    let best = IDENTITY;
    let bestQ = q[IDENTITY]!;
    // Siblings in preference order: br before gzip, each must beat identity strictly or tie.
    for (const coding of [BR, GZIP]) {
      if ((mask & (1 << coding)) === 0) continue;
      const cq = q[coding]!;
      if (cq > 0 && (cq > bestQ || (cq === bestQ && best === IDENTITY))) {
        best = coding;
        bestQ = cq;
      }
    }
    out[mask] = best;
  }
  return out;
}

/** q per coding index: [identity, br, gzip]. */
function parseQValues(field: string): number[] {
  let star = -1;
  const explicit = [-1, -1, -1];
  for (const part of field.split(',')) {
    const semi = part.indexOf(';');
    const name = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (name === '') continue;
    let qv = 1;
    if (semi >= 0) {
      for (const param of part.slice(semi + 1).split(';')) {
        const eq = param.indexOf('=');
        if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
        const parsed = Number(param.slice(eq + 1).trim());
        qv = Number.isFinite(parsed) && parsed >= 0 && parsed <= 1 ? parsed : 0;
      }
    }
    if (name === '*') star = qv;
    else if (name === 'identity') explicit[IDENTITY] = qv;
    else if (name === 'br') explicit[BR] = qv;
    else if (name === 'gzip' || name === 'x-gzip') explicit[GZIP] = qv;
  }
  return [
    // identity is always acceptable unless named with q=0 or excluded by "*;q=0" (§12.5.3).
    explicit[IDENTITY]! >= 0 ? explicit[IDENTITY]! : star === 0 ? 0 : star > 0 ? star : 0.001,
    explicit[BR]! >= 0 ? explicit[BR]! : star >= 0 ? star : 0,
    explicit[GZIP]! >= 0 ? explicit[GZIP]! : star >= 0 ? star : 0,
  ];
}
