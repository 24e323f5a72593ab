import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { freePort } from "../process/plugin-stack";
import { waitFor } from "../process/wait";
import { findExecutable, INSTALL_PROMETHEUS, requirement } from "../requirement";

/**
 * Where the sidecar would sit in a cluster: the Kubernetes objects behind one endpoint of a ServiceMonitor.
 * These become the scraped series' target labels, as they do in a cluster.
 */
export interface ServiceMonitorTarget {
  /** Namespace of the metrics Service and of the Kong pod. */
  namespace: string;
  /** The metrics Service; also the job name, as the operator derives it when the monitor has no jobLabel. */
  service: string;
  pod: string;
  container: string;
  /** The ServiceMonitor endpoint's `port`: the Service port's name. */
  port: string;
}

export const DEFAULT_TARGET: ServiceMonitorTarget = {
  namespace: "kong",
  service: "kong-latency-exporter",
  pod: "dataplane-kong-abc",
  container: "latency-exporter",
  port: "metrics",
};

export interface PrometheusOptions {
  /** host:port of the sidecar's metrics listener. */
  address: string;
  /** More Kong pods behind the same ServiceMonitor endpoint (the first is `address` in pod `target.pod`). */
  morePods?: { address: string; pod: string }[];
  /** Prometheus's --enable-feature values, e.g. ["native-histograms"]. */
  features?: string[];
  metricsPath?: string;
  target?: Partial<ServiceMonitorTarget>;
  /** Default 1s, for test speed (a ServiceMonitor's default is Prometheus's 30s). */
  scrapeInterval?: string;
}

export interface VectorSample {
  metric: Record<string, string>;
  value: number;
  /** Seconds since the epoch. */
  timestamp: number;
}

export interface ActiveTarget {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
}

export interface Prometheus {
  url: string;
  /** Instant query (GET /api/v1/query); `time` in epoch seconds, default now. Only vector results are accepted. */
  query(promql: string, time?: number): Promise<VectorSample[]>;
  /** GET /api/v1/series with one match[]; `start` in epoch seconds, default Prometheus's (all of the head). */
  series(match: string, start?: number): Promise<Record<string, string>[]>;
  targets(): Promise<ActiveTarget[]>;
  logs(): string;
  stop(): Promise<void>;
}

/** The `prometheus` executable on PATH, if any. */
export function findPrometheus(): string | undefined {
  return findExecutable("prometheus");
}

/** For a suite's before hook: the Prometheus binary, or the suite is pending (failed under CI). */
export function prometheusOrSkip(ctx: Mocha.Context): string {
  const bin = findPrometheus();
  requirement(ctx, bin ? undefined : "prometheus is not on PATH", INSTALL_PROMETHEUS);
  return bin!;
}

/**
 * The scrape job prometheus-operator generates for one ServiceMonitor endpoint (`port: <name>`, `path`,
 * `scheme: http`, default honorLabels: false), with the Kubernetes service discovery replaced by a static target
 * that carries the `__meta_kubernetes_*` labels the endpoints role would attach. The relabelings are the
 * operator's, in its order: prometheus-operator/prometheus-operator pkg/prometheus/promcfg.go (read at 0022663),
 * generateServiceMonitorConfig (and initRelabelings, generateRunningFilter); the selector's keep rules are left
 * out since there is only one target. honor_labels false is what turns the sidecar's own `namespace` and
 * `service` labels into `exported_namespace` and `exported_service`.
 */
