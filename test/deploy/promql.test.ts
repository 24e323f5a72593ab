/**
 * The PromQL the chart ships, checked by Prometheus's own promtool (Debian package `prometheus`; when absent, skipped
 * with a message, or failed under CI=true): every query parses (adapter rules, KEDA triggers, dashboard panels), and the adapter rules
 * and KEDA queries compute the right numbers on series labelled as Prometheus stores the exporter's after a
 * ServiceMonitor or PodMonitor scrape: with honorLabels false, an exporter label that collides with a target label
 * is renamed exported_<name>. That rename is why the guide's rule reads exported_service, and why it needs the
 * ServiceMonitor.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { guideAdapterValues } from "./support/guide";
import { render, requireHelm, type K8sObject, type Values } from "./support/helm";
import { findExecutable, INSTALL_PROMETHEUS, requirement } from "../../devstack/requirement";
import { WITH_RULES_CONFIGMAP, adapterRules } from "./support/rendered";

type Obj = Record<string, any>;

/** The exporter's label set for the guide's echo Service (what /metrics shows, see sidecar/labels.ts). */
const EXPORTED = {
  namespace: "default",
  service: "echo",
  kubernetes_namespace: "default",
  kubernetes_name: "echo",
  kubernetes_kind: "service",
  kubernetes_apiversion: "v1",
  kong_service: "echo",
};

/** Labels Prometheus Operator gives the targets of each monitor kind. */
function targetLabels(kind: "ServiceMonitor" | "PodMonitor", pod: string): Record<string, string> {
  const common = {
    namespace: "kong",
    pod,
    container: "latency-exporter",
    instance: `10.0.0.${pod.length}:9542`,
    endpoint: "metrics",
  };
  return kind === "ServiceMonitor"
    ? { ...common, service: "kle-kong-latency-exporter-metrics", job: "kle-kong-latency-exporter-metrics" }
    : { ...common, job: "kong/kle-kong-latency-exporter" };
}

/** Prometheus with honor_labels: false: a scraped label that collides with a target label becomes exported_<name>. */
function scraped(exported: Record<string, string>, target: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...target };
  for (const [k, v] of Object.entries(exported)) out[k in target ? `exported_${k}` : k] = v;
  return out;
}

