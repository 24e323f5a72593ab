/**
 * kong-config/: the Kong settings (kong.conf and KONG_* forms) agree with each other, with what the chart renders
 * and with the Kong image's ENV; the declarative files and the Kubernetes objects that enable the plugin pass the
 * plugin's own schema (the Kong-schema field list the plugin server reports to Kong, and the plugin's parseConfig);
 * the prometheus-adapter values are the chart's rules and the guide's.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { guideAdapterValues } from "./support/guide";
import { render, requireHelm, type K8sObject } from "./support/helm";
import { checkKongConfig, type KongFieldList } from "./support/kong-schema";
import { IMAGES, KONG_CONFIG, loadDist, needOrSkip, readText } from "./support/paths";
import { WITH_RULES_CONFIGMAP, adapterRules, containerOf, envOf, kongPluginConfig, podSpec } from "./support/rendered";
import { objectName, validateObject } from "./support/validate";

type Obj = Record<string, any>;

interface PluginModule {
  Name: string;
  Schema: KongFieldList;
}
interface SchemaModule {
  parseConfig(raw: unknown): Record<string, unknown>;
}
interface LabelsModule {
  serviceLabels(svc: { id: string; name: string | null; host: string | null; tags: string[] }): Record<string, string>;
}

/** `key = value` lines of a kong.conf, as KONG_* variables (Kong's env form: KONG_ + upper-cased key). */
export function kongConfAsEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readText(file).split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    assert.ok(m, `${file}: not a kong.conf line: ${line}`);
    assert.ok(!m[2].includes("#"), `${file}: an unescaped # starts a comment in kong.conf: ${line}`);
    out[`KONG_${m[1].toUpperCase()}`] = m[2]!;
  }
  return out;
}

/** docker --env-file: NAME=value, value literal. */
export function envFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readText(file).split("\n")) {
    if (raw.trim() === "" || raw.startsWith("#")) continue;
    const i = raw.indexOf("=");
    assert.ok(i > 0, `${file}: not NAME=value: ${raw}`);
    out[raw.slice(0, i)] = raw.slice(i + 1);
  }
  return out;
}

/** ENV KEY="value" lines of a Dockerfile. */
export function dockerfileEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of readText(file).matchAll(/^ENV ([A-Z0-9_]+)="([^"]*)"$/gm)) out[m[1]] = m[2]!;
  return out;
}

function proxyEnv(objs: K8sObject[]): Record<string, string> {
  return envOf(containerOf(podSpec(objs), "proxy"));
}

/** A file's text with its commented `# exporter_token_file: ...` lines uncommented, and how many there were. */
function withTokenFileUncommented(file: string): { text: string; count: number } {
  let count = 0;
  const text = readText(file).replace(/^(\s*)#\s*(exporter_token_file:.*)$/gm, (_m, indent: string, line: string) => {
    count++;
    return `${indent}${line}`;
  });
  return { text, count };
}

/** Every plugin entry of a DB-less declarative configuration, with where it sits. */
function pluginEntries(conf: Obj): { where: string; plugin: Obj }[] {
  const out: { where: string; plugin: Obj }[] = [];
  for (const p of conf.plugins ?? []) out.push({ where: "global", plugin: p });
  for (const s of conf.services ?? []) {
    for (const p of s.plugins ?? []) out.push({ where: `service ${s.name}`, plugin: p });
    for (const r of s.routes ?? []) for (const p of r.plugins ?? []) out.push({ where: `route ${r.name}`, plugin: p });
  }
  for (const r of conf.routes ?? []) for (const p of r.plugins ?? []) out.push({ where: `route ${r.name}`, plugin: p });
  return out;
}

function declarativeFiles(): string[] {
  const dir = path.join(KONG_CONFIG, "declarative");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => path.join(dir, f));
}

function kubernetesFiles(): string[] {
  const dir = path.join(KONG_CONFIG, "kubernetes");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => path.join(dir, f));
}

function kubernetesObjects(text: (file: string) => string = readText): { file: string; obj: K8sObject }[] {
  return kubernetesFiles().flatMap((f) =>
    parseAllDocuments(text(f)).map((d) => ({ file: path.basename(f), obj: d.toJS() as K8sObject })),
  );
}

