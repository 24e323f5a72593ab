import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PluginServer } from "../../devstack/kong";
import type { DeclarativeConfig } from "../../devstack/nginx/declarative";
import { startNginxEchoUpstream } from "../../devstack/nginx/nginx-echo-upstream";
import { startNginxGateway, type GatewayStatus, type NginxGateway } from "../../devstack/nginx/nginx-gateway";
import { preloadOptions, SIGNAL_PROBE } from "../../devstack/process/child-probe";
import { startExporter } from "../../devstack/process/exporter-process";
import { PRODUCT_PLUGIN_DIR } from "../../devstack/process/plugin-stack";
import { cpuSeconds } from "../../devstack/process/proc-stats";
import { waitFor } from "../../devstack/process/wait";
import { fetchMetrics, upstreamTotals } from "../../devstack/observe";
import { PLUGIN_NAME } from "../../plugin/schema";

/** CPU microseconds per proxied request, by process. */
export interface CpuPerRequest {
  gateway: number;
  pluginServer: number;
  exporter: number;
}

/** What one measured stretch of load did, from the gateway's counters, its error log, the exporter and /proc. */
export interface Stretch {
  proxied: number;
  /** Proxied requests the exporter did not count: lost log events. */
  lost: number;
  /** Of those, the error log's `connect() ... failed (11: Resource temporarily unavailable)` lines. */
  connectEagain: number;
  /** Timers nginx refused (lua_max_pending_timers): lost without a log line. */
  timersRefused: number;
  /** `lua_max_running_timers are not enough` alerts: a timer that never ran. */
  runningTimerAlerts: number;
  cpuUs: CpuPerRequest;
  /** Proxied requests per CPU-second of the plugin server: the rate it sustains on one core. */
  pluginServerPerCpuSecond: number;
}

export interface NginxBenchStack {
  server: PluginServer;
  gateway: NginxGateway;
  /** The plugin server's signal-probe file and profile path (SIGNAL_PROBE is preloaded). */
  probeFile: string;
  profilePath: string;
  /** Runs `load` and measures what it cost and lost, once every event it caused has ended. */
  measure(load: () => Promise<void>): Promise<Stretch>;
  stop(): Promise<void>;
}

const SETTLE_TIMEOUT_MS = 180_000;

/** A single Service and Route (/echo), with the given plugins on the route or globally. */
export function benchConfig(plugins: { name: string; scope: "route" | "global" }[]): DeclarativeConfig {
  const at = (scope: string) => plugins.filter((p) => p.scope === scope).map((p) => ({ name: p.name, config: {} }));
  return {
    services: [
      {
        name: "default.echo.80",
        url: "http://echo.default.80.svc:80",
        tags: ["k8s-name:echo", "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"],
        routes: [{ name: "echo", paths: ["/echo"], strip_path: true, tags: [], plugins: at("route") }],
        plugins: [],
      },
    ],
    plugins: at("global"),
  };
}

const count = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l)).length;

/**
 * The gateway on nginx in front of an nginx echo upstream, with the real plugin server (its listen backlog from
 * `backlogEnv`, unset for the plugin's own) and the real exporter; each process separate, so /proc gives each its CPU.
 */
export async function startNginxBenchStack(options: {
  workers: number;
  config: DeclarativeConfig;
  backlogEnv?: string;
}): Promise<NginxBenchStack> {
  const dir = mkdtempSync(join(tmpdir(), "nginx-bench-"));
  const probeFile = join(dir, "probe.jsonl");
  const profilePath = join(dir, "plugin-server.cpuprofile");
  const env: Record<string, string> = {
    NODE_OPTIONS: preloadOptions(SIGNAL_PROBE),
    SIGNAL_PROBE_FILE: probeFile,
    SIGNAL_PROBE_PROFILE: profilePath,
  };
  if (options.backlogEnv !== undefined) env.UPSTREAM_LATENCY_LISTEN_BACKLOG = options.backlogEnv;
  const stops: Array<() => Promise<unknown>> = [() => Promise.resolve(rmSync(dir, { recursive: true, force: true }))];
  const stop = async () => {
    for (let s = stops.pop(); s; s = stops.pop()) await s();
  };
  try {
    const upstream = await startNginxEchoUpstream();
    stops.push(() => upstream.close());
    const exporter = await startExporter(["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"]);
    stops.push(() => exporter.stop());
    const server = await PluginServer.start({ pluginsDir: PRODUCT_PLUGIN_DIR, sockName: "ul.sock", env });
    stops.push(() => server.stop());
    const gateway = await startNginxGateway({
      config: options.config,
      upstreamUrl: upstream.url,
      pluginServer: { plugin: PLUGIN_NAME, socket: server.socketPath },
      pluginConfig: { exporter_url: exporter.ingestUrl },
      workers: options.workers,
    });
    stops.push(() => gateway.stop());

    const exported = async () =>
      [...upstreamTotals(await fetchMetrics(exporter.metricsUrl)).values()].reduce((n, t) => n + t.count, 0);
    const sample = async () => {
      const status = await gateway.status();
      const log = gateway.nginx.errorLog();
      return {
        status,
        proxied: Object.values(status.proxied).reduce((a, b) => a + b, 0),
        exported: await exported(),
        connectEagain: count(log, /connect\(\) to unix:.*\(11: Resource temporarily unavailable\)/),
        runningTimerAlerts: count(log, /lua_max_running_timers are not enough/),
        cpu: {
          gateway: gateway.nginx.workerPids().reduce((s, pid) => s + cpuSeconds(pid), 0),
          pluginServer: cpuSeconds(server.pid!),
          exporter: cpuSeconds(exporter.child.pid!),
        },
      };
    };
    const pending = (s: GatewayStatus, alerts: number) =>
      (s.log_events_scheduled ?? 0) - (s.log_events_done ?? 0) - (s.log_events_failed ?? 0) - alerts;
    // Every event has ended (or is known lost), and the exporter has what the plugin recorded.
    const settle = async () => {
      await waitFor(
        "every log event to end",
        async () => {
          const s = await sample();
          return pending(s.status, s.runningTimerAlerts) === 0 ? true : undefined;
        },
        SETTLE_TIMEOUT_MS,
        200,
      );
      const done = (await gateway.status()).log_events_done ?? 0;
      await waitFor(
        "the exporter to count every ended event",
        async () => ((await exported()) >= done ? true : undefined),
        15_000,
        200,
      );
      return sample();
    };

    return {
      server,
      gateway,
      probeFile,
      profilePath,
      async measure(load) {
        const a = await settle();
        await load();
        const b = await settle();
        const proxied = b.proxied - a.proxied;
        const per = (x: number, y: number) => ((y - x) * 1e6) / Math.max(1, proxied);
        const usesPlugin = (b.status.log_events_scheduled ?? 0) > (a.status.log_events_scheduled ?? 0);
        return {
          proxied,
          lost: usesPlugin ? proxied - (b.exported - a.exported) : 0,
          connectEagain: b.connectEagain - a.connectEagain,
          timersRefused: (b.status.log_timers_refused ?? 0) - (a.status.log_timers_refused ?? 0),
          runningTimerAlerts: b.runningTimerAlerts - a.runningTimerAlerts,
          cpuUs: {
            gateway: per(a.cpu.gateway, b.cpu.gateway),
            pluginServer: per(a.cpu.pluginServer, b.cpu.pluginServer),
            exporter: per(a.cpu.exporter, b.cpu.exporter),
          },
          pluginServerPerCpuSecond: proxied / Math.max(0.01, b.cpu.pluginServer - a.cpu.pluginServer),
        };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
