import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { makeLogContext, makeService, type KongService } from "../devstack/kong";
import { startDelayProxy } from "./support/delay-proxy";
import { fetchText, startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { parseSamples, value } from "../devstack/prometheus/prom-text";
import { freePort, startPluginStack } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";

const tags = (name: string) => [`k8s-name:${name}`, "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"];

async function sample(exp: ExporterProcess, name: string, match: Record<string, string>): Promise<number | undefined> {
  return value(parseSamples(await fetchText(`${exp.metricsUrl}/metrics`)), name, match);
}

function countReaches(exp: ExporterProcess, kongService: string, n: number, timeoutMs = 20_000): Promise<true> {
  return waitFor(
    `${kongService} count to reach ${n}`,
    async () =>
      (await sample(exp, "kong_upstream_latency_ms_count", { kong_service: kongService })) === n ? true : undefined,
    timeoutMs,
  );
}

type Stack = Awaited<ReturnType<typeof startPluginStack>>;

/** n events for one service through a route-scoped plugin, two workers. */
async function send(stack: Stack, pluginId: string, svc: KongService, n: number, ms = 42): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, (_, i) => stack.kong.log(i % 2, pluginId, makeLogContext({ service: svc, proxyMs: ms }))),
  );
}

/** On a route by default; `global` when one instance must see several services. */
function plugin(stack: Stack, config: Record<string, unknown>, scope: "route" | "global" = "route"): string {
  const id = randomUUID();
  stack.kong.configurePlugin({ id, ...(scope === "route" ? { routeId: randomUUID() } : {}), config });
  return id;
}

const exporterArgs = (port: number | string) => [
  "--metrics-address",
  "127.0.0.1:0",
  "--ingest-address",
  `127.0.0.1:${port}`,
];

describe("faults: real plugin server and real sidecar processes", function () {
  this.timeout(90_000);
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it("sidecar killed (SIGKILL) and restarted: what was not acknowledged is delivered, nothing is counted twice", async () => {
    const port = await freePort();
    let exp = await startExporter(exporterArgs(port));
    const stack = await startPluginStack();
    cleanup.push(
      () => stack.close(),
      () => exp.stop(),
    );
    const id = plugin(stack, { exporter_url: `http://127.0.0.1:${port}`, flush_interval: 0.1 });
    const svc = makeService({ name: "default.kill.80", tags: tags("kill") });
    await send(stack, id, svc, 100);
    await countReaches(exp, "default.kill.80", 100);
    await exp.stop("SIGKILL");
    await send(stack, id, svc, 150);
    exp = await startExporter(exporterArgs(port));
    // The restarted sidecar starts from zero (a counter reset for Prometheus) and gets exactly the events
    // the dead one never acknowledged.
    await countReaches(exp, "default.kill.80", 150);
    await send(stack, id, svc, 10);
    await countReaches(exp, "default.kill.80", 160);
    assert.equal(await sample(exp, "latency_exporter_payloads_total", { result: "duplicate" }), 0);
  });

  it("plugin server killed and respawned: the sidecar keeps its totals and counts the new process once", async () => {
    const exp = await startExporter(exporterArgs(0));
    cleanup.push(() => exp.stop());
    const svc = makeService({ name: "default.respawn.80", tags: tags("respawn") });
    const first = await startPluginStack();
    await send(first, plugin(first, { exporter_url: exp.ingestUrl, flush_interval: 0.1 }), svc, 80);
    await countReaches(exp, "default.respawn.80", 80);
    first.server.kill();
    await first.server.exited;
    first.kong.close();
    const second = await startPluginStack();
    cleanup.push(() => second.close());
    await send(second, plugin(second, { exporter_url: exp.ingestUrl, flush_interval: 0.1 }), svc, 40);
    await countReaches(exp, "default.respawn.80", 120);
    assert.equal(await sample(exp, "latency_exporter_sources", {}), 2);
  });

  it("sidecar slow: events stay fast, memory stays within max_services, and drops beyond it are exported", async () => {
    const exp = await startExporter(exporterArgs(0));
    const proxy = await startDelayProxy(exp.ingestUrl, 30_000);
    const stack = await startPluginStack();
    cleanup.push(
      () => stack.close(),
      () => proxy.close(),
      () => exp.stop(),
    );
    // Global: a route's instance belongs to one service, and this one must see five.
    const id = plugin(stack, { exporter_url: proxy.url, flush_interval: 0.1, max_services: 3 }, "global");
    const services = Array.from({ length: 5 }, (_, i) =>
      makeService({ name: `default.slow${i}.80`, tags: tags(`slow${i}`) }),
    );
    const durations: number[] = [];
    let next = 0;
    // 16 timers at a time, as Kong runs them, so that the durations are each event's own.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < 500; i = next++) {
          const t0 = process.hrtime.bigint();
          await stack.kong.log(i % 2, id, makeLogContext({ service: services[i % 5], proxyMs: 10 }));
          durations.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      }),
    );
    // Every event completed while the sidecar had not answered a single shipment: none waited for it.
    assert.equal(proxy.answered, 0);
    durations.sort((a, b) => a - b);
    console.log(
      `      event handling behind a stalled sidecar: p50 ${durations[250].toFixed(2)} ms, p99 ${durations[495].toFixed(2)} ms (500 events, 2 workers)`,
    );
    proxy.release();
    // Each interval holds at most 3 services; what came for others was dropped and is reported as overflow.
    const counted = await waitFor("every event counted or reported dropped", async () => {
      const s = parseSamples(await fetchText(`${exp.metricsUrl}/metrics`));
      const kept = services.reduce(
        (n, svc) => n + (value(s, "kong_upstream_latency_ms_count", { kong_service: svc.name! }) ?? 0),
        0,
      );
      const dropped = value(s, "latency_exporter_plugin_dropped_events_total", { reason: "overflow" }) ?? 0;
      return kept + dropped === 500 ? { kept, dropped } : undefined;
    });
    assert.ok(counted.dropped > 0, "overflow reported");
  });

  it("SIGTERM: the plugin server ships its last deltas before exiting; the sidecar exits cleanly", async () => {
    const exp = await startExporter(exporterArgs(0));
    const stack = await startPluginStack();
    cleanup.push(
      () => stack.close(),
      () => exp.stop(),
    );
    // A flush interval of a minute: only the shutdown drain can deliver these in time.
    const id = plugin(stack, { exporter_url: exp.ingestUrl, flush_interval: 60 });
    await send(stack, id, makeService({ name: "default.term.80", tags: tags("term") }), 70);
    const status = await stack.server.stop("SIGTERM", 10_000);
    assert.deepEqual(status, { code: 0, signal: null });
    await countReaches(exp, "default.term.80", 70, 5_000);
    assert.equal(await exp.stop("SIGTERM"), 0);
  });
});