describe("deploy: kong-config/", function () {
  this.timeout(60_000);

  describe("Kong settings for the plugin server", function () {
    for (const mode of ["injected", "kong-image"]) {
      it(`${mode}: kong.conf and kong.env say the same`, function () {
        const conf = kongConfAsEnv(path.join(KONG_CONFIG, mode, "kong.conf"));
        assert.deepEqual(conf, envFile(path.join(KONG_CONFIG, mode, "kong.env")));
        assert.equal(conf.KONG_PLUGINSERVER_NAMES, "upstream-latency");
        assert.match(conf.KONG_PLUGINS, /(^|,)upstream-latency$/);
        assert.ok(
          conf.KONG_PLUGINSERVER_UPSTREAM_LATENCY_SOCKET,
          "the socket must be set explicitly (Kong's and the JS server's defaults differ)",
        );
        assert.ok(conf.KONG_PLUGINSERVER_UPSTREAM_LATENCY_QUERY_CMD, "query_cmd is mandatory");
        if (mode === "injected")
          assert.equal(
            conf.KONG_PLUGINSERVER_UPSTREAM_LATENCY_START_CMD,
            undefined,
            "no start_cmd: external process management",
          );
        else assert.ok(conf.KONG_PLUGINSERVER_UPSTREAM_LATENCY_START_CMD);
      });
    }

    it("the Kong image bakes in kong-image/kong.env", function () {
      assert.deepEqual(
        dockerfileEnv(path.join(IMAGES, "kong.Dockerfile")),
        envFile(path.join(KONG_CONFIG, "kong-image", "kong.env")),
      );
    });

    it("the chart renders exactly these settings on the proxy container, in both modes", function () {
      const helm = requireHelm(this);
      assert.deepEqual(proxyEnv(render(helm)), envFile(path.join(KONG_CONFIG, "injected", "kong.env")));
      const kongImage = render(helm, { pluginServer: { mode: "kongImage" }, kong: { image: "example/kong:3.9" } });
      assert.deepEqual(proxyEnv(kongImage), envFile(path.join(KONG_CONFIG, "kong-image", "kong.env")));
    });
  });

  describe("enabling the plugin", function () {
    let fields: KongFieldList;
    let parseConfig: SchemaModule["parseConfig"];

    before(function () {
      const plugin = loadDist<PluginModule>("plugin/upstream-latency.js");
      const schema = loadDist<SchemaModule>("plugin/schema.js");
      needOrSkip(this, "missing" in plugin ? plugin.missing : "missing" in schema ? schema.missing : undefined);
      if ("mod" in plugin && "mod" in schema) {
        assert.ok(
          Array.isArray(plugin.mod.Schema),
          "dist/lib/plugin/upstream-latency.js must export Schema, a Kong-schema field list",
        );
        assert.equal(typeof schema.mod.parseConfig, "function", "dist/lib/plugin/schema.js must export parseConfig");
        fields = plugin.mod.Schema;
        parseConfig = (config) => schema.mod.parseConfig(config);
      }
    });

    /** Kong's verdict and the plugin's must both accept it, and agree on the defaults. */
    function accept(where: string, config: Record<string, unknown>): void {
      const kong = checkKongConfig(fields, config);
      assert.deepEqual(kong.errors, [], `${where}: Kong would refuse the configuration: ${kong.errors.join("; ")}`);
      let parsed: Record<string, unknown>;
      try {
        parsed = parseConfig({ ...kong.config, route_id: null, service_id: null, __seq__: 1 });
      } catch (err) {
        assert.fail(`${where}: the plugin refuses what Kong accepts: ${(err as Error).message}`);
      }
      assert.deepEqual(parsed, kong.config, `${where}: Kong's defaults and the plugin's differ`);
    }

    it("the checks are not vacuous: a bad configuration is refused by both", function () {
      for (const bad of [
        { flush_interval: 0 },
        { latencies: ["p95"] },
        { max_services: 1.5 },
        { exporter_urll: "http://x" },
        { latencies: [] },
      ]) {
        const kong = checkKongConfig(fields, bad);
        const pluginRefuses = (() => {
          try {
            parseConfig(bad);
            return false;
          } catch {
            return true;
          }
        })();
        assert.ok(kong.errors.length > 0 || pluginRefuses, `${JSON.stringify(bad)} accepted by both`);
        if (!("exporter_urll" in bad))
          assert.ok(
            kong.errors.length > 0 && pluginRefuses,
            `${JSON.stringify(bad)}: Kong ${kong.errors.join("; ")}, plugin refuses: ${pluginRefuses}`,
          );
      }
      assert.throws(() => parseConfig({ exporter_url: "https://127.0.0.1:9543" }), /exporter_url/);
    });

    it("declarative files: on routes (echo, command), on the service, globally; every entry passes the plugin's schema", function () {
      const scopes = new Set<string>();
      const files = declarativeFiles();
      assert.deepEqual(files.map((f) => path.basename(f)).sort(), ["global.yaml", "route.yaml", "service.yaml"]);
      for (const file of files) {
        const conf = parse(readText(file)) as Obj;
        assert.equal(conf._format_version, "3.0", file);
        const entries = pluginEntries(conf).filter((e) => e.plugin.name === "upstream-latency");
        assert.ok(entries.length > 0, `${file} enables nothing`);
        for (const { where, plugin } of entries) {
          scopes.add(where.split(" ")[0]);
          assert.deepEqual(Object.keys(plugin).sort(), ["config", "name"], `${file} ${where}: unexpected keys`);
          accept(`${path.basename(file)} ${where}`, plugin.config);
        }
        // Names are unique, routes have paths.
        const routes = (conf.services as Obj[]).flatMap((s) => s.routes ?? []);
        assert.deepEqual(routes.map((r: Obj) => r.name).sort(), ["command", "echo"], file);
        for (const r of routes) assert.ok(r.paths?.length > 0, `${file}: route ${r.name} has no paths`);
      }
      assert.deepEqual([...scopes].sort(), ["global", "route", "service"]);
    });

    it("declarative services carry the tags the exporter maps to the Kubernetes Service", function () {
      const labels = loadDist<LabelsModule>("sidecar/labels.js");
      needOrSkip(this, "missing" in labels ? labels.missing : undefined);
      if (!("mod" in labels)) return;
      for (const file of declarativeFiles()) {
        for (const s of (parse(readText(file)) as Obj).services as Obj[]) {
          const l = labels.mod.serviceLabels({
            id: "00000000-0000-4000-8000-000000000000",
            name: s.name,
            host: new URL(s.url).hostname,
            tags: s.tags,
          });
          assert.equal(l.namespace, "default", file);
          assert.equal(l.service, "echo", file);
          assert.ok(l.kubernetes_kind, `${file}: kubernetes_kind must be non-empty for the guide's seriesQuery`);
        }
      }
    });

    it("Kubernetes form: KongPlugin on an HTTPRoute and on a Service, global KongClusterPlugin of a class of its own; all valid", function () {
      const objs = kubernetesObjects();
      const problems = objs.flatMap(({ file, obj }) =>
        validateObject(obj).map((e) => `${file} ${objectName(obj)}: ${e}`),
      );
      assert.deepEqual(problems, [], problems.join("\n"));
      const plugins = objs.filter(({ obj }) => obj.kind === "KongPlugin" || obj.kind === "KongClusterPlugin");
      for (const { file, obj } of plugins) {
        assert.equal((obj as Obj).plugin, "upstream-latency");
        accept(`${file} ${objectName(obj)}`, (obj as Obj).config);
      }
      // Every konghq.com/plugins annotation names a KongPlugin of its namespace (or a KongClusterPlugin).
      const attached = new Set<string>();
      for (const { file, obj } of objs) {
        const names = obj.metadata.annotations?.["konghq.com/plugins"];
        if (!names) continue;
        attached.add(obj.kind);
        for (const n of names.split(",").map((x) => x.trim())) {
          const found = plugins.some(
            ({ obj: p }) =>
              p.metadata.name === n &&
              (p.kind === "KongClusterPlugin" || p.metadata.namespace === obj.metadata.namespace),
          );
          assert.ok(found, `${file}: ${objectName(obj)} refers to plugin ${n}, which is not defined`);
        }
      }
      assert.deepEqual([...attached].sort(), ["HTTPRoute", "Service"]);
      const cluster = plugins.find(({ obj }) => obj.kind === "KongClusterPlugin")!.obj;
      assert.equal(cluster.metadata.labels?.global, "true");
      const ingressClass = cluster.metadata.annotations?.["kubernetes.io/ingress.class"];
      assert.ok(ingressClass, "KIC ignores a KongClusterPlugin without its ingress class");
      assert.notEqual(ingressClass, "kong", "every operator-managed control plane takes class kong by default");
      const route = objs.find(({ obj }) => obj.kind === "HTTPRoute")!.obj as Obj;
      assert.equal(route.spec.rules[0].matches[0].path.value, "/echo", "the guide's echo route");
    });

    it("the commented exporter_token_file of every example passes the plugin's schema; in kubernetes/ it is the chart's path", function () {
      const helm = requireHelm(this);
      const chartPath = kongPluginConfig(
        render(helm, {
          exporter: { ingestToken: { existingSecret: "t" } },
          plugin: { kongPlugins: { enabled: true } },
        }),
      ).exporter_token_file;
      for (const file of [...declarativeFiles(), ...kubernetesFiles()]) {
        const { text, count } = withTokenFileUncommented(file);
        assert.ok(count > 0, `${file}: no commented exporter_token_file example`);
        const configs = file.includes(`${path.sep}declarative${path.sep}`)
          ? pluginEntries(parse(text) as Obj).map((e) => e.plugin.config as Obj)
          : parseAllDocuments(text)
              .map((d) => d.toJS() as Obj)
              .filter((o) => o.kind === "KongPlugin" || o.kind === "KongClusterPlugin")
              .map((o) => o.config as Obj);
        const withToken = configs.filter((c) => c.exporter_token_file !== undefined);
        assert.equal(
          withToken.length,
          count,
          `${file}: every uncommented exporter_token_file lands in a plugin's config`,
        );
        for (const config of withToken) {
          accept(`${path.basename(file)} (exporter_token_file uncommented)`, config);
          if (file.includes(`${path.sep}kubernetes${path.sep}`))
            assert.equal(config.exporter_token_file, chartPath, `${file}: where the chart mounts the token`);
        }
      }
    });

    it("the plugin configuration the chart renders passes the plugin's schema", function () {
      const helm = requireHelm(this);
      for (const values of [
        {
          plugin: {
            kongClusterPlugin: { enabled: true, ingressClass: "kong-latency" },
            kongPlugins: { enabled: true },
          },
        },
        {
          exporter: { ingestAddress: "0.0.0.0:9543", ingestToken: { existingSecret: "kle-ingest-token" } },
          plugin: {
            kongClusterPlugin: { enabled: true, ingressClass: "kong-latency" },
            kongPlugins: { enabled: true },
          },
        },
        {
          exporter: { ingestAddress: "unix:/upstream-latency/ingest.sock" },
          plugin: {
            config: { flush_interval: 0.1, latencies: ["upstream", "request", "kong"], max_services: 100000 },
            kongClusterPlugin: { enabled: true, ingressClass: "kong-latency" },
          },
        },
      ]) {
        const objs = render(helm, values).filter((o) => o.kind === "KongClusterPlugin" || o.kind === "KongPlugin");
        assert.ok(objs.length > 0);
        for (const o of objs) accept(objectName(o), (o as Obj).config);
      }
    });
  });

  describe("prometheus-adapter values", function () {
    const values = parse(readText(path.join(KONG_CONFIG, "prometheus-adapter", "values.yaml"))) as Obj;

    it("the average rule and the Prometheus URL are the guide's", function () {
      const guide = guideAdapterValues();
      assert.equal(values.prometheus.url, guide.prometheus.url);
      assert.equal(values.rules.default, false);
      assert.deepEqual(values.rules.custom[0], guide.rules.custom[0]);
    });

    it("the rules are those of the chart's ConfigMap", function () {
      const helm = requireHelm(this);
      assert.deepEqual(values.rules.custom, adapterRules(render(helm, WITH_RULES_CONFIGMAP)));
    });
  });
});
