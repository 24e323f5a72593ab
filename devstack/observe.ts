import { request } from "undici";
import { expandMetricsQuery, GUIDE_AVERAGE_RULE, renderQuantity } from "./prometheus/adapter";
import { parseSamples, select } from "./prometheus/prom-text";
import type { Prometheus } from "./prometheus/prometheus";

/** What an autoscaler would read, so a poll that hangs must not hold the view: every read is bounded. */
const READ_TIMEOUT_MS = 2_000;

async function get(url: string): Promise<string> {
  const res = await request(url, { headersTimeout: READ_TIMEOUT_MS, bodyTimeout: READ_TIMEOUT_MS });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  return text;
}

/** One series of GET /v1/latency (upstream latency over the exporter's percentile window). */
export interface ServiceFigures {
  namespace: string;
  service: string;
  kong_service: string;
  count: number;
  average_ms: number;
  p50_ms: number;
  p99_ms: number;
}

export async function exporterFigures(exporterMetricsUrl: string): Promise<ServiceFigures[]> {
  const body = JSON.parse(await get(`${exporterMetricsUrl}/v1/latency`)) as { services: ServiceFigures[] };
  return body.services;
}

export function fetchMetrics(exporterMetricsUrl: string): Promise<string> {
  return get(`${exporterMetricsUrl}/metrics`);
}

/** kong_upstream_latency_ms `_count` and `_sum` per kong_service, from an exposition. */
export function upstreamTotals(metricsText: string): Map<string, { count: number; sum: number }> {
  const samples = parseSamples(metricsText);
  const out = new Map<string, { count: number; sum: number }>();
  for (const c of select(samples, "kong_upstream_latency_ms_count")) {
    const kongService = c.labels.kong_service;
    const sum = select(samples, "kong_upstream_latency_ms_sum", { kong_service: kongService })[0]?.value ?? NaN;
    out.set(kongService, { count: c.value, sum });
  }
  return out;
}

const FAMILIES = ["kong_upstream_latency_ms", "kong_upstream_latency_ms_percentile"];

/** The upstream latency histogram and percentile lines of one Kong Service, with their HELP and TYPE. */
export function metricsExcerpt(metricsText: string, kongService: string): string[] {
  const label = `kong_service="${kongService}"`;
  return metricsText.split("\n").filter((line) => {
    const comment = /^# (?:HELP|TYPE) (\S+)/.exec(line);
    if (comment) return FAMILIES.includes(comment[1]);
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? "";
    return (
      line.includes(label) &&
      FAMILIES.some((f) => name === f || name === `${f}_bucket` || name === `${f}_sum` || name === `${f}_count`)
    );
  });
}

export interface AdapterReading {
  /** As the custom metrics API shows it, e.g. "102312m". */
  quantity: string;
  ms: number;
}

/**
 * What prometheus-adapter, with the guide's rule, answers for
 * /apis/custom.metrics.k8s.io/v1beta1/namespaces/{namespace}/services/{name}/kong_upstream_latency_ms_60s_average;
 * undefined while Prometheus has no value (rate() over [60s:10s] needs two subquery steps, 10 s apart).
 */
export async function adapterReading(
  prom: Prometheus,
  namespace: string,
  name: string,
): Promise<AdapterReading | undefined> {
  const [sample] = await prom.query(adapterQuery(namespace, name));
  if (!sample) return undefined;
  return { quantity: renderQuantity(sample.value), ms: sample.value };
}

export function adapterQuery(namespace: string, name: string): string {
  return expandMetricsQuery(GUIDE_AVERAGE_RULE.metricsQuery, { namespace, resource: "services", name });
}
