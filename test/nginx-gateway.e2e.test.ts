import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { startEchoUpstream, type EchoUpstream } from "../devstack/gateway/echo-upstream";
import { fixturePluginDir, PluginServer } from "../devstack/kong";
import { parseDeclarative } from "../devstack/nginx/declarative";
import { startNginxGateway, type NginxGateway } from "../devstack/nginx/nginx-gateway";
import { nginxMissing } from "../devstack/nginx/nginx-process";
import { fetchText, startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { PRODUCT_PLUGIN_DIR } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";
import { parseSamples, select, value } from "../devstack/prometheus/prom-text";

/** Three Services, one per scope: a plugin on the route, one on the service, and the global one for the third. */
function declarative(flushInterval: number): string {
  const plugin = `
          - name: upstream-latency
            config:
              flush_interval: ${flushInterval}`;
  return `
_format_version: "3.0"
plugins:
  - name: upstream-latency
    config:
      flush_interval: ${flushInterval}
services:
  - name: default.echo.80
    url: http://echo.default.80.svc:80
    tags: [k8s-name:echo, k8s-namespace:default, k8s-kind:Service, k8s-version:v1]
    routes:
      - name: echo
        paths: [/echo]
        plugins:${plugin}
  - name: shop.cart.80
    url: http://cart.shop.80.svc:80
    tags: [k8s-name:cart, k8s-namespace:shop, k8s-kind:Service, k8s-version:v1]
    plugins:${plugin.replace(/\n {4}/g, "\n")}
    routes:
      - name: cart
        paths: [/cart]
  - name: shop.orders.80
    url: http://orders.shop.80.svc:80
    routes:
      - name: orders
        paths: [/orders]
`;
}

const SERVICES: Record<string, string> = {
  "/echo": "default.echo.80",
  "/cart": "shop.cart.80",
  "/orders": "shop.orders.80",
};
/** Upstream delays across Kong's buckets (25, 50, 80, 100, 250 ms). */
const DELAYS_MS = [0, 1, 3, 8, 20, 30, 60, 90, 120];

type Latencies = Record<string, number[]>;

/** Sends `perService` requests to each route, 32 at a time, and returns each response's X-Kong-Upstream-Latency. */
async function send(
  gatewayUrl: string,
  perService: number,
  into: Latencies,
  paths = Object.keys(SERVICES),
): Promise<void> {
  const pool = new Pool(gatewayUrl, { connections: 32 });
  const jobs = paths.flatMap((path) =>
    Array.from({ length: perService }, (_, i) => `${path}/x?delay_ms=${DELAYS_MS[i % DELAYS_MS.length]}`),
  );
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const path = jobs[next++];
      const res = await pool.request({ path, method: "GET", headersTimeout: 10_000, bodyTimeout: 10_000 });
      await res.body.text();
      assert.equal(res.statusCode, 200, path);
      const header = res.headers["x-kong-upstream-latency"];
      assert.match(String(header), /^\d+$/, `${path}: X-Kong-Upstream-Latency ${String(header)}`);
      (into[SERVICES[path.slice(0, path.indexOf("/", 1))] ?? path] ??= []).push(Number(header));
    }
  };
  await Promise.all(Array.from({ length: 32 }, lane));
  await pool.close();
}

/** Waits for the exporter's totals to match, then checks count, sum and every cumulative bucket per Service. */
async function assertExact(exporter: ExporterProcess, sent: Latencies): Promise<void> {
  const samples = await waitFor(
    "the exporter to count every request",
    async () => {
      const s = parseSamples(await fetchText(`${exporter.metricsUrl}/metrics`));
      const counts = Object.keys(sent).map((k) => value(s, "kong_upstream_latency_ms_count", { kong_service: k }));
      return counts.every((c, i) => c === sent[Object.keys(sent)[i]].length) ? s : undefined;
    },
    20_000,
    100,
  );
  for (const [service, latencies] of Object.entries(sent)) {
    const match = { kong_service: service };
    assert.equal(value(samples, "kong_upstream_latency_ms_count", match), latencies.length, `${service} count`);
    const sum = latencies.reduce((a, b) => a + b, 0);
    assert.equal(value(samples, "kong_upstream_latency_ms_sum", match), sum, `${service} sum`);
    const buckets = select(samples, "kong_upstream_latency_ms_bucket", match);
    assert.ok(buckets.length > 5, `${service} buckets`);
    for (const b of buckets) {
      const le = b.labels.le === "+Inf" ? Infinity : Number(b.labels.le);
      assert.equal(b.value, latencies.filter((l) => l <= le).length, `${service} le=${b.labels.le}`);
    }
  }
}

