import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULTS } from "../plugin/schema";
import { fetchText } from "../devstack/process/exporter-process";
import { makeLogContext } from "../devstack/kong";
import { parseSamples, value } from "../devstack/prometheus/prom-text";
import { waitFor } from "../devstack/process/wait";
import { nearestRank } from "../devstack/nearest-rank";
import { progress } from "./support/progress";
import { KONG_SERVICE_NAME, startScrapedStack } from "./support/scraped-stack";
import { fmt } from "./support/stats";

/**
 * How long a request's latency takes to show: from its log event in the plugin to the sidecar's /metrics
 * counting it, and to a Prometheus query counting it, with the plugin's default flush interval.
 */

const SCRAPE_SECONDS = 5;
const POLL_MS = 20;
// A probe shows within one flush and one scrape; the rest is slack for a loaded machine.
const PROBE_TIMEOUT_MS = 3 * (DEFAULTS.flush_interval + SCRAPE_SECONDS) * 1000;
// Pauses step through the scrape interval by the golden ratio: few probes still cover its phases evenly.
const GOLDEN = (Math.sqrt(5) - 1) / 2;

export interface FreshnessResult {
  scrapeSeconds: number;
  flushSeconds: number;
  metricsMs: number[];
  prometheusMs: number[];
}

export async function runFreshness(opts: { quick: boolean }): Promise<FreshnessResult> {
  const probes = opts.quick ? 10 : 30;
  const s = await startScrapedStack(`${SCRAPE_SECONDS}s`);
  try {
    const ctx = makeLogContext({ service: s.service, proxyMs: 100 });
    const count = `kong_upstream_latency_ms_count{kong_service="${KONG_SERVICE_NAME}"}`;
    const inMetrics = async () =>
      value(parseSamples(await fetchText(`${s.exporter.metricsUrl}/metrics`)), "kong_upstream_latency_ms_count", {
        kong_service: KONG_SERVICE_NAME,
      }) ?? 0;
    const inPrometheus = async () => (await s.prom.query(count))[0]?.value ?? 0;
    /** Ms from `t0` until `read` reaches `n`, polled every POLL_MS. */
    const seen = (what: string, read: () => Promise<number>, n: number, t0: number) =>
      waitFor(
        `${what} to reach ${n}`,
        async () => ((await read()) >= n ? performance.now() - t0 : undefined),
        PROBE_TIMEOUT_MS,
        POLL_MS,
      );

    // The first event starts the plugin instance and creates the series: one-time costs no later request pays.
    await s.log(0, ctx);
    await seen("Prometheus's count", inPrometheus, 1, performance.now());

    const result: FreshnessResult = {
      scrapeSeconds: SCRAPE_SECONDS,
      flushSeconds: DEFAULTS.flush_interval,
      metricsMs: [],
      prometheusMs: [],
    };
    const bar = progress("freshness: probe events", probes);
    for (let i = 0; i < probes; i++) {
      // A probe is seen just after a scrape, so the pause sets the next one's phase against the scrape timer
      // (and, being no multiple of a second, against the flush timer): a request in a cluster comes at any phase.
      await sleep(((i * GOLDEN) % 1) * SCRAPE_SECONDS * 1000);
      const n = i + 2;
      const t0 = performance.now();
      await s.log(i % 2, ctx);
      const [m, p] = await Promise.all([
        seen("/metrics's count", inMetrics, n, t0),
        seen("Prometheus's count", inPrometheus, n, t0),
      ]);
      result.metricsMs.push(m);
      result.prometheusMs.push(p);
      bar.update(i + 1);
    }
    bar.stop();
    return result;
  } finally {
    await s.close();
  }
}

export function renderFreshness(r: FreshnessResult): string {
  const row = (what: string, ms: number[]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return `| ${what} | ${fmt(nearestRank(sorted, 0.5) / 1000)} | ${fmt(nearestRank(sorted, 0.99) / 1000)} | ${fmt(sorted[0] / 1000)} | ${fmt(sorted[sorted.length - 1] / 1000)} |`;
  };
  return [
    "## Freshness",
    "",
    `Time from a request's log event in the plugin (the real \`kong-js-pluginserver\`, default configuration: \`flush_interval\` ${r.flushSeconds} s) to its presence in the sidecar's /metrics (\`_count\` includes it) and in a Prometheus query (\`kong_upstream_latency_ms_count\` through \`/api/v1/query\`), both polled every ${POLL_MS} ms. Prometheus scrapes the sidecar every ${r.scrapeSeconds} s, with the scrape job a ServiceMonitor generates. ${r.metricsMs.length} probe events, one at a time, each after a pause of up to one scrape interval that spreads the probes evenly over the phases of the scrape timer (and of the flush timer), as requests come at any phase. Nearest-rank percentiles; with ${r.metricsMs.length} probes the p99 is the slowest probe.`,
    "",
    "| seen in | p50 (s) | p99 (s) | min (s) | max (s) |",
    "|---|---:|---:|---:|---:|",
    row("sidecar /metrics", r.metricsMs),
    row(`Prometheus query (scrape interval ${r.scrapeSeconds} s)`, r.prometheusMs),
    "",
    `The sidecar sees an event within one flush interval (${r.flushSeconds} s) plus a shipment's round trip; Prometheus adds up to one scrape interval, half of it on average. The figures scale with a cluster's interval: a ServiceMonitor without \`interval\` gets Prometheus's default of 30 s, which adds up to 30 s. Whatever reads Prometheus adds its own period on top (the HPA controller evaluates every 15 s by default).`,
    "",
  ].join("\n");
}
