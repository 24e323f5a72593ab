/**
 * Prometheus native-histogram buckets of one series, cumulative since the sidecar started. Schema 5: bucket i
 * holds (2^((i-1)/32), 2^(i/32)], 2.19% wide, so histogram_quantile() over their sum across Kong pods is
 * within 2.2% of the exact percentile; schema 8 (0.27%) would need 8x the buckets in every scrape and series.
 * One schema on every pod: Prometheus merges histograms of different schemas at the lowest.
 */
export const NATIVE_SCHEMA = 5;
const PER_OCTAVE = 2 ** NATIVE_SCHEMA;

/** client_golang's default: a latency of 0 ms (Kong reports integers) goes to the zero bucket. */
export const ZERO_THRESHOLD = 2 ** -128;

/** Bucket indices reach 2^31 ms, far beyond the HDR layout's hour. */
const MAX_INDEX = 31 * PER_OCTAVE;

/**
 * FLOOR_BOUND[i] = floor(2^(i/32)), exactly (checked with BigInt): an integer v is at most bucket i's upper
 * bound iff v <= FLOOR_BOUND[i], so the index of an integer latency needs no floating-point boundary test.
 */
const FLOOR_BOUND: Float64Array = (() => {
  const t = new Float64Array(MAX_INDEX + 1);
  const fits = (f: number, i: number) => BigInt(f) ** BigInt(PER_OCTAVE) <= 1n << BigInt(i);
  for (let i = 0; i <= MAX_INDEX; i++) {
    let f = Math.floor(2 ** (i / PER_OCTAVE));
    while (!fits(f, i)) f--;
    while (fits(f + 1, i)) f++;
    t[i] = f;
  }
  return t;
})();

/** The bucket of an integer latency of 1 to 2^31 ms. */
export function nativeIndex(v: number): number {
  return v < SMALL ? SMALL_INDEX[v] : computeIndex(v);
}

function computeIndex(v: number): number {
  let i = Math.ceil(Math.log2(v) * PER_OCTAVE);
  while (FLOOR_BOUND[i] < v) i++;
  while (i > 0 && FLOOR_BOUND[i - 1] >= v) i--;
  return i;
}

/** Latencies below 65.5 s (nearly all) find their bucket in a table: ingest maps every HDR slot of a delta. */
const SMALL = 65_536;
const SMALL_INDEX = (() => {
  const t = new Int16Array(SMALL);
  for (let v = 1; v < SMALL; v++) t[v] = computeIndex(v);
  return t;
})();

/** A bucket's count in 4 bytes until one passes 2^32 - 1 (billions of requests in one 2% bucket), then in 8. */
const UINT32_MAX = 0xffffffff;

/** Counts over the range of buckets seen so far, grown as latencies land outside it. */
export class NativeBuckets {
  zeroCount = 0;
  /** The bucket index of counts[0]. */
  first = 0;
  counts: Uint32Array | Float64Array = new Uint32Array(0);

  /** Adds `count` latencies of `value` ms (an integer). */
  add(value: number, count: number): void {
    if (value < 1) {
      this.zeroCount += count;
      return;
    }
    const i = nativeIndex(value);
    if (this.counts.length === 0) this.first = i;
    if (i < this.first || i >= this.first + this.counts.length) this.grow(i);
    const sum = this.counts[i - this.first] + count;
    if (sum > UINT32_MAX && this.counts instanceof Uint32Array) this.counts = Float64Array.from(this.counts);
    this.counts[i - this.first] = sum;
  }

  /** Makes room for latencies from `lowest` to `highest` ms at once, as a delta's range is known before its values. */
  reserve(lowest: number, highest: number): void {
    if (highest < 1) return;
    const hi = nativeIndex(highest);
    // 0 ms goes to the zero bucket, not to the range.
    const lo = lowest < 1 ? hi : nativeIndex(lowest);
    if (this.counts.length === 0) this.first = lo;
    if (lo < this.first) this.grow(lo);
    if (hi >= this.first + this.counts.length) this.grow(hi);
  }

  /**
   * Room for bucket i, and a quarter of the range again (at least 8) beyond it: a delta's latencies come in
   * increasing order, and each step past the end must not copy the whole range.
   */
  private grow(i: number): void {
    const slack = Math.max(8, this.counts.length >> 2);
    const first = Math.min(this.first, i - (i < this.first ? slack : 0));
    const end = Math.max(this.first + this.counts.length, i + 1 + (i >= this.first ? slack : 0));
    const grown = this.counts instanceof Uint32Array ? new Uint32Array(end - first) : new Float64Array(end - first);
    grown.set(this.counts, this.first - first);
    this.first = first;
    this.counts = grown;
  }
}
