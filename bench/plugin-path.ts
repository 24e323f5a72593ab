import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fixturePluginDir,
  KongEmulator,
  makeLogContext,
  makeService,
  PluginServer,
  type LogContext,
  type PluginEntity,
} from "../devstack/kong";
import { PRODUCT_PLUGIN_DIR } from "../devstack/process/plugin-stack";
import { HEAP_PROBE } from "../devstack/process/child-probe";
import { cpuSeconds } from "../devstack/process/proc-stats";
import { progress } from "./support/progress";
import { fmt, mb, median } from "./support/stats";

/**
 * Events/s through the real kong-js-pluginserver for the upstream-latency plugin, as ratios against a floor
 * plugin (one tiny PDK call per event) and a serialize() plugin, measured in the same run, interleaved round
 * by round so that the machine's noise hits every variant alike. Also the plugin server's heap over 1M events.
 */

interface Variant {
  key: string;
  label: string;
  pluginsDir: string;
  pluginName: string;
  entity(exporterUrl: string): PluginEntity;
}

const VARIANTS: Variant[] = [
  {
    key: "floor",
    label: "floor: one `kong.nginx.get_ctx` per event",
    pluginsDir: fixturePluginDir("floor"),
    pluginName: "floor",
    entity: () => ({ id: randomUUID() }),
  },
  {
    key: "serialize",
    label: "serialize: `JSON.parse(kong.log.serialize())` per event",
    pluginsDir: fixturePluginDir("serialize-parse"),
    pluginName: "serialize-parse",
    entity: () => ({ id: randomUUID() }),
  },
  {
    key: "route",
    label: "upstream-latency on a route (default; `get_ctx`, Service cached)",
    pluginsDir: PRODUCT_PLUGIN_DIR,
    pluginName: "upstream-latency",
    entity: (url) => ({ id: randomUUID(), routeId: randomUUID(), config: { exporter_url: url } }),
  },
  {
    key: "global",
    label: "upstream-latency global (`get_ctx` + `router.get_service`)",
    pluginsDir: PRODUCT_PLUGIN_DIR,
    pluginName: "upstream-latency",
    entity: (url) => ({ id: randomUUID(), config: { exporter_url: url } }),
  },
  {
    key: "all-latencies",
    label: "upstream-latency with request+kong latencies (`serialize`)",
    pluginsDir: PRODUCT_PLUGIN_DIR,
    pluginName: "upstream-latency",
    entity: (url) => ({
      id: randomUUID(),
      routeId: randomUUID(),
      config: { exporter_url: url, latencies: ["upstream", "request", "kong"] },
    }),
  },
];

const CONCURRENCY = 32;
const WORKERS = 2;

function contexts(): LogContext[] {
  const svc = makeService({ name: "default.echo.80" });
  return Array.from({ length: 64 }, (_, i) =>
    makeLogContext({
      service: svc,
      proxyMs: 20 + ((i * 37) % 400),
      kongMs: 1 + (i % 5),
      requestMs: 30 + ((i * 37) % 400),
    }),
  );
}

/** Runs `count` log events with CONCURRENCY in flight; bounded by count and by `deadlineMs`. */
async function drive(
  kong: KongEmulator,
  pluginId: string,
  ctxs: LogContext[],
  count: number,
  deadlineMs: number,
  onDone?: (n: number) => void,
): Promise<number> {
  let next = 0;
  let done = 0;
  const deadline = Date.now() + deadlineMs;
  const lane = async (lane: number) => {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      await kong.log(lane % WORKERS, pluginId, ctxs[i % ctxs.length]);
      done++;
      if (onDone && done % 1000 === 0) onDone(done);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, l) => lane(l)));
  return done;
}

async function withServer<T>(
  v: Variant,
  env: Record<string, string>,
  fn: (kong: KongEmulator, server: PluginServer, pluginId: string) => Promise<T>,
  exporterUrl: string,
): Promise<T> {
  const server = await PluginServer.start({ pluginsDir: v.pluginsDir, env });
  const kong = new KongEmulator({ socketPath: server.socketPath, pluginName: v.pluginName, workers: WORKERS });
  try {
    const entity = v.entity(exporterUrl);
    kong.configurePlugin(entity);
    return await fn(kong, server, entity.id);
  } finally {
    kong.close();
    await server.stop();
  }
}

export interface PluginPathResult {
  rounds: number;
  eventsPerRound: number;
  variants: { key: string; label: string; eps: number[]; epcs: number[] }[];
  heap: { events: number; samples: { events: number; heapUsed: number; rss: number }[] };
}

