import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { makeLogContext, makeService, type KongService } from "../devstack/kong";
import { nearestRank } from "../devstack/nearest-rank";
import { startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { freePort, startPluginStack } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";
import {
  expandMetricsQuery,
  FLEET_P99_RULE,
  GUIDE_AVERAGE_RULE,
  nativeQuantileQuery,
  P99_RULE,
  type DescribedObject,
} from "../devstack/prometheus/adapter";
import { prometheusOrSkip, startPrometheus, type Prometheus } from "../devstack/prometheus/prometheus";
import { normal, rng } from "../devstack/random";

/**
 * Three Kong pods, each with its own plugin server and sidecar, scraped by the real Prometheus 2.42 with
 * native histograms on, through one ServiceMonitor endpoint: the fleet's percentiles from `sum` of the native
 * family against the exact percentiles of every request, and what `max by` over the pods' summaries gives.
 */
const QUANTILES = ["0.5", "0.9", "0.99", "0.999"];
const TOLERANCE = 0.025;
/** Bound on starting a process, with 2 cores shared by several test runs. */
const START_MS = 60_000;
const ECHO: DescribedObject = { namespace: "default", resource: "services", name: "echo" };
const CART: DescribedObject = { namespace: "shop", resource: "services", name: "cart" };

const random = rng(0x13);
const lognormal = (median: number, sigma: number) => () =>
  Math.max(1, Math.round(median * Math.exp(sigma * normal(random))));
const uniform = (lo: number, hi: number) => () => lo + Math.floor(random() * (hi - lo));

/**
 * Latency mixes per pod (a fast pod with most of the traffic, a medium one, a small one with a slow tail),
 * and the number of requests in the measured window: totals are chosen so that q x n is never a whole rank,
 * where Prometheus's bucket choice could tip to the next latency. Pod c never sees shop/cart.
 */
const PODS = [
  { name: "dataplane-kong-a", echo: { n: 2401, draw: lognormal(20, 0.35) }, cart: { n: 601, draw: uniform(25, 35) } },
  {
    name: "dataplane-kong-b",
    echo: { n: 1201, draw: lognormal(90, 0.25) },
    cart: { n: 602, draw: lognormal(60, 0.2) },
  },
  {
    name: "dataplane-kong-c",
    echo: { n: 301, draw: () => (random() < 0.08 ? uniform(600, 1400)() : lognormal(110, 0.2)()) },
    cart: undefined,
  },
];
/** After pod b's sidecar restarts: slower requests through it, fewer than it had counted (a counter reset). */
const AFTER_RESTART = { n: 502, draw: lognormal(250, 0.2) };

const SERVICES = {
  echo: makeService({
    name: "default.echo.80",
    tags: ["k8s-name:echo", "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"],
  }),
  cart: makeService({
    name: "shop.cart.80",
    tags: ["k8s-name:cart", "k8s-namespace:shop", "k8s-kind:Service", "k8s-version:v1"],
  }),
};

interface Pod {
  name: string;
  args: string[];
  exporter: ExporterProcess;
  stack: Awaited<ReturnType<typeof startPluginStack>>;
  pluginId: string;
}

async function send(pod: Pod, svc: KongService, values: number[]): Promise<void> {
  for (let i = 0; i < values.length; i += 64) {
    const traces = await Promise.all(
      values
        .slice(i, i + 64)
        .map((proxyMs) => pod.stack.kong.log(0, pod.pluginId, makeLogContext({ service: svc, proxyMs }))),
    );
    assert.deepEqual(
      traces.flatMap((t) => t.errors),
      [],
      "Kong logged errors for the plugin's events",
    );
  }
}

const draws = (mix: { n: number; draw: () => number } | undefined, n = mix?.n ?? 0) =>
  Array.from({ length: n }, mix?.draw ?? (() => 0));

/**
 * Each pod's requests per Kong Service, drawn up front so that every run sends the same: a warm-up from the
 * same mixes, a quarter of the window's traffic (the series then exist, and each pod's count at the range's
 * start is large enough that increase() extrapolates every pod's range alike), then the measured window.
 */
const PLAN = PODS.map((p) => ({
  warmUp: { echo: draws(p.echo, Math.ceil(p.echo.n / 4)), cart: draws(p.cart, Math.ceil((p.cart?.n ?? 0) / 4)) },
  window: { echo: draws(p.echo), cart: draws(p.cart) },
}));
const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
const pct = (v: number, exact: number) => `${(((v - exact) / exact) * 100).toFixed(2)}%`;

describe("fleet percentiles from native histograms, three Kong pods, real Prometheus 2.42", function () {
  this.timeout(180_000);
  let prom: Prometheus;
  const pods: Pod[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  /** The measured window's requests per service, all pods together. */
  const window = { echo: PLAN.flatMap((p) => p.window.echo), cart: PLAN.flatMap((p) => p.window.cart) };
  /**
   * Every query's time, in seconds, and the start of its one-minute range: after the warm-up was scraped and
   * before the window's traffic began, half a second before a multiple of 10 s, which the guide's [60s:10s]
   * subquery then takes as its first point. Both ranges hold the same whole number of scrapes of every pod.
   */
  let at = 0;
  let rangeStart = 0;

  /** Waits until Prometheus has scraped, for each pod and Kong Service, exactly this many requests. */
  const scraped = (want: Map<string, number>) =>
    waitFor(
      `Prometheus to scrape ${JSON.stringify([...want])}`,
      async () => {
        const got = await prom.query("kong_upstream_latency_ms_count");
        const have = new Map(got.map((s) => [`${s.metric.pod}/${s.metric.kong_service}`, s.value]));
        return [...want].every(([k, n]) => have.get(k) === n) ? true : undefined;
      },
      30_000,
      250,
    );

  /** Waits until the clock passes `t` (seconds) and a scrape interval more, so that Prometheus holds [.., t]. */
  const past = (t: number) =>
    waitFor(`the clock to pass ${t}`, () => (Date.now() / 1000 > t + 1.5 ? true : undefined), 90_000, 200);

  const fleet = async (obj: DescribedObject, q: string, rangeS = 60, time = at) => {
    const r = await prom.query(expandMetricsQuery(nativeQuantileQuery(q, `${rangeS}s`), obj), time);
    assert.equal(r.length, 1, JSON.stringify(r));
    assert.equal(r[0].metric.exported_service, obj.name);
    return r[0].value;
  };

  const assertFleet = async (obj: DescribedObject, values: number[], rangeS = 60, time = at) => {
    const s = sorted(values);
    for (const q of QUANTILES) {
      const exact = nearestRank(s, Number(q));
      const got = await fleet(obj, q, rangeS, time);
      assert.ok(
        Math.abs(got - exact) <= TOLERANCE * exact,
        `${obj.name} p${Number(q) * 100}: ${got} vs exact ${exact}`,
      );
    }
  };

  before(async function () {
    prometheusOrSkip(this);
    this.timeout(150_000);
    // Started side by side on a busy machine: generous start-up bounds, and each process registered for
    // cleanup as soon as it runs.
    await Promise.all(
      PODS.map(async (p) => {
        const args = [
          "--metrics-address",
          `127.0.0.1:${await freePort()}`,
          "--ingest-address",
          `127.0.0.1:${await freePort()}`,
        ];
        const pod = { name: p.name, args, pluginId: randomUUID() } as Pod;
        pods.push(pod);
        pod.exporter = await startExporter(args, START_MS);
        cleanups.push(() => pod.exporter.stop());
        pod.stack = await startPluginStack(1);
        cleanups.push(() => pod.stack.close());
        pod.stack.kong.configurePlugin({
          id: pod.pluginId,
          config: { exporter_url: `http://${args[3]}`, flush_interval: 0.2 },
        });
      }),
    );
    pods.sort((x, y) => x.name.localeCompare(y.name));
    prom = await startPrometheus(
      {
        address: pods[0].args[1],
        target: { pod: pods[0].name },
        morePods: pods.slice(1).map((p) => ({ address: p.args[1], pod: p.name })),
        features: ["native-histograms"],
      },
      START_MS,
    );
    cleanups.push(() => prom.stop());

    const counts = new Map<string, number>();
    const sendAll = (phase: "warmUp" | "window") =>
      Promise.all(
        PODS.map(async (p, i) => {
          for (const key of ["echo", "cart"] as const) {
            const values = PLAN[i][phase][key];
            if (values.length === 0) continue;
            const series = `${p.name}/${SERVICES[key].name}`;
            counts.set(series, (counts.get(series) ?? 0) + values.length);
            await send(pods[i], SERVICES[key], values);
          }
        }),
      );
    await sendAll("warmUp");
    await scraped(counts);
    const firstStep = Math.ceil((Date.now() / 1000 + 1) / 10) * 10;
    rangeStart = firstStep - 0.5;
    at = rangeStart + 60;
    await past(firstStep);

    await sendAll("window");
    await scraped(counts);
    assert.ok(at * 1000 > Date.now(), "the window's traffic took too long to be scraped");
    await past(at);
  });

  after(async () => {
    for (let c = cleanups.pop(); c; c = cleanups.pop()) await c();
  });

  it("the fleet p50/p90/p99/p99.9 from sum of the native family are within 2.5% of the exact ones", async () => {
    await assertFleet(ECHO, window.echo);
    // The adapter rule itself: the same one-minute window.
    const rule = await prom.query(expandMetricsQuery(FLEET_P99_RULE.metricsQuery, ECHO), at);
    const exact = nearestRank(sorted(window.echo), 0.99);
    assert.ok(Math.abs(rule[0].value - exact) <= TOLERANCE * exact, `${FLEET_P99_RULE.name.as}: ${rule[0].value}`);
  });

  it("max by over the pods' summaries is the worst pod's percentile, off the fleet's", async () => {
    const s = sorted(window.echo);
    const rows: string[] = [];
    for (const q of QUANTILES) {
      const exact = nearestRank(s, Number(q));
      const native = await fleet(ECHO, q);
      const promql = expandMetricsQuery(P99_RULE.metricsQuery.replace('"0.99"', `"${q}"`), ECHO);
      const maxBy = (await prom.query(promql, at))[0].value;
      rows.push(
        `p${Number(q) * 100}: exact ${exact}, native ${native.toFixed(1)} (${pct(native, exact)}), max by ${maxBy} (${pct(maxBy, exact)})`,
      );
      // Here the slow pod's percentiles: above the fleet's, beyond the native family's error.
      assert.ok(maxBy > exact * (1 + TOLERANCE), rows.at(-1));
    }
    console.log(`      default/echo, ${s.length} requests over 3 pods:\n        ${rows.join("\n        ")}`);
  });

  it("a pod that never saw a Service adds nothing: shop/cart's fleet is pods a and b's", async () => {
    const found = await prom.query(
      'count by (exported_service) (kong_upstream_latency_ms_native{exported_service="cart"})',
      at,
    );
    assert.deepEqual(
      found.map((s) => s.value),
      [2],
    );
    await assertFleet(CART, window.cart);
    const nobody = { namespace: "default", resource: "services", name: "nobody" };
    assert.deepEqual(await prom.query(expandMetricsQuery(nativeQuantileQuery("0.99", "1m"), nobody), at), []);
  });

  it("the guide's average rule still works: classic _sum/_count and _bucket are all there", async () => {
    const average = await prom.query(expandMetricsQuery(GUIDE_AVERAGE_RULE.metricsQuery, ECHO), at);
    const mean = window.echo.reduce((a, b) => a + b, 0) / window.echo.length;
    assert.equal(average.length, 1, JSON.stringify(average));
    assert.ok(Math.abs(average[0].value - mean) <= 1e-6 * mean, `average ${average[0].value} vs ${mean}`);
    const buckets = await prom.query('count(kong_upstream_latency_ms_bucket{exported_service="echo"})', at);
    assert.equal(buckets[0]?.value, PODS.length * 14, "13 of Kong's boundaries and +Inf, per pod");
    const inf = await prom.query('sum(kong_upstream_latency_ms_bucket{exported_service="echo",le="+Inf"})', at);
    const count = await prom.query('sum(kong_upstream_latency_ms_count{exported_service="echo"})', at);
    assert.equal(inf[0].value, count[0].value);
  });

  it("across a sidecar restart (a counter reset) the fleet holds every request of the window", async () => {
    const b = pods[1];
    await b.exporter.stop("SIGKILL");
    b.exporter = await startExporter(b.args);
    const values = draws(AFTER_RESTART);
    await send(b, SERVICES.echo, values);
    await scraped(new Map([[`${b.name}/${SERVICES.echo.name}`, values.length]]));
    const range = Math.ceil(Date.now() / 1000 - rangeStart);
    await past(rangeStart + range);
    await assertFleet(ECHO, [...window.echo, ...values], range, rangeStart + range);
  });

  it("an empty window gives NaN, as the guide's 0/0 does", async () => {
    const idleSince = Date.now() / 1000;
    await past(idleSince + 5);
    const quiet = await fleet(ECHO, "0.99", 5, idleSince + 5);
    assert.ok(Number.isNaN(quiet), String(quiet));
  });
});
