import { SLOT_LOWEST, type SparseCounts } from "../wire/histogram";
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
    if (h.slots.length > 0) this.native.reserve(SLOT_LOWEST[h.slots[0]], SLOT_LOWEST[h.slots[h.slots.length - 1]]);
    // Slots come in increasing value order, so the boundary index only moves forward. A slot's lowest
    // value decides its bucket: slots are exact up to 2047 ms and 0.1% wide above.
    for (let i = 0; i < h.slots.length; i++) {
      const value = SLOT_LOWEST[h.slots[i]];
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