export async function runPluginPath(opts: { quick: boolean; exporterUrl: string }): Promise<PluginPathResult> {
  const rounds = opts.quick ? 5 : 10;
  const perRound = opts.quick ? 10_000 : 25_000;
  const heapEvents = opts.quick ? 100_000 : 1_000_000;
  const ctxs = contexts();
  const results = VARIANTS.map((v) => ({ key: v.key, label: v.label, eps: [] as number[], epcs: [] as number[] }));
  const bar = progress("plugin path: events/s", rounds * VARIANTS.length * perRound);
  let base = 0;
  for (let r = 0; r < rounds; r++) {
    // Each round starts with a different variant, so that drift in the machine's load favours none.
    for (let k = 0; k < VARIANTS.length; k++) {
      const i = (k + r) % VARIANTS.length;
      const v = VARIANTS[i];
      await withServer(
        v,
        {},
        async (kong, server, id) => {
          // Warm up past the first shipments (flush interval 1 s), whose one-time costs (JIT of the HTTP
          // client, first connection) would otherwise land in a short measurement window.
          await drive(kong, id, ctxs, 100_000, 2_500);
          const cpu0 = cpuSeconds(server.pid!);
          const t0 = process.hrtime.bigint();
          const n = await drive(kong, id, ctxs, perRound, 120_000, (d) => bar.update(base + d));
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          const cpu = cpuSeconds(server.pid!) - cpu0;
          results[i].eps.push(n / secs);
          results[i].epcs.push(n / Math.max(cpu, 0.01));
        },
        opts.exporterUrl,
      );
      base += perRound;
      bar.update(base);
    }
  }
  bar.stop();

  const dir = mkdtempSync(join(tmpdir(), "heap-probe-"));
  const file = join(dir, "samples.jsonl");
  const heapBar = progress("plugin path: heap over events", heapEvents);
  const marks: { t: number; events: number }[] = [];
  const route = VARIANTS.find((v) => v.key === "route")!;
  const env = {
    NODE_OPTIONS: `--expose-gc --require ${HEAP_PROBE}`,
    HEAP_PROBE_FILE: file,
    HEAP_PROBE_EVERY_MS: "500",
  };
  await withServer(
    route,
    env,
    async (kong, _server, id) => {
      await drive(kong, id, ctxs, heapEvents, 600_000, (d) => {
        heapBar.update(d);
        marks.push({ t: Date.now(), events: d });
      });
    },
    opts.exporterUrl,
  );
  heapBar.stop();
  const raw = readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { t: number; heapUsed: number; rss: number });
  rmSync(dir, { recursive: true, force: true });
  const samples = raw.map((s) => ({
    events: [...marks].reverse().find((m) => m.t <= s.t)?.events ?? 0,
    heapUsed: s.heapUsed,
    rss: s.rss,
  }));
  return { rounds, eventsPerRound: perRound, variants: results, heap: { events: heapEvents, samples } };
}

export function renderPluginPath(r: PluginPathResult): string {
  const m = Object.fromEntries(r.variants.map((v) => [v.key, { eps: median(v.eps), epcs: median(v.epcs) }]));
  const floor = m.floor;
  const ser = m.serialize;
  const ours = m.route;
  const rows = r.variants.map((v) => {
    const x = m[v.key];
    return `| ${v.label} | ${fmt(x.eps, 0)} | ${fmt(x.eps / floor.eps)} | ${fmt(x.eps / ser.eps)} | ${fmt(x.epcs, 0)} | ${fmt(x.epcs / floor.epcs)} | ${fmt(x.epcs / ser.epcs)} |`;
  });
  const after = r.heap.samples.filter((s) => s.events >= r.heap.events * 0.1);
  const first = after[0];
  const last = after[after.length - 1];
  const growth = first && last ? (last.heapUsed - first.heapUsed) / first.heapUsed : NaN;
  const flat = Math.abs(growth) <= 0.1;
  const met = (ok: boolean) => (ok ? "**met**" : "**not met**");
  const heapRows = [0.1, 0.25, 0.5, 0.75, 1].map((f) => {
    const s = r.heap.samples.filter((x) => x.events <= r.heap.events * f).pop();
    return s ? `| ${s.events.toLocaleString("en-US")} | ${mb(s.heapUsed)} | ${mb(s.rss)} |` : "";
  });
  return [
    "## Plugin path through the real plugin server",
    "",
    `Log events driven by the Kong-side emulator into the real \`kong-js-pluginserver\` (kong-pdk 0.6.0), ${CONCURRENCY} events in flight over ${WORKERS} emulated nginx workers, the plugin shipping to a real latency-exporter. ${r.rounds} interleaved rounds of ${r.eventsPerRound.toLocaleString("en-US")} events per variant; medians. "events/CPU-s" divides by the plugin server's own CPU time (from /proc), the figure that matters when Kong and the plugin server share a node; "events/s" is wall-clock throughput with the emulator doing Kong's share of the work (answering PDK calls, cjson-encoding serialize() on every call as Kong does) on the same 2 cores.`,
    "",
    "| handler | events/s | vs floor | vs serialize | events/CPU-s | vs floor | vs serialize |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `Targets for upstream-latency (default, on a route), on events/s as measured here: at least 0.6x the floor: ${fmt(ours.eps / floor.eps)}x, ${met(ours.eps / floor.eps >= 0.6)}; at least 1.3x the serialize plugin: ${fmt(ours.eps / ser.eps)}x, ${met(ours.eps / ser.eps >= 1.3)}. On the plugin server's own CPU (events per CPU-second, the rate one single-threaded plugin server can sustain, and less sensitive to the emulator sharing the cores): ${fmt(ours.epcs / floor.epcs)}x the floor (${met(ours.epcs / floor.epcs >= 0.6)}), ${fmt(ours.epcs / ser.epcs)}x the serialize plugin (${met(ours.epcs / ser.epcs >= 1.3)}). No handler can beat the floor (one PDK call per event is the minimum), so no plugin can do better against the serialize plugin than the floor's own ${fmt(floor.eps / ser.eps)}x (events/s) and ${fmt(floor.epcs / ser.epcs)}x (CPU) here.`,
    "",
    `Heap of the plugin server (after a forced GC, sampled every 0.5 s) over ${r.heap.events.toLocaleString("en-US")} events of upstream-latency on a route:`,
    "",
    "| events | heap used (MB) | RSS (MB) |",
    "|---:|---:|---:|",
    ...heapRows.filter(Boolean),
    "",
    `Heap growth from 10% to 100% of the run: ${fmt(growth * 100, 1)}%; flat (within 10%): ${met(flat)}.`,
    "",
  ].join("\n");
}
