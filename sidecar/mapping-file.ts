/**
 * The static mapping file: Kubernetes identities for Kong Services that neither carry KIC's k8s-* tags nor
 * have a name KIC generated (services configured by hand or by decK, or multi-backend HTTPRoute services
 * whose tags were lost — their name does not contain the HTTPRoute's name).
 *
 * Format: YAML, because it lives next to the rest of the deployment's manifests and drops into a ConfigMap
 * unchanged. A JSON document is valid YAML 1.2, so a JSON file loads as well.
 *
 *   byName:                      # Kong Service name -> Kubernetes object
 *     legacy-billing:
 *       namespace: billing
 *       name: api                # kind defaults to Service, apiVersion to v1
 *   byId:                        # Kong Service id (a UUID) -> Kubernetes object; looked up before byName
 *     0c6e7b9e-1a7d-4c1e-9b0e-2f7c2d1d5a10:
 *       namespace: shop
 *       name: checkout
 *       kind: HTTPRoute
 *       apiVersion: gateway.networking.k8s.io/v1
 *
 * Either section may be left out; a Kong Service without a name can only be mapped by id. The file is
 * checked strictly and every problem is reported at once, naming the file and the entry: a mistake here
 * would otherwise surface only as a service that silently drops out of autoscaling. Errors include
 * unknown sections or fields, duplicate keys, keys YAML reads as numbers or booleans (a service named
 * 1e3 would become "1000"), wrong types, names Kubernetes would reject, and a kind or apiVersion that does
 * not fit (a Service is always apiVersion v1; any other kind needs its apiVersion spelled out).
 */
import { readFileSync } from "node:fs";
import Ajv, { type ErrorObject } from "ajv";
import { isMap, isScalar, parseDocument, type Document } from "yaml";
import { isNamespaceName, isObjectName, isServiceName, type KubernetesObjectRef } from "./labels";

export interface StaticMapping {
  /** The object mapped to a Kong Service: by id first, ids being unique where names may be reused. */
  lookup(id: string, name: string | null): KubernetesObjectRef | undefined;
}

const SECTIONS = ["byName", "byId"] as const;
type Section = (typeof SECTIONS)[number];

const ENTRY_FIELDS = ["namespace", "name", "kind", "apiVersion"] as const;

interface RawEntry {
  namespace: string;
  name: string;
  kind?: string;
  apiVersion?: string;
}

type RawMapping = Partial<Record<Section, Record<string, RawEntry>>>;

const KIND = "^[A-Z][A-Za-z0-9]{0,62}$";
// An optional group (a DNS-1123 subdomain) and "/", then a Kubernetes version: v1, v2beta1, v1alpha3.
const API_VERSION =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$";
const UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

const entrySchema = {
  type: "object",
  additionalProperties: false,
  required: ["namespace", "name"],
  properties: {
    namespace: { type: "string" },
    name: { type: "string" },
    kind: { type: "string", pattern: KIND },
    apiVersion: { type: "string", pattern: API_VERSION },
  },
};

const ajv = new Ajv({ allErrors: true, verbose: true });
const checkEntry = ajv.compile<RawEntry>(entrySchema);
const checkShape = ajv.compile<RawMapping>({
  type: "object",
  additionalProperties: false,
  properties: {
    byName: { type: "object", propertyNames: { type: "string", minLength: 1 }, additionalProperties: entrySchema },
    byId: { type: "object", propertyNames: { type: "string", pattern: UUID }, additionalProperties: entrySchema },
  },
});

