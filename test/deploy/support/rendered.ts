import { strict as assert } from "node:assert";
import { parse } from "yaml";
import type { K8sObject } from "./helm";

/** What the suites read of the rendered objects: the pod template, its containers, the adapter rules, the plugin. */
type Obj = Record<string, any>;

export function byKind(objs: K8sObject[], kind: string): Obj[] {
  return objs.filter((o) => o.kind === kind);
}

/** The only rendered object of a kind; fails when there are none or several. */
export function one(objs: K8sObject[], kind: string): Obj {
  const found = byKind(objs, kind);
  assert.equal(found.length, 1, `expected one ${kind}, got ${found.length}`);
  return found[0];
}

/** The pod template the GatewayConfiguration hands the operator (dataPlaneOptions.deployment.podTemplateSpec). */
export function podTemplate(objs: K8sObject[]): Obj {
  const gcs = objs.filter((o) => o.kind === "GatewayConfiguration") as Obj[];
  assert.equal(gcs.length, 1, `expected one GatewayConfiguration, got ${gcs.length}`);
  return gcs[0].spec.dataPlaneOptions.deployment.podTemplateSpec;
}

export function podSpec(objs: K8sObject[]): Obj {
  return podTemplate(objs).spec;
}

/** A container of the pod spec by name, init container or not. */
export function containerOf(spec: Obj, name: string): Obj {
  const c = [...(spec.initContainers ?? []), ...spec.containers].find((x: Obj) => x.name === name);
  assert.ok(c, `no container ${name}`);
  return c;
}

/** A container's environment as name -> value; a name set twice fails. */
export function envOf(c: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of c.env ?? []) {
    assert.ok(!(e.name in out), `env ${e.name} set twice in ${c.name}`);
    out[e.name] = e.value;
  }
  return out;
}

/** Values that render the prometheus-adapter ConfigMap, off by default (the rules go to the adapter's chart). */
export const WITH_RULES_CONFIGMAP = { prometheusAdapter: { rulesConfigMap: { enabled: true } } };

/** The rules of the prometheus-adapter ConfigMap (its config.yaml). */
export function adapterRules(objs: K8sObject[]): Obj[] {
  const cm = objs.find((o) => o.kind === "ConfigMap" && (o as Obj).data?.["config.yaml"]) as Obj | undefined;
  assert.ok(cm, "no adapter ConfigMap");
  return parse(cm.data["config.yaml"]).rules;
}

/** The plugin configuration of the first KongPlugin (plugin.kongPlugins.enabled=true). */
export function kongPluginConfig(objs: K8sObject[]): Obj {
  const kp = objs.find((o) => o.kind === "KongPlugin") as Obj | undefined;
  assert.ok(kp, "no KongPlugin rendered");
  return kp.config;
}
