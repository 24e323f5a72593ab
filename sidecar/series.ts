import type { SparseCounts } from "../wire/sparse";
import { NativeBuckets } from "./native-buckets";
import type { SlidingWindow } from "./window";

/**
 * Cumulative totals of one histogram series since the sidecar started: exact count and sum, counts per
 * bucket boundary (not cumulative here; exposition adds them up), and the sliding window for percentiles.
 */
export class Series {
  count = 0;
  sum = 0;
  /** counts[i] for boundaries[i]; the last slot is +Inf. */
  readonly counts: Float64Array;
  lastUpdate = 0;
  /** The same latencies in native-histogram buckets, for the protobuf exposition. */
  readonly native = new NativeBuckets();
  /** labelText in UTF-8, encoded once rather than at every scrape. */
  readonly labelBytes: Buffer;

  constructor(
    /** Rendered label pairs, `a="x",b="y"`, escaped once. */
    readonly labelText: string,
    /** The labels as an object, for /v1/latency. */
    readonly labels: Readonly<Record<string, string>>,
    private readonly boundaries: readonly number[],
    readonly window: SlidingWindow,
  ) {
    this.counts = new Float64Array(boundaries.length + 1);
    this.labelBytes = Buffer.from(labelText);
  }

  add(count: number, sum: number, h: SparseCounts, now: number): void {
    const b = this.boundaries;
    let j = 0;
    const n = h.values.length;
    if (n > 0) this.native.reserve(h.values[0], h.values[n - 1]);
    // Keys come in increasing order, so the boundary index only moves forward. A key is the lowest value it
    // stands for, so a boundary that is a key (each of Kong's) or at most 2047 ms is counted exactly.
    for (let i = 0; i < n; i++) {
      const value = h.values[i];
      while (j < b.length && value > b[j]) j++;
      this.counts[j] += h.counts[i];
      this.native.add(value, h.counts[i]);
    }
    this.count += count;
    this.sum += sum;
    this.lastUpdate = now;
    this.window.add(count, sum, h, now);
  }
}
