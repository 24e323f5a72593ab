import { randomUUID } from "node:crypto";
import { DEFAULTS } from "../../plugin/schema";
import { startExporter } from "./exporter-process";
import { startPrometheus, type Prometheus } from "../prometheus/prometheus";
import { PRODUCT_PLUGIN_DIR, startPluginStack } from "./plugin-stack";
import { waitFor } from "./wait";
import { startEchoUpstream } from "../gateway/echo-upstream";
import { startGateway, type GatewayRoute, type GatewayStats } from "../gateway/node-gateway";
import { kicEntities, type RouteSpec } from "../gateway/kic-routes";
import { fetchMetrics, upstreamTotals } from "../observe";
import { PluginServer, type KongEmulator } from "../kong";
import { startNginxStackGateway } from "../nginx/stack-gateway";

/** Two Kubernetes Services in two namespaces, so that the output is visibly per Service. */
export const DEFAULT_ROUTES: RouteSpec[] = [
  { path: "/echo", namespace: "default", name: "echo" },
  { path: "/cart", namespace: "shop", name: "cart" },
];

/** nginx worker processes of the emulated Kong node. */
const WORKERS = 2;

export interface LocalStackOptions {
  /** Also run the real Prometheus, scraping the exporter every second as a ServiceMonitor would (needs `prometheus` on PATH). */
  withPrometheus: boolean;
  /** Its scrape interval; default 1s. */
  scrapeInterval?: string;
  /** Its --enable-feature values, e.g. ["native-histograms"]. */
  prometheusFeatures?: string[];
  /** The plugin's flush_interval in seconds; default the plugin's default. */
  flushInterval?: number;
  /** Default DEFAULT_ROUTES, all to the stack's echo upstream. */
  routes?: RouteSpec[];
  /**
   * Default true. False runs the same processes (the plugin server and the exporter too) but the gateway runs no
   * plugin in its log phase, as Kong with the plugin not enabled: the baseline of a throughput comparison.
   */
  plugin?: boolean;
  /** More latency-exporter flags, e.g. ["--percentile-window", "12s"]. */
  exporterArgs?: string[];
  /**
   * Default "node": the Node stand-in with the Kong-side emulator. "nginx": the Kong-like gateway on nginx + LuaJIT
   * (devstack/nginx), which must be installed and sends every route to the stack's echo upstream.
   */
  gateway?: GatewayKind;
}

export type GatewayKind = "node" | "nginx";

export interface StackRoute {
  path: string;
  namespace: string;
  name: string;
  /** The Kong Service name, `<namespace>.<name>.<port>` as Kong Ingress Controller names it. */
  kongService: string;
  upstream: string | (() => string);
}

export interface LocalStack {
  gateway: GatewayKind;
  /** The Kong stand-in, http://127.0.0.1:PORT. */
  gatewayUrl: string;
  /** The echo upstream; `?delay_ms=N` sets a request's upstream latency. */
  upstreamUrl: string;
  /** The exporter's metrics listener, http://127.0.0.1:PORT, serving /metrics and /v1/latency. */
  exporterMetricsUrl: string;
  exporterIngestUrl: string;
  prometheus?: Prometheus;
  routes: StackRoute[];
  pids: { pluginServer: number | undefined; exporter: number | undefined };
  gatewayStats(): Promise<GatewayStats>;
  /**
   * Waits until every log phase has run and the exporter's kong_upstream_latency_ms_count equals, per Kong Service,
   * what the plugin recorded: after it, /metrics holds every request sent so far.
   */
  drain(timeoutMs?: number): Promise<void>;
  /** Stops everything (idempotent); the plugin server ships what it holds before the exporter stops. */
  stop(): Promise<void>;
}

