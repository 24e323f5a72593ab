/**
 * What prometheus-adapter does with a custom-metrics rule when the HPA controller asks for one object's metric,
 * e.g. GET /apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/echo/kong_upstream_latency_ms_60s_average,
 * as pure functions, so a test can send the adapter's exact PromQL to a real Prometheus and read the value as the
 * HPA would. Sources (kubernetes-sigs/prometheus-adapter unless noted):
 * - pkg/naming/metrics_query.go, metricsQuery.Build: the namespace matcher (label of the "namespaces" resource)
 *   comes first, then the object's own resource label; one name gives `label="name"`, several `label=~"a|b"`;
 *   they are joined with "," into .LabelMatchers; .GroupBy is the resource's label. The template is Go
 *   text/template with `<<` `>>` delimiters. pkg/naming/metric_namer.go, QueryForSeries: no extra group-by for
 *   custom metrics; an HPA Object metric without a selector adds no matchers either.
 * - pkg/client/helpers.go, LabelEq: `fmt.Sprintf("%s=%q", label, value)`.
 * - pkg/naming/resource_converter.go: `resources.overrides` maps a label to a resource, both ways.
 * - pkg/custom-provider/provider.go, metricFor: NaN becomes `resource.NewQuantity(0, DecimalSI)`, anything else
 *   `resource.NewMilliQuantity(int64(value*1000.0), resource.DecimalSI)`.
 * - kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/api/resource: quantity.go CanonicalizeBytes,
 *   amount.go int64Amount.AsCanonicalBytes (strip factors of 10 into the exponent, then multiply back until the
 *   exponent is a multiple of 3), suffix.go (DecimalSI suffixes n u m "" k M G T P E).
 */

export interface AdapterRule {
  seriesQuery: string;
  resources: { overrides: Record<string, { resource: string }> };
  name: { as: string };
  metricsQuery: string;
}

const OVERRIDES: AdapterRule["resources"]["overrides"] = {
  exported_namespace: { resource: "namespace" },
  exported_service: { resource: "service" },
};

/** The autoscaling guide's rule, verbatim (its metricsQuery is a YAML block scalar, hence the line breaks). */
export const GUIDE_AVERAGE_RULE: AdapterRule = {
  seriesQuery:
    '{__name__=~"^kong_upstream_latency_ms_(sum|count)",kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}',
  resources: { overrides: OVERRIDES },
  name: { as: "kong_upstream_latency_ms_60s_average" },
  metricsQuery:
    "sum by (exported_service) (rate(kong_upstream_latency_ms_sum{<<.LabelMatchers>>}[60s:10s]))\n" +
    "  /\n" +
    "sum by (exported_service) (rate(kong_upstream_latency_ms_count{<<.LabelMatchers>>}[60s:10s]))\n",
};

/**
 * The p99 over the sidecar's percentile window. Each Kong pod computes its own; max over the pods is not below
 * the p99 of all their requests taken together.
 */
export const P99_RULE: AdapterRule = {
  seriesQuery:
    '{__name__="kong_upstream_latency_ms_percentile",quantile="0.99",kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}',
  resources: { overrides: OVERRIDES },
  name: { as: "kong_upstream_latency_ms_p99" },
  metricsQuery: 'max by (<<.GroupBy>>) (kong_upstream_latency_ms_percentile{quantile="0.99",<<.LabelMatchers>>})',
};

/**
 * A percentile of every Kong pod's requests together, from the native histogram family: `sum` merges the
 * pods' buckets exactly, and histogram_quantile() is within one bucket (2.2% at schema 5). `q` and the
 * rate window are PromQL text, e.g. "0.99" and "1m"; an idle window gives NaN, as the average's 0/0 does.
 */
export function nativeQuantileQuery(q: string, window: string): string {
  return `histogram_quantile(${q}, sum by (exported_service) (rate(kong_upstream_latency_ms_native{<<.LabelMatchers>>}[${window}])))`;
}

