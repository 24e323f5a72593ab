/**
 * Prometheus labels for one Kong Service, compatible with Kong Gateway Operator's (KGO) "enriched"
 * kong_upstream_latency_ms, so that the prometheus-adapter rule of KGO's autoscaling guide works verbatim:
 *
 *   seriesQuery: '{__name__=~"^kong_upstream_latency_ms_(sum|count)",kubernetes_namespace!="",kubernetes_name!="",kubernetes_kind!=""}'
 *   resources: overrides: { exported_namespace: {resource: namespace}, exported_service: {resource: service} }
 *
 * What KGO does (Kong/kong-operator, controller/cpextensions/metricsscraper/enricher.go; label names in
 * histogram.go): it finds the Kong Service whose *name* equals the prometheus plugin's `service` label, takes
 * the first `k8s-name:` and `k8s-namespace:` tags and replaces every label with
 *   namespace=<ns> service=<name> kubernetes_namespace=<ns> kubernetes_name=<name>
 *   kubernetes_kind="service" kubernetes_apiversion="v1" dataplane_url=<admin API URL>
 * whatever object the tags describe; a Kong Service lacking either tag is dropped from the metric.
 *
 * Where we differ, and why:
 * - kind and apiVersion come from the tags, so a multi-backend HTTPRoute service says HTTPRoute instead of
 *   claiming to be a Service. A core Service keeps KGO's exact spelling, kubernetes_kind="service", so queries
 *   and dashboards written against KGO keep matching; other kinds, which KGO never emitted, use their
 *   Kubernetes Kind.
 * - The Kong Service's own name is kept as kong_service (KGO overwrites it with the Kubernetes name).
 * - A Kong Service that maps to nothing is still exported, with only kong_service set: its latency stays
 *   visible, and its empty kubernetes_* labels keep it out of the adapter's seriesQuery.
 */
import type { ServiceRef } from "../wire/payload";
import type { StaticMapping } from "./mapping-file";

/** Export order of the labels; every key is always present, "" when unknown. */
export const LABEL_NAMES = [
  "namespace",
  "service",
  "kubernetes_namespace",
  "kubernetes_name",
  "kubernetes_kind",
  "kubernetes_apiversion",
  "kong_service",
] as const;

export type ServiceLabels = Record<(typeof LABEL_NAMES)[number], string>;

/** A Kubernetes object as its manifest names it. */
export interface KubernetesObjectRef {
  namespace: string;
  name: string;
  kind: string;
  apiVersion: string;
}

/**
 * Resolves the Kubernetes object behind a Kong Service from, in order: the k8s-* tags KIC puts on it, the
 * name KIC generated for it, the static mapping (by id, then name). Unresolved services get kong_service only.
 */
