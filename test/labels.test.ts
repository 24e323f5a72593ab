import { strict as assert } from "node:assert";
import { resolve } from "node:path";
import { LABEL_NAMES, serviceLabels, type ServiceLabels } from "../sidecar/labels";
import type { ServiceRef } from "../wire/payload";
import { loadMappingFile, type StaticMapping } from "../sidecar/mapping-file";

// Compiled to dist/lib/test/; fixtures stay in the source tree.
const FIXTURES = resolve(__dirname, "../../../test/fixtures/mapping");
const fixture = (name: string) => resolve(FIXTURES, name);

// Not in any fixture; MAPPED_ID is valid.yaml's byId entry for by-id/winner.
const ID = "d0e5c0de-0000-4000-8000-000000000001";
const MAPPED_ID = "5b9f1c1e-3c1a-4a4e-8f0e-6d2b7a9c1e22";

function svc(over: Partial<ServiceRef>): ServiceRef {
  return { id: ID, name: null, host: null, tags: [], ...over };
}

function labels(over: Partial<ServiceRef>, mapping?: StaticMapping): ServiceLabels {
  return serviceLabels(svc(over), mapping);
}

/** The guide's seriesQuery: {kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}. */
function matchesAdapterRule(l: ServiceLabels): boolean {
  return l.kubernetes_namespace !== "" && l.kubernetes_name !== "" && l.kubernetes_kind !== "";
}

function service(namespace: string, name: string, kongService: string): ServiceLabels {
  return {
    namespace,
    service: name,
    kubernetes_namespace: namespace,
    kubernetes_name: name,
    kubernetes_kind: "service",
    kubernetes_apiversion: "v1",
    kong_service: kongService,
  };
}

function unmapped(kongService: string): ServiceLabels {
  return {
    namespace: "",
    service: "",
    kubernetes_namespace: "",
    kubernetes_name: "",
    kubernetes_kind: "",
    kubernetes_apiversion: "",
    kong_service: kongService,
  };
}

// As KIC writes them (Kong/kubernetes-ingress-controller internal/util/k8s.go GenerateTagsForObject):
// no k8s-group tag for the core group.
const SERVICE_TAGS = [
  "k8s-name:echo",
  "k8s-namespace:default",
  "k8s-kind:Service",
  "k8s-uid:c6ac927c-4f5a-4e88-8b5d-c7b01d0f43af",
  "k8s-version:v1",
];
const HTTPROUTE_TAGS = [
  "k8s-name:echo-split",
  "k8s-namespace:default",
  "k8s-kind:HTTPRoute",
  "k8s-uid:8d2f7a51-0b7e-4a43-9a55-1f3c1a6e2b90",
  "k8s-group:gateway.networking.k8s.io",
  "k8s-version:v1",
];
// What KIC writes for a service whose backend Service does not exist (ingressrules.go generateServiceRefTags).
const KIC_PLACEHOLDER_TAGS = [
  "k8s-name:UNKNOWN",
  "k8s-namespace:UNKNOWN",
  "k8s-kind:Service",
  "k8s-uid:00000000-0000-0000-0000-000000000000",
  "k8s-group:core",
  "k8s-version:v1",
];

const HTTPROUTE_LABELS: ServiceLabels = {
  namespace: "default",
  service: "echo-split",
  kubernetes_namespace: "default",
  kubernetes_name: "echo-split",
  kubernetes_kind: "HTTPRoute",
  kubernetes_apiversion: "gateway.networking.k8s.io/v1",
  kong_service: "httproute.default.svc.default.echo-v1.80.50_default.echo-v2.80.50",
};

