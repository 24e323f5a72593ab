import { request } from "undici";
import {
  expandMetricsQuery,
  GUIDE_AVERAGE_RULE,
  FLEET_P99_RULE,
  P99_RULE,
  parseQuantity,
  renderQuantity,
  type AdapterRule,
} from "../../devstack/prometheus/adapter";
import type { Prometheus } from "../../devstack/prometheus/prometheus";
import { labelSelectorText, type HpaSpec, type MetricReading } from "./hpa";

export type MetricPath = "average" | "p99" | "native-p99" | "keda";

const ADAPTER_RULES = { average: GUIDE_AVERAGE_RULE, p99: P99_RULE, "native-p99": FLEET_P99_RULE };

/** Where the HPA's metric comes from, and what its HPA (or KEDA's) declares. */
export interface MetricSource {
  path: MetricPath;
  /** How the README and the output name it. */
  title: string;
  /** What the controller reads on each sync. */
  read(): Promise<MetricReading>;
  metric: HpaSpec["metric"];
  /** The query or URL, shown to the user. */
  query: string;
}

const READ_TIMEOUT_MS = 5_000;

/**
 * The rule's range and step durations multiplied by `scale` (in ms, so any factor stays exact): a shortened run keeps
 * the rule's shape. At scale 1 the query is the adapter's, byte for byte.
 */
export function scaleRangeDurations(promql: string, scale: number): string {
  if (scale === 1) return promql;
  const ms = (n: string, unit: string) =>
    `${Math.round(Number(n) * { ms: 1, s: 1000, m: 60_000 }[unit as "ms" | "s" | "m"] * scale)}ms`;
  return promql.replace(
    /\[(\d+)(ms|s|m)(?::(\d+)(ms|s|m))?\]/g,
    (_all, r: string, ru: string, s?: string, su?: string) => `[${ms(r, ru)}${s ? `:${ms(s, su!)}` : ""}]`,
  );
}

/**
 * prometheus-adapter answering the HPA controller's GET
 * /apis/custom.metrics.k8s.io/v1beta1/namespaces/{ns}/services/{name}/{metric}: the rule's PromQL for that object
 * (see devstack/prometheus/adapter.ts), queried when the controller asks, as the adapter does. An empty result is the
 * adapter's "metric not found"; NaN becomes a quantity of 0 (custom-provider/provider.go, metricFor).
 */
function adapterSource(
  path: keyof typeof ADAPTER_RULES,
  rule: AdapterRule,
  prom: Prometheus,
  namespace: string,
  name: string,
  targetMs: number,
  scale: number,
): MetricSource {
  const query = scaleRangeDurations(
    expandMetricsQuery(rule.metricsQuery, { namespace, resource: "services", name }),
    scale,
  );
  return {
    path,
    title: `prometheus-adapter rule ${rule.name.as}`,
    query,
    metric: { type: "Object", name: rule.name.as, describedObject: { kind: "Service", name }, targetValue: targetMs },
    async read() {
      let samples;
      try {
        samples = await prom.query(query);
      } catch (err) {
        return {
          error: `unable to get metric ${rule.name.as}: Service on ${namespace} ${name}/unable to fetch metrics from custom metrics API: ${(err as Error).message}`,
        };
      }
      const sample = samples.find((s) => s.metric.exported_service === name);
      if (!sample) {
        return {
          error: `unable to get metric ${rule.name.as}: Service on ${namespace} ${name}/unable to fetch metrics from custom metrics API: the server could not find the metric ${rule.name.as} for services ${name}`,
        };
      }
      return { value: parseQuantity(renderQuantity(sample.value)) };
    },
  };
}

/**
 * KEDA's metrics-api scaler with `valueLocation: p99_ms` and `metricType: Value` on the sidecar's /v1/latency: KEDA
 * serves it to the HPA as the External metric `s0-metric-api-p99_ms`, reading the URL when the HPA asks (no
 * `useCachedMetrics`), and gives the value as a milli-quantity.
 */
function kedaSource(exporterMetricsUrl: string, namespace: string, name: string, targetMs: number): MetricSource {
  const url = `${exporterMetricsUrl}/v1/latency?namespace=${encodeURIComponent(namespace)}&service=${encodeURIComponent(name)}`;
  const metricName = "s0-metric-api-p99_ms";
  const selector = { "scaledobject.keda.sh/name": name };
  return {
    path: "keda",
    title: "KEDA metrics-api trigger on /v1/latency (p99_ms)",
    query: url,
    metric: { type: "External", name: metricName, selector, targetValue: targetMs },
    async read() {
      try {
        const res = await request(url, { headersTimeout: READ_TIMEOUT_MS, bodyTimeout: READ_TIMEOUT_MS });
        const body = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`api returned ${res.statusCode}`);
        const v = (JSON.parse(body) as { p99_ms?: unknown }).p99_ms;
        if (typeof v !== "number")
          throw new Error(
            `valueLocation must point to value of type number or a string representing a Quantity got: '${String(v)}'`,
          );
        return { value: v };
      } catch (err) {
        return {
          error: `unable to get external metric ${namespace}/${metricName}/${labelSelectorText(selector)}: unable to fetch metrics from external metrics API: ${(err as Error).message}`,
        };
      }
    },
  };
}

export function metricSource(
  path: MetricPath,
  ctx: {
    prometheus: Prometheus;
    exporterMetricsUrl: string;
    namespace: string;
    name: string;
    targetMs: number;
    timeScale: number;
  },
): MetricSource {
  if (path === "keda") return kedaSource(ctx.exporterMetricsUrl, ctx.namespace, ctx.name, ctx.targetMs);
  return adapterSource(path, ADAPTER_RULES[path], ctx.prometheus, ctx.namespace, ctx.name, ctx.targetMs, ctx.timeScale);
}
