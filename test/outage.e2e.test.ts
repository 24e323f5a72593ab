import { strict as assert } from "node:assert";
import { fetchText, startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { freePort, startPluginStack } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";
import { parseSamples, value } from "../devstack/prometheus/prom-text";
import { addPlugin, exporterArgs, kicService, send, type Stack } from "./support/plugin-events";
import { startProbedPluginStack } from "./support/plugin-memory";

const EVENTS = 10;

/** Groups of services, each sent EVENTS events, a few flush intervals apart, with the sidecar away. */
async function intervals(stack: Stack, pluginId: string, groups: string[][]): Promise<void> {
  // One Kong Service (one id) per name, whichever interval it comes in.
  const services = new Map(groups.flat().map((name) => [name, kicService(name)]));
  for (const group of groups) {
    await Promise.all(group.map((name) => send(stack, pluginId, services.get(name)!, EVENTS)));
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Once the sidecar has everything: events counted per service, and events reported dropped as overflow. */
async function delivered(exp: ExporterProcess, names: string[], sent: number) {
  return waitFor(
    "every event counted or reported dropped",
    async () => {
      const s = parseSamples(await fetchText(`${exp.metricsUrl}/metrics`));
      const counts = Object.fromEntries(
        names.map((n) => [n, value(s, "kong_upstream_latency_ms_count", { kong_service: `default.${n}.80` }) ?? 0]),
      );
      const dropped = value(s, "latency_exporter_plugin_dropped_events_total", { reason: "overflow" }) ?? 0;
      const total = Object.values(counts).reduce((a, b) => a + b, dropped);
      return total === sent ? { counts, dropped } : undefined;
    },
    40_000,
  );
}

// README "Guarantees and limits": nothing lost within max_services distinct services over the outage.
describe("the sidecar away for several flush intervals (real plugin server and sidecar)", function () {
  this.timeout(90_000);
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  async function outage(maxServices: number, groups: string[][]) {
    const port = await freePort();
    const stack = await startPluginStack();
    cleanup.push(() => stack.close());
    const id = addPlugin(
      stack,
      { exporter_url: `http://127.0.0.1:${port}`, flush_interval: 0.1, max_services: maxServices },
      "global",
    );
    await intervals(stack, id, groups);
    assert.match(stack.server.output(), /cannot ship latency deltas/, "the plugin tried and failed to ship");
    const exp = await startExporter(exporterArgs(port));
    cleanup.push(() => exp.stop());
    return delivered(exp, [...new Set(groups.flat())], groups.flat().length * EVENTS);
  }

  it("loses nothing when no more than max_services distinct services have traffic over the outage", async () => {
    const { counts, dropped } = await outage(4, [["a", "b"], ["b", "c"], ["a", "d"], ["c", "d"], ["a"]]);
    assert.equal(dropped, 0);
    assert.deepEqual(counts, { a: 3 * EVENTS, b: 2 * EVENTS, c: 2 * EVENTS, d: 2 * EVENTS });
  });

  it("beyond max_services distinct services over the outage, drops and counts the later ones, even one per interval", async () => {
    // The case: max_services 3, intervals {a,b,c} {d,e,f} {g} {h}. The first interval (or its part the
    // first flush took) waits as the payload in flight; every later event merges into at most 3 services.
    const { counts, dropped } = await outage(3, [["a", "b", "c"], ["d", "e", "f"], ["g"], ["h"]]);
    for (const kept of ["a", "b", "c"]) assert.equal(counts[kept], EVENTS, `${kept} delivered`);
    for (const lost of ["g", "h"]) assert.equal(counts[lost], 0, `${lost} dropped`);
    assert.ok(dropped >= 2 * EVENTS, `${dropped} events reported dropped`);
    const services = Object.values(counts).filter((n) => n > 0).length;
    assert.ok(services <= 2 * 3, `${services} services kept: the payload in flight and max_services more`);
  });

  // README "Guarantees and limits", Memory: a Service's description and a few bytes per distinct latency held.
  it("holds about 1 KB per service with a few latencies while the sidecar is away, not a dense histogram", async () => {
    const stack = await startProbedPluginStack();
    cleanup.push(() => stack.close());
    const id = addPlugin(
      stack,
      { exporter_url: `http://127.0.0.1:${await freePort()}`, flush_interval: 0.1, max_services: 1000 },
      "global",
    );
    await send(stack, id, kicService("first"), 1);
    await waitFor("a payload in flight", () =>
      /cannot ship latency deltas/.test(stack.server.output()) ? true : undefined,
    );
    const before = await stack.memory();
    const n = 1000;
    for (let i = 0; i < n; i++) {
      await send(stack, id, kicService(`held${i}`), 2, 40 + (i % 50));
      await send(stack, id, kicService(`held${i}`), 1, 3000 + i);
    }
    const perService = ((await stack.memory()) - before) / n;
    console.log(`      ${perService.toFixed(0)} bytes per service held (${n} services, 2 latencies each)`);
    assert.ok(perService < 2_000, `${perService} bytes per service`);
  });
});
