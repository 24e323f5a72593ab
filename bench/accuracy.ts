import { KONG_BUCKETS } from "../sidecar/families";
import { QUANTILES } from "../sidecar/percentiles";
import { fetchText } from "../devstack/process/exporter-process";
import { makeLogContext, type LogContext } from "../devstack/kong";
import { parseSamples, value } from "../devstack/prometheus/prom-text";
import { waitFor } from "../devstack/process/wait";
import { nearestRank } from "../devstack/nearest-rank";
import { progress } from "./support/progress";
import { normal, pareto, rng } from "../devstack/random";
import { K8S_SERVICE, KONG_SERVICE_NAME, startScrapedStack, WORKERS, type ScrapedStack } from "./support/scraped-stack";
import { fmt } from "./support/stats";

/**
 * One seeded heavy-tailed latency mix sent through the real plugin server, sidecar and Prometheus; the exact
 * nearest-rank percentiles of the values sent against the sidecar's windowed percentiles (/metrics gauges and
 * /v1/latency) and against histogram_quantile() over Kong's buckets in Prometheus.
 */

const MIX = {
  seed: 0x5eed,
  bodyMedianMs: 100,
  bodySigma: 0.5,
  tailShare: 0.03,
  tailScaleMs: 300,
  tailAlpha: 1.5,
  capMs: 60_000,
};
const TARGET = 0.01;
const CONCURRENCY = 32;
// The sidecar's default 60 s window moves in 10 s steps, so it always holds at least the last 50 s: a run
// sent within 40 s is still whole in it when read a few seconds later.
const SEND_DEADLINE_MS = 40_000;
const SCRAPE_SECONDS = 1;
const SELECTOR = `exported_namespace="${K8S_SERVICE.namespace}",exported_service="${K8S_SERVICE.name}"`;

/** Kong's latencies are integer ms; none exceeds Kong's default 60 s upstream read timeout. */
function latencyMix(n: number): number[] {
  const u = rng(MIX.seed);
  return Array.from({ length: n }, () => {
    const ms =
      u() < MIX.tailShare
        ? pareto(u, MIX.tailScaleMs, MIX.tailAlpha)
        : MIX.bodyMedianMs * Math.exp(MIX.bodySigma * normal(u));
    return Math.min(MIX.capMs, Math.round(ms));
  });
}

/** Sends every value once, CONCURRENCY in flight; returns how many were sent before the deadline. */
async function sendAll(s: ScrapedStack, values: number[], onProgress: (n: number) => void): Promise<number> {
  // makeLogContext builds a whole serialized request; one per distinct latency is enough.
  const contexts = new Map<number, LogContext>();
  const contextFor = (ms: number) =>
    contexts.get(ms) ?? contexts.set(ms, makeLogContext({ service: s.service, proxyMs: ms })).get(ms)!;
  const deadline = Date.now() + SEND_DEADLINE_MS;
  let next = 0;
  let done = 0;
  const lane = async (l: number) => {
    while (next < values.length && Date.now() < deadline) {
      await s.log(l % WORKERS, contextFor(values[next++]));
      if (++done % 1000 === 0) onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, l) => lane(l)));
  return done;
}

export interface Figure {
  label: string;
  exact: number;
  gauge: number;
  api: number;
  prometheus: number;
}

export interface AccuracyResult {
  events: number;
  sendSeconds: number;
  figures: Figure[];
}

export async function runAccuracy(opts: { quick: boolean }): Promise<AccuracyResult> {
  const n = opts.quick ? 20_000 : 50_000;
  const values = latencyMix(n);
  const s = await startScrapedStack(`${SCRAPE_SECONDS}s`);
  try {
    const bar = progress("accuracy: latency mix sent", n);
    const t0 = Date.now();
    const sent = await sendAll(s, values, (d) => bar.update(d));
    const sendSeconds = (Date.now() - t0) / 1000;
    bar.update(sent);
    bar.stop();
    if (sent < n)
      throw new Error(
        `accuracy: sent ${sent} of ${n} events in ${SEND_DEADLINE_MS / 1000} s; the run would outgrow the sidecar's percentile window`,
      );

    const latencyUrl = `${s.exporter.metricsUrl}/v1/latency?namespace=${K8S_SERVICE.namespace}&service=${K8S_SERVICE.name}`;
    const api = await waitFor(
      `/v1/latency to count all ${n} events`,
      async () => {
        const r = JSON.parse(await fetchText(latencyUrl)) as Record<string, number>;
        return r.count === n ? r : undefined;
      },
      15_000,
      100,
    );
    await waitFor(
      `Prometheus to scrape all ${n} events`,
      async () =>
        (await s.prom.query(`sum(kong_upstream_latency_ms_count{${SELECTOR}})`))[0]?.value === n ? true : undefined,
      15_000,
      100,
    );
    const samples = parseSamples(await fetchText(`${s.exporter.metricsUrl}/metrics`));
    const promValue = async (promql: string) => {
      const r = await s.prom.query(promql);
      if (r.length !== 1) throw new Error(`${promql}: expected one sample, got ${JSON.stringify(r)}`);
      return r[0].value;
    };

    const sorted = [...values].sort((a, b) => a - b);
    const figures: Figure[] = [];
    for (const q of QUANTILES) {
      const gauge = value(samples, "kong_upstream_latency_ms_percentile", {
        kong_service: KONG_SERVICE_NAME,
        quantile: q.label,
      });
      if (gauge === undefined)
        throw new Error(`no kong_upstream_latency_ms_percentile{quantile="${q.label}"} in /metrics`);
      figures.push({
        label: `p${q.q * 100}`,
        exact: nearestRank(sorted, q.q),
        gauge,
        api: api[q.key],
        prometheus: await promValue(
          `histogram_quantile(${q.q}, sum by (le) (kong_upstream_latency_ms_bucket{${SELECTOR}}))`,
        ),
      });
    }
    const prometheusMean = await promValue(
      `sum(kong_upstream_latency_ms_sum{${SELECTOR}}) / sum(kong_upstream_latency_ms_count{${SELECTOR}})`,
    );
    const mean = values.reduce((a, b) => a + b, 0) / n;
    // /metrics carries no mean gauge: its mean is _sum / _count, the same exact counters Prometheus reads.
    const metricsSum = value(samples, "kong_upstream_latency_ms_sum", { kong_service: KONG_SERVICE_NAME })!;
    const metricsCount = value(samples, "kong_upstream_latency_ms_count", { kong_service: KONG_SERVICE_NAME })!;
    figures.push({
      label: "mean",
      exact: mean,
      gauge: metricsSum / metricsCount,
      api: api.average_ms,
      prometheus: prometheusMean,
    });
    return { events: n, sendSeconds, figures };
  } finally {
    await s.close();
  }
}