/** The fleet p99 over the last minute, the native histogram's answer to P99_RULE's worst pod. */
export const FLEET_P99_RULE: AdapterRule = {
  seriesQuery:
    '{__name__="kong_upstream_latency_ms_native",kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}',
  resources: { overrides: OVERRIDES },
  name: { as: "kong_upstream_latency_ms_fleet_p99" },
  metricsQuery: nativeQuantileQuery("0.99", "1m"),
};

/** The object of a custom-metrics request: .../namespaces/{namespace}/{resource}/{name}/{metric}. */
export interface DescribedObject {
  namespace: string;
  /** As in the URL ("services") or as in a rule ("service"). */
  resource: string;
  name: string;
}

// Stands in for the RESTMapper normalisation the adapter applies to both sides ("service" and "services" are one
// resource); enough for core resources whose plural is the singular plus "s".
function singular(resource: string): string {
  return resource.toLowerCase().replace(/s$/, "");
}

function labelFor(resource: string, overrides: AdapterRule["resources"]["overrides"]): string {
  const found = Object.entries(overrides).find(([, o]) => singular(o.resource) === singular(resource));
  if (!found) throw new Error(`no label overrides resource ${resource}`);
  return found[0];
}

// Kubernetes object names and namespaces are DNS-1123 subdomains; for them Go's %q is plain double quoting.
const DNS1123 = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function labelEq(label: string, value: string): string {
  if (!DNS1123.test(value)) throw new Error(`${JSON.stringify(value)} is not a Kubernetes object name`);
  return `${label}="${value}"`;
}

/** The PromQL prometheus-adapter sends to Prometheus for one namespaced object (metricsQuery.Build). */
export function expandMetricsQuery(
  template: string,
  obj: DescribedObject,
  overrides: AdapterRule["resources"]["overrides"] = OVERRIDES,
): string {
  const resourceLabel = labelFor(obj.resource, overrides);
  const args: Record<string, string> = {
    LabelMatchers: [labelEq(labelFor("namespaces", overrides), obj.namespace), labelEq(resourceLabel, obj.name)].join(
      ",",
    ),
    GroupBy: resourceLabel,
  };
  const out = template.replace(/<<\s*\.(\w+)\s*>>/g, (action, field: string) => {
    const v = args[field];
    if (v === undefined) throw new Error(`template action ${action} is not supported here`);
    return v;
  });
  if (out.includes("<<")) throw new Error(`unexpanded template action in ${JSON.stringify(out)}`);
  return out;
}

const DECIMAL_SI_SUFFIX: Record<number, string> = {
  [-9]: "n",
  [-6]: "u",
  [-3]: "m",
  0: "",
  3: "k",
  6: "M",
  9: "G",
  12: "T",
  15: "P",
  18: "E",
};

/** The MetricValue's `value` string the custom metrics API returns for a PromQL result, e.g. "102312m" or "100". */
export function renderQuantity(value: number): string {
  if (Number.isNaN(value)) return "0";
  // Go's int64(float64) truncates toward zero.
  let amount = Math.trunc(value * 1000);
  if (!Number.isSafeInteger(amount)) throw new RangeError(`${value} is beyond what this rendering computes exactly`);
  if (amount === 0) return "0";
  let exponent = -3;
  while (amount % 10 === 0) {
    amount /= 10;
    exponent++;
  }
  // Go's % keeps the dividend's sign, as JavaScript's does.
  switch (exponent % 3) {
    case 1:
    case -2:
      amount *= 10;
      exponent -= 1;
      break;
    case 2:
    case -1:
      amount *= 100;
      exponent -= 2;
      break;
  }
  return `${amount}${DECIMAL_SI_SUFFIX[exponent]}`;
}

/** A DecimalSI quantity string as a number (what the HPA compares with its target). */
export function parseQuantity(q: string): number {
  const m = /^([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)(n|u|m|k|M|G|T|P|E)?$/.exec(q);
  if (!m) throw new Error(`${JSON.stringify(q)} is not a DecimalSI quantity`);
  const exponent = Number(Object.entries(DECIMAL_SI_SUFFIX).find(([, s]) => s === (m[2] ?? ""))![0]);
  return Number(m[1]) * 10 ** exponent;
}
