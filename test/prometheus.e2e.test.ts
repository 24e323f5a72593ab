import { strict as assert } from "node:assert";
import { nearestRank } from "../devstack/nearest-rank";
import { rng } from "../devstack/random";
import { randomUUID } from "node:crypto";
import { makeLogContext, makeService, type KongService } from "../devstack/kong";
import { startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { DEFAULT_TARGET, prometheusOrSkip, startPrometheus, type Prometheus } from "../devstack/prometheus/prometheus";
import {
  expandMetricsQuery,
  GUIDE_AVERAGE_RULE,
  P99_RULE,
  parseQuantity,
  renderQuantity,
} from "../devstack/prometheus/adapter";
import { startPluginStack } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";

const ECHO = { namespace: "default", resource: "services", name: "echo" };
const TICKS = 300;
const TICK_MS = 100;
const ECHO_PER_TICK = 4;
// One slow (~200 ms) request in 40 puts the p99 well inside the slow cluster, so a query reading the wrong
// quantile (p50, p90: ~100 ms) or a wrong rank cannot pass for it.
const SLOW_EVERY = 40;

/** Nearest rank over the values sent, as an HDR histogram reads a percentile. */
const percentile = (values: number[], q: number) =>
  nearestRank(
    [...values].sort((a, b) => a - b),
    q,
  );

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

function within(actual: number, expected: number, fraction: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= fraction * Math.abs(expected),
    `${what}: ${actual} is not within ${fraction * 100}% of ${expected}`,
  );
}