describe("serviceLabels", () => {
  describe("label set", () => {
    it("has every label, in export order, whether or not the service resolves", () => {
      assert.deepEqual(LABEL_NAMES, [
        "namespace",
        "service",
        "kubernetes_namespace",
        "kubernetes_name",
        "kubernetes_kind",
        "kubernetes_apiversion",
        "kong_service",
      ]);
      assert.deepEqual(Object.keys(labels({ name: "x", tags: SERVICE_TAGS })), [...LABEL_NAMES]);
      assert.deepEqual(Object.keys(labels({ name: "x" })), [...LABEL_NAMES]);
      assert.deepEqual(Object.keys(labels({})), [...LABEL_NAMES]);
    });

    it("names the Kong Service like Kong's prometheus plugin: name, else host", () => {
      assert.equal(labels({ name: "n", host: "h" }).kong_service, "n");
      assert.equal(labels({ host: "h" }).kong_service, "h");
      assert.equal(labels({}).kong_service, "");
    });
  });

  describe("from KIC's tags", () => {
    it("maps a single-backend service to its Kubernetes Service, spelled as KGO does", () => {
      assert.deepEqual(
        labels({ name: "default.echo.80", tags: SERVICE_TAGS }),
        service("default", "echo", "default.echo.80"),
      );
    });

    it("maps a multi-backend service to the HTTPRoute its tags name", () => {
      const l = labels({ name: HTTPROUTE_LABELS.kong_service, tags: HTTPROUTE_TAGS });
      assert.deepEqual(l, HTTPROUTE_LABELS);
      assert.ok(matchesAdapterRule(l));
    });

    it("takes precedence over the name and the mapping file", () => {
      const mapping: StaticMapping = {
        lookup: () => ({ namespace: "other", name: "other", kind: "Service", apiVersion: "v1" }),
      };
      assert.deepEqual(
        labels({ name: "elsewhere.other.80", tags: SERVICE_TAGS }, mapping),
        service("default", "echo", "elsewhere.other.80"),
      );
    });

    it("ignores k8s-uid, so a re-created object keeps its series", () => {
      const withoutUid = SERVICE_TAGS.filter((t) => !t.startsWith("k8s-uid:"));
      assert.deepEqual(labels({ name: "s", tags: withoutUid }), labels({ name: "s", tags: SERVICE_TAGS }));
    });

    it('reads the core group as KIC writes it: absent, empty or "core"', () => {
      for (const group of [[], ["k8s-group:core"], ["k8s-group:"]]) {
        const l = labels({ name: "s", tags: ["k8s-namespace:default", "k8s-name:echo", "k8s-kind:Service", ...group] });
        assert.deepEqual(l, service("default", "echo", "s"), JSON.stringify(group));
      }
    });

    it("keeps a kind it does not know, with its apiVersion", () => {
      const l = labels({
        name: "s",
        tags: [
          "k8s-namespace:apps",
          "k8s-name:web",
          "k8s-kind:Rollout",
          "k8s-group:argoproj.io",
          "k8s-version:v1alpha1",
        ],
      });
      assert.equal(l.kubernetes_kind, "Rollout");
      assert.equal(l.kubernetes_apiversion, "argoproj.io/v1alpha1");
    });

    it('says Service, not KGO\'s "service", for a kind named Service outside the core group', () => {
      const l = labels({
        name: "s",
        tags: [
          "k8s-namespace:apps",
          "k8s-name:web",
          "k8s-kind:Service",
          "k8s-group:serving.knative.dev",
          "k8s-version:v1",
        ],
      });
      assert.equal(l.kubernetes_kind, "Service");
      assert.equal(l.kubernetes_apiversion, "serving.knative.dev/v1");
    });

    it("assumes a Service when the kind is missing in the core group, as KGO does", () => {
      assert.deepEqual(
        labels({ name: "s", tags: ["k8s-namespace:default", "k8s-name:echo"] }),
        service("default", "echo", "s"),
      );
    });

    it("leaves kind and version unknown rather than guess them in another group", () => {
      const l = labels({
        name: "s",
        tags: ["k8s-namespace:default", "k8s-name:echo-split", "k8s-group:gateway.networking.k8s.io"],
      });
      assert.equal(l.kubernetes_name, "echo-split");
      assert.equal(l.kubernetes_kind, "");
      assert.equal(l.kubernetes_apiversion, "");
      assert.ok(!matchesAdapterRule(l));
    });

    describe("junk", () => {
      it("matches keys case-insensitively and trims keys and values", () => {
        const l = labels({ name: "s", tags: [" K8S-Namespace : default ", "k8s-NAME:echo\t", "K8s-Kind:Service"] });
        assert.deepEqual(l, service("default", "echo", "s"));
      });

      it("canonicalizes the spelling of the kinds KIC uses", () => {
        const l = labels({
          name: "s",
          tags: [...HTTPROUTE_TAGS.filter((t) => !t.startsWith("k8s-kind:")), "k8s-kind:httproute"],
        });
        assert.equal(l.kubernetes_kind, "HTTPRoute");
        assert.equal(
          labels({ name: "s", tags: ["k8s-namespace:default", "k8s-name:echo", "k8s-kind:SERVICE"] }).kubernetes_kind,
          "service",
        );
      });

      it("keeps the first acceptable value of a duplicated tag (KIC's own tags precede the user's)", () => {
        const l = labels({ name: "s", tags: [...SERVICE_TAGS, "k8s-name:user-added", "k8s-namespace:user-ns"] });
        assert.deepEqual(l, service("default", "echo", "s"));
      });

      it("skips empty and unacceptable values and uses a later good one", () => {
        const l = labels({
          name: "s",
          tags: [
            "k8s-namespace:",
            "k8s-namespace:Default",
            "k8s-namespace:default",
            "k8s-name:",
            "k8s-name:has space",
            "k8s-name:echo",
          ],
        });
        assert.deepEqual(l, service("default", "echo", "s"));
      });

      it("keeps colons inside values", () => {
        const l = labels({
          name: "s",
          tags: [
            "k8s-namespace:default",
            "k8s-name:system:web",
            "k8s-kind:Thing",
            "k8s-group:example.com",
            "k8s-version:v1",
          ],
        });
        assert.equal(l.kubernetes_name, "system:web");
        assert.equal(l.service, "system:web");
      });

      it("rejects values Kubernetes could not have: too long, control characters, slashes", () => {
        for (const bad of ["x".repeat(254), "echo\u0000", "echo\u007f", "ns/echo", "echo\u2028x"]) {
          const l = labels({ name: "s", tags: ["k8s-namespace:default", `k8s-name:${bad}`] });
          assert.equal(l.kubernetes_name, "", JSON.stringify(bad));
        }
        assert.equal(
          labels({ name: "s", tags: ["k8s-namespace:default", `k8s-name:${"x".repeat(253)}`] }).kubernetes_name,
          "x".repeat(253),
        );
        assert.equal(
          labels({ name: "s", tags: [`k8s-namespace:${"n".repeat(64)}`, "k8s-name:echo"] }).kubernetes_name,
          "",
        );
      });

      it("ignores tags without a colon, other keys, and keys that are Object.prototype members", () => {
        const l = labels({
          name: "s",
          tags: [
            "k8s-name",
            "k8s-namespace",
            "team:payments",
            "constructor:x",
            "__proto__:y",
            "toString:z",
            "k8s-namespace:default",
            "k8s-name:echo",
          ],
        });
        assert.deepEqual(l, service("default", "echo", "s"));
        assert.deepEqual(
          labels({ name: "s", tags: ["constructor:x", "__proto__:y", "hasOwnProperty:z"] }),
          unmapped("s"),
        );
      });

      it("needs both a name and a namespace", () => {
        assert.deepEqual(labels({ name: "s", tags: ["k8s-name:echo", "k8s-kind:Service"] }), unmapped("s"));
        assert.deepEqual(labels({ name: "s", tags: ["k8s-namespace:default", "k8s-kind:Service"] }), unmapped("s"));
      });

      it("does not trust KIC's placeholder for a service whose backend is missing", () => {
        assert.deepEqual(labels({ name: "s", tags: KIC_PLACEHOLDER_TAGS }), unmapped("s"));
        // ... and falls back to the name.
        assert.deepEqual(
          labels({ name: "default.echo.80", tags: KIC_PLACEHOLDER_TAGS }),
          service("default", "echo", "default.echo.80"),
        );
      });
    });
  });

  describe("from KIC's service names", () => {
    it("parses the Ingress form <namespace>.<service>.<port>", () => {
      assert.deepEqual(
        labels({ name: "default.echo.80", host: "echo.default.80.svc" }),
        service("default", "echo", "default.echo.80"),
      );
      assert.deepEqual(labels({ name: "default.echo.80" }), service("default", "echo", "default.echo.80"));
      assert.deepEqual(labels({ name: "shop-2.web-api.65535" }), service("shop-2", "web-api", "shop-2.web-api.65535"));
      assert.deepEqual(
        labels({ name: "default.echo.implicitPort" }),
        service("default", "echo", "default.echo.implicitPort"),
      );
    });

    it("accepts a named port only when the host confirms KIC made the name", () => {
      assert.deepEqual(
        labels({ name: "default.echo.http", host: "echo.default.http.svc" }),
        service("default", "echo", "default.echo.http"),
      );
      assert.deepEqual(labels({ name: "default.echo.http" }), unmapped("default.echo.http"));
      assert.deepEqual(labels({ name: "default.echo.http", host: "echo.example.com" }), unmapped("default.echo.http"));
    });

    it("does not read host names or other dotted garbage as Kubernetes names", () => {
      for (const name of [
        "api.example.com",
        "a.b.c",
        "Default.echo.80",
        "default.Echo.80",
        "default.1echo.80",
        "default.echo_v1.80",
        "default.echo.0",
        "default.echo.080",
        "default.echo.65536",
        "default.echo.-80",
        "default..80",
        ".echo.80",
        "default.echo",
        "default.echo.80.extra",
        `${"n".repeat(64)}.echo.80`,
        `default.${"e".repeat(64)}.80`,
        "default.echo.implicitport",
      ]) {
        assert.deepEqual(labels({ name }), unmapped(name), name);
      }
    });

    it("parses a single-backend HTTPRoute service to its backend Service", () => {
      const name = "httproute.default.svc.default.echo.80";
      assert.deepEqual(labels({ name, host: name }), service("default", "echo", name));
      assert.deepEqual(
        labels({ name: "httproute.default.svc.default.echo.80.100" }),
        service("default", "echo", "httproute.default.svc.default.echo.80.100"),
      );
      assert.deepEqual(
        labels({ name: "httproute.default.svc.default.echo.80.0" }),
        service("default", "echo", "httproute.default.svc.default.echo.80.0"),
      );
    });

    it("takes the backend's namespace, not the route's, for a cross-namespace backend", () => {
      assert.deepEqual(
        labels({ name: "httproute.routes.svc.backends.echo.8080" }),
        service("backends", "echo", "httproute.routes.svc.backends.echo.8080"),
      );
    });

    it("copes with a route namespace called svc", () => {
      assert.deepEqual(
        labels({ name: "httproute.svc.svc.svc.echo.80" }),
        service("svc", "echo", "httproute.svc.svc.svc.echo.80"),
      );
    });

    it("does not guess a multi-backend service from its name: the HTTPRoute's name is not in it", () => {
      const name = HTTPROUTE_LABELS.kong_service;
      const l = labels({ name, host: name });
      assert.deepEqual(l, unmapped(name));
      assert.ok(!matchesAdapterRule(l));
    });

    it("rejects malformed HTTPRoute service names", () => {
      for (const name of [
        "httproute.default.svc.default.echo",
        "httproute.default.svc.default.echo.80.1000001",
        "httproute.default.svc.default.echo.80.50.1",
        "httproute.default.svc.default.echo.x",
        "httproute.Default.svc.default.echo.80",
        "httproute.default.svc.default.Echo.80",
        "httproute.default.svc.",
        "httproute.default.svc.default.echo.80_",
        "httproute.default.echo-route.0",
        "grpcroute.default.svc.default.echo.80",
      ]) {
        assert.deepEqual(labels({ name }), unmapped(name), name);
      }
    });

    it("does not take a ServiceRefFacade for a Service", () => {
      assert.deepEqual(labels({ name: "default.facade.svc.facade" }), unmapped("default.facade.svc.facade"));
    });

    it("parses names, not hosts", () => {
      assert.deepEqual(labels({ host: "default.echo.80" }), unmapped("default.echo.80"));
    });
  });

  describe("from the mapping file", () => {
    const mapping = loadMappingFile(fixture("valid.yaml"));

    it("maps by name, filling in kind Service and apiVersion v1", () => {
      assert.deepEqual(labels({ name: "legacy-billing" }, mapping), service("billing", "api", "legacy-billing"));
    });

    it("maps by id, ignoring case, before by name", () => {
      const l = labels({ id: "0c6e7b9e-1a7d-4c1e-9b0e-2f7c2d1d5a10", name: "legacy-billing" }, mapping);
      assert.deepEqual(l, {
        namespace: "shop",
        service: "checkout",
        kubernetes_namespace: "shop",
        kubernetes_name: "checkout",
        kubernetes_kind: "HTTPRoute",
        kubernetes_apiversion: "gateway.networking.k8s.io/v1",
        kong_service: "legacy-billing",
      });
      assert.ok(matchesAdapterRule(l));
      assert.deepEqual(
        labels({ id: MAPPED_ID, name: "shared-name" }, mapping),
        service("by-id", "winner", "shared-name"),
      );
    });

    it("maps an unnamed service by id only", () => {
      assert.deepEqual(
        labels({ id: MAPPED_ID, host: "legacy-billing" }, mapping),
        service("by-id", "winner", "legacy-billing"),
      );
      assert.deepEqual(labels({ host: "legacy-billing" }, mapping), unmapped("legacy-billing"));
    });

    it("keeps a quoted numeric-looking name as written", () => {
      assert.equal(labels({ name: "1e3" }, mapping).kubernetes_name, "thousand");
      assert.equal(labels({ name: "1000" }, mapping).kubernetes_name, "");
    });

    it("fills in a multi-backend service that its name alone cannot resolve", () => {
      const byName = loadMappingFile(fixture("valid.json"));
      assert.equal(
        labels({ id: "0c6e7b9e-1a7d-4c1e-9b0e-2f7c2d1d5a10", name: HTTPROUTE_LABELS.kong_service }, byName)
          .kubernetes_kind,
        "HTTPRoute",
      );
    });

    it("is consulted after the name", () => {
      const everything: StaticMapping = {
        lookup: () => ({ namespace: "mapped", name: "mapped", kind: "Service", apiVersion: "v1" }),
      };
      assert.deepEqual(labels({ name: "default.echo.80" }, everything), service("default", "echo", "default.echo.80"));
      assert.deepEqual(labels({ name: "hand-made" }, everything), service("mapped", "mapped", "hand-made"));
    });

    it("finds nothing for names that are Object.prototype members", () => {
      for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
        assert.deepEqual(labels({ name }, mapping), unmapped(name));
      }
    });
  });

  describe("unmapped services", () => {
    it("export kong_service only, and stay out of the adapter rule", () => {
      const mapping = loadMappingFile(fixture("valid.yaml"));
      for (const s of [svc({ name: "hand-made", host: "backend.internal" }), svc({ host: "10.0.0.7" })]) {
        const l = serviceLabels(s, mapping);
        assert.deepEqual(l, unmapped(s.name ?? s.host!));
        assert.ok(!matchesAdapterRule(l));
      }
    });
  });
});

