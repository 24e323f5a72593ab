/**
 * The command lines the chart renders, run for real on this machine: the container paths are mapped to this
 * checkout (dist/, node_modules/, images/write-plugin-info.js), the image's Node.js to this one, the shared
 * emptyDir to a temporary directory and the exporter's ports to free loopback ports. Then:
 * - injected mode: the init container writes the plugin info; Kong's query_cmd (through /bin/sh, as Kong's
 *   io.popen does) prints the JSON Kong expects; the plugin-server container listens on the socket Kong is told
 *   to use, its probe passes, and it starts an instance with the configuration the chart renders, as Kong would;
 *   the latency-exporter container starts with its rendered flags and answers /healthz and /readyz;
 * - with an ingest token: the exporter listens on every interface as rendered, and refuses to without the token;
 * - kongImage mode: Kong's start_cmd (`exec <cmd>` through /bin/sh, as Kong spawns it) serves on the socket and
 *   its query_cmd prints clean JSON;
 * - write-plugin-info.js refuses what would break Kong's start, and never leaves a partial file.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "../../devstack/process/plugin-stack";
import { waitFor } from "../../devstack/process/wait";
import { render, requireHelm, type Values } from "./support/helm";
import { type KongFieldList } from "./support/kong-schema";
import {
  DIST_PLUGIN_DIR,
  IMAGES,
  PLUGIN_SERVER_BIN,
  REPO,
  WRITE_PLUGIN_INFO,
  loadDist,
  needOrSkip,
} from "./support/paths";
import {
  INGEST_TOKEN,
  Processes,
  argvOf,
  httpGet,
  httpRequest,
  isSocket,
  mapArg,
  podPathMap,
  pluginRpc,
  run,
  startExporterContainer,
  type PathMap,
  type RunningExporter,
} from "./support/procs";
import { containerOf, envOf, kongPluginConfig, podSpec } from "./support/rendered";

type Obj = Record<string, any>;

/** A Kong *_cmd: plain words only (Kong hands it to /bin/sh), each path mapped. */
function kongCmd(cmd: string, map: PathMap): string {
  assert.match(cmd, /^[A-Za-z0-9_./ =:-]+$/, `Kong runs this through /bin/sh; it must need no quoting: ${cmd}`);
  return cmd
    .split(" ")
    .map((w) => mapArg(w, map))
    .join(" ");
}

function checkPluginInfo(text: string, schema: KongFieldList | undefined): Obj {
  let infos: Obj[];
  try {
    infos = JSON.parse(text);
  } catch (err) {
    assert.fail(
      `query_cmd output is not clean JSON (Kong would not start): ${(err as Error).message}\n${text.slice(0, 500)}`,
    );
  }
  assert.ok(Array.isArray(infos) && infos.length >= 1, "a JSON array of plugin infos");
  const info = infos[0];
  assert.equal(info.Name, "upstream-latency", "Kong >= 3.9 takes the first plugin a server reports");
  assert.equal(typeof info.Priority, "number");
  assert.equal(typeof info.Version, "string");
  assert.ok(Array.isArray(info.Phases) && info.Phases.includes("log"), "the plugin works in the log phase");
  assert.equal(info.Schema.name, "upstream-latency");
  assert.equal(info.Schema.fields[0].config.type, "record");
  if (schema)
    assert.deepEqual(info.Schema.fields[0].config.fields, schema, "the schema Kong gets is the plugin's Schema export");
  return info;
}

/** A StartInstance as Kong sends it: the plugin's fields plus Kong's own, as a JSON string. */
function startInstance(config: Obj): Obj {
  return {
    Name: "upstream-latency",
    Config: JSON.stringify({
      ...config,
      route_id: null,
      service_id: null,
      consumer_id: null,
      plugin_instance_name: null,
      __plugin_id: "9f3b3a2e-5b7e-4e0e-9d4c-1b2a3c4d5e6f",
      __key__: "plugins:upstream-latency::::9f3b3a2e-5b7e-4e0e-9d4c-1b2a3c4d5e6f",
      __seq__: 1,
    }),
  };
}

