import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { requirement } from "../../../devstack/requirement";
import { CHART, REPO, isExecutable, onPath } from "./paths";

/**
 * helm 3, from $HELM_BIN, else PATH, else .tmp/bin/helm (where npm test puts it).
 * Under CI=true a missing helm fails the suite; elsewhere the chart tests are skipped with a message.
 */
export function findHelm(): string | undefined {
  // An explicit HELM_BIN is the only candidate: a wrong one must not be papered over by another helm.
  if (process.env.HELM_BIN) return isHelm3(process.env.HELM_BIN) ? process.env.HELM_BIN : undefined;
  return [...onPath("helm"), path.join(REPO, ".tmp", "bin", "helm")].find(isHelm3);
}

function isHelm3(file: string): boolean {
  if (!isExecutable(file)) return false;
  const v = spawnSync(file, ["version", "--template", "{{.Version}}"], { encoding: "utf8", timeout: 10_000 });
  return v.status === 0 && /^v3\./.test(v.stdout.trim());
}

const HELM = findHelm();

export function requireHelm(ctx: Mocha.Context): string {
  const missing = HELM
    ? undefined
    : process.env.HELM_BIN
      ? `HELM_BIN=${process.env.HELM_BIN} is not a working helm 3 binary`
      : "helm 3 not found (HELM_BIN, PATH, .tmp/bin/helm)";
  requirement(ctx, missing, "run npm test (it extracts helm to .tmp/bin), or set HELM_BIN to a helm 3 binary");
  return HELM!;
}

export type Values = Record<string, unknown>;

export interface RenderOptions {
  release?: string;
  namespace?: string;
  kubeVersion?: string;
  /** Render this chart directory instead of charts/kong-latency-exporter. */
  chartDir?: string;
}

export interface HelmResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs helm with the values given as a file (JSON is YAML) after `args`, never throwing on helm's failure. */
function helmWithValues(helm: string, args: string[], values: Values): HelmResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kle-values-"));
  try {
    const file = path.join(dir, "values.json");
    fs.writeFileSync(file, JSON.stringify(values));
    const r = spawnSync(helm, [...args, "-f", file], {
      encoding: "utf8",
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.error) throw r.error;
    return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template`, never throwing. */
export function helmTemplateRaw(helm: string, values: Values = {}, opts: RenderOptions = {}): HelmResult {
  const args = ["template", opts.release ?? "kle", opts.chartDir ?? CHART, "--namespace", opts.namespace ?? "kong"];
  if (opts.kubeVersion) args.push("--kube-version", opts.kubeVersion);
  return helmWithValues(helm, args, values);
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors[0].message}`);
    const obj = doc.toJS() as K8sObject | null;
    if (obj !== null && obj !== undefined) out.push(obj);
  }
  return out;
}

/** `helm template`, which must succeed; returns the rendered objects. */
export function render(helm: string, values: Values = {}, opts: RenderOptions = {}): K8sObject[] {
  const r = helmTemplateRaw(helm, values, opts);
  if (!r.ok) throw new Error(`helm template failed:\n${r.stderr}`);
  return parseManifests(r.stdout);
}

export function helmLint(helm: string, values: Values = {}): HelmResult {
  return helmWithValues(helm, ["lint", "--strict", CHART], values);
}

/**
 * NOTES.txt as `helm install` would print it. `helm template` does not render NOTES.txt and `helm install
 * --dry-run` needs a cluster, so a copy of the chart renders the same file through `tpl` inside a ConfigMap.
 */
export function renderNotes(helm: string, values: Values = {}, opts: RenderOptions = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kle-notes-"));
  try {
    const copy = path.join(dir, "chart");
    fs.cpSync(CHART, copy, { recursive: true });
    fs.renameSync(path.join(copy, "templates", "NOTES.txt"), path.join(copy, "notes.txt"));
    fs.writeFileSync(
      path.join(copy, "templates", "zz-notes.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n    {{- tpl (.Files.Get "notes.txt") . | nindent 4 }}\n',
    );
    const objs = render(helm, values, { ...opts, chartDir: copy });
    const notes = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === "notes");
    if (!notes) throw new Error("notes ConfigMap not rendered");
    return (notes as unknown as { data: { notes: string } }).data.notes;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function helmVersion(helm: string): string {
  return execFileSync(helm, ["version", "--template", "{{.Version}}"], { encoding: "utf8", timeout: 10_000 }).trim();
}