/**
 * The whole path on loopback: an echo upstream, the gateway standing in for Kong's data plane, the real
 * kong-js-pluginserver running the built upstream-latency plugin (global, as kong-config's KongClusterPlugin),
 * the real latency-exporter, and optionally the real Prometheus. On a failed start, what started is stopped.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  // Stopped last started first: the gateway's log phases need the plugin server, whose last shipment needs the exporter.
  const cleanups: Array<{ what: string; run: () => Promise<unknown> }> = [];
  const stopAll = async () => {
    const errors: string[] = [];
    for (let c = cleanups.pop(); c; c = cleanups.pop()) {
      try {
        await c.run();
      } catch (err) {
        errors.push(`${c.what}: ${(err as Error).message}`);
      }
    }
    if (errors.length > 0) throw new Error(`stopping the local stack: ${errors.join("; ")}`);
  };
  const started = async <T>(what: string, p: Promise<T>, stop: (v: T) => Promise<unknown>): Promise<T> => {
    const v = await p;
    cleanups.push({ what, run: () => stop(v) });
    return v;
  };

  try {
    const [upstream, exporter] = await all([
      started("echo upstream", startEchoUpstream(), (u) => u.close()),
      started(
        "latency-exporter",
        startExporter([
          "--metrics-address",
          "127.0.0.1:0",
          "--ingest-address",
          "127.0.0.1:0",
          ...(options.exporterArgs ?? []),
        ]),
        (e) => e.stop(),
      ),
    ]);
    // A demo that crashes must not leave the exporter running: PluginServer kills its servers the same way.
    const killExporter = () => exporter.child.kill("SIGKILL");
    process.once("exit", killExporter);
    cleanups.push({ what: "exit hook", run: () => Promise.resolve(void process.off("exit", killExporter)) });
    const kind = options.gateway ?? "node";
    const [plugin, prometheus] = await all([
      kind === "node"
        ? started("plugin server", startPluginStack(WORKERS), (s) => s.close())
        : started(
            "plugin server",
            PluginServer.start({ pluginsDir: PRODUCT_PLUGIN_DIR, sockName: "upstream-latency.sock" }).then(
              (server) => ({
                server,
                kong: undefined,
              }),
            ),
            (s) => s.server.stop(),
          ),
      options.withPrometheus
        ? started(
            "prometheus",
            startPrometheus({
              address: new URL(exporter.metricsUrl).host,
              scrapeInterval: options.scrapeInterval,
              features: options.prometheusFeatures,
            }),
            (p) => p.stop(),
          )
        : Promise.resolve(undefined),
    ]);
    const pluginConfig = {
      exporter_url: exporter.ingestUrl,
      flush_interval: options.flushInterval ?? DEFAULTS.flush_interval,
    };
    const withPlugin = options.plugin ?? true;
    const specs = options.routes ?? DEFAULT_ROUTES;
    const routes = specs.map((spec) => ({ ...kicEntities(spec), upstream: spec.upstream ?? upstream.url }));
    const gateway = await started(
      "gateway",
      plugin.kong
        ? startNodeGateway(routes, plugin.kong, withPlugin ? pluginConfig : undefined)
        : startNginxStackGateway({
            routes: specs,
            upstreamUrl: upstream.url,
            socket: plugin.server.socketPath,
            pluginConfig: withPlugin ? pluginConfig : undefined,
            workers: WORKERS,
          }),
      (g) => g.stop(),
    );

    let stopping: Promise<void> | undefined;
    return {
      gateway: kind,
      gatewayUrl: gateway.url,
      upstreamUrl: upstream.url,
      exporterMetricsUrl: exporter.metricsUrl,
      exporterIngestUrl: exporter.ingestUrl,
      prometheus,
      routes: specs.map((spec, i) => ({
        path: spec.path,
        namespace: spec.namespace,
        name: spec.name,
        kongService: routes[i].service.name!,
        upstream: routes[i].upstream,
      })),
      pids: { pluginServer: plugin.server.pid, exporter: exporter.child.pid },
      gatewayStats: () => gateway.stats(),
      async drain(timeoutMs = 10_000) {
        await gateway.idle(timeoutMs);
        if (!withPlugin) return;
        const recorded = (await gateway.stats()).recorded;
        await waitFor(
          "the exporter to count every request the plugin recorded",
          async () => {
            const totals = upstreamTotals(await fetchMetrics(exporter.metricsUrl));
            return Object.entries(recorded).every(([name, n]) => totals.get(name)?.count === n) ? true : undefined;
          },
          timeoutMs,
          100,
        );
      },
      stop: () => (stopping ??= stopAll()),
    };
  } catch (err) {
    await stopAll().catch((stopErr: Error) => {
      if (err instanceof Error) err.message += `\n(then, ${stopErr.message})`;
    });
    throw err;
  }
}

/** The Node stand-in, its log phase running upstream-latency (global) through the Kong-side emulator. */
async function startNodeGateway(
  routes: GatewayRoute[],
  kong: KongEmulator,
  pluginConfig: Record<string, unknown> | undefined,
): Promise<{
  url: string;
  stats(): Promise<GatewayStats>;
  idle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}> {
  const pluginId = randomUUID();
  kong.configurePlugin({ id: pluginId, config: pluginConfig });
  const gateway = await startGateway({
    routes,
    workers: WORKERS,
    async log(worker, ctx) {
      if (!pluginConfig) return;
      const trace = await kong.log(worker, pluginId, ctx);
      if (trace.errors.length > 0) throw new Error(`Kong logged: ${trace.errors.join("; ")}`);
    },
  });
  return {
    url: gateway.url,
    stats: () => Promise.resolve(gateway.stats()),
    idle: () => gateway.idle(),
    stop: () => gateway.close(),
  };
}

/** Promise.all that lets every promise settle first, so that nothing started is left unregistered for cleanup. */
async function all<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
