import { LATENCY_KINDS, type LatencyKind } from "../wire/payload";
import { QUANTILES } from "./percentiles";
import type { Series } from "./series";
import type { Store } from "./store";
import { mergedStats, type WindowStats } from "./window";

/** Query parameters that select series by label; all given ones must match. */
const FILTERS = ["namespace", "service", "kong_service", "kubernetes_kind"] as const;
const QS = QUANTILES.map((q) => q.q);

export class LatencyQueryError extends Error {}

type Figures = { count: number; average_ms: number } & Record<(typeof QUANTILES)[number]["key"], number>;

/**
 * With no request in the window every figure is 0, not absent: an idle service has no latency to scale
 * on, and KEDA's metrics-api scaler then sees a value that lets it scale down instead of an error.
 */
function figures(s: WindowStats): Figures {
  const out = { count: s.count, average_ms: s.count ? s.sum / s.count : 0 } as Figures;
  QUANTILES.forEach((q, i) => (out[q.key] = s.count ? s.values[i] : 0));
  return out;
}

/**
 * GET /v1/latency: per-series and overall average and percentiles over the sliding window, for KEDA's
 * metrics-api scaler (`valueLocation: p99_ms` with `?namespace=default&service=echo`) or anything else
 * that reads JSON. The top-level figures merge every selected series' window (exact merge, not an average
 * of percentiles).
 */
export function latencyReport(store: Store, query: URLSearchParams, now = Date.now()): Record<string, unknown> {
  for (const key of query.keys()) {
    if (key !== "latency" && !(FILTERS as readonly string[]).includes(key)) {
      throw new LatencyQueryError(`unknown parameter "${key}"; use latency, ${FILTERS.join(", ")}`);
    }
    // Taking one of two values silently would select series the caller did not ask for.
    if (query.getAll(key).length > 1) throw new LatencyQueryError(`parameter "${key}" is given more than once`);
  }
  const kind = (query.get("latency") ?? "upstream") as LatencyKind;
  if (!LATENCY_KINDS.includes(kind)) throw new LatencyQueryError(`latency must be one of ${LATENCY_KINDS.join(", ")}`);
  const selected: Series[] = [];
  for (const s of store.families.get(kind)?.values() ?? []) {
    if (FILTERS.every((f) => !query.has(f) || s.labels[f] === query.get(f))) selected.push(s);
  }
  return {
    window_seconds: store.windowMs / 1000,
    latency: kind,
    ...figures(
      mergedStats(
        selected.map((s) => s.window),
        now,
        QS,
      ),
    ),
    services: selected.map((s) => ({ ...s.labels, ...figures(s.window.stats(now, QS)) })),
  };
}