export function serviceLabels(svc: ServiceRef, mapping?: StaticMapping): ServiceLabels {
  const ref =
    fromTags(svc.tags) ??
    (svc.name === null ? undefined : fromKicServiceName(svc.name, svc.host)) ??
    mapping?.lookup(svc.id, svc.name);
  // Kong's own prometheus plugin labels a service `service.name or service.host`; we follow it.
  const kongService = svc.name ?? svc.host ?? "";
  if (!ref) {
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
  return {
    namespace: ref.namespace,
    service: ref.name,
    kubernetes_namespace: ref.namespace,
    kubernetes_name: ref.name,
    kubernetes_kind: isCoreService(ref) ? "service" : ref.kind,
    kubernetes_apiversion: ref.apiVersion,
    kong_service: kongService,
  };
}

function isCoreService(ref: KubernetesObjectRef): boolean {
  return ref.kind === "Service" && ref.apiVersion === "v1";
}

// ---------------------------------------------------------------------------------------------------------
// Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation), shared with the mapping file's checks.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Namespaces are DNS-1123 labels, whatever kind of object lives in them. */
export function isNamespaceName(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** Service names are the stricter DNS-1035 labels: they become DNS names and must start with a letter. */
export function isServiceName(s: string): boolean {
  return s.length <= 63 && DNS1035_LABEL.test(s);
}

/** Most other objects, HTTPRoutes included, are named by DNS-1123 subdomains. */
export function isObjectName(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

// ---------------------------------------------------------------------------------------------------------
// Tags.
//
// KIC (Kong/kubernetes-ingress-controller, internal/util/k8s.go GenerateTagsForObject) tags with
// `k8s-name:`, `k8s-namespace:`, `k8s-kind:`, `k8s-uid:`, `k8s-group:`, `k8s-version:`, in that order, each
// only when non-empty, so the core group ("" for Service) has no k8s-group tag; the user's own tags from the
// konghq.com/tags annotation follow. Which object they describe
// (internal/dataplane/translator/ingressrules.go generateKongServiceTags):
// - one backing Kubernetes Service (Ingress backends, single-backend HTTPRoute rules): that Service;
// - several (a multi-backend HTTPRoute rule): the parent route, i.e. the HTTPRoute. KIC consolidates rules
//   with identical backends from all HTTPRoutes of a namespace into one Kong Service and takes the first
//   such HTTPRoute as parent, so a shared service carries one of those routes' identity;
// - a KongServiceFacade backend: the facade;
// - none (backend Service missing): placeholders k8s-name:UNKNOWN, k8s-namespace:UNKNOWN, k8s-kind:Service,
//   k8s-group:core, k8s-version:v1 — rejected below because "UNKNOWN" is not a possible namespace.
//
// Robustness, since users can add any tag through the annotation:
// - keys are matched case-insensitively and trimmed: no one spells "K8S-Name:" meaning something else;
// - a value is everything after the first colon, trimmed, so values may contain colons (RBAC-style names);
// - for each key the first acceptable value wins: KIC's own tags precede user tags, and KGO takes the first too;
// - values are trusted, not parsed (a name's rules depend on its kind), but must be non-empty, within
//   Kubernetes' lengths and free of whitespace, control characters and "/"; the namespace, whose rules do
//   not depend on the kind, must be a valid namespace name. Case is preserved: Kubernetes names are
//   case-sensitive, and an upper-case namespace cannot exist, so such a tag is ignored;
// - k8s-uid is ignored: labels must not change when an object is re-created.

type TagField = "namespace" | "name" | "kind" | "group" | "version";

const TAG_FIELDS = new Map<string, TagField>([
  ["k8s-namespace", "namespace"],
  ["k8s-name", "name"],
  ["k8s-kind", "kind"],
  ["k8s-group", "group"],
  ["k8s-version", "version"],
]);

const UNTRUSTED_CHARACTERS = /[\s\p{Cc}/]/u;

function trustedWithin(max: number): (value: string) => boolean {
  return (value) => value.length > 0 && value.length <= max && !UNTRUSTED_CHARACTERS.test(value);
}

const TAG_VALUE_OK: Record<TagField, (value: string) => boolean> = {
  namespace: isNamespaceName,
  name: trustedWithin(253),
  kind: trustedWithin(63),
  group: trustedWithin(253),
  version: trustedWithin(63),
};

/** Canonical spelling of the kinds KIC can tag a Kong Service with, by lower-cased kind. */
const KNOWN_KINDS = new Map(
  ["Service", "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute", "UDPRoute", "KongServiceFacade"].map(
    (k) => [k.toLowerCase(), k] as const,
  ),
);

function fromTags(tags: readonly string[]): KubernetesObjectRef | undefined {
  const found: Partial<Record<TagField, string>> = {};
  for (const tag of tags) {
    const colon = tag.indexOf(":");
    if (colon < 0) continue;
    const field = TAG_FIELDS.get(tag.slice(0, colon).trim().toLowerCase());
    if (field === undefined || found[field] !== undefined) continue;
    const value = tag.slice(colon + 1).trim();
    if (TAG_VALUE_OK[field](value)) found[field] = value;
  }
  const { namespace, name, kind, version } = found;
  if (namespace === undefined || name === undefined) return undefined;
  // KIC omits k8s-group for the core group, and writes "core" in its placeholder.
  const group = found.group === undefined || found.group === "core" ? "" : found.group;
  return {
    namespace,
    name,
    // Without a kind tag, assume what KGO assumes of every tagged service — but only in the core group,
    // where Service is the one kind KIC tags Kong Services with.
    kind: kind === undefined ? (group === "" ? "Service" : "") : (KNOWN_KINDS.get(kind.toLowerCase()) ?? kind),
    // v1 is the core group's only version; another group's version cannot be guessed.
    apiVersion: group === "" ? (version ?? "v1") : version === undefined ? "" : `${group}/${version}`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// KIC's Kong Service names, for services that reach us without usable tags. Only names that can stand for
// exactly one Kubernetes Service are used, and every part is validated, so that a host-like name such as
// "api.example.com" is not read as namespace.service.port.
//
// - Ingress backends: "<namespace>.<service>.<port>", where port is a number, a port
//   name, or "implicitPort" when the Ingress gives none (internal/dataplane/translator/subtranslator/
//   ingress.go generateKongServiceName, kongstate PortDef.CanonicalString). Such a service's host is
//   "<service>.<namespace>.<port>.svc". A port name looks like any DNS word, so a named-port form is
//   accepted only when the host confirms it.
// - HTTPRoute rules (subtranslator/httproute.go getKongServiceNameByBackendRefs):
//   "httproute.<route namespace>.svc.<backend>[_<backend>...]", each backend
//   "<namespace>.<name>[.<port>][.<weight>]", sorted, joined by "_" (dots and "_" cannot occur in
//   namespaces or Service names, so this splits unambiguously; the port is always there, the Gateway API
//   requiring one for Service backends). With one backend the name is that Service. With several, the name
//   holds only the route's namespace — not the HTTPRoute's name, and it is shared by every HTTPRoute of the
//   namespace with the same backends — so it cannot name the HTTPRoute: left to the mapping file.
// - Not parsed: KongServiceFacade ("<namespace>.<facade>.svc.facade": a facade, not a Service), and the
//   per-rule names of older KIC and other route kinds ("httproute.<namespace>.<route>.<rule>"), which name
//   a route without telling whether it has one backend Service or several.

function fromKicServiceName(name: string, host: string | null): KubernetesObjectRef | undefined {
  return fromIngressServiceName(name, host) ?? fromHTTPRouteServiceName(name);
}

function fromIngressServiceName(name: string, host: string | null): KubernetesObjectRef | undefined {
  const parts = name.split(".");
  if (parts.length !== 3) return undefined;
  const [namespace, service, port] = parts as [string, string, string];
  if (!isNamespaceName(namespace) || !isServiceName(service)) return undefined;
  const portOk =
    isPortNumber(port) ||
    port === "implicitPort" ||
    (isPortName(port) && host === `${service}.${namespace}.${port}.svc`);
  return portOk ? coreService(namespace, service) : undefined;
}

const HTTPROUTE_SERVICE_NAME = /^httproute\.([^.]+)\.svc\.(.+)$/;

function fromHTTPRouteServiceName(name: string): KubernetesObjectRef | undefined {
  const match = HTTPROUTE_SERVICE_NAME.exec(name);
  if (!match || !isNamespaceName(match[1])) return undefined;
  const backends = match[2].split("_");
  if (backends.length !== 1) return undefined;
  const parts = backends[0].split(".");
  if (parts.length !== 3 && parts.length !== 4) return undefined;
  const [namespace, service, port, weight] = parts as [string, string, string, string | undefined];
  const ok =
    isNamespaceName(namespace) &&
    isServiceName(service) &&
    isPortNumber(port) &&
    (weight === undefined || isWeight(weight));
  return ok ? coreService(namespace, service) : undefined;
}

function coreService(namespace: string, name: string): KubernetesObjectRef {
  return { namespace, name, kind: "Service", apiVersion: "v1" };
}

function isPortNumber(s: string): boolean {
  return /^[1-9][0-9]{0,4}$/.test(s) && Number(s) <= 65535;
}

/** IANA_SVC_NAME, the rule for Kubernetes port names. */
function isPortName(s: string): boolean {
  return s.length <= 15 && DNS1123_LABEL.test(s) && /[a-z]/.test(s) && !s.includes("--");
}

/** Gateway API backendRef weights are 0 to 1,000,000. */
function isWeight(s: string): boolean {
  return /^(0|[1-9][0-9]{0,6})$/.test(s) && Number(s) <= 1_000_000;
}