function selector(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`;
}

/** Two Kong pods behind echo: 1 request/s each, 100 ms and 300 ms on average (200 together), p99 120 and 250 ms. */
function inputSeries(kind: "ServiceMonitor" | "PodMonitor", idle = false): { series: string; values: string }[] {
  const out: { series: string; values: string }[] = [];
  for (const [pod, avgMs, p99] of [
    ["dataplane-kong-a", 100, 120],
    ["dataplane-kong-b", 300, 250],
  ] as const) {
    const l = scraped(EXPORTED, targetLabels(kind, pod));
    out.push({ series: selector("kong_upstream_latency_ms_count", l), values: idle ? "50x12" : "0+10x12" });
    out.push({ series: selector("kong_upstream_latency_ms_sum", l), values: idle ? "5000x12" : `0+${10 * avgMs}x12` });
    out.push({
      series: selector("kong_upstream_latency_ms_percentile", { ...l, quantile: "0.99" }),
      values: `${p99}x12`,
    });
    out.push({
      series: selector("kong_upstream_latency_ms_percentile", { ...l, quantile: "0.5" }),
      values: `${avgMs}x12`,
    });
  }
  // A Kong Service without a Kubernetes identity: excluded by the seriesQuery, invisible to the rules.
  const orphan = scraped(
    {
      ...EXPORTED,
      namespace: "",
      service: "",
      kubernetes_namespace: "",
      kubernetes_name: "",
      kubernetes_kind: "",
      kubernetes_apiversion: "",
      kong_service: "legacy",
    },
    targetLabels(kind, "dataplane-kong-a"),
  );
  out.push({ series: selector("kong_upstream_latency_ms_count", orphan), values: "0+10x12" });
  return out;
}

interface Case {
  name: string;
  expr: string;
  samples: { labels: string; value: number }[];
}

/** One promtool unit test file: recording rules for the expressions, expected samples at t = 2m. */
function promtoolTest(promtool: string, kind: "ServiceMonitor" | "PodMonitor", cases: Case[], idle = false): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kle-promql-"));
  try {
    const rules = { groups: [{ name: "t", rules: cases.map((c) => ({ record: c.name, expr: c.expr })) }] };
    fs.writeFileSync(path.join(dir, "rules.yaml"), stringify(rules));
    const test = {
      rule_files: ["rules.yaml"],
      evaluation_interval: "10s",
      tests: [
        {
          interval: "10s",
          input_series: inputSeries(kind, idle),
          promql_expr_test: cases.map((c) => ({
            expr: c.name,
            eval_time: "2m",
            exp_samples: c.samples.map((s) => ({ labels: `${c.name}${s.labels}`, value: s.value })),
          })),
        },
      ],
    };
    fs.writeFileSync(path.join(dir, "test.yaml"), stringify(test));
    const r = spawnSync(promtool, ["test", "rules", "test.yaml"], { cwd: dir, encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 0, `promtool test rules:\n${r.stdout}\n${r.stderr}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What prometheus-adapter sends for GET .../namespaces/default/services/echo/<metric>. */
function adapterQuery(rule: Obj, serviceLabel: string): string {
  return (rule.metricsQuery as string).replaceAll(
    "<<.LabelMatchers>>",
    `exported_namespace="default",${serviceLabel}="echo"`,
  );
}

function kedaQueries(objs: K8sObject[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const so of objs.filter((o) => o.kind === "ScaledObject") as Obj[])
    for (const t of so.spec.triggers) out[`${so.metadata.name}/${t.name}`] = t.metadata.query;
  return out;
}

const TARGET = {
  name: "echo",
  namespace: "default",
  workload: { name: "echo" },
  service: "echo",
  averageMs: 40,
  p99Ms: 250,
  maxReplicas: 10,
};

describe("deploy: PromQL of the adapter rules, KEDA triggers and dashboard (promtool)", function () {
  this.timeout(120_000);
  let helm: string;
  let promtool: string;

  before(function () {
    helm = requireHelm(this);
    const p = findExecutable("promtool");
    requirement(this, p ? undefined : "promtool is not on PATH", INSTALL_PROMETHEUS);
    promtool = p!;
  });

  it("every query parses", function () {
    const exprs: Record<string, string> = {};
    for (const [variant, values] of [
      [
        "sm",
        {
          prometheusAdapter: { fleetP99: true },
          autoscaling: { keda: { enabled: true }, targets: [{ ...TARGET, fleetP99Ms: 250 }] },
        },
      ],
      ["pm", { monitoring: { kind: "PodMonitor" }, autoscaling: { keda: { enabled: true }, targets: [TARGET] } }],
    ] as [string, Values][]) {
      const objs = render(helm, { ...values, ...WITH_RULES_CONFIGMAP });
      adapterRules(objs).forEach((r, i) => {
        exprs[`${variant}_adapter_${i}_series`] = r.seriesQuery;
        exprs[`${variant}_adapter_${i}`] = adapterQuery(r, variant === "sm" ? "exported_service" : "service");
      });
      Object.values(kedaQueries(objs)).forEach((q, i) => (exprs[`${variant}_keda_${i}`] = q));
      const dash = JSON.parse(
        (objs.find((o) => o.kind === "ConfigMap" && (o as Obj).data["kong-upstream-latency.json"]) as Obj).data[
          "kong-upstream-latency.json"
        ],
      );
      for (const p of dash.panels) {
        for (const t of p.targets)
          exprs[`${variant}_panel_${p.id}_${t.refId}`] = t.expr
            .replaceAll("$__rate_interval", "1m")
            .replaceAll("$namespace", ".+")
            .replaceAll("$service", ".+");
      }
      for (const v of dash.templating.list)
        if (v.query?.query)
          exprs[`${variant}_var_${v.name}`] = v.query.query
            .replace(/^label_values\((.*), *\w+\)$/, "$1")
            .replaceAll("$namespace", ".+");
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kle-promql-"));
    try {
      const file = path.join(dir, "rules.yaml");
      fs.writeFileSync(
        file,
        stringify({
          groups: [{ name: "all", rules: Object.entries(exprs).map(([k, expr]) => ({ record: `check:${k}`, expr })) }],
        }),
      );
      const r = spawnSync(promtool, ["check", "rules", file], { encoding: "utf8", timeout: 60_000 });
      assert.equal(r.status, 0, `promtool check rules:\n${r.stdout}\n${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ServiceMonitor: the guide's rule and the chart's give 200 ms for echo over two Kong pods, p99 250 ms", function () {
    const [avg, p99] = adapterRules(render(helm, WITH_RULES_CONFIGMAP));
    assert.deepEqual(avg, guideAdapterValues().rules.custom[0]);
    promtoolTest(promtool, "ServiceMonitor", [
      {
        name: "average",
        expr: adapterQuery(avg, "exported_service"),
        samples: [{ labels: '{exported_service="echo"}', value: 200 }],
      },
      {
        name: "p99",
        expr: adapterQuery(p99, "exported_service"),
        samples: [{ labels: '{exported_service="echo"}', value: 250 }],
      },
      // The seriesQuery finds the series of echo (and not the service without a Kubernetes identity).
      {
        name: "discovered",
        expr: `count by (exported_namespace, exported_service) (${String(avg.seriesQuery)})`,
        samples: [{ labels: '{exported_namespace="default",exported_service="echo"}', value: 4 }],
      },
    ]);
  });

  it("PodMonitor: the guide's rule finds nothing; the chart's PodMonitor rules give the same numbers", function () {
    const guide = guideAdapterValues().rules.custom[0];
    const [avg, p99] = adapterRules(render(helm, { monitoring: { kind: "PodMonitor" }, ...WITH_RULES_CONFIGMAP }));
    promtoolTest(promtool, "PodMonitor", [
      { name: "guide_average", expr: adapterQuery(guide, "exported_service"), samples: [] },
      { name: "average", expr: adapterQuery(avg, "service"), samples: [{ labels: '{service="echo"}', value: 200 }] },
      { name: "p99", expr: adapterQuery(p99, "service"), samples: [{ labels: '{service="echo"}', value: 250 }] },
    ]);
  });

  it("KEDA: the triggers give the same numbers, and 0 (not NaN) for an idle service", function () {
    const q = kedaQueries(render(helm, { autoscaling: { keda: { enabled: true }, targets: [TARGET] } }));
    const avg = q["echo/kong_upstream_latency_ms_60s_average"];
    const p99 = q["echo/kong_upstream_latency_ms_p99"];
    promtoolTest(promtool, "ServiceMonitor", [
      { name: "average", expr: avg, samples: [{ labels: "", value: 200 }] },
      { name: "p99", expr: p99, samples: [{ labels: "", value: 250 }] },
    ]);
    promtoolTest(
      promtool,
      "ServiceMonitor",
      [{ name: "average", expr: avg, samples: [{ labels: "", value: 0 }] }],
      true,
    );
  });
});
