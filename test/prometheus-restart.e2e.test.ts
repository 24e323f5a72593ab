import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { makeLogContext, makeService } from "../devstack/kong";
import { startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { prometheusOrSkip, startPrometheus, type Prometheus } from "../devstack/prometheus/prometheus";
import { freePort, startPluginStack } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";

const SERIES = 'kong_upstream_latency_ms_count{exported_namespace="default",exported_service="echo"}';

/**
 * A sidecar restart, seen by the real Prometheus: the counters start again from zero, which Prometheus takes
 * as a counter reset, so increase() and rate() across it still count every event.
 */
describe("a sidecar restart is an ordinary counter reset for Prometheus", function () {
  this.timeout(120_000);
  let prom: Prometheus | undefined;
  let exp: ExporterProcess | undefined;
  let stack: Awaited<ReturnType<typeof startPluginStack>> | undefined;
  after(async () => {
    await stack?.close();
    await exp?.stop();
    await prom?.stop();
  });

  it("increase() over the restart counts the events before and after it", async function () {
    prometheusOrSkip(this);
    const [metricsPort, ingestPort] = [await freePort(), await freePort()];
    const args = ["--metrics-address", `127.0.0.1:${metricsPort}`, "--ingest-address", `127.0.0.1:${ingestPort}`];
    exp = await startExporter(args);
    [prom, stack] = await Promise.all([startPrometheus({ address: `127.0.0.1:${metricsPort}` }), startPluginStack(2)]);
    const id = randomUUID();
    stack.kong.configurePlugin({
      id,
      routeId: randomUUID(),
      config: { exporter_url: `http://127.0.0.1:${ingestPort}`, flush_interval: 0.2 },
    });
    const svc = makeService({
      name: "default.echo.80",
      tags: ["k8s-name:echo", "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"],
    });
    const send = (n: number) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => stack!.kong.log(i % 2, id, makeLogContext({ service: svc, proxyMs: 50 }))),
      );
    const scraped = (n: number) =>
      waitFor(
        `Prometheus to scrape a count of ${n}`,
        async () => ((await prom!.query(SERIES))[0]?.value === n ? true : undefined),
        30_000,
        200,
      );

    await send(10);
    await scraped(10);
    await send(90);
    await scraped(100);
    await exp.stop("SIGKILL");
    exp = await startExporter(args);
    await send(30);
    await scraped(30);

    assert.equal((await prom.query(`resets(${SERIES}[5m])`))[0]?.value, 1);
    // From the first scrape (10) on, 90 + 30 events happened; increase() extrapolates a little past the
    // first and last samples, never below the real increase.
    const increase = (await prom.query(`increase(${SERIES}[5m])`))[0]?.value ?? NaN;
    assert.ok(increase >= 120 && increase < 120 * 1.5, `increase() = ${increase}, expected about 120`);
  });
});
