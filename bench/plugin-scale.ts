import { setTimeout as sleep } from "node:timers/promises";
import { fixturePluginDir, KongEmulator, PluginServer } from "../devstack/kong";
import { configureRouteFleet, driveRouteFleet, EVENTS_PER_SERVICE, FLEET_WORKERS } from "../devstack/kong/route-fleet";
import { peakRssBytes } from "../devstack/process/child-probe";
import { startDelayProxy, untilQuiet, type DelayProxy } from "../devstack/process/delay-proxy";
import { startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { exporterTotals, type ExporterTotals } from "../devstack/process/exporter-totals";
import { PRODUCT_PLUGIN_DIR } from "../devstack/process/plugin-stack";
import { cpuSeconds, rssBytes } from "../devstack/process/proc-stats";
import { nearestRank } from "../devstack/nearest-rank";
import { progress } from "./support/progress";

/**
 * The plugin server at 100 to 50,000 active services, each behind its own route-scoped instance, against the
 * floor plugin (one tiny PDK call per event) measured in the same run, interleaved: its memory, its event
 * rate and time, and (ours only) what the sidecar received and counted.
 */

export const VARIANTS = [
  { key: "floor", label: "floor", pluginsDir: fixturePluginDir("floor"), pluginName: "floor" },
  { key: "ours", label: "upstream-latency", pluginsDir: PRODUCT_PLUGIN_DIR, pluginName: "upstream-latency" },
] as const;
export type VariantKey = (typeof VARIANTS)[number]["key"];

/** The plugin's default flush_interval, in ms: config leaves it (and max_services) at the defaults. */
export const FLUSH_MS = 1_000;
/** How long the plugin server runs before "idle" is read: loaded, listening, no instance, no traffic. */
const IDLE_SETTLE_MS = 1_000;
const DRIVE_DEADLINE_MS = 120_000;

export interface Delivery {
  payloads: number;
  bodyBytes: number;
  sidecarCpuSeconds: number;
  totals: ExporterTotals;
}

export interface ScaleRow {
  services: number;
  variant: VariantKey;
  idleRss: number;
  afterRss: number;
  peakRss: number;
  serverCpuSeconds: number;
  events: number;
  errors: number;
  eventsPerSecond: number;
  p99Ms: number;
  p99WarmMs: number;
  /** Ours only: what the sidecar received and counted. */
  delivery?: Delivery;
}

export interface PluginScaleResult {
  quick: boolean;
  rows: ScaleRow[];
}

/** The sidecar, with room for every series (its own bound is not what is measured), behind a counting proxy. */
async function startSidecar(services: number): Promise<{ exporter: ExporterProcess; proxy: DelayProxy }> {
  const exporter = await startExporter([
    ...["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"],
    ...["--max-series", String(Math.max(10_000, services))],
  ]);
  return { exporter, proxy: await startDelayProxy(exporter.ingestUrl, 0) };
}

async function measure(key: VariantKey, services: number, onEvents: (done: number) => void): Promise<ScaleRow> {
  const v = VARIANTS.find((x) => x.key === key)!;
  const sidecar = key === "ours" ? await startSidecar(services) : undefined;
  const server = await PluginServer.start({ pluginsDir: v.pluginsDir, sockName: `${v.pluginName}.sock` });
  const kong = new KongEmulator({ socketPath: server.socketPath, pluginName: v.pluginName, workers: FLEET_WORKERS });
  const pid = server.pid!;
  try {
    await sleep(IDLE_SETTLE_MS);
    const idleRss = rssBytes(pid);
    const fleet = configureRouteFleet(kong, services, sidecar ? { exporter_url: sidecar.proxy.url } : {});
    const sidecarPid = sidecar?.exporter.child.pid;
    const sidecarCpu0 = sidecarPid ? cpuSeconds(sidecarPid) : 0;
    const cpu0 = cpuSeconds(pid);
    const traffic = await driveRouteFleet(kong, fleet, { deadlineMs: DRIVE_DEADLINE_MS, onProgress: onEvents });
    const serverCpuSeconds = cpuSeconds(pid) - cpu0;
    // Ours: until everything is shipped; the floor waits as long, so that both are read as long after.
    if (sidecar) await untilQuiet(sidecar.proxy, 1.5 * FLUSH_MS, 60_000);
    else await sleep(1.5 * FLUSH_MS);
    const afterRss = rssBytes(pid);
    const delivery = sidecar && {
      payloads: sidecar.proxy.received,
      bodyBytes: sidecar.proxy.bodyBytes,
      sidecarCpuSeconds: cpuSeconds(sidecarPid!) - sidecarCpu0,
      totals: await exporterTotals(sidecar.exporter.metricsUrl),
    };
    return {
      services,
      variant: key,
      idleRss,
      afterRss,
      peakRss: peakRssBytes(pid),
      serverCpuSeconds,
      events: traffic.events,
      errors: traffic.errors,
      eventsPerSecond: traffic.events / traffic.seconds,
      p99Ms: nearestRank(traffic.allMs, 0.99),
      p99WarmMs: nearestRank(traffic.warmMs, 0.99),
      delivery,
    };
  } finally {
    kong.close();
    await server.stop();
    await sidecar?.proxy.close();
    await sidecar?.exporter.stop();
  }
}

/** The targets are at 10,000 active services. */
export const TARGET_SERVICES = 10_000;

/**
 * Each size once, except the targets' size, repeated: RSS after a burst varies by +-20 MB from run to run with
 * V8's heap sizing, the floor plugin's as much as ours.
 */
export function scaleSizes(quick: boolean): number[] {
  const target = Array<number>(quick ? 2 : 3).fill(TARGET_SERVICES);
  return quick ? [100, 1_000, ...target] : [100, 1_000, ...target, 50_000];
}

export async function runPluginScale(opts: { quick: boolean }): Promise<PluginScaleResult> {
  const sizes = scaleSizes(opts.quick);
  const total = sizes.reduce((n, s) => n + s * EVENTS_PER_SERVICE * VARIANTS.length, 0);
  const bar = progress("plugin at scale: events", total);
  const rows: ScaleRow[] = [];
  let base = 0;
  for (const [i, services] of sizes.entries()) {
    // Each size starts with the other variant, so that drift in the machine's load favours neither.
    const order = i % 2 ? [...VARIANTS].reverse() : VARIANTS;
    for (const v of order) {
      rows.push(await measure(v.key, services, (d) => bar.update(base + d)));
      base += services * EVENTS_PER_SERVICE;
      bar.update(base);
    }
  }
  bar.stop();
  return { quick: opts.quick, rows };
}
