import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fetchText, type ExporterProcess } from "../devstack/process/exporter-process";
import { KongEmulator, makeLogContext, makeRoute, makeService, PluginServer, type LogContext } from "../devstack/kong";
import { PRODUCT_PLUGIN_DIR } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";
import { HEAP_PROBE, lastHeapSample, preloadOptions, startExporterWithEnv } from "../devstack/process/child-probe";
import { cpuSeconds, rssBytes } from "../devstack/process/proc-stats";
import { progress } from "./support/progress";
import { fmt, mb, median } from "./support/stats";

/**
 * A bounded soak: the real plugin server (upstream-latency on a route per Kong Service, default
 * configuration) driven by the Kong-side emulator at a steady rate over several services, shipping to the
 * real sidecar; the memory of both processes sampled over time (RSS from /proc, heap after a forced GC from
 * the heap-probe preload in each), and whether it stays flat after warm-up.
 */

const SERVICES = 20;
const RATE = 2_000;
const WORKERS = 2;
/** Enough lanes for RATE with a few ms per event; the schedule, not the lanes, sets the rate. */
const CONCURRENCY = 64;
const NAMESPACE = "soak";
/** Growth allowed between just after warm-up and the end of the run. */
const FLAT_WITHIN = 0.1;
/** Warm-up: the first 20% of the run. Early: samples in 20-30%, late: the last 20%. */
const EARLY = [0.2, 0.3] as const;
const LATE = 0.8;

export interface SoakSample {
  /** Seconds since the first event. */
  t: number;
  events: number;
  ps: { rss: number; heap: number };
  sc: { rss: number; heap: number };
}

export interface SoakResult {
  quick: boolean;
  seconds: number;
  sampleEveryMs: number;
  rate: number;
  services: number;
  sent: number;
  sendSeconds: number;
  errors: number;
  firstError: string | undefined;
  /** Sum of kong_upstream_latency_ms_count over the soak's services in the sidecar at the end. */
  counted: number;
  cpu: { ps: number; sc: number };
  samples: SoakSample[];
}

function serviceAt(i: number): { ctxs: LogContext[]; routeId: string } {
  const name = `svc-${String(i).padStart(2, "0")}`;
  const svc = makeService({
    name: `${NAMESPACE}.${name}.80`,
    host: `${name}.${NAMESPACE}.80.svc`,
    tags: [`k8s-name:${name}`, `k8s-namespace:${NAMESPACE}`, "k8s-kind:Service", "k8s-version:v1"],
  });
  const route = makeRoute(svc, { name: `${NAMESPACE}.${name}.kong.example.com.80`, paths: [`/${name}`], tags: [] });
  // Each service its own spread of latencies: 32 requests' contexts, cycled.
  const ctxs = Array.from({ length: 32 }, (_, k) =>
    makeLogContext({ service: svc, route, proxyMs: 5 + i * 7 + ((k * 53) % (40 + i * 11)) }),
  );
  return { ctxs, routeId: route.id };
}

async function countedInSidecar(exporter: ExporterProcess): Promise<number> {
  const text = await fetchText(`${exporter.metricsUrl}/metrics`);
  let total = 0;
  for (const m of text.matchAll(/^kong_upstream_latency_ms_count\{[^}]*kubernetes_namespace="soak"[^}]*\} (\d+)$/gm))
    total += Number(m[1]);
  return total;
}

