import { COARSE_LOWEST } from "../wire/histogram";

/** The percentiles exported per series, as `quantile` label values and /v1/latency keys. */
export const QUANTILES = [
  { q: 0.5, label: "0.5", key: "p50_ms" },
  { q: 0.9, label: "0.9", key: "p90_ms" },
  { q: 0.99, label: "0.99", key: "p99_ms" },
  { q: 0.999, label: "0.999", key: "p999_ms" },
] as const;

/**
 * Nearest-rank percentiles (the smallest recorded value with at least q of all values at or below it) from
 * dense counts over the coarse layout. A coarse slot is reported by its midpoint, so the answer is within
 * half a slot (at most 0.4%) of the exact percentile; slots below 256 ms are single values, reported exactly.
 */
export function percentiles(dense: Float64Array, total: number, qs: readonly number[]): number[] {
  const out = new Array<number>(qs.length).fill(NaN);
  if (total <= 0) return out;
  const ranks = qs.map((q) => Math.max(1, Math.ceil(q * total - 1e-9)));
  let cumulative = 0;
  let k = 0;
  for (let i = 0; i < dense.length && k < ranks.length; i++) {
    const c = dense[i]!;
    if (c === 0) continue;
    cumulative += c;
    while (k < ranks.length && cumulative >= ranks[k]!) {
      out[k] = (COARSE_LOWEST[i]! + COARSE_LOWEST[i + 1]! - 1) / 2;
      k++;
    }
  }
  return out;
}
