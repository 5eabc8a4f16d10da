// Small statistics for benchmark results: medians of runs and a mergeable latency histogram.

/** Median of the finite values (NaN when none). */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * Latency histogram in microseconds, log-linear like HdrHistogram: exact below 2048 µs, then 1024
 * sub-buckets per power of two (better than 0.1% precision). Counts are a plain number array so
 * generator processes can send theirs as JSON and the parent merges them by adding.
 */
const LINEAR = 2048;
const SUB_BITS = 10;
const SUB = 1 << SUB_BITS;

export function bucketOf(micros: number): number {
  const v = Math.max(0, Math.min(0x7fffffff, Math.round(micros)));
  if (v < LINEAR) return v;
  const exp = 31 - Math.clz32(v); // floor(log2 v), >= 11
  const shift = exp - SUB_BITS;
  return LINEAR + (exp - SUB_BITS - 1) * SUB + ((v >>> shift) - SUB);
}

/** The lowest value that falls in `bucket` (inverse of bucketOf up to the bucket width). */
export function valueOf(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const k = bucket - LINEAR;
  const exp = Math.floor(k / SUB) + SUB_BITS + 1;
  const sub = (k % SUB) + SUB;
  return sub * 2 ** (exp - SUB_BITS);
}

export class Histogram {
  counts: number[] = [];
  total = 0;

  record(micros: number): void {
    const b = bucketOf(micros);
    while (this.counts.length <= b) this.counts.push(0);
    this.counts[b]!++;
    this.total++;
  }

  merge(counts: readonly number[]): void {
    while (this.counts.length < counts.length) this.counts.push(0);
    for (let i = 0; i < counts.length; i++) {
      this.counts[i]! += counts[i]!;
      this.total += counts[i]!;
    }
  }

  /** Value at quantile q (0..1) in microseconds; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return valueOf(i);
    }
    return valueOf(this.counts.length - 1);
  }
}