export async function runSoak(opts: { quick: boolean }): Promise<SoakResult> {
  const seconds = opts.quick ? 60 : 600;
  const sampleEveryMs = opts.quick ? 2_000 : 5_000;
  const total = RATE * seconds;
  const dir = mkdtempSync(join(tmpdir(), "soak-"));
  const scFile = join(dir, "sidecar.jsonl");
  const psFile = join(dir, "pluginserver.jsonl");
  const probeEnv = (file: string) => ({
    NODE_OPTIONS: preloadOptions(HEAP_PROBE),
    HEAP_PROBE_FILE: file,
    HEAP_PROBE_EVERY_MS: String(sampleEveryMs),
  });
  const exporter = await startExporterWithEnv(
    ["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"],
    probeEnv(scFile),
  );
  let server: PluginServer | undefined;
  let kong: KongEmulator | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    server = await PluginServer.start({
      pluginsDir: PRODUCT_PLUGIN_DIR,
      sockName: "upstream-latency.sock",
      env: probeEnv(psFile),
    });
    const k = new KongEmulator({ socketPath: server.socketPath, pluginName: "upstream-latency", workers: WORKERS });
    kong = k;
    const services = Array.from({ length: SERVICES }, (_, i) => serviceAt(i));
    const pluginIds = services.map((s) => {
      const id = randomUUID();
      k.configurePlugin({ id, routeId: s.routeId, config: { exporter_url: exporter.ingestUrl } });
      return id;
    });
    const psPid = server.pid!;
    const scPid = exporter.child.pid!;

    const result: SoakResult = {
      quick: opts.quick,
      seconds,
      sampleEveryMs,
      rate: RATE,
      services: SERVICES,
      sent: 0,
      sendSeconds: 0,
      errors: 0,
      firstError: undefined,
      counted: 0,
      cpu: { ps: 0, sc: 0 },
      samples: [],
    };
    const bar = progress(`soak: ${RATE} events/s over ${SERVICES} services (seconds)`, seconds);
    const cpu0 = { ps: cpuSeconds(psPid), sc: cpuSeconds(scPid) };
    const t0 = performance.now();
    const sample = () => {
      const t = (performance.now() - t0) / 1000;
      result.samples.push({
        t,
        events: result.sent,
        ps: { rss: rssBytes(psPid), heap: lastHeapSample(psFile)?.heapUsed ?? NaN },
        sc: { rss: rssBytes(scPid), heap: lastHeapSample(scFile)?.heapUsed ?? NaN },
      });
      bar.update(Math.min(seconds, Math.round(t)));
    };
    sampler = setInterval(sample, sampleEveryMs);

    // Event k is due at t0 + k / RATE: a steady schedule, whatever the lanes' latencies. Bounded by the
    // event count and by a deadline past the planned end.
    const hardDeadline = t0 + seconds * 1000 + 60_000;
    let next = 0;
    const lane = async (l: number) => {
      while (next < total && performance.now() < hardDeadline) {
        const i = next++;
        const wait = t0 + (i * 1000) / RATE - performance.now();
        if (wait > 1) await sleep(wait);
        const s = i % SERVICES;
        const trace = await k.log(l % WORKERS, pluginIds[s], services[s].ctxs[Math.floor(i / SERVICES) % 32]);
        if (trace.errors.length > 0) {
          result.errors++;
          result.firstError ??= trace.errors.join("; ");
        }
        result.sent++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, l) => lane(l)));
    result.sendSeconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    sampler = undefined;
    sample();
    result.cpu = { ps: cpuSeconds(psPid) - cpu0.ps, sc: cpuSeconds(scPid) - cpu0.sc };
    bar.update(seconds);
    bar.stop();
    // The last events reach the sidecar with the next flush (1 s).
    result.counted = await waitFor(
      "the sidecar to count every event sent",
      async () => {
        const n = await countedInSidecar(exporter);
        return n >= result.sent - result.errors ? n : undefined;
      },
      15_000,
      250,
    ).catch(() => countedInSidecar(exporter));
    return result;
  } finally {
    if (sampler) clearInterval(sampler);
    kong?.close();
    await server?.stop();
    await exporter.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Flatness {
  early: number;
  late: number;
  growth: number;
  flat: boolean;
}

function flatness(r: SoakResult, value: (s: SoakSample) => number): Flatness {
  const span = r.sendSeconds;
  const early = median(r.samples.filter((s) => s.t >= EARLY[0] * span && s.t < EARLY[1] * span).map(value));
  const late = median(r.samples.filter((s) => s.t >= LATE * span).map(value));
  const growth = (late - early) / early;
  return { early, late, growth, flat: Math.abs(growth) <= FLAT_WITHIN };
}

export function renderSoak(r: SoakResult): string {
  const met = (ok: boolean) => (ok ? "**met**" : "**not met**");
  const stride = Math.max(1, Math.ceil(r.samples.length / 20));
  const shown = r.samples.filter((_, i) => i % stride === stride - 1 || i === r.samples.length - 1);
  const rows = shown.map(
    (s) =>
      `| ${fmt(s.t, 0)} | ${s.events.toLocaleString("en-US")} | ${mb(s.ps.rss)} | ${mb(s.ps.heap)} | ${mb(s.sc.rss)} | ${mb(s.sc.heap)} |`,
  );
  const verdicts = [
    { label: "plugin server", rss: flatness(r, (s) => s.ps.rss), heap: flatness(r, (s) => s.ps.heap) },
    { label: "sidecar", rss: flatness(r, (s) => s.sc.rss), heap: flatness(r, (s) => s.sc.heap) },
  ];
  const verdictRows = verdicts.map(
    (v) =>
      `| ${v.label} | ${mb(v.heap.early)} → ${mb(v.heap.late)} | ${fmt(v.heap.growth * 100, 1)}% | ${mb(v.rss.early)} → ${mb(v.rss.late)} | ${fmt(v.rss.growth * 100, 1)}% | ${met(v.heap.flat && v.rss.flat)} |`,
  );
  const achieved = r.sent / r.sendSeconds;
  return [
    "## Soak: memory over time",
    "",
    `${fmt(r.seconds / 60, 0)} min (${r.quick ? "quick run" : "full run"}) of log events at a steady ${r.rate.toLocaleString("en-US")} events/s, spread evenly over ${r.services} Kong Services (upstream-latency enabled on each service's route, default configuration: one pipeline shipping every second), through the real \`kong-js-pluginserver\` driven by the Kong-side emulator (${WORKERS} nginx workers), shipping to a real latency-exporter (default options). RSS of each process from /proc; heap used after a forced full GC, reported by the heap-probe preload in each process every ${r.sampleEveryMs / 1000} s.`,
    "",
    `Sent ${r.sent.toLocaleString("en-US")} events in ${fmt(r.sendSeconds, 1)} s (${fmt(achieved, 0)} events/s), ${r.errors} logged by Kong as errors${r.firstError ? ` (first: ${r.firstError})` : ""}; the sidecar counted ${r.counted.toLocaleString("en-US")} (\`_count\` over the services: ${r.counted === r.sent - r.errors ? "every event, exactly" : "**not every event**"}). CPU over the run: plugin server ${fmt((r.cpu.ps / r.sendSeconds) * 100, 0)}% of a core, sidecar ${fmt((r.cpu.sc / r.sendSeconds) * 100, 1)}%.`,
    "",
    "| time (s) | events sent | plugin server RSS (MB) | plugin server heap (MB) | sidecar RSS (MB) | sidecar heap (MB) |",
    "|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `Verdict: flat within ${FLAT_WITHIN * 100}% after warm-up, comparing the median of the samples at ${Math.round(EARLY[0] * 100)}-${Math.round(EARLY[1] * 100)}% of the run with the median of the last ${Math.round((1 - LATE) * 100)}% (heap and RSS both; the first ${Math.round(EARLY[0] * 100)}% is warm-up):`,
    "",
    "| process | heap (MB) | heap growth | RSS (MB) | RSS growth | flat |",
    "|---|---:|---:|---:|---:|---|",
    ...verdictRows,
    "",
  ].join("\n");
}

if (require.main === module) {
  // Standalone: node dist/lib/bench/soak.js [--quick]
  void (async () => {
    const { stopProgress } = await import("./support/progress");
    try {
      const r = await runSoak({ quick: process.argv.includes("--quick") });
      stopProgress();
      process.stdout.write(renderSoak(r));
    } catch (err) {
      stopProgress();
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exitCode = 1;
    }
  })();
}
