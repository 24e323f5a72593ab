import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";
import { ConfigMap, PodTemplateSpec, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodMonitor, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import type { K8sObject } from "./helm";
import { KONG_OPERATOR_CRDS } from "./paths";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: unknown };

// ---------------------------------------------------------------------------------------------------------
// Built-in kinds: kubernetes-models (types, required fields, patterns, enums; not unknown fields).

type Model = new (data: never) => { validate(): void };

const MODELS: Record<string, Model> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
};

export function validatePodTemplateSpec(spec: unknown): string[] {
  try {
    new PodTemplateSpec(spec as never).validate();
    return [];
  } catch (err) {
    return [`PodTemplateSpec: ${(err as Error).message}`];
  }
}

// ---------------------------------------------------------------------------------------------------------
// Custom resources: the openAPIV3Schema of the real CRDs (Kong Gateway Operator), with ajv, plus the check the
// API server does silently: fields the structural schema does not know are pruned, so report them.

const ajv = new Ajv({ strict: false, unicodeRegExp: false, logger: false, allErrors: true });

interface CrdVersion {
  validate: ValidateFunction;
  schema: Schema;
}

const crds = new Map<string, CrdVersion>();

function loadCrds(dir: string): void {
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8"))) {
      const crd = doc.toJS() as {
        kind: string;
        spec: {
          group: string;
          names: { kind: string };
          versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
        };
      } | null;
      if (!crd || crd.kind !== "CustomResourceDefinition") continue;
      for (const v of crd.spec.versions) {
        const schema = v.schema.openAPIV3Schema;
        crds.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, { validate: ajv.compile(schema), schema });
      }
    }
  }
}

let crdsLoaded = false;
function crd(key: string): CrdVersion | undefined {
  if (!crdsLoaded) {
    loadCrds(KONG_OPERATOR_CRDS);
    crdsLoaded = true;
  }
  return crds.get(key);
}

export function knownCrdVersions(kind: string): string[] {
  crd("");
  return [...crds.keys()].filter((k) => k.endsWith(`/${kind}`));
}

/** Fields a structural schema does not declare (the API server drops them without a word). */
export function unknownFields(schema: Schema | undefined, value: unknown, at = ""): string[] {
  if (!schema || schema["x-kubernetes-preserve-unknown-fields"] === true) return [];
  if (Array.isArray(value)) {
    const items = schema.items as Schema | undefined;
    return value.flatMap((v, i) => unknownFields(items, v, `${at}[${i}]`));
  }
  if (typeof value !== "object" || value === null) return [];
  const props = schema.properties as Record<string, Schema> | undefined;
  const additional = schema.additionalProperties as Schema | boolean | undefined;
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const where = at ? `${at}.${k}` : k;
    if (props && k in props) out.push(...unknownFields(props[k], v, where));
    else if (typeof additional === "object") out.push(...unknownFields(additional, v, where));
    else if (additional === true) continue;
    else if (props) out.push(`${where}: unknown field (the API server would drop it)`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Kinds whose CRDs are not in ../shared: hand-written schemas of the fields we use, closed (additionalProperties:
// false) so that a misspelt field fails. KEDA v2 ScaledObject; Kong Ingress Controller's KongPlugin and
// KongClusterPlugin; Gateway API HTTPRoute (the subset the examples use).

const stringMap = { type: "object", additionalProperties: { type: "string" } };
const metadata = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string" }, namespace: { type: "string" }, labels: stringMap, annotations: stringMap },
  additionalProperties: false,
};
const behaviorSchema = {
  type: "object",
  additionalProperties: false,
  properties: { scaleUp: { type: "object" }, scaleDown: { type: "object" } },
};

const scaledObjectSchema = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  additionalProperties: false,
  properties: {
    apiVersion: { const: "keda.sh/v1alpha1" },
    kind: { const: "ScaledObject" },
    metadata,
    spec: {
      type: "object",
      required: ["scaleTargetRef", "triggers"],
      additionalProperties: false,
      properties: {
        scaleTargetRef: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: {
            apiVersion: { type: "string" },
            kind: { type: "string" },
            name: { type: "string", minLength: 1 },
            envSourceContainerName: { type: "string" },
          },
        },
        pollingInterval: { type: "integer", minimum: 1 },
        cooldownPeriod: { type: "integer", minimum: 0 },
        initialCooldownPeriod: { type: "integer", minimum: 0 },
        idleReplicaCount: { type: "integer", minimum: 0 },
        minReplicaCount: { type: "integer", minimum: 0 },
        maxReplicaCount: { type: "integer", minimum: 1 },
        fallback: { type: "object" },
        advanced: {
          type: "object",
          additionalProperties: false,
          properties: {
            horizontalPodAutoscalerConfig: {
              type: "object",
              additionalProperties: false,
              properties: { name: { type: "string" }, behavior: behaviorSchema },
            },
            restoreToOriginalReplicaCount: { type: "boolean" },
            scalingModifiers: { type: "object" },
          },
        },
        triggers: {
          type: "array",
          minItems: 1,
          items: {
            type: "object",
            required: ["type", "metadata"],
            additionalProperties: false,
            properties: {
              type: { type: "string" },
              name: { type: "string" },
              metricType: { enum: ["AverageValue", "Value", "Utilization"] },
              useCachedMetrics: { type: "boolean" },
              authenticationRef: { type: "object" },
              // KEDA trigger metadata is a map of strings.
              metadata: stringMap,
            },
          },
        },
      },
    },
  },
};