/** Reads and validates a mapping file; throws an Error naming the file and every problem found. */
export function loadMappingFile(path: string): StaticMapping {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot read mapping file: ${(err as Error).message}`, { cause: err });
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  let data: unknown;
  try {
    if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message.trim()).join("\n"));
    // Throws on alias bombs (yaml's maxAliasCount).
    data = doc.toJS();
  } catch (err) {
    throw new Error(`${path}: not valid YAML (or JSON): ${(err as Error).message}`, { cause: err });
  }
  if (data === null || data === undefined) {
    throw new Error(`${path}: the mapping file is empty; write {} for a mapping that maps nothing`);
  }
  const valid = checkShape(data);
  const problems = [
    ...nonStringKeys(doc),
    ...(valid ? [] : checkShape.errors!.flatMap(describeShapeError)),
    ...entryProblems(data),
  ];
  if (!valid || problems.length > 0) {
    throw new Error(`${path}: invalid mapping file:\n  - ${problems.join("\n  - ")}`);
  }
  return buildMapping(data);
}

function buildMapping(raw: RawMapping): StaticMapping {
  // Maps, not objects, so that a Kong Service named "constructor" or "__proto__" finds nothing it shouldn't.
  const byId = new Map(Object.entries(raw.byId ?? {}).map(([k, e]) => [k.toLowerCase(), toRef(e)] as const));
  const byName = new Map(Object.entries(raw.byName ?? {}).map(([k, e]) => [k, toRef(e)] as const));
  return {
    lookup: (id, name) => byId.get(id.toLowerCase()) ?? (name === null ? undefined : byName.get(name)),
  };
}

function toRef(e: RawEntry): KubernetesObjectRef {
  // Validation demands an apiVersion for every kind but Service.
  return { namespace: e.namespace, name: e.name, kind: e.kind ?? "Service", apiVersion: e.apiVersion ?? "v1" };
}

// ---------------------------------------------------------------------------------------------------------
// Problems, each as "<where>: <what>".

function entryLocation(section: string, key: string): string {
  return `${section}[${JSON.stringify(key)}]`;
}

/** Keys YAML turned into numbers, booleans or null: their text would no longer be the Kong Service's. */
function nonStringKeys(doc: Document): string[] {
  const problems: string[] = [];
  for (const section of SECTIONS) {
    const node = doc.get(section, true);
    if (!isMap(node)) continue;
    for (const { key } of node.items) {
      if (isScalar(key) && typeof key.value !== "string") {
        // Not a string, so a number, boolean or null, which JSON prints as YAML read it.
        const read = key.value === null ? "null" : `the ${typeof key.value} ${JSON.stringify(key.value)}`;
        problems.push(`${section}: key ${key.source ?? read} is read by YAML as ${read}; quote it`);
      }
    }
  }
  return problems;
}

const NAMESPACE_RULE =
  'a Kubernetes namespace name (DNS-1123 label: lowercase letters, digits and "-", at most 63 characters)';
const SERVICE_NAME_RULE =
  'a Kubernetes Service name (DNS-1035 label: a lowercase letter, then lowercase letters, digits and "-", ' +
  "at most 63 characters)";
const OBJECT_NAME_RULE =
  'a Kubernetes object name (DNS-1123 subdomain: lowercase letters, digits, "-" and ".", at most 253 characters)';

/**
 * What the schema cannot say: Kubernetes naming rules, and whether kind and apiVersion fit together. Checked
 * for every well-formed entry even when others are not, so that one run reports every problem.
 */
function entryProblems(data: unknown): string[] {
  const problems: string[] = [];
  const ids = new Map<string, string>();
  for (const section of SECTIONS) {
    const entries = isRecord(data) ? data[section] : undefined;
    if (!isRecord(entries)) continue;
    for (const [key, e] of Object.entries(entries)) {
      if (!checkEntry(e)) continue;
      const at = entryLocation(section, key);
      if (section === "byId") {
        // Ids are looked up case-insensitively (Kong writes them in lower case), so these would collide.
        const other = ids.get(key.toLowerCase());
        if (other !== undefined) problems.push(`${at}: same id as ${entryLocation(section, other)}`);
        ids.set(key.toLowerCase(), key);
      }
      const service = (e.kind ?? "Service") === "Service";
      if (!isNamespaceName(e.namespace)) {
        problems.push(`${at}.namespace: ${JSON.stringify(e.namespace)} is not ${NAMESPACE_RULE}`);
      }
      if (!(service ? isServiceName : isObjectName)(e.name)) {
        problems.push(`${at}.name: ${JSON.stringify(e.name)} is not ${service ? SERVICE_NAME_RULE : OBJECT_NAME_RULE}`);
      }
      if (service && e.apiVersion !== undefined && e.apiVersion !== "v1") {
        problems.push(
          `${at}.apiVersion: ${JSON.stringify(e.apiVersion)} does not fit kind Service, whose apiVersion is v1`,
        );
      }
      if (!service && e.apiVersion === undefined) {
        problems.push(`${at}: kind ${e.kind} needs an apiVersion (for example gateway.networking.k8s.io/v1)`);
      }
    }
  }
  return problems;
}

function describeShapeError(e: ErrorObject): string[] {
  // propertyNames reports each bad key twice (the inner check, then itself): keep the outer report.
  if (e.propertyName !== undefined) return [];
  const path = e.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const [section, key, field] = path;
  const at =
    section === undefined
      ? "top level"
      : key === undefined
        ? section
        : field === undefined
          ? entryLocation(section, key)
          : `${entryLocation(section, key)}.${field}`;
  switch (e.keyword) {
    case "type":
      return [`${at}: must be ${e.params.type === "object" ? "a mapping" : "a string"}, not ${describeValue(e.data)}`];
    case "required":
      return [`${at}: missing field ${JSON.stringify(e.params.missingProperty)}`];
    case "additionalProperties":
      return section === undefined
        ? [`${at}: unknown section ${JSON.stringify(e.params.additionalProperty)} (expected ${SECTIONS.join(" or ")})`]
        : [`${at}: unknown field ${JSON.stringify(e.params.additionalProperty)} (expected ${ENTRY_FIELDS.join(", ")})`];
    case "propertyNames":
      return section === "byId"
        ? [`${at}: key ${JSON.stringify(e.params.propertyName)} is not a Kong Service id (a UUID)`]
        : [`${at}: a Kong Service name cannot be empty`];
    case "pattern":
      return field === "kind"
        ? [`${at}: ${JSON.stringify(e.data)} is not a Kubernetes kind (PascalCase, such as Service or HTTPRoute)`]
        : [
            `${at}: ${JSON.stringify(e.data)} is not a Kubernetes apiVersion (such as v1 or gateway.networking.k8s.io/v1)`,
          ];
    default:
      return [`${at}: ${e.message ?? e.keyword}`];
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `the ${typeof v} ${JSON.stringify(v)}`;
}
