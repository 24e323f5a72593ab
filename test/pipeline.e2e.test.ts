import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { dumpAllPlugins, makeLogContext, makeRoute, makeService, type KongService } from "../devstack/kong";
import { fetchText, startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { waitFor } from "../devstack/process/wait";
import { parseSamples, select, value, type Sample } from "../devstack/prometheus/prom-text";
import { freePort, PRODUCT_PLUGIN_DIR, startPluginStack } from "../devstack/process/plugin-stack";

const KONG_BUCKETS = [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000];

function kic(name: string, ns: string, kind = "Service", group = "", version = "v1"): string[] {
  return [
    `k8s-name:${name}`,
    `k8s-namespace:${ns}`,
    `k8s-kind:${kind}`,
    `k8s-uid:${randomUUID()}`,
    `k8s-group:${group}`,
    `k8s-version:${version}`,
  ];
}

/** What /metrics must say for one series, computed from the latencies sent. */
function expectSeries(samples: Sample[], match: Record<string, string>, latencies: number[]): void {
  assert.equal(
    value(samples, "kong_upstream_latency_ms_count", match),
    latencies.length,
    `count for ${JSON.stringify(match)}`,
  );
  assert.equal(
    value(samples, "kong_upstream_latency_ms_sum", match),
    latencies.reduce((a, b) => a + b, 0),
    "sum",
  );
  for (const le of KONG_BUCKETS) {
    assert.equal(
      value(samples, "kong_upstream_latency_ms_bucket", { ...match, le: String(le) }),
      latencies.filter((l) => l <= le).length,
      `le=${le}`,
    );
  }
  assert.equal(
    value(samples, "kong_upstream_latency_ms_bucket", { ...match, le: "+Inf" }),
    latencies.length,
    "le=+Inf",
  );
}

async function metrics(exp: ExporterProcess): Promise<Sample[]> {
  return parseSamples(await fetchText(`${exp.metricsUrl}/metrics`));
}

async function countReaches(
  exp: ExporterProcess,
  match: Record<string, string>,
  n: number,
  timeoutMs = 15_000,
): Promise<Sample[]> {
  return waitFor(
    `kong_upstream_latency_ms_count${JSON.stringify(match)} to reach ${n}`,
    async () => {
      const s = await metrics(exp);
      return value(s, "kong_upstream_latency_ms_count", match) === n ? s : undefined;
    },
    timeoutMs,
  );
}

describe("upstream-latency plugin in the real plugin server, shipping to the real latency-exporter", function () {
  this.timeout(60_000);

  it("--dump-all-plugins prints clean JSON with one plugin Kong accepts", async () => {
    const { stdout, plugins } = await dumpAllPlugins(PRODUCT_PLUGIN_DIR);
    assert.equal(plugins.length, 1, stdout);
    const p = plugins[0];
    assert.equal(p.Name, "upstream-latency");
    assert.equal(typeof p.Version, "string");
    assert.equal(typeof p.Priority, "number");
    assert.deepEqual(p.Phases, ["log"]);
    const fields = (
      p.Schema as unknown as { fields: [{ config: { fields: Record<string, unknown>[] } }] }
    ).fields[0].config.fields.map((f) => Object.keys(f)[0]);
    assert.deepEqual(fields, ["exporter_url", "flush_interval", "latencies", "exporter_token_file", "max_services"]);
    assert.equal(stdout.trim(), JSON.stringify(plugins));
  });

  describe("with the sidecar up", () => {
    let exp: ExporterProcess;
    let stack: Awaited<ReturnType<typeof startPluginStack>>;
    before(async () => {
      exp = await startExporter(["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"]);
      stack = await startPluginStack(2);
    });
    after(async () => {
      await stack?.close();
      await exp?.stop();
    });

    it("exports exact count, sum, cumulative buckets and labels per Kong Service", async () => {
      const config = { exporter_url: exp.ingestUrl, flush_interval: 0.2 };
      const echo = makeService({ name: "default.echo.80", tags: kic("echo", "default") });
      const multi = makeService({
        name: "httproute.shop.cart.0",
        tags: kic("cart", "shop", "HTTPRoute", "gateway.networking.k8s.io"),
      });
      const bare = makeService({ name: "legacy", tags: [] });
      const global = { id: randomUUID(), config };
      const onRoute = { id: randomUUID(), config, routeId: randomUUID() };
      const onService = { id: randomUUID(), config, serviceId: multi.id };
      stack.kong.configurePlugin(global);
      stack.kong.configurePlugin(onRoute);
      stack.kong.configurePlugin(onService);

      const plan: Array<[KongService, string, number[]]> = [
        [echo, onRoute.id, [0, 1, 25, 26, 50, 99, 100, 101, 250, 999, 1000, 2047, 5000, 60000, 61000]],
        [multi, onService.id, [12, 80, 81, 400, 700, 701, 30000]],
        [bare, global.id, [5, 10, 2000]],
        [echo, global.id, [40, 45]],
      ];
      let i = 0;
      const sends: Promise<unknown>[] = [];
      for (const [svc, pluginId, latencies] of plan) {
        for (const ms of latencies)
          sends.push(
            stack.kong.log(i++ % 2, pluginId, makeLogContext({ service: svc, route: makeRoute(svc), proxyMs: ms })),
          );
      }
      // Requests that were not proxied (Kong answered itself) are not recorded, as Kong's prometheus plugin does.
      sends.push(stack.kong.log(0, global.id, makeLogContext({ service: echo, proxyMs: -1 })));
      sends.push(stack.kong.log(1, global.id, makeLogContext({ service: null })));
      const traces = (await Promise.all(sends)) as { pdkCalls: string[]; errors: string[] }[];
      for (const t of traces) {
        assert.ok(t.pdkCalls.length >= 1, "every event makes a PDK call");
        assert.deepEqual(t.errors, []);
      }

      const echoMatch = { kong_service: "default.echo.80" };
      const samples = await countReaches(exp, echoMatch, 17);
      expectSeries(samples, echoMatch, [...plan[0][2], ...plan[3][2]]);
      const echoSeries = select(samples, "kong_upstream_latency_ms_count", echoMatch)[0];
      assert.deepEqual(
        { ...echoSeries.labels },
        {
          namespace: "default",
          service: "echo",
          kubernetes_namespace: "default",
          kubernetes_name: "echo",
          kubernetes_kind: "service",
          kubernetes_apiversion: "v1",
          kong_service: "default.echo.80",
        },
      );
      const multiMatch = { kong_service: "httproute.shop.cart.0" };
      expectSeries(await countReaches(exp, multiMatch, 7), multiMatch, plan[1][2]);
      const multiSeries = select(samples, "kong_upstream_latency_ms_count", multiMatch)[0];
      assert.equal(multiSeries.labels.kubernetes_kind, "HTTPRoute");
      assert.equal(multiSeries.labels.kubernetes_apiversion, "gateway.networking.k8s.io/v1");
      const bareMatch = { kong_service: "legacy" };
      expectSeries(await countReaches(exp, bareMatch, 3), bareMatch, plan[2][2]);
      const bareSeries = select(samples, "kong_upstream_latency_ms_count", bareMatch)[0];
      assert.equal(bareSeries.labels.kubernetes_name, "");
      assert.equal(bareSeries.labels.kubernetes_kind, "");
    });

    it("uses one small PDK call per event on a route-scoped instance, two when global", async () => {
      const svc = makeService({ name: "default.calls.80", tags: kic("calls", "default") });
      const config = { exporter_url: exp.ingestUrl, flush_interval: 0.2 };
      const onRoute = { id: randomUUID(), config, routeId: randomUUID() };
      const global = { id: randomUUID(), config };
      stack.kong.configurePlugin(onRoute);
      stack.kong.configurePlugin(global);
      const ctx = () => makeLogContext({ service: svc, proxyMs: 10 });
      const first = await stack.kong.log(0, onRoute.id, ctx());
      const later = await stack.kong.log(0, onRoute.id, ctx());
      const g = await stack.kong.log(0, global.id, ctx());
      assert.deepEqual(first.pdkCalls, ["kong.nginx.get_ctx", "kong.router.get_service"]);
      assert.deepEqual(later.pdkCalls, ["kong.nginx.get_ctx"]);
      assert.deepEqual(g.pdkCalls, ["kong.nginx.get_ctx", "kong.router.get_service"]);
      await countReaches(exp, { kong_service: "default.calls.80" }, 3);
    });

    it("records Kong's request and kong latencies from serialize() when asked", async () => {
      const svc = makeService({ name: "default.all.80", tags: kic("all", "default") });
      const plugin = {
        id: randomUUID(),
        config: { exporter_url: exp.ingestUrl, flush_interval: 0.2, latencies: ["upstream", "request", "kong"] },
      };
      stack.kong.configurePlugin(plugin);
      const t = await stack.kong.log(
        1,
        plugin.id,
        makeLogContext({ service: svc, proxyMs: 100, kongMs: 3, requestMs: 104 }),
      );
      assert.deepEqual(t.pdkCalls, ["kong.log.serialize"]);
      const m = { kong_service: "default.all.80" };
      const samples = await countReaches(exp, m, 1);
      assert.equal(value(samples, "kong_upstream_latency_ms_sum", m), 100);
      await waitFor("request and kong latencies", async () => {
        const s = await metrics(exp);
        return value(s, "kong_request_latency_ms_sum", m) === 104 && value(s, "kong_kong_latency_ms_sum", m) === 3
          ? true
          : undefined;
      });
    });

    it("refuses an invalid configuration at StartInstance with a message naming the field", async () => {
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ exporter_url: "ftp://x" }, /exporter_url "ftp:\/\/x": scheme must be http or unix/],
        [{ exporter_url: "unix:relative" }, /must be absolute/],
        [{ flush_interval: 0 }, /flush_interval must be >= 0.1/],
        [{ latencies: ["upstream", "bogus"] }, /latencies\.1 must be one of upstream, request, kong/],
        [{ max_services: 1.5 }, /max_services must be integer/],
      ];
      for (const [config, pattern] of cases) {
        const p = { id: randomUUID(), config };
        stack.kong.configurePlugin(p);
        await assert.rejects(
          stack.kong.log(0, p.id, makeLogContext({ service: makeService(), proxyMs: 1 })),
          (err: Error) => {
            assert.match(err.message, /upstream-latency: invalid configuration/);
            assert.match(err.message, pattern);
            return true;
          },
        );
      }
    });
  });

  it("loses nothing while the sidecar is down, and delivers it once the sidecar is up", async () => {
    const port = await freePort();
    const stack = await startPluginStack(2);
    let exp: ExporterProcess | undefined;
    try {
      const plugin = { id: randomUUID(), config: { exporter_url: `http://127.0.0.1:${port}`, flush_interval: 0.1 } };
      stack.kong.configurePlugin(plugin);
      const svc = makeService({ name: "default.late.80", tags: kic("late", "default") });
      const latencies = Array.from({ length: 300 }, (_, i) => (i * 37) % 3000);
      await Promise.all(
        latencies
          .slice(0, 200)
          .map((ms, i) => stack.kong.log(i % 2, plugin.id, makeLogContext({ service: svc, proxyMs: ms }))),
      );
      // Let the plugin fail a few times (and back off) before the sidecar appears.
      await waitFor("the plugin to report failed shipments", () =>
        /cannot ship latency deltas/.test(stack.server.output()) ? true : undefined,
      );
      await Promise.all(
        latencies
          .slice(200)
          .map((ms, i) => stack.kong.log(i % 2, plugin.id, makeLogContext({ service: svc, proxyMs: ms }))),
      );
      exp = await startExporter(["--metrics-address", "127.0.0.1:0", "--ingest-address", `127.0.0.1:${port}`]);
      const m = { kong_service: "default.late.80" };
      expectSeries(await countReaches(exp, m, 300, 40_000), m, latencies);
    } finally {
      await stack.close();
      await exp?.stop();
    }
  });
});