const relError = (got: number, exact: number) => Math.abs(got - exact) / exact;
const pct = (x: number) => `${fmt(x * 100)}%`;

export function renderAccuracy(r: AccuracyResult): string {
  const rows = r.figures.map((f) => {
    // Exact percentiles are integer ms, the sidecar's are slot midpoints; a mean has decimals everywhere.
    const [exactDigits, digits] = f.label === "mean" ? [2, 2] : [0, 1];
    return `| ${f.label} | ${fmt(f.exact, exactDigits)} | ${fmt(f.gauge, digits)} | ${pct(relError(f.gauge, f.exact))} | ${fmt(f.api, digits)} | ${pct(relError(f.api, f.exact))} | ${fmt(f.prometheus, digits)} | ${pct(relError(f.prometheus, f.exact))} |`;
  });
  const ours = r.figures
    .filter((f) => f.label !== "mean")
    .flatMap((f) => [relError(f.gauge, f.exact), relError(f.api, f.exact)]);
  const worst = Math.max(...ours);
  const theirs = Math.max(...r.figures.filter((f) => f.label !== "mean").map((f) => relError(f.prometheus, f.exact)));
  return [
    "## Percentile accuracy",
    "",
    `${r.events.toLocaleString("en-US")} upstream latencies of one Kubernetes Service (${K8S_SERVICE.namespace}/${K8S_SERVICE.name}), sent through the real \`kong-js-pluginserver\` and upstream-latency plugin (default configuration, on a route) to a fresh latency-exporter (default 60 s percentile window) scraped by the real Prometheus every ${SCRAPE_SECONDS} s, as a ServiceMonitor would. Sent in ${fmt(r.sendSeconds, 1)} s, so the window holds all of them when read.`,
    "",
    `The mix (seeded mulberry32, seed 0x${MIX.seed.toString(16)}, so every run sends the same values): ${(1 - MIX.tailShare) * 100}% lognormal with median ${MIX.bodyMedianMs} ms and σ ${MIX.bodySigma}, ${MIX.tailShare * 100}% Pareto with scale ${MIX.tailScaleMs} ms and α ${MIX.tailAlpha} (a tail reaching seconds), rounded to integer ms as Kong reports them and capped at ${MIX.capMs / 1000} s (Kong's default upstream read timeout).`,
    "",
    "- **exact**: nearest-rank percentile of the values sent (the smallest value with at least q of them at or below it).",
    "- **/metrics gauge**: `kong_upstream_latency_ms_percentile{quantile=...}` from the sidecar's /metrics; for the mean, its `_sum / _count`.",
    `- **/v1/latency**: \`p50_ms\`, \`p90_ms\`, \`p99_ms\`, \`p999_ms\`, \`average_ms\` of \`GET /v1/latency?namespace=${K8S_SERVICE.namespace}&service=${K8S_SERVICE.name}\`.`,
    `- **histogram_quantile**: \`histogram_quantile(q, sum by (le) (kong_upstream_latency_ms_bucket{${SELECTOR}}))\` in Prometheus, over Kong's default buckets (${KONG_BUCKETS.join(", ")} ms). It reads the cumulative counters, i.e. the increase since the sidecar started, which holds exactly the events sent: the error is the buckets' alone. A \`rate(...[1m])\` in an HPA rule interpolates within the same buckets, with its window's extrapolation on top. For the mean, \`sum(_sum) / sum(_count)\` (the guide's average).`,
    "",
    "| | exact (ms) | /metrics gauge (ms) | error | /v1/latency (ms) | error | histogram_quantile (ms) | error |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `Target: the sidecar's percentiles within ${TARGET * 100}% of the exact ones. Worst relative error over p50 to p99.9, gauges and /v1/latency: ${pct(worst)}, ${worst <= TARGET ? "**met**" : "**not met**"}. histogram_quantile() over Kong's buckets: worst ${pct(theirs)}.`,
    "",
  ].join("\n");
}
