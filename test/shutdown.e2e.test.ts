import { strict as assert } from "node:assert";
import { makeLogContext } from "../devstack/kong";
import { fetchText, startExporter } from "../devstack/process/exporter-process";
import { startPluginStack } from "../devstack/process/plugin-stack";
import { parseSamples, value } from "../devstack/prometheus/prom-text";
import { startDelayProxy } from "../devstack/process/delay-proxy";
import { addPlugin, countReaches, exporterArgs, kicService, send } from "./support/plugin-events";

/** The plugin's shutdown drain (plugin/pipeline.ts), as README "Guarantees and limits" promises it. */
const DRAIN_MS = 3_000;

describe("a stopping plugin server (real plugin server and sidecar processes)", function () {
  this.timeout(60_000);
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it("SIGTERM: ships its last deltas before exiting 0; the sidecar exits cleanly", async () => {
    const exp = await startExporter(exporterArgs(0));
    const stack = await startPluginStack();
    cleanup.push(
      () => stack.close(),
      () => exp.stop(),
    );
    // A flush interval of a minute: only the shutdown drain can deliver these in time.
    const id = addPlugin(stack, { exporter_url: exp.ingestUrl, flush_interval: 60 });
    await send(stack, id, kicService("term"), 70);
    const status = await stack.server.stop("SIGTERM", 10_000);
    assert.deepEqual(status, { code: 0, signal: null });
    await countReaches(exp, "default.term.80", 70, 5_000);
    assert.equal(await exp.stop("SIGTERM"), 0);
  });

  it("SIGTERM with a sidecar that accepts and never answers: exits 0 within the 3 s drain", async () => {
    const exp = await startExporter(exporterArgs(0));
    const silent = await startDelayProxy(exp.ingestUrl, 600_000);
    const stack = await startPluginStack();
    cleanup.push(
      () => stack.close(),
      () => silent.close(),
      () => exp.stop(),
    );
    const id = addPlugin(stack, { exporter_url: silent.url, flush_interval: 60 });
    await send(stack, id, kicService("silent"), 10);
    const t0 = Date.now();
    const status = await stack.server.stop("SIGTERM", 20_000);
    const took = Date.now() - t0;
    console.log(`      exited ${took} ms after SIGTERM; the sidecar received ${silent.received} requests`);
    assert.deepEqual(status, { code: 0, signal: null });
    assert.ok(silent.received > 0, "the drain tried to ship");
    // The drain's deadline plus the exit itself; the request timeout (10 s) must not show.
    assert.ok(took < DRAIN_MS + 1_500, `exited ${took} ms after SIGTERM`);
    assert.match(stack.server.output(), /stopping with latency deltas the sidecar did not acknowledge/);
  });

  it("SIGKILL: what the sidecar has not counted is never older than a flush interval, so that is all it loses", async () => {
    const exp = await startExporter(exporterArgs(0));
    const stack = await startPluginStack();
    cleanup.push(
      () => stack.close(),
      () => exp.stop(),
    );
    const intervalMs = 1_000;
    // A shipment's round trip and a timer's lateness on a busy machine, on top of the interval.
    const slackMs = 500;
    const svc = kicService("sigkill");
    const id = addPlugin(stack, { exporter_url: exp.ingestUrl, flush_interval: intervalMs / 1000 });
    const counted = () =>
      fetchText(`${exp.metricsUrl}/metrics`).then(
        (t) => value(parseSamples(t), "kong_upstream_latency_ms_count", { kong_service: svc.name! }) ?? 0,
      );
    // One event at a time, so that the sidecar's count says which ones it has: the first n sent.
    const done: number[] = [];
    let sending = true;
    const sender = (async () => {
      while (sending) {
        await stack.kong.log(done.length % 2, id, makeLogContext({ service: svc, proxyMs: 5 }));
        done.push(Date.now());
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // For 4.5 s, the age of the oldest event the sidecar has not counted.
    let oldest = 0;
    const end = Date.now() + 4_500;
    while (Date.now() < end) {
      const n = await counted();
      const now = Date.now();
      if (n < done.length) oldest = Math.max(oldest, now - done[n]);
      await new Promise((r) => setTimeout(r, 50));
    }
    const killedAt = Date.now();
    stack.server.kill();
    sending = false;
    await sender.catch(() => undefined);
    await stack.server.exited;
    const sentBeforeKill = done.filter((t) => t <= killedAt).length;
    const lost = done.slice(await counted(), sentBeforeKill);
    console.log(
      `      oldest uncounted event while running: ${oldest} ms; lost to SIGKILL: ${lost.length} of ${sentBeforeKill}, ` +
        `the oldest ${lost.length ? killedAt - lost[0] : 0} ms old`,
    );
    assert.ok(oldest <= intervalMs + slackMs, `an event waited ${oldest} ms to be counted`);
    assert.ok(lost.length === 0 || killedAt - lost[0] <= intervalMs + slackMs, "lost more than a flush interval");
  });
});