/** Every error nginx logged: none is expected on these paths. */
function errors(gateway: NginxGateway): string[] {
  return gateway.nginx
    .errorLog()
    .split("\n")
    .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
}

describe("the plugin through the Kong-like gateway on real nginx + LuaJIT", function () {
  this.timeout(120_000);
  let exporter: ExporterProcess;
  let server: PluginServer;
  let upstream: EchoUpstream;
  let gateway: NginxGateway;
  const sent: Latencies = {};
  // Kong's socket path stays the same when its plugin server restarts.
  const kongPrefix = mkdtempSync(join(tmpdir(), "kong-"));
  const startServer = () =>
    PluginServer.start({ pluginsDir: PRODUCT_PLUGIN_DIR, sockName: "upstream-latency.sock", kongPrefix });

  before(async function () {
    const missing = nginxMissing();
    if (missing) {
      if (process.env.CI === "true") throw new Error(missing);
      this.skip();
    }
    exporter = await startExporter(["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"]);
    server = await startServer();
    upstream = await startEchoUpstream();
    gateway = await startNginxGateway({
      config: parseDeclarative(declarative(0.2), "test configuration"),
      upstreamUrl: upstream.url,
      pluginServer: { plugin: "upstream-latency", socket: server.socketPath },
      pluginConfig: { exporter_url: exporter.ingestUrl },
      workers: 2,
    });
  });

  after(async () => {
    await gateway?.stop();
    await server?.stop();
    await upstream?.close();
    await exporter?.stop();
    rmSync(kongPrefix, { recursive: true, force: true });
  });

  it("exports exact count, sum and buckets per Service, for plugins on a route, a service and globally", async () => {
    await send(gateway.url, 150, sent);
    await assertExact(exporter, sent);
    const status = await gateway.status();
    assert.deepEqual(
      status.proxied,
      Object.fromEntries(Object.entries(sent).map(([k, v]) => [k, v.length])),
      "the gateway proxied what the client received",
    );
    assert.deepEqual(errors(gateway), []);
  });

  it("loses and double-counts nothing across a plugin-server restart (Kong's `no plugin instance` retry)", async () => {
    // SIGTERM: the plugin ships what it holds before exiting; the new server is a new source for the exporter.
    await server.stop();
    server = await startServer();
    await send(gateway.url, 100, sent);
    await assertExact(exporter, sent);
    assert.match(gateway.nginx.errorLog(), /\[warn\].*no plugin instance/, "the workers restarted their instances");
    assert.deepEqual(errors(gateway), []);
  });

  it("loses and double-counts nothing across a configuration change (a new __seq__ for every plugin)", async () => {
    const started = () => (server.output().match(/instance #\d+ of upstream-latency started/g) ?? []).length;
    const before = started();
    await send(gateway.url, 50, sent);
    await gateway.configure(parseDeclarative(declarative(0.3), "changed configuration"));
    await send(gateway.url, 100, sent);
    await assertExact(exporter, sent);
    assert.ok(started() > before, "every worker started new instances for the new configuration");
    assert.deepEqual(errors(gateway), []);
  });

  it("kills the log timer when the plugin reads an nginx variable, as Kong does", async () => {
    const getVar = await PluginServer.start({ pluginsDir: fixturePluginDir("get-var") });
    const probe = await startNginxGateway({
      config: parseDeclarative(
        '_format_version: "3.0"\nplugins: [{ name: get-var }]\nservices: [{ name: s, url: "http://s:80", routes: [{ name: r, paths: [/r] }] }]',
      ),
      upstreamUrl: upstream.url,
      pluginServer: { plugin: "get-var", socket: getVar.socketPath },
      workers: 1,
    });
    try {
      await send(probe.url, 1, {}, ["/r"]);
      await waitFor(
        "the timer's error",
        () => /API disabled in the current context/.test(probe.nginx.errorLog()) || undefined,
      );
      const status = await probe.status();
      assert.equal(status.log_events_scheduled, 1);
      assert.equal(status.log_events_done ?? 0, 0, "the event never ended");
      assert.equal(status.log_events_failed ?? 0, 0, "nor failed: the timer died");
    } finally {
      await probe.stop();
      await getVar.stop();
    }
  });
});
