/**
 * The nearest-rank percentile of ascending values: the smallest value with at least q of all values at or
 * below it, as the sidecar reads its HDR data. The epsilon keeps q * n from rounding up past an exact rank
 * (0.9 * 10 is 9.000000000000002 in floating point).
 */
export function nearestRank(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.max(1, Math.ceil(q * sorted.length - 1e-9)) - 1];
}
