/**
 * One Kong pod as the chart builds it, minus Kong itself: the init container, the plugin server and the
 * latency-exporter run with their rendered command lines (paths mapped to this checkout, ports to free loopback
 * ports); the project's Kong emulator (test/support/kong) plays Kong's log phase against the rendered socket with
 * the plugin configuration the chart renders, for the echo service of kong-config/declarative/route.yaml. The
 * exporter must then show the guide's kong_upstream_latency_ms series with the labels the adapter rules rely on.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { KongEmulator, makeLogContext, makeRoute, makeService } from "../support/kong";
import { parseSamples, select } from "../support/prom-text";
import { render, requireHelm, type K8sObject, type Values } from "./support/helm";
import { DIST_PLUGIN_DIR, KONG_CONFIG, REPO, WRITE_PLUGIN_INFO, needOrSkip, readText } from "./support/paths";
import { Processes, freePort, httpGet, isSocket, mapArg, mapInString, run, waitFor, type PathMap } from "./support/procs";

type Obj = Record<string, any>;

function podSpec(objs: K8sObject[]): Obj {
  return (objs.find((o) => o.kind === "GatewayConfiguration") as Obj).spec.dataPlaneOptions.deployment.podTemplateSpec.spec;
}

function container(spec: Obj, name: string): Obj {
  const c = [...(spec.initContainers ?? []), ...spec.containers].find((x: Obj) => x.name === name);
  assert.ok(c, `no container ${name}`);
  return c;
}

const LATENCIES_MS = [12, 40, 85, 160, 420];

describe("deploy: a Kong pod as the chart builds it, driven by the Kong emulator", function () {
  this.timeout(90_000);
  const procs = new Processes();
  let tmp: string;
  let kong: KongEmulator | undefined;

  before(function () {
    requireHelm(this);
    const missing = ["dist/plugin/upstream-latency.js", "dist/lib/sidecar/cli.js"].find((f) => !fs.existsSync(path.join(REPO, f)));
    needOrSkip(this, missing && `${missing} does not exist (run npm run build)`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kle-pod-"));
  });

  after(async function () {
    kong?.close();
    if (this.currentTest?.state === "failed") console.error(procs.logs());
    await procs.stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const [name, values] of [
    ["TCP ingest (default)", {}],
    ["unix: ingest on the shared volume", { exporter: { ingestAddress: "unix:/upstream-latency/ingest.sock" } }],
  ] as [string, Values][]) {
    it(`${name}: proxied requests show up as kong_upstream_latency_ms of default/echo`, async function () {
      const helm = requireHelm(this);
      const objs = render(helm, { ...values, plugin: { kongClusterPlugin: { enabled: true } } });
      const spec = podSpec(objs);
      const shared = fs.mkdtempSync(path.join(tmp, "shared-"));
      const map: PathMap = [
        ["/nodejs/bin/node", process.execPath],
        ["/opt/upstream-latency/bin/write-plugin-info.js", WRITE_PLUGIN_INFO],
        ["/opt/upstream-latency", REPO],
        ["/upstream-latency", shared],
      ];
      const argv = (c: Obj) => [...c.command, ...(c.args ?? [])].map((a: string) => mapInString(mapArg(a, map), map));

      // Init container, then the containers.
      const init = run(argv(container(spec, "upstream-latency-info")), { timeoutMs: 30_000 });
      assert.equal(init.status, 0, init.stderr);
      const exporterArgs = argv(container(spec, "latency-exporter"));
      const metricsPort = await freePort();
      exporterArgs[exporterArgs.indexOf("--metrics-address") + 1] = `127.0.0.1:${metricsPort}`;
      const ii = exporterArgs.indexOf("--ingest-address") + 1;
      let exporterUrl = (objs.find((o) => o.kind === "KongClusterPlugin") as Obj).config.exporter_url as string;
      if (!exporterArgs[ii]!.startsWith("unix:")) {
        assert.equal(exporterUrl, `http://${exporterArgs[ii]}`, "the plugin's exporter_url is the exporter's ingest address");
        const ingestPort = await freePort();
        exporterArgs[ii] = `127.0.0.1:${ingestPort}`;
        exporterUrl = `http://127.0.0.1:${ingestPort}`;
      } else {
        exporterUrl = mapInString(exporterUrl, map);
        assert.equal(exporterUrl, exporterArgs[ii], "the plugin's exporter_url is the exporter's ingest socket");
      }
      procs.start(`latency-exporter (${name})`, exporterArgs);
      procs.start(`upstream-latency (${name})`, argv(container(spec, "upstream-latency")));
      const socket = mapArg((container(spec, "proxy").env as Obj[]).find((e) => e.name === "KONG_PLUGINSERVER_UPSTREAM_LATENCY_SOCKET")!.value, map);
      await waitFor("plugin server socket", () => (isSocket(socket) ? true : undefined));
      await waitFor("exporter ready", async () => {
        try {
          return (await httpGet(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200 ? true : undefined;
        } catch {
          return undefined;
        }
      });

      // Kong: the echo service of the declarative example, the chart's plugin configuration, two workers.
      const decl = parse(readText(path.join(KONG_CONFIG, "declarative", "route.yaml"))) as Obj;
      const echo = decl.services[0];
      const service = makeService({ name: echo.name, host: new URL(echo.url).hostname, port: Number(new URL(echo.url).port), tags: echo.tags });
      const route = makeRoute(service);
      kong = new KongEmulator({ socketPath: socket, pluginName: "upstream-latency", workers: 2 });
      const config = { ...(objs.find((o) => o.kind === "KongClusterPlugin") as Obj).config, exporter_url: exporterUrl, flush_interval: 0.2 };
      kong.configurePlugin({ id: "6a3c1e0e-4d4f-4f43-9d3e-0d1b6f7b9a01", config });
      const traces = await Promise.all(
        LATENCIES_MS.map((ms, i) => kong!.log(i % 2, "6a3c1e0e-4d4f-4f43-9d3e-0d1b6f7b9a01", makeLogContext({ service, route, proxyMs: ms }))),
      );
      for (const t of traces) assert.deepEqual(t.errors, [], `Kong would log: ${t.errors.join("; ")}`);

      const want = { namespace: "default", service: "echo", kubernetes_namespace: "default", kubernetes_name: "echo", kong_service: "echo" };
      let last = "";
      const samples = await waitFor(
        "the requests in the exporter's /metrics",
        async () => {
          last = (await httpGet(`http://127.0.0.1:${metricsPort}/metrics`)).body;
          const s = parseSamples(last);
          const count = select(s, "kong_upstream_latency_ms_count", want);
          return count.length === 1 && count[0]!.value === LATENCIES_MS.length ? s : undefined;
        },
        20_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n/metrics:\n${last.split("\n").filter((l) => l.startsWith("kong_")).join("\n")}\n${procs.logs()}`);
      });
      const sum = select(samples, "kong_upstream_latency_ms_sum", want);
      assert.equal(sum[0]!.value, LATENCIES_MS.reduce((a, b) => a + b, 0));
      // Non-empty kubernetes_* labels: the guide's seriesQuery selects the series.
      for (const k of ["kubernetes_namespace", "kubernetes_name", "kubernetes_kind"]) assert.notEqual(sum[0]!.labels[k] ?? "", "", k);
      assert.ok(select(samples, "kong_upstream_latency_ms_bucket", want).length > 1, "histogram buckets");
      kong.close();
      kong = undefined;
      await procs.stopAll();
    });
  }

  it("the plugin directory the server loads holds only the plugin", function () {
    assert.deepEqual(fs.readdirSync(DIST_PLUGIN_DIR).filter((f) => !f.startsWith(".")), ["upstream-latency.js"]);
  });
});