function kongPluginSchema(kind: "KongPlugin" | "KongClusterPlugin"): object {
  return {
    type: "object",
    required: ["apiVersion", "kind", "metadata", "plugin"],
    additionalProperties: false,
    properties: {
      apiVersion: { const: "configuration.konghq.com/v1" },
      kind: { const: kind },
      metadata,
      plugin: { type: "string", minLength: 1 },
      config: { type: "object" },
      configFrom: { type: "object" },
      configPatches: { type: "array" },
      disabled: { type: "boolean" },
      protocols: {
        type: "array",
        items: { enum: ["http", "https", "grpc", "grpcs", "tcp", "tls", "udp", "tls_passthrough", "ws", "wss"] },
      },
      ordering: { type: "object" },
      instance_name: { type: "string" },
    },
  };
}

const httpRouteSchema = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  additionalProperties: false,
  properties: {
    apiVersion: { const: "gateway.networking.k8s.io/v1" },
    kind: { const: "HTTPRoute" },
    metadata,
    spec: {
      type: "object",
      additionalProperties: false,
      properties: {
        parentRefs: {
          type: "array",
          items: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
        },
        hostnames: { type: "array", items: { type: "string" } },
        rules: {
          type: "array",
          items: {
            type: "object",
            additionalProperties: false,
            properties: {
              matches: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    path: {
                      type: "object",
                      additionalProperties: false,
                      properties: {
                        type: { enum: ["Exact", "PathPrefix", "RegularExpression"] },
                        value: { type: "string", pattern: "^/" },
                      },
                    },
                  },
                },
              },
              backendRefs: {
                type: "array",
                items: {
                  type: "object",
                  required: ["name"],
                  additionalProperties: false,
                  properties: {
                    group: { type: "string" },
                    kind: { type: "string" },
                    name: { type: "string" },
                    namespace: { type: "string" },
                    port: { type: "integer", minimum: 1, maximum: 65535 },
                    weight: { type: "integer", minimum: 0 },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

const HANDWRITTEN: Record<string, ValidateFunction> = {
  "keda.sh/v1alpha1/ScaledObject": ajv.compile(scaledObjectSchema),
  "configuration.konghq.com/v1/KongPlugin": ajv.compile(kongPluginSchema("KongPlugin")),
  "configuration.konghq.com/v1/KongClusterPlugin": ajv.compile(kongPluginSchema("KongClusterPlugin")),
  "gateway.networking.k8s.io/v1/HTTPRoute": ajv.compile(httpRouteSchema),
};

// ---------------------------------------------------------------------------------------------------------
// Metadata rules the models do not check.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function checkMetadata(obj: K8sObject): string[] {
  const errs: string[] = [];
  const m = obj.metadata ?? ({} as K8sObject["metadata"]);
  const name = m.name ?? "";
  const nameOk =
    obj.kind === "Service"
      ? name.length <= 63 && DNS1035_LABEL.test(name)
      : name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
  if (!nameOk) errs.push(`metadata.name "${name}" is not a valid ${obj.kind} name`);
  if (m.namespace !== undefined && !(m.namespace.length <= 63 && DNS1123_LABEL.test(m.namespace))) {
    errs.push(`metadata.namespace "${m.namespace}" is not a valid namespace`);
  }
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    const [prefix, nm] = k.includes("/") ? (k.split("/", 2) as [string, string]) : [undefined, k];
    if (typeof v !== "string") errs.push(`label ${k}: value is not a string`);
    else if (v.length > 63 || !LABEL_VALUE.test(v)) errs.push(`label ${k}: invalid value "${v}"`);
    if (nm.length > 63 || !LABEL_NAME.test(nm) || (prefix !== undefined && !DNS1123_SUBDOMAIN.test(prefix)))
      errs.push(`label key "${k}" is invalid`);
  }
  for (const [k, v] of Object.entries(m.annotations ?? {}))
    if (typeof v !== "string") errs.push(`annotation ${k}: value is not a string`);
  return errs;
}

/**
 * Every problem found with one rendered object: metadata rules, then the kind's schema (kubernetes-models,
 * the operator's CRD with ajv and the unknown-field check, or a hand-written schema). An unknown kind is an error.
 */
export function validateObject(obj: K8sObject): string[] {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const errs = checkMetadata(obj);
  const model = MODELS[key];
  if (model) {
    try {
      new model(obj as never).validate();
    } catch (err) {
      errs.push((err as Error).message);
    }
    return errs;
  }
  const c = crd(key);
  if (c) {
    if (!c.validate(obj))
      errs.push(
        ...(c.validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`),
      );
    errs.push(...unknownFields(c.schema, obj));
    return errs;
  }
  const hand = HANDWRITTEN[key];
  if (hand) {
    if (!hand(obj))
      errs.push(...(hand.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`));
    return errs;
  }
  return [...errs, `no schema for ${key}: add one to test/deploy/support/validate.ts`];
}

export function objectName(obj: K8sObject): string {
  return `${obj.kind} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ""}${obj.metadata?.name}`;
}

export type { Json };
