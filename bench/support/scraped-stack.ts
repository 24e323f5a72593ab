import { randomUUID } from "node:crypto";
import { DEFAULTS } from "../../plugin/schema";
import { startExporter, type ExporterProcess } from "../../devstack/process/exporter-process";
import { makeService, type KongEmulator, type KongService, type LogContext } from "../../devstack/kong";
import { startPrometheus, type Prometheus } from "../../devstack/prometheus/prometheus";
import { startPluginStack } from "../../devstack/process/plugin-stack";

/** The Kubernetes Service the benchmarked Kong Service stands for, as KIC tags it. */
export const K8S_SERVICE = { namespace: "default", name: "echo" };
export const KONG_SERVICE_NAME = "default.echo.80";
export const WORKERS = 2;

/**
 * The whole path a latency takes in a cluster, on loopback: the real kong-js-pluginserver running the built
 * upstream-latency plugin (on a route, default configuration) shipping to a fresh real latency-exporter, which
 * the real Prometheus scrapes as a ServiceMonitor would.
 */
export interface ScrapedStack {
  exporter: ExporterProcess;
  prom: Prometheus;
  kong: KongEmulator;
  service: KongService;
  /** One log event of the plugin; rejects when Kong would have logged an error, so no event is lost silently. */
  log(worker: number, ctx: LogContext): Promise<void>;
  close(): Promise<void>;
}

export async function startScrapedStack(scrapeInterval: string): Promise<ScrapedStack> {
  const exporter = await startExporter(["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"]);
  const [prom, stack] = await Promise.allSettled([
    startPrometheus({ address: new URL(exporter.metricsUrl).host, scrapeInterval }),
    startPluginStack(WORKERS),
  ]);
  const close = async () => {
    if (prom.status === "fulfilled") await prom.value.stop();
    if (stack.status === "fulfilled") await stack.value.close();
    await exporter.stop();
  };
  if (prom.status === "rejected" || stack.status === "rejected") {
    await close();
    throw prom.status === "rejected" ? prom.reason : (stack as PromiseRejectedResult).reason;
  }
  const kong = stack.value.kong;
  const pluginId = randomUUID();
  kong.configurePlugin({
    id: pluginId,
    routeId: randomUUID(),
    config: { exporter_url: exporter.ingestUrl, flush_interval: DEFAULTS.flush_interval },
  });
  return {
    exporter,
    prom: prom.value,
    kong,
    service: makeService({
      name: KONG_SERVICE_NAME,
      tags: [
        `k8s-namespace:${K8S_SERVICE.namespace}`,
        `k8s-name:${K8S_SERVICE.name}`,
        "k8s-kind:Service",
        "k8s-version:v1",
      ],
    }),
    async log(worker, ctx) {
      const trace = await kong.log(worker, pluginId, ctx);
      if (trace.errors.length > 0)
        throw new Error(`Kong logged errors for the plugin's event: ${trace.errors.join("; ")}`);
    },
    close,
  };
}