describe("loadMappingFile", () => {
  function loadError(file: string): string {
    try {
      loadMappingFile(file);
    } catch (err) {
      assert.ok(err instanceof Error);
      return err.message;
    }
    assert.fail(`${file} loaded without error`);
  }

  it("loads YAML and JSON alike", () => {
    const yaml = loadMappingFile(fixture("valid.yaml"));
    const json = loadMappingFile(fixture("valid.json"));
    for (const m of [yaml, json]) {
      assert.deepEqual(m.lookup(ID, "legacy-billing"), {
        namespace: "billing",
        name: "api",
        kind: "Service",
        apiVersion: "v1",
      });
      assert.deepEqual(m.lookup("0C6E7B9E-1A7D-4C1E-9B0E-2F7C2D1D5A10", null), {
        namespace: "shop",
        name: "checkout",
        kind: "HTTPRoute",
        apiVersion: "gateway.networking.k8s.io/v1",
      });
      assert.equal(m.lookup(ID, "unknown"), undefined);
    }
  });

  it("accepts a mapping that maps nothing", () => {
    assert.equal(loadMappingFile(fixture("empty-mapping.yaml")).lookup(ID, "legacy-billing"), undefined);
  });

  it("rejects an empty file, suggesting {}", () => {
    const file = fixture("empty-file.yaml");
    assert.match(loadError(file), new RegExp(`^${escape(file)}: the mapping file is empty; write \\{\\}`));
  });

  it("names a file it cannot read", () => {
    const file = fixture("does-not-exist.yaml");
    assert.match(loadError(file), new RegExp(`^${escape(file)}: cannot read mapping file: .*ENOENT`));
  });

  it("rejects bad YAML and bad JSON, with the position", () => {
    const yaml = loadError(fixture("bad-syntax.yaml"));
    assert.match(yaml, new RegExp(`^${escape(fixture("bad-syntax.yaml"))}: not valid YAML \\(or JSON\\): `));
    assert.match(yaml, /line 4, column/);
    const json = loadError(fixture("bad-syntax.json"));
    assert.match(json, new RegExp(`^${escape(fixture("bad-syntax.json"))}: not valid YAML \\(or JSON\\): `));
    assert.match(json, /line \d+, column \d+/);
  });

  it("rejects duplicate keys instead of letting the last one win", () => {
    assert.match(loadError(fixture("duplicate-keys.yaml")), /Map keys must be unique at line 5/);
  });

  it("rejects alias bombs", () => {
    assert.match(loadError(fixture("alias-bomb.yaml")), /not valid YAML.*resource exhaustion/);
  });

  it("names each entry missing a field", () => {
    assert.equal(
      loadError(fixture("missing-fields.yaml")),
      [
        `${fixture("missing-fields.yaml")}: invalid mapping file:`,
        `  - byName["no-namespace"]: missing field "namespace"`,
        `  - byName["no-name"]: missing field "name"`,
      ].join("\n"),
    );
  });

  it("names each value of the wrong type, and what it got", () => {
    assert.equal(
      loadError(fixture("wrong-types.yaml")),
      [
        `${fixture("wrong-types.yaml")}: invalid mapping file:`,
        `  - byName["number-namespace"].namespace: must be a string, not the number 5`,
        `  - byName["list-entry"]: must be a mapping, not a list`,
        `  - byName["null-name"].name: must be a string, not null`,
        `  - byId: must be a mapping, not the string "not-a-mapping"`,
      ].join("\n"),
    );
    assert.equal(
      loadError(fixture("wrong-types.json")),
      `${fixture("wrong-types.json")}: invalid mapping file:\n  - top level: must be a mapping, not a list`,
    );
  });

  it("reports every bad value at once, naming the entry and the problem", () => {
    const message = loadError(fixture("bad-values.yaml"));
    const [head, ...problems] = message.split("\n  - ");
    assert.equal(head, `${fixture("bad-values.yaml")}: invalid mapping file:`);
    assert.deepEqual(problems.sort(), [
      `byId: key "legacy-billing" is not a Kong Service id (a UUID)`,
      `byId["0C6E7B9E-1A7D-4C1E-9B0E-2F7C2D1D5A10"]: same id as byId["0c6e7b9e-1a7d-4c1e-9b0e-2f7c2d1d5a10"]`,
      `byName: a Kong Service name cannot be empty`,
      `byName: key 1000 is read by YAML as the number 1000; quote it`,
      `byName: key true is read by YAML as the boolean true; quote it`,
      `byName["bad-api"].apiVersion: "gateway.networking.k8s.io/version1" is not a Kubernetes apiVersion (such as v1 or gateway.networking.k8s.io/v1)`,
      `byName["bad-namespace"].namespace: "Billing_Team" is not a Kubernetes namespace name (DNS-1123 label: lowercase letters, digits and "-", at most 63 characters)`,
      `byName["bad-route-name"].name: "Checkout Route" is not a Kubernetes object name (DNS-1123 subdomain: lowercase letters, digits, "-" and ".", at most 253 characters)`,
      `byName["bad-service-name"].name: "1api" is not a Kubernetes Service name (DNS-1035 label: a lowercase letter, then lowercase letters, digits and "-", at most 63 characters)`,
      `byName["extra-field"]: unknown field "port" (expected namespace, name, kind, apiVersion)`,
      `byName["lowercase-kind"].kind: "service" is not a Kubernetes kind (PascalCase, such as Service or HTTPRoute)`,
      `byName["route-without-api"]: kind HTTPRoute needs an apiVersion (for example gateway.networking.k8s.io/v1)`,
      `byName["service-wrong-api"].apiVersion: "apps/v1" does not fit kind Service, whose apiVersion is v1`,
      `top level: unknown section "services" (expected byName or byId)`,
    ]);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