export function serviceMonitorScrapeConfig(opts: PrometheusOptions): Record<string, unknown> {
  const t = { ...DEFAULT_TARGET, ...opts.target };
  const interval = opts.scrapeInterval ?? "1s";
  const targetRef = [
    "__meta_kubernetes_endpoint_address_target_kind",
    "__meta_kubernetes_endpoint_address_target_name",
  ];
  return {
    job_name: `serviceMonitor/${t.namespace}/${t.service}/0`,
    honor_labels: false,
    scrape_interval: interval,
    scrape_timeout: interval,
    metrics_path: opts.metricsPath ?? "/metrics",
    scheme: "http",
    static_configs: [{ address: opts.address, pod: t.pod }, ...(opts.morePods ?? [])].map(({ address, pod }) => ({
      targets: [address],
      labels: {
        __meta_kubernetes_namespace: t.namespace,
        __meta_kubernetes_service_name: t.service,
        __meta_kubernetes_pod_name: pod,
        __meta_kubernetes_pod_container_name: t.container,
        __meta_kubernetes_pod_phase: "Running",
        __meta_kubernetes_endpoint_port_name: t.port,
        __meta_kubernetes_endpoint_address_target_kind: "Pod",
        __meta_kubernetes_endpoint_address_target_name: pod,
      },
    })),
    relabel_configs: [
      { source_labels: ["job"], target_label: "__tmp_prometheus_job_name" },
      { action: "keep", source_labels: ["__meta_kubernetes_endpoint_port_name"], regex: t.port },
      { source_labels: targetRef, separator: ";", regex: "Node;(.*)", replacement: "${1}", target_label: "node" },
      { source_labels: targetRef, separator: ";", regex: "Pod;(.*)", replacement: "${1}", target_label: "pod" },
      { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
      { source_labels: ["__meta_kubernetes_service_name"], target_label: "service" },
      { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
      { source_labels: ["__meta_kubernetes_pod_container_name"], target_label: "container" },
      { action: "drop", source_labels: ["__meta_kubernetes_pod_phase"], regex: "(Failed|Succeeded)" },
      { source_labels: ["__meta_kubernetes_service_name"], target_label: "job", replacement: "${1}" },
      { target_label: "endpoint", replacement: t.port },
    ],
  };
}

/** Accept of Prometheus 2.42's scrapes (scrape/scrape.go), and with --enable-feature=native-histograms. */
export const SCRAPE_ACCEPT =
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
export const SCRAPE_ACCEPT_NATIVE_HISTOGRAMS =
  "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/** Prometheus answers in milliseconds here; a bound keeps a wedged one from hanging a test or the HPA's sync. */
const API_TIMEOUT_MS = 10_000;

async function getJson<T>(url: string): Promise<T> {
  const res = await request(url, { headersTimeout: API_TIMEOUT_MS, bodyTimeout: API_TIMEOUT_MS });
  const text = await res.body.text();
  let body: { status?: string; data?: T; error?: string };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`${url}: HTTP ${res.statusCode}: ${text}`);
  }
  if (res.statusCode !== 200 || body.status !== "success")
    throw new Error(`${url}: HTTP ${res.statusCode}: ${body.error ?? text}`);
  return body.data as T;
}

/**
 * Starts the real Prometheus on a free loopback port with a temporary data directory, scraping one sidecar as a
 * ServiceMonitor would, and waits until it is ready. The first scrape still lands seconds later: poll for data.
 */
export async function startPrometheus(opts: PrometheusOptions, timeoutMs = 20_000): Promise<Prometheus> {
  const bin = findPrometheus();
  if (!bin) throw new Error(`prometheus is not on PATH (${INSTALL_PROMETHEUS})`);
  const dir = mkdtempSync(join(tmpdir(), "prometheus-e2e-"));
  const configFile = join(dir, "prometheus.yml");
  const interval = opts.scrapeInterval ?? "1s";
  // JSON is YAML, and leaves nothing to a YAML emitter's quoting.
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [serviceMonitorScrapeConfig(opts)],
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    bin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      ...(opts.features ?? []).map((f) => `--enable-feature=${f}`),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;

  const stop = async () => {
    if (running()) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      `Prometheus ready on ${url}`,
      async () => {
        if (!running()) throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode}):\n${out}`);
        const res = await request(`${url}/-/ready`);
        await res.body.text();
        return res.statusCode === 200 ? true : undefined;
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- prometheus output:\n${out.slice(-4000)}`, { cause: err });
  }

  return {
    url,
    async query(promql, time) {
      const params = new URLSearchParams({ query: promql });
      if (time !== undefined) params.set("time", String(time));
      const data = await getJson<{
        resultType: string;
        result: { metric: Record<string, string>; value: [number, string] }[];
      }>(`${url}/api/v1/query?${params.toString()}`);
      // prometheus-adapter refuses anything but a vector (pkg/custom-provider/provider.go, buildQuery).
      if (data.resultType !== "vector") throw new Error(`${promql}: expected a vector, got ${data.resultType}`);
      return data.result.map((r) => ({ metric: r.metric, timestamp: r.value[0], value: Number(r.value[1]) }));
    },
    async series(match, start) {
      const params = new URLSearchParams();
      params.append("match[]", match);
      if (start !== undefined) params.set("start", String(start));
      return getJson<Record<string, string>[]>(`${url}/api/v1/series?${params.toString()}`);
    },
    async targets() {
      return (await getJson<{ activeTargets: ActiveTarget[] }>(`${url}/api/v1/targets?state=active`)).activeTargets;
    },
    logs: () => out,
    stop,
  };
}
