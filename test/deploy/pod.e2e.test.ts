/**
 * One Kong pod as the chart builds it, minus Kong itself: the init container, the plugin server and the
 * latency-exporter run with their rendered command lines (paths mapped to this checkout, ports to free loopback
 * ports); the project's Kong emulator (devstack/kong) plays Kong's log phase against the rendered socket with
 * the plugin configuration the chart renders, for the echo service of kong-config/declarative/route.yaml. The
 * exporter must then show the guide's kong_upstream_latency_ms series with the labels the adapter rules rely on.
 * With an ingest token the exporter listens on every interface and the plugin ships through the token it reads
 * from the Secret's mount.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { KongEmulator, makeLogContext, makeRoute, makeService } from "../../devstack/kong";
import { parseSamples, select } from "../../devstack/prometheus/prom-text";
import { waitFor } from "../../devstack/process/wait";
import { render, requireHelm, type Values } from "./support/helm";
import { DIST_PLUGIN_DIR, KONG_CONFIG, REPO, needOrSkip, readText } from "./support/paths";
import {
  Processes,
  argvOf,
  httpGet,
  isSocket,
  mapArg,
  mapInString,
  podPathMap,
  run,
  startExporterContainer,
} from "./support/procs";
import { containerOf, envOf, kongPluginConfig, podSpec } from "./support/rendered";

type Obj = Record<string, any>;

const LATENCIES_MS = [12, 40, 85, 160, 420];

describe("deploy: a Kong pod as the chart builds it, driven by the Kong emulator", function () {
  this.timeout(90_000);
  const procs = new Processes();
  let tmp: string;
  let kong: KongEmulator | undefined;

  before(function () {
    requireHelm(this);
    const missing = ["dist/plugin/upstream-latency.js", "dist/lib/sidecar/cli.js"].find(
      (f) => !fs.existsSync(path.join(REPO, f)),
    );
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
    [
      "ingest token, exporter on every interface",
      { exporter: { ingestAddress: "0.0.0.0:9543", ingestToken: { existingSecret: "kle-ingest-token" } } },
    ],
  ] as [string, Values][]) {
    it(`${name}: proxied requests show up as kong_upstream_latency_ms of default/echo`, async function () {
      const helm = requireHelm(this);
      const objs = render(helm, { ...values, plugin: { kongPlugins: { enabled: true } } });
      const spec = podSpec(objs);
      const map = podPathMap(fs.mkdtempSync(path.join(tmp, "pod-")));
      const rendered = kongPluginConfig(objs);

      // Init container, then the containers.
      const init = run(argvOf(containerOf(spec, "upstream-latency-info"), map), { timeoutMs: 30_000 });
      assert.equal(init.status, 0, init.stderr);
      // The plugin's exporter_url is the exporter's rendered ingest address (loopback when it listens on every interface).
      const renderedIngest = argvOf(containerOf(spec, "latency-exporter"), map).find(
        (_a, i, all) => all[i - 1] === "--ingest-address",
      )!;
      const expected = renderedIngest.startsWith("unix:")
        ? renderedIngest
        : `http://${renderedIngest.replace(/^0\.0\.0\.0:/, "127.0.0.1:")}`;
      assert.equal(mapInString(rendered.exporter_url, map), expected);
      const exporter = await startExporterContainer(
        procs,
        containerOf(spec, "latency-exporter"),
        map,
        `latency-exporter (${name})`,
      );
      procs.start(`upstream-latency (${name})`, argvOf(containerOf(spec, "upstream-latency"), map));
      const socket = mapArg(envOf(containerOf(spec, "proxy")).KONG_PLUGINSERVER_UPSTREAM_LATENCY_SOCKET, map);
      await waitFor("plugin server socket", () => (isSocket(socket) ? true : undefined), 15_000);

      // Kong: the echo service of the declarative example, the chart's plugin configuration, two workers.
      const decl = parse(readText(path.join(KONG_CONFIG, "declarative", "route.yaml"))) as Obj;
      const echo = decl.services[0];
      const service = makeService({
        name: echo.name,
        host: new URL(echo.url).hostname,
        port: Number(new URL(echo.url).port),
        tags: echo.tags,
      });
      const route = makeRoute(service);
      kong = new KongEmulator({ socketPath: socket, pluginName: "upstream-latency", workers: 2 });
      const config: Obj = { ...rendered, exporter_url: exporter.exporterUrl, flush_interval: 0.2 };
      if (config.exporter_token_file) config.exporter_token_file = mapArg(config.exporter_token_file, map);
      assert.equal(
        config.exporter_token_file !== undefined,
        "ingestToken" in ((values.exporter ?? {}) as Obj),
        "exporter_token_file iff a token is set",
      );
      kong.configurePlugin({ id: "6a3c1e0e-4d4f-4f43-9d3e-0d1b6f7b9a01", config });
      const traces = await Promise.all(
        LATENCIES_MS.map((ms, i) =>
          kong!.log(i % 2, "6a3c1e0e-4d4f-4f43-9d3e-0d1b6f7b9a01", makeLogContext({ service, route, proxyMs: ms })),
        ),
      );
      for (const t of traces) assert.deepEqual(t.errors, [], `Kong would log: ${t.errors.join("; ")}`);

      const want = {
        namespace: "default",
        service: "echo",
        kubernetes_namespace: "default",
        kubernetes_name: "echo",
        kong_service: "echo",
      };
      let last = "";
      const samples = await waitFor(
        "the requests in the exporter's /metrics",
        async () => {
          last = (await httpGet(`http://127.0.0.1:${exporter.metricsPort}/metrics`)).body;
          const s = parseSamples(last);
          const count = select(s, "kong_upstream_latency_ms_count", want);
          return count.length === 1 && count[0].value === LATENCIES_MS.length ? s : undefined;
        },
        20_000,
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}\n/metrics:\n${last
            .split("\n")
            .filter((l) => l.startsWith("kong_"))
            .join("\n")}\n${procs.logs()}`,
        );
      });
      const sum = select(samples, "kong_upstream_latency_ms_sum", want);
      assert.equal(
        sum[0].value,
        LATENCIES_MS.reduce((a, b) => a + b, 0),
      );
      // Non-empty kubernetes_* labels: the guide's seriesQuery selects the series.
      for (const k of ["kubernetes_namespace", "kubernetes_name", "kubernetes_kind"])
        assert.notEqual(sum[0].labels[k] ?? "", "", k);
      assert.ok(select(samples, "kong_upstream_latency_ms_bucket", want).length > 1, "histogram buckets");
      kong.close();
      kong = undefined;
      await procs.stopAll();
    });
  }

  it("the plugin directory the server loads holds only the plugin", function () {
    assert.deepEqual(
      fs.readdirSync(DIST_PLUGIN_DIR).filter((f) => !f.startsWith(".")),
      ["upstream-latency.js"],
    );
  });
});
