/**
 * The chart against what the controllers of a real cluster do with it (docs/chart-in-a-cluster.md): the
 * operator's NetworkPolicy and admission webhook, Kong Ingress Controller's ingress class, per-Gateway
 * configuration, pod readiness and termination, prometheus-adapter's configuration. Each point is asserted on
 * the rendered objects.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { parse } from "yaml";
import { helmTemplateRaw, render, renderNotes, requireHelm, type Values } from "./support/helm";
import { WITH_RULES_CONFIGMAP, byKind, containerOf, envOf, one, podSpec, podTemplate } from "./support/rendered";
import { REPO, readText } from "./support/paths";
import { operatorDeployment, strategicMerge } from "./support/smp";
import { objectName, validateObject, validatePodTemplateSpec } from "./support/validate";

type Obj = Record<string, any>;

const KONG_IMAGE: Values = { pluginServer: { mode: "kongImage" }, kong: { image: "example/kong:3.9" } };
const LAYOUTS: Record<string, Values> = {
  "native sidecars (default)": {},
  "ordinary containers": { nativeSidecars: false },
  "kongImage mode": KONG_IMAGE,
};

describe("deploy: Helm chart in a cluster", function () {
  this.timeout(120_000);
  let helm: string;

  before(function () {
    helm = requireHelm(this);
  });

  describe("NetworkPolicy: Prometheus reaches the exporter past the operator's policy", function () {
    it("admits the metrics port from the Prometheus namespace and pod labels, to the chart's Kong pods", function () {
      const objs = render(helm);
      const np = one(objs, "NetworkPolicy");
      const selector = np.spec.podSelector.matchLabels;
      assert.deepEqual(Object.keys(selector).sort(), ["app.kubernetes.io/instance", "app.kubernetes.io/name"]);
      for (const [k, v] of Object.entries(selector)) assert.equal(podTemplate(objs).metadata.labels[k], v, k);
      assert.deepEqual(np.spec.policyTypes, ["Ingress"]);
      assert.deepEqual(np.spec.ingress, [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "prometheus" } },
              podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
            },
          ],
          ports: [{ protocol: "TCP", port: 9542 }],
        },
      ]);
    });

    it("follows the values; podLabels null admits every pod of the namespace; can be switched off", function () {
      const np = one(
        render(helm, {
          exporter: { metricsPort: 9600 },
          networkPolicy: { prometheus: { namespace: "monitoring", podLabels: null } },
        }),
        "NetworkPolicy",
      );
      assert.deepEqual(np.spec.ingress[0].from, [
        { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
      ]);
      assert.deepEqual(np.spec.ingress[0].ports, [{ protocol: "TCP", port: 9600 }]);
      assert.equal(byKind(render(helm, { networkPolicy: { enabled: false } }), "NetworkPolicy").length, 0);
    });
  });

  describe("the exporter never takes Kong down, and stops after it", function () {
    for (const [name, values] of Object.entries(LAYOUTS)) {
      it(`${name}: a liveness probe, but no readiness or startup probe`, function () {
        const exporter = containerOf(podSpec(render(helm, values)), "latency-exporter");
        assert.equal(exporter.readinessProbe, undefined, "a pod is ready only when every container is");
        assert.equal(exporter.startupProbe, undefined, "a native sidecar's startup probe would hold Kong back");
        assert.equal(exporter.livenessProbe.httpGet.path, "/healthz");
      });
    }

    it("native sidecars: the exporter is declared before the plugin server, so the kubelet stops it last", function () {
      const names = (spec: Obj) => spec.initContainers.map((c: Obj) => c.name);
      const injected = podSpec(render(helm));
      assert.ok(names(injected).indexOf("latency-exporter") < names(injected).indexOf("upstream-latency"));
      assert.deepEqual(names(podSpec(render(helm, KONG_IMAGE))), ["latency-exporter"]);
      for (const spec of [injected, podSpec(render(helm, KONG_IMAGE))])
        assert.equal(containerOf(spec, "latency-exporter").restartPolicy, "Always");
    });

    for (const [name, values] of Object.entries(LAYOUTS)) {
      it(`${name}: a preStop hook keeps the exporter serving stopDelaySeconds for the last scrape`, function () {
        const preStop = (v: Values) => containerOf(podSpec(render(helm, v)), "latency-exporter").lifecycle.preStop;
        assert.deepEqual(preStop(values).exec.command, ["/nodejs/bin/node", "-e", "setTimeout(() => {}, 15000)"]);
        assert.match(preStop({ ...values, exporter: { stopDelaySeconds: 40 } }).exec.command[2], /, 40000\)$/);
      });
    }
  });

  describe("the operator's hardened mode and Kong's listeners", function () {
    const HARDENED: Values = {
      gatewayConfiguration: { spec: { dataPlaneOptions: { deployment: { hardened: "enabled" } } } },
    };
    const added = (spec: Obj) => [...spec.initContainers, ...spec.containers].filter((c: Obj) => c.name !== "proxy");

    it("hardened: every added container runs as Kong's 65532:65532; the object is valid", function () {
      for (const values of [HARDENED, { ...HARDENED, ...KONG_IMAGE }, { ...HARDENED, nativeSidecars: false }]) {
        const objs = render(helm, values);
        for (const o of objs) assert.deepEqual(validateObject(o), [], objectName(o));
        for (const c of added(podSpec(objs))) {
          assert.equal(c.securityContext.runAsUser, 65532, c.name);
          assert.equal(c.securityContext.runAsGroup, 65532, c.name);
          assert.equal(c.securityContext.runAsNonRoot, true, c.name);
        }
      }
      for (const c of added(podSpec(render(helm))))
        assert.equal(c.securityContext.runAsUser, 1000, "Kong's user otherwise");
    });

    for (const [env, message] of [
      [
        { name: "KONG_STATUS_LISTEN", value: "0.0.0.0:9542" },
        /kong\.extraEnv: KONG_STATUS_LISTEN=0\.0\.0\.0:9542 makes Kong listen on port 9542, the exporter's \(exporter\.metricsPort\)/,
      ],
      [
        { name: "KONG_PROXY_LISTEN", value: "0.0.0.0:8000, 0.0.0.0:9543 http2 ssl" },
        /KONG_PROXY_LISTEN=.* makes Kong listen on port 9543, the exporter's \(exporter\.ingestAddress\)/,
      ],
    ] as [Obj, RegExp][]) {
      it(`a Kong listener on an exporter port is refused: ${env.name}=${env.value}`, function () {
        const r = helmTemplateRaw(helm, { kong: { extraEnv: [env] } });
        assert.equal(r.ok, false);
        assert.match(r.stderr, message);
      });
    }

    it("Kong's listeners elsewhere, or the exporter moved, render", function () {
      render(helm, { kong: { extraEnv: [{ name: "KONG_STATUS_LISTEN", value: "0.0.0.0:8100" }] } });
      render(helm, {
        exporter: { metricsPort: 9600 },
        kong: { extraEnv: [{ name: "KONG_STATUS_LISTEN", value: "0.0.0.0:9542" }] },
      });
    });
  });

  describe("podTemplate.spec: a fragment of the Kong pods, merged", function () {
    const FRAGMENT: Values = {
      podTemplate: {
        spec: {
          priorityClassName: "system-cluster-critical",
          nodeSelector: { "kubernetes.io/os": "linux" },
          tolerations: [{ key: "dedicated", operator: "Equal", value: "gateway", effect: "NoSchedule" }],
          affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
          terminationGracePeriodSeconds: 60,
          volumes: [{ name: "extra-ca", configMap: { name: "extra-ca" } }],
          containers: [
            {
              name: "proxy",
              resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { memory: "2Gi" } },
              volumeMounts: [{ name: "extra-ca", mountPath: "/etc/extra-ca", readOnly: true }],
            },
            { name: "latency-exporter", env: [{ name: "TZ", value: "UTC" }] },
            { name: "log-shipper", image: "example/shipper:1" },
          ],
        },
      },
    };

    for (const [name, layout] of Object.entries(LAYOUTS)) {
      it(`${name}: pod fields set, containers merged by name, the rest added; the Deployment stays valid`, function () {
        const tpl = podTemplate(render(helm, { ...layout, ...FRAGMENT }));
        const spec = tpl.spec;
        for (const k of [
          "priorityClassName",
          "nodeSelector",
          "tolerations",
          "affinity",
          "terminationGracePeriodSeconds",
        ])
          assert.deepEqual(spec[k], (FRAGMENT.podTemplate as Obj).spec[k], k);
        const proxy = containerOf(spec, "proxy");
        assert.deepEqual(proxy.resources, { requests: { cpu: "1", memory: "1Gi" }, limits: { memory: "2Gi" } });
        assert.match(envOf(proxy).KONG_PLUGINS, /upstream-latency$/, "the chart's Kong settings stay");
        assert.deepEqual(
          proxy.volumeMounts.map((m: Obj) => m.mountPath),
          ["/upstream-latency", "/etc/extra-ca"],
        );
        const exporter = containerOf(spec, "latency-exporter");
        assert.equal(envOf(exporter).TZ, "UTC");
        assert.ok(exporter.args.includes("--metrics-address"), "the chart's exporter stays");
        const all = [...(spec.initContainers ?? []), ...spec.containers].map((c: Obj) => c.name);
        assert.equal(all.filter((n: string) => n === "latency-exporter").length, 1, "merged, not added twice");
        assert.ok(spec.containers.some((c: Obj) => c.name === "log-shipper"));
        assert.ok(spec.volumes.some((v: Obj) => v.name === "extra-ca"));
        assert.deepEqual(validatePodTemplateSpec(tpl), []);
        const merged = strategicMerge(operatorDeployment("kong-abc12", "kong"), { spec: { template: tpl } }) as Obj;
        assert.deepEqual(validateObject(merged as never), []);
        assert.equal(envOf(containerOf(merged.spec.template.spec, "proxy")).KONG_DATABASE, "off");
      });
    }

    for (const [name, spec, message] of [
      ["an unknown pod field", { toleration: [] }, /podTemplate\.spec: Additional property toleration is not allowed/],
      [
        "a container without a name",
        { containers: [{ image: "x" }] },
        /podTemplate\.spec\.containers\.0: name is required/,
      ],
      [
        "a toleration of the wrong shape",
        { tolerations: [{ effect: "Never" }] },
        /podTemplate\.spec\.tolerations\.0\.effect must be one of/,
      ],
      [
        "a Kong setting the chart makes",
        { containers: [{ name: "proxy", env: [{ name: "KONG_PLUGINS", value: "bundled" }] }] },
        /podTemplate\.spec\.containers\[0\] \(proxy\): env name=KONG_PLUGINS is set by the chart; use the kong\.\* values/,
      ],
      [
        "the exporter's resources",
        { containers: [{ name: "latency-exporter", resources: {} }] },
        /podTemplate\.spec\.containers\[0\] \(latency-exporter\): resources is set by the chart; use the exporter\.\* values/,
      ],
      [
        "a readiness probe on the exporter",
        {
          initContainers: [{ name: "latency-exporter", readinessProbe: { httpGet: { path: "/readyz", port: 9542 } } }],
        },
        /latency-exporter\): readinessProbe would let the exporter decide whether Kong gets traffic/,
      ],
      [
        "a volume of the chart's name",
        { volumes: [{ name: "upstream-latency", emptyDir: {} }] },
        /podTemplate\.spec\.volumes: upstream-latency is a volume of the chart/,
      ],
      [
        "a Kong listener on the exporter's port",
        { containers: [{ name: "proxy", env: [{ name: "KONG_ADMIN_LISTEN", value: "0.0.0.0:9542" }] }] },
        /podTemplate\.spec\.containers\[0\]\.env: KONG_ADMIN_LISTEN=0\.0\.0\.0:9542 makes Kong listen on port 9542/,
      ],
    ] as [string, Obj, RegExp][]) {
      it(`refused: ${name}`, function () {
        const r = helmTemplateRaw(helm, { podTemplate: { spec } });
        assert.equal(r.ok, false, r.stdout.slice(0, 500));
        assert.match(r.stderr, message);
      });
    }
  });

  describe("per-Gateway configuration: nothing the Kong pods mount can be missing in another namespace", function () {
    it("exporter.mapping travels in the pod template, projected by a downwardAPI volume: no ConfigMap", function () {
      const mapping = { byName: { "legacy-billing": { namespace: "billing", name: "api" } } };
      const objs = render(helm, { exporter: { mapping } });
      assert.equal(byKind(objs, "ConfigMap").filter((c) => c.data["mapping.yaml"]).length, 0);
      const tpl = podTemplate(objs);
      assert.deepEqual(parse(tpl.metadata.annotations["kong-latency-exporter/mapping"]), mapping);
      const volume = tpl.spec.volumes.find((v: Obj) => v.name === "latency-exporter-mapping");
      assert.deepEqual(volume.downwardAPI.items, [
        { path: "mapping.yaml", fieldRef: { fieldPath: "metadata.annotations['kong-latency-exporter/mapping']" } },
      ]);
      const exporter = containerOf(tpl.spec, "latency-exporter");
      const mount = exporter.volumeMounts.find((m: Obj) => m.name === volume.name);
      const file = exporter.args[exporter.args.indexOf("--mapping-file") + 1];
      assert.equal(file, `${mount.mountPath}/mapping.yaml`);
    });
  });

  describe("install in two steps: the admission webhook validates plugins against a data plane", function () {
    it("step 1 renders no plugin object; its NOTES attach the Gateway, wait for the DataPlane, then give step 2", function () {
      const objs = render(helm, {}, { release: "kong-latency", namespace: "default" });
      assert.equal(byKind(objs, "KongPlugin").length + byKind(objs, "KongClusterPlugin").length, 0);
      const notes = renderNotes(helm, {}, { release: "kong-latency", namespace: "default" });
      const steps = [
        "kubectl -n default patch gateway <your-gateway> --type merge -p",
        `'{"spec":{"infrastructure":{"parametersRef":{"group":"gateway-operator.konghq.com","kind":"GatewayConfiguration","name":"kong-latency-kong-latency-exporter"}}}}'`,
        "kubectl -n default wait dataplane -l gateway-operator.konghq.com/managed-by=gateway --for=condition=Ready --timeout=10m",
        "helm upgrade kong-latency charts/kong-latency-exporter -n default --reuse-values --set plugin.kongPlugins.enabled=true",
        "kubectl -n default annotate httproute <your-route> konghq.com/plugins=upstream-latency",
      ];
      let at = -1;
      for (const step of steps) {
        const i = notes.indexOf(step);
        assert.ok(i > at, `NOTES lack, or misplace: ${step}\n${notes}`);
        at = i;
      }
      assert.doesNotMatch(notes, /patch gatewayclass/, "the class-wide form is the README's, with its consequences");
    });

    it("the README's Deploying section types the commands the NOTES give", function () {
      const readme = readText(path.join(REPO, "README.md"));
      const deploying = readme.slice(
        readme.indexOf("## Deploying"),
        readme.indexOf("\n## ", readme.indexOf("## Deploying") + 1),
      );
      const notes = renderNotes(helm, {}, { release: "kong-latency", namespace: "default" });
      for (const command of [
        `'{"spec":{"infrastructure":{"parametersRef":{"group":"gateway-operator.konghq.com","kind":"GatewayConfiguration","name":"kong-latency-kong-latency-exporter"}}}}'`,
        "kubectl -n default wait dataplane -l gateway-operator.konghq.com/managed-by=gateway --for=condition=Ready --timeout=10m",
        "helm upgrade kong-latency charts/kong-latency-exporter -n default --reuse-values",
        "--set plugin.kongPlugins.enabled=true",
        "annotate httproute",
        "helm upgrade --install --create-namespace -n prometheus prometheus-adapter prometheus-community/prometheus-adapter",
        "-f kong-config/prometheus-adapter/values.yaml",
      ]) {
        assert.ok(deploying.includes(command), `README's Deploying lacks: ${command}`);
        assert.ok(notes.includes(command), `NOTES lack: ${command}`);
      }
    });

    it("step 2: KongPlugins in the listed namespaces, and NOTES that say how to attach them", function () {
      const values = { plugin: { kongPlugins: { enabled: true, namespaces: ["default", "shop"] } } };
      const objs = render(helm, values);
      assert.deepEqual(
        byKind(objs, "KongPlugin").map((p) => p.metadata.namespace),
        ["default", "shop"],
      );
      assert.equal(byKind(objs, "KongClusterPlugin").length, 0);
      const notes = renderNotes(helm, values);
      assert.match(notes, /KongPlugin upstream-latency in default, shop/);
      assert.ok(!notes.includes("plugin.kongPlugins.enabled=true"), "step 2 is done");
    });
  });

  describe("a KongClusterPlugin only behind an ingress class of its own", function () {
    const CLUSTER = { enabled: true, ingressClass: "kong-latency" };

    for (const [name, ingressClass] of [
      ["without a class", ""],
      ['with the operator\'s default class "kong"', "kong"],
    ]) {
      it(`refused ${name}, with the reason`, function () {
        const r = helmTemplateRaw(helm, { plugin: { kongClusterPlugin: { enabled: true, ingressClass } } });
        assert.equal(r.ok, false);
        assert.match(
          r.stderr,
          /plugin\.kongClusterPlugin\.enabled needs plugin\.kongClusterPlugin\.ingressClass, a class of its own .*a Gateway whose Kong pods lack the plugin would get a configuration Kong refuses/,
        );
      });
    }

    it("v2beta1: the chart gives the class to this configuration's control plane; the objects are valid", function () {
      const objs = render(helm, { plugin: { kongClusterPlugin: CLUSTER } });
      const kcp = one(objs, "KongClusterPlugin");
      assert.equal(kcp.metadata.annotations["kubernetes.io/ingress.class"], "kong-latency");
      assert.equal(kcp.metadata.labels.global, "true");
      const gc = one(objs, "GatewayConfiguration");
      assert.equal(gc.spec.controlPlaneOptions.ingressClass, "kong-latency");
      for (const o of [kcp, gc]) assert.deepEqual(validateObject(o as never), [], objectName(o as never));
      const r = helmTemplateRaw(helm, {
        gatewayConfiguration: { spec: { controlPlaneOptions: { ingressClass: "other" } } },
        plugin: { kongClusterPlugin: CLUSTER },
      });
      assert.match(
        r.stderr,
        /controlPlaneOptions\.ingressClass=other differs from plugin\.kongClusterPlugin\.ingressClass=kong-latency/,
      );
    });

    it("v1beta1: the controller's CONTROLLER_INGRESS_CLASS must name the class", function () {
      const v1beta1 = (env: Obj[]) => ({
        gatewayConfiguration: {
          apiVersion: "gateway-operator.konghq.com/v1beta1",
          spec: {
            controlPlaneOptions: {
              deployment: { podTemplateSpec: { spec: { containers: [{ name: "controller", env }] } } },
            },
          },
        },
        plugin: { kongClusterPlugin: CLUSTER },
      });
      const r = helmTemplateRaw(helm, v1beta1([]));
      assert.equal(r.ok, false);
      assert.match(r.stderr, /env: \[\{name: CONTROLLER_INGRESS_CLASS, value: kong-latency\}\]/);
      const objs = render(helm, v1beta1([{ name: "CONTROLLER_INGRESS_CLASS", value: "kong-latency" }]));
      assert.equal(one(objs, "KongClusterPlugin").metadata.annotations["kubernetes.io/ingress.class"], "kong-latency");
    });
  });

  describe("prometheus-adapter reads its rules once: they belong to its chart", function () {
    it("no ConfigMap by default; NOTES give the rules as the adapter chart's values, which it rolls on change", function () {
      assert.equal(byKind(render(helm), "ConfigMap").filter((c) => c.data["config.yaml"]).length, 0);
      assert.match(
        renderNotes(helm),
        /helm upgrade --install --create-namespace -n prometheus prometheus-adapter prometheus-community\/prometheus-adapter \\\n\s+-f kong-config\/prometheus-adapter\/values\.yaml/,
      );
    });

    it("the opt-in ConfigMap survives helm uninstall, and NOTES say to restart the adapter after a change", function () {
      const cm = byKind(render(helm, WITH_RULES_CONFIGMAP), "ConfigMap").find((c) => c.data["config.yaml"]);
      assert.equal(cm?.metadata.annotations["helm.sh/resource-policy"], "keep");
      assert.match(
        renderNotes(helm, WITH_RULES_CONFIGMAP),
        /--set rules\.existing=kle-kong-latency-exporter-adapter-rules[\s\S]*kubectl -n prometheus rollout restart deployment prometheus-adapter/,
      );
    });
  });
});
