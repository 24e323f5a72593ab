/**
 * The chart against what the controllers of a real cluster do with it (docs/chart-in-a-cluster.md): the
 * operator's NetworkPolicy and admission webhook, Kong Ingress Controller's ingress class, per-Gateway
 * configuration, pod readiness and termination, prometheus-adapter's configuration. Each point is asserted on
 * the rendered objects.
 */
import { strict as assert } from "node:assert";
import { render, requireHelm } from "./support/helm";
import { byKind, one, podTemplate } from "./support/rendered";

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
});