describe("deploy: the rendered command lines run the real plugin server and exporter", function () {
  this.timeout(90_000);
  let helm: string;
  let tmp: string;
  let schema: KongFieldList | undefined;
  const procs = new Processes();

  before(function () {
    helm = requireHelm(this);
    needOrSkip(
      this,
      fs.existsSync(path.join(DIST_PLUGIN_DIR, "upstream-latency.js"))
        ? undefined
        : "dist/plugin/upstream-latency.js does not exist (run npm run build)",
    );
    assert.ok(fs.existsSync(PLUGIN_SERVER_BIN), "node_modules/kong-pdk/bin/kong-js-pluginserver is missing (npm ci)");
    const entries = fs.readdirSync(DIST_PLUGIN_DIR).filter((f) => !f.startsWith("."));
    assert.deepEqual(
      entries,
      ["upstream-latency.js"],
      "the plugin directory must hold only the plugin: the server loads every entry",
    );
    const plugin = loadDist<{ Schema: KongFieldList }>("plugin/upstream-latency.js");
    // Without the compiled plugin the dump could not be compared with its Schema: required under CI=true.
    needOrSkip(this, "missing" in plugin ? plugin.missing : undefined);
    schema = "mod" in plugin ? plugin.mod.Schema : undefined;
  });

  beforeEach(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kle-"));
  });

  afterEach(async function () {
    if (this.currentTest?.state === "failed") console.error(procs.logs());
    await procs.stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** The exporter container, on free ports, with its other rendered flags unchanged. */
  async function startExporter(ctx: Mocha.Context, spec: Obj, map: PathMap): Promise<RunningExporter> {
    const cli = path.join(REPO, "dist", "lib", "sidecar", "cli.js");
    needOrSkip(ctx, fs.existsSync(cli) ? undefined : "dist/lib/sidecar/cli.js does not exist (run npm run build)");
    return startExporterContainer(procs, containerOf(spec, "latency-exporter"), map);
  }

  async function checkServing(socket: string, config: Obj): Promise<void> {
    await waitFor(`plugin server socket ${socket}`, () => (isSocket(socket) ? true : undefined), 15_000);
    const [err, res] = await pluginRpc(socket, "plugin.StartInstance", startInstance(config));
    assert.equal(err, null, `StartInstance refused: ${String(err)}`);
    assert.equal((res as Obj).Name, "upstream-latency");
    assert.equal(typeof (res as Obj).Id, "number");
    const [err2, status] = await pluginRpc(socket, "plugin.GetStatus", null);
    assert.equal(err2, null);
    assert.ok((status as Obj).Plugins["upstream-latency"], "the server serves the plugin");
  }

  /** The plugin configuration the chart renders, its container paths mapped. */
  function pluginConfig(values: Values, map: PathMap): Obj {
    const config = kongPluginConfig(render(helm, { ...values, plugin: { kongPlugins: { enabled: true } } }));
    return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? mapArg(v, map) : v]));
  }

  it("injected: init container -> plugin-info file -> Kong's query_cmd prints the JSON Kong expects", function () {
    const spec = podSpec(render(helm));
    const map = podPathMap(tmp);
    const init = containerOf(spec, "upstream-latency-info");
    const r = run(argvOf(init, map), { timeoutMs: 30_000 });
    assert.equal(r.status, 0, `init container failed:\n${r.stderr}`);
    const file = mapArg("/upstream-latency/upstream-latency.json", map);
    assert.equal(fs.statSync(file).mode & 0o777, 0o644, "readable by Kong whatever its user");
    const proxyEnv = envOf(containerOf(spec, "proxy"));
    const q = run([kongCmd(proxyEnv.KONG_PLUGINSERVER_UPSTREAM_LATENCY_QUERY_CMD, map)], { shell: true });
    assert.equal(q.status, 0, q.stderr);
    checkPluginInfo(q.stdout, schema);
    // The file holds the real dump of the same plugin server.
    const direct = run([
      process.execPath,
      PLUGIN_SERVER_BIN,
      "--plugins-directory",
      DIST_PLUGIN_DIR,
      "--dump-all-plugins",
    ]);
    assert.deepEqual(JSON.parse(q.stdout), JSON.parse(direct.stdout));
  });

  for (const [name, values] of [
    ["injected, native sidecar", {}],
    [
      "injected, ordinary container, unix: ingest",
      { nativeSidecars: false, exporter: { ingestAddress: "unix:/upstream-latency/ingest.sock" } },
    ],
    [
      "injected, ingest token, exporter on every interface",
      { exporter: { ingestAddress: "0.0.0.0:9543", ingestToken: { existingSecret: "kle-ingest-token" } } },
    ],
  ] as [string, Values][]) {
    it(`${name}: exporter and plugin server start; the probe passes; Kong's StartInstance with the chart's config succeeds`, async function () {
      const spec = podSpec(render(helm, values));
      const map = podPathMap(tmp);
      const exporter = await startExporter(this, spec, map);
      const server = containerOf(spec, "upstream-latency");
      const socket = mapArg(envOf(containerOf(spec, "proxy")).KONG_PLUGINSERVER_UPSTREAM_LATENCY_SOCKET, map);
      const probe = argvOf(server.startupProbe.exec, map);
      assert.notEqual(run(probe).status, 0, "the probe must fail while nothing listens");
      procs.start("upstream-latency", argvOf(server, map));
      await checkServing(socket, { ...pluginConfig(values, map), exporter_url: exporter.exporterUrl });
      assert.equal(run(probe).status, 0, "the startup/liveness probe passes once the server listens");
      assert.equal((await httpGet(`http://127.0.0.1:${exporter.metricsPort}/readyz`)).status, 200);
      const metrics = await httpGet(`http://127.0.0.1:${exporter.metricsPort}/metrics`);
      assert.equal(metrics.status, 200);
    });
  }

  it("kongImage: Kong's start_cmd serves on Kong's socket, its query_cmd prints clean JSON", async function () {
    const spec = podSpec(render(helm, { pluginServer: { mode: "kongImage" }, kong: { image: "example/kong:3.9" } }));
    const map = podPathMap(tmp);
    const e = envOf(containerOf(spec, "proxy"));
    const q = run([kongCmd(e.KONG_PLUGINSERVER_UPSTREAM_LATENCY_QUERY_CMD, map)], { shell: true });
    assert.equal(q.status, 0, q.stderr);
    checkPluginInfo(q.stdout, schema);
    // Kong: ngx.pipe.spawn("exec " .. start_cmd), stdout and stderr merged into its log.
    procs.start("kong start_cmd", [`exec ${kongCmd(e.KONG_PLUGINSERVER_UPSTREAM_LATENCY_START_CMD, map)}`], {
      shell: true,
    });
    const socket = mapArg(e.KONG_PLUGINSERVER_UPSTREAM_LATENCY_SOCKET, map);
    const port = await freePort();
    await checkServing(socket, { ...pluginConfig({}, map), exporter_url: `http://127.0.0.1:${port}` });
  });

  it("ingest token: the exporter takes the mounted token, and refuses its rendered address without it", async function () {
    const values = { exporter: { ingestAddress: "0.0.0.0:9543", ingestToken: { existingSecret: "kle-ingest-token" } } };
    const spec = podSpec(render(helm, values));
    const map = podPathMap(tmp);
    const exporter = await startExporter(this, spec, map);
    const ingest = `${exporter.exporterUrl}/v1/ingest`;
    const post = (headers: Record<string, string>) =>
      httpRequest(ingest, { method: "POST", headers: { "content-type": "text/plain", ...headers }, body: "x" });
    assert.equal((await post({})).status, 401, "no token");
    assert.equal((await post({ authorization: `Bearer ${INGEST_TOKEN.slice(1)}` })).status, 401, "a wrong token");
    // Past the token check, the content type is refused: the token is the one mounted.
    assert.equal((await post({ authorization: `Bearer ${INGEST_TOKEN}` })).status, 415, "the right token");

    const args = argvOf(containerOf(spec, "latency-exporter"), map);
    const t = args.indexOf("--ingest-token-file");
    assert.equal(args[t + 1], path.join(tmp, "ingest-token", "token"), "the token file is the Secret's mount");
    args.splice(t, 2);
    args[args.indexOf("--metrics-address") + 1] = `127.0.0.1:${await freePort()}`;
    args[args.indexOf("--ingest-address") + 1] = `0.0.0.0:${await freePort()}`;
    const r = run(args, { timeoutMs: 20_000 });
    assert.notEqual(r.status, 0, `the exporter started on 0.0.0.0 without a token:\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /refusing to listen for ingest on 0\.0\.0\.0:\d+ without --ingest-token-file/);
  });

  describe("write-plugin-info.js refuses what would break Kong's start", function () {
    const node = process.execPath;
    function write(out: string, ...cmd: string[]): ReturnType<typeof run> {
      return run([
        node,
        WRITE_PLUGIN_INFO,
        "--out",
        out,
        "--expect",
        "upstream-latency",
        "--timeout-ms",
        "3000",
        "--",
        ...cmd,
      ]);
    }
    const good = JSON.stringify([
      {
        Name: "upstream-latency",
        Version: "1",
        Priority: 1,
        Phases: ["log"],
        Schema: { name: "upstream-latency", fields: [] },
      },
    ]);
    const cases: [string, string, RegExp][] = [
      [
        "a load warning before the JSON",
        `console.log("\\x1b[33m[WARN] error loading plugin\\x1b[0m"); console.log("[]")`,
        /did not print clean JSON/,
      ],
      ["no plugin", `console.log("[]")`, /reports no plugin/],
      [
        "another plugin first",
        `console.log(JSON.stringify([{Name:"other",Version:"1",Priority:1,Schema:{fields:[]}}]))`,
        /first plugin reported is "other"/,
      ],
      [
        "an entry without schema",
        `console.log(JSON.stringify([{Name:"upstream-latency",Version:"1",Priority:1}]))`,
        /has no Schema/,
      ],
      ["a failing dump", `process.exit(3)`, /exited with status 3/],
      ["a hanging dump", `setTimeout(() => {}, 60000)`, /did not finish within 3000 ms/],
    ];
    for (const [name, script, message] of cases) {
      it(name, function () {
        const out = path.join(tmp, "shared", "upstream-latency.json");
        fs.mkdirSync(path.dirname(out), { recursive: true });
        fs.writeFileSync(out, good);
        const r = write(out, node, "-e", script);
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.equal(fs.readFileSync(out, "utf8"), good, "a failed run leaves the previous file untouched");
        assert.deepEqual(fs.readdirSync(path.dirname(out)), ["upstream-latency.json"], "no temporary file left behind");
      });
    }

    it("writes re-serialised JSON atomically, mode 0644", function () {
      const out = path.join(tmp, "shared", "deep", "upstream-latency.json");
      const r = write(out, node, "-e", `process.stdout.write("  " + ${JSON.stringify(good)} + "\\n\\n")`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(out, "utf8"), `${good}\n`);
      assert.equal(fs.statSync(out).mode & 0o777, 0o644);
    });

    it("usage errors exit 2", function () {
      assert.equal(run([node, WRITE_PLUGIN_INFO, "--out", "relative.json", "--", "true"]).status, 2);
      assert.equal(run([node, WRITE_PLUGIN_INFO, "--out", "/tmp/x.json"]).status, 2);
      assert.equal(run([node, WRITE_PLUGIN_INFO, "--bogus"]).status, 2);
    });

    it("is plain JavaScript without dependencies (the image runs it with bare Node.js)", function () {
      const src = fs.readFileSync(path.join(IMAGES, "write-plugin-info.js"), "utf8");
      const required = [...src.matchAll(/require\('([^']+)'\)/g)].map((m) => m[1]);
      assert.ok(
        required.every((m) => m.startsWith("node:")),
        `requires ${required.join(", ")}`,
      );
    });
  });
});
