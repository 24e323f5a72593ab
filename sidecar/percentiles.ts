import { COARSE_LOWEST } from "../wire/layout";

/** The percentiles exported per series, as `quantile` label values and /v1/latency keys. */
export const QUANTILES = [
  { q: 0.5, label: "0.5", key: "p50_ms" },
  { q: 0.9, label: "0.9", key: "p90_ms" },
  { q: 0.99, label: "0.99", key: "p99_ms" },
  { q: 0.999, label: "0.999", key: "p999_ms" },
] as const;

/**
 * Nearest-rank percentiles (the smallest recorded value with at least q of all values at or below it), fed
 * coarse slots in increasing order. A coarse slot is reported by its midpoint, so the answer is within half a
 * slot (at most 0.4%) of the exact percentile; slots below 256 ms are single values, reported exactly.
 */
export class NearestRanks {
  /** In the order asked for; NaN until found (and for an empty window). */
  readonly values: number[];
  private readonly ranks: number[];
  private cumulative = 0;
  private found = 0;

  constructor(total: number, qs: readonly number[]) {
    this.values = new Array<number>(qs.length).fill(NaN);
    this.ranks = total > 0 ? qs.map((q) => Math.max(1, Math.ceil(q * total - 1e-9))) : [];
  }

  /** False once every percentile is found: the caller can stop feeding slots. */
  get wanting(): boolean {
    return this.found < this.ranks.length;
  }

  /** Adds the count of the next non-empty coarse slot. */
  add(slot: number, count: number): void {
    this.cumulative += count;
    while (this.found < this.ranks.length && this.cumulative >= this.ranks[this.found]) {
      this.values[this.found++] = (COARSE_LOWEST[slot] + COARSE_LOWEST[slot + 1] - 1) / 2;
    }
  }
}
