import type { LatencyKind } from "../wire/payload";

/** Kong's metric names and help texts (its prometheus plugin's), one histogram family per latency kind. */
export const FAMILIES: Record<LatencyKind, { name: string; help: string }> = {
  upstream: { name: "kong_upstream_latency_ms", help: "Latency added by upstream response for each service in Kong" },
  request: { name: "kong_request_latency_ms", help: "Total latency incurred during requests for each service in Kong" },
  kong: { name: "kong_kong_latency_ms", help: "Latency added by Kong and enabled plugins for each service in Kong" },
};

/** The percentile gauges' name and help for a family. */
export function percentileFamily(kind: LatencyKind, windowMs: number): { name: string; help: string } {
  return {
    name: `${FAMILIES[kind].name}_percentile`,
    help: `Percentiles (label quantile) of ${FAMILIES[kind].name} over the last ${windowMs / 1000} s, from HDR histograms (within 0.4% of the exact percentile)`,
  };
}

/**
 * The native histogram's name and help: a family of its own, because Prometheus 2.42 drops the classic
 * `_bucket`/`_sum`/`_count` of a family that carries native buckets, and the guide's rule reads them.
 */
export function nativeFamily(kind: LatencyKind): { name: string; help: string } {
  return {
    name: `${FAMILIES[kind].name}_native`,
    help: `${FAMILIES[kind].name} as a native histogram (schema 5, buckets 2.2% wide), mergeable across Kong pods with sum()`,
  };
}

/** Kong's default histogram boundaries for latencies, in ms. */
export const KONG_BUCKETS = [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000];
