/**
 * Prometheus text exposition for the latency histograms, built by hand: prom-client's registry formats
 * every sample through generic label objects, ~4x slower than string building at 10k services x 15 buckets,
 * and /metrics is scraped every few seconds. prom-client still serves the sidecar's own metrics.
 */
import { QUANTILES } from "./percentiles";
import type { Series } from "./series";

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
    .join(",");
}

export function formatNumber(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return Number.isNaN(n) ? "NaN" : String(n);
}

export function renderHistogramFamily(
  name: string,
  help: string,
  boundaries: readonly number[],
  series: Iterable<Series>,
): string {
  const les = [...boundaries.map(formatNumber), "+Inf"].map((le) => `le="${le}"`);
  const parts: string[] = [`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} histogram\n`];
  for (const s of series) {
    const sep = s.labelText === "" ? "" : ",";
    let cumulative = 0;
    let text = "";
    for (let i = 0; i < les.length; i++) {
      cumulative += s.counts[i]!;
      text += `${name}_bucket{${s.labelText}${sep}${les[i]}} ${cumulative}\n`;
    }
    parts.push(text + sumAndCount(name, s));
  }
  return parts.join("");
}

/** A series' `_sum` and `_count` lines, shared by its histogram and its percentile summary. */
function sumAndCount(name: string, s: Series): string {
  const braces = s.labelText === "" ? "" : `{${s.labelText}}`;
  return `${name}_sum${braces} ${formatNumber(s.sum)}\n${name}_count${braces} ${s.count}\n`;
}

const QS = QUANTILES.map((q) => q.q);

/**
 * A summary `<name>{<labels>,quantile="0.99"}` from each series' sliding window: Prometheus's type for
 * quantiles over a sliding window, so the `quantile` label is where tools expect it. `_sum` and `_count`
 * are the series' totals since start, as for any summary. A series with nothing in its window has no
 * quantile samples (an absent metric, rather than a made-up zero latency).
 */
export function renderPercentileFamily(name: string, help: string, series: Iterable<Series>, now: number): string {
  const parts: string[] = [`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} summary\n`];
  for (const s of series) {
    const { count, values } = s.window.stats(now, QS);
    const sep = s.labelText === "" ? "" : ",";
    let text = "";
    if (count > 0) {
      for (let i = 0; i < QUANTILES.length; i++) text += `${name}{${s.labelText}${sep}quantile="${QUANTILES[i]!.label}"} ${formatNumber(values[i]!)}\n`;
    }
    parts.push(text + sumAndCount(name, s));
  }
  return parts.join("");
}
