/**
 * The chart against what the controllers of a real cluster do with it (docs/chart-in-a-cluster.md): the
 * operator's NetworkPolicy and admission webhook, Kong Ingress Controller's ingress class, per-Gateway
 * configuration, pod readiness and termination, prometheus-adapter's configuration. Each point is asserted on
 * the rendered objects.
 */
import { strict as assert } from "node:assert";
import { render, requireHelm, type Values } from "./support/helm";
import { byKind, containerOf, one, podSpec, podTemplate } from "./support/rendered";

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
});
