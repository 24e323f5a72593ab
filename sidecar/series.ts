import { forEachSlot, type Histogram } from "../wire/histogram";

/**
 * Cumulative totals of one histogram series since the sidecar started: exact count and sum, and counts
 * per bucket boundary (not cumulative here; exposition adds them up).
 */
export class Series {
  count = 0;
  sum = 0;
  /** counts[i] for boundaries[i]; the last slot is +Inf. */
  readonly counts: Float64Array;
  lastUpdate = 0;

  constructor(
    /** Rendered label pairs, `a="x",b="y"`, escaped once. */
    readonly labelText: string,
    private readonly boundaries: readonly number[],
  ) {
    this.counts = new Float64Array(boundaries.length + 1);
  }

  add(count: number, sum: number, h: Histogram, now: number): void {
    const b = this.boundaries;
    let i = 0;
    // Slots come in increasing value order, so the boundary index only moves forward. A slot's lowest
    // value decides its bucket: slots are exact up to 2047 ms and within 0.1% above.
    forEachSlot(h, (value, c) => {
      while (i < b.length && value > b[i]!) i++;
      this.counts[i]! += c;
    });
    this.count += count;
    this.sum += sum;
    this.lastUpdate = now;
  }
}