describe("the guide's prometheus-adapter rules against the real Prometheus scraping the real sidecar", function () {
  this.timeout(60_000);
  let prom: Prometheus;
  let exp: ExporterProcess;
  let stack: Awaited<ReturnType<typeof startPluginStack>>;
  const sent = { echo: [] as number[], legacy: [] as number[] };

  before(async function () {
    prometheusOrSkip(this);
    this.timeout(80_000);
    exp = await startExporter(["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"]);
    // Prometheus first: its first scrape lands seconds after it is ready, while the traffic below runs.
    [prom, stack] = await Promise.all([
      startPrometheus({ address: new URL(exp.metricsUrl).host }),
      startPluginStack(2),
    ]);

    const echo = makeService({
      name: "default.echo.80",
      tags: ["k8s-name:echo", "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"],
    });
    const legacy = makeService({ name: "legacy", tags: [] });
    const plugin = { id: randomUUID(), config: { exporter_url: exp.ingestUrl, flush_interval: 0.2 } };
    stack.kong.configurePlugin(plugin);
    const random = rng(0x5eed);
    const errors: string[] = [];
    const send = (svc: KongService, proxyMs: number, worker: number) =>
      stack.kong
        .log(worker, plugin.id, makeLogContext({ service: svc, proxyMs }))
        .then((t) => errors.push(...t.errors));

    // The guide's traffic: an upstream taking ~100 ms, spread over half a minute, so that the 60 s subquery
    // window sees a steady rate. Bounded in events and in time.
    const start = Date.now();
    const deadline = start + 45_000;
    for (let tick = 0; tick < TICKS && Date.now() < deadline; tick++) {
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < ECHO_PER_TICK; i++) {
        const n = sent.echo.length;
        const ms = n % SLOW_EVERY === SLOW_EVERY - 1 ? 198 + Math.floor(random() * 5) : 95 + Math.floor(random() * 11);
        sent.echo.push(ms);
        batch.push(send(echo, ms, n % 2));
      }
      const ms = 20 + Math.floor(random() * 11);
      sent.legacy.push(ms);
      batch.push(send(legacy, ms, tick % 2));
      await Promise.all(batch);
      const next = start + (tick + 1) * TICK_MS;
      if (next > Date.now()) await new Promise((r) => setTimeout(r, next - Date.now()));
    }
    assert.deepEqual(errors, [], "Kong logged errors for the plugin's events");
    assert.equal(sent.echo.length, TICKS * ECHO_PER_TICK, "the load loop ran out of time");

    // Everything sent has been scraped: what Prometheus holds is exactly the traffic above.
    for (const [kongService, n] of [
      ["default.echo.80", sent.echo.length],
      ["legacy", sent.legacy.length],
    ] as const) {
      await waitFor(
        `Prometheus to scrape kong_upstream_latency_ms_count{kong_service="${kongService}"} == ${n}`,
        async () =>
          (await prom.query(`kong_upstream_latency_ms_count{kong_service="${kongService}"}`))[0]?.value === n
            ? true
            : undefined,
        15_000,
        250,
      );
    }
  });

  after(async () => {
    await prom?.stop();
    await stack?.close();
    await exp?.stop();
  });

  it("is scraped as a ServiceMonitor target: up, with the operator's target labels", async () => {
    const targets = await prom.targets();
    assert.equal(targets.length, 1, JSON.stringify(targets));
    const t = targets[0];
    assert.equal(t.health, "up", t.lastError);
    const { instance, ...labels } = t.labels;
    assert.equal(instance, new URL(exp.metricsUrl).host);
    assert.deepEqual(labels, {
      container: DEFAULT_TARGET.container,
      endpoint: DEFAULT_TARGET.port,
      job: DEFAULT_TARGET.service,
      namespace: DEFAULT_TARGET.namespace,
      pod: DEFAULT_TARGET.pod,
      service: DEFAULT_TARGET.service,
    });
  });

  it("the guide's seriesQuery finds _sum and _count of the Kubernetes Service, relabelled exported_namespace/exported_service", async () => {
    // The adapter lists series from (now - max age); ten minutes covers this whole run.
    const found = await prom.series(GUIDE_AVERAGE_RULE.seriesQuery, Date.now() / 1000 - 600);
    assert.deepEqual(
      found.map((s) => s.__name__).sort(),
      ["kong_upstream_latency_ms_count", "kong_upstream_latency_ms_sum"],
      JSON.stringify(found),
    );
    for (const { __name__, instance, ...labels } of found) {
      assert.equal(instance, new URL(exp.metricsUrl).host, __name__);
      assert.deepEqual(labels, {
        // The sidecar's labels that collided with the target's, renamed by Prometheus (honor_labels: false).
        exported_namespace: "default",
        exported_service: "echo",
        // The target's own.
        namespace: DEFAULT_TARGET.namespace,
        service: DEFAULT_TARGET.service,
        pod: DEFAULT_TARGET.pod,
        container: DEFAULT_TARGET.container,
        endpoint: DEFAULT_TARGET.port,
        job: DEFAULT_TARGET.service,
        kubernetes_namespace: "default",
        kubernetes_name: "echo",
        kubernetes_kind: "service",
        kubernetes_apiversion: "v1",
        kong_service: "default.echo.80",
      });
    }
  });

  it("series without Kubernetes labels are scraped but not picked up by the rule", async () => {
    const legacy = await prom.series('{__name__=~"kong_upstream_latency_ms_(sum|count)",kong_service="legacy"}');
    assert.equal(legacy.length, 2, "the legacy series are in Prometheus");
    for (const s of legacy) assert.equal(s.kubernetes_name, undefined, "an empty label is no label in Prometheus");
    const found = await prom.series(GUIDE_AVERAGE_RULE.seriesQuery);
    assert.deepEqual(
      found.filter((s) => s.kong_service !== "default.echo.80"),
      [],
    );
  });

  it("the adapter's query for services/echo returns the mean upstream latency sent, as a Quantity like 102312m", async () => {
    const promql = expandMetricsQuery(GUIDE_AVERAGE_RULE.metricsQuery, ECHO);
    assert.equal(
      promql,
      'sum by (exported_service) (rate(kong_upstream_latency_ms_sum{exported_namespace="default",exported_service="echo"}[60s:10s]))\n' +
        "  /\n" +
        'sum by (exported_service) (rate(kong_upstream_latency_ms_count{exported_namespace="default",exported_service="echo"}[60s:10s]))\n',
    );
    // A [60s:10s] subquery needs two 10 s steps inside the series' life before rate() has a value.
    const result = await waitFor(
      `a value for ${promql}`,
      async () => {
        const r = await prom.query(promql);
        return r.length > 0 ? r : undefined;
      },
      30_000,
      500,
    );
    assert.equal(result.length, 1, JSON.stringify(result));
    // The adapter pairs a value with its object through the resource label (MatchValuesToNames).
    assert.equal(result[0].metric.exported_service, "echo");
    const value = result[0].value;
    within(value, mean(sent.echo), 0.05, "60 s average");

    // How the adapter renders it is checked against Kubernetes' own renderings below.
    assert.match(renderQuantity(value), /^\d+m?$/);
  });

  it("the p99 rule finds the sidecar's p99 gauge and its query returns the p99 sent", async () => {
    const found = await waitFor(
      "the p99 rule's seriesQuery to find kong_upstream_latency_ms_percentile (is the sidecar's percentile gauge in?)",
      async () => {
        const s = await prom.series(P99_RULE.seriesQuery);
        return s.length > 0 ? s : undefined;
      },
      5_000,
      250,
    );
    assert.deepEqual(
      found.map((s) => [s.exported_namespace, s.exported_service, s.kong_service]),
      [["default", "echo", "default.echo.80"]],
      "only the Kubernetes Service's series, not legacy",
    );

    const promql = expandMetricsQuery(P99_RULE.metricsQuery, ECHO);
    assert.equal(
      promql,
      'max by (exported_service) (kong_upstream_latency_ms_percentile{quantile="0.99",exported_namespace="default",exported_service="echo"})',
    );
    const result = await prom.query(promql);
    assert.equal(result.length, 1, JSON.stringify(result));
    assert.equal(result[0].metric.exported_service, "echo");
    within(result[0].value, percentile(sent.echo, 0.99), 0.01, "p99");
  });
});

// The renderings of k8s.io/apimachinery's resource.NewMilliQuantity(v, DecimalSI).String(), as the custom
// metrics API returns them, written out rather than derived from parseQuantity.
describe("prometheus-adapter's value as a Kubernetes Quantity (devstack/prometheus/adapter.ts)", () => {
  const cases: Array<[number, string, number]> = [
    [101.2671, "101267m", 101.267],
    [1.1, "1100m", 1.1],
    [0.001, "1m", 0.001],
    [0.0004, "0", 0],
    [0.0009, "0", 0],
    [40, "40", 40],
    [1500.0004, "1500", 1500],
    [2e6, "2M", 2e6],
    [NaN, "0", 0],
  ];
  for (const [value, quantity, read] of cases) {
    it(`${value} is "${quantity}", which the HPA reads as ${read}`, () => {
      assert.equal(renderQuantity(value), quantity);
      assert.equal(parseQuantity(quantity), read);
    });
  }
});
