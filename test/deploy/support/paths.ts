import * as fs from "node:fs";
import * as path from "node:path";
import { requirement } from "../../../devstack/requirement";

/** The checkout: this file runs compiled, from dist/lib/test/deploy/support/, five levels below it. */
export const REPO = path.resolve(__dirname, "..", "..", "..", "..", "..");
export const CHART = path.join(REPO, "charts", "kong-latency-exporter");
export const KONG_CONFIG = path.join(REPO, "kong-config");
export const IMAGES = path.join(REPO, "images");
/** ../shared beside the checkout (reference material: the guide, the operator's CRDs). */
export const SHARED = path.resolve(REPO, "..", "shared");
export const GUIDE = path.join(SHARED, "seed", "000_1b75fb33afdbe617.txt");
export const KONG_OPERATOR_CRDS = path.join(SHARED, "schemas", "kong-operator");

export const DIST_PLUGIN_DIR = path.join(REPO, "dist", "plugin");
export const PLUGIN_SERVER_BIN = path.join(REPO, "node_modules", "kong-pdk", "bin", "kong-js-pluginserver");
export const WRITE_PLUGIN_INFO = path.join(IMAGES, "write-plugin-info.js");

/** `name` in every directory of PATH, in PATH's order, whether it exists or not. */
export function onPath(name: string): string[] {
  return (process.env.PATH ?? "")
    .split(path.delimiter)
    .filter((dir) => dir !== "")
    .map((dir) => path.join(dir, name));
}

export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export function readText(file: string): string {
  return fs.readFileSync(file, "utf8");
}

/**
 * A compiled module of the project (dist/lib/...), loaded at run time so that this suite compiles and runs on
 * its own while the plugin and the sidecar are being written. Returns the module, or why it is missing.
 */
export function loadDist<T>(relative: string): { mod: T } | { missing: string } {
  const file = path.join(REPO, "dist", "lib", relative);
  if (!fs.existsSync(file)) return { missing: `${path.relative(REPO, file)} does not exist (run npm run build)` };
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time
  return { mod: require(file) as T };
}

/** A build output the test needs: pending outside CI, a failure under CI (which builds everything first). */
export function needOrSkip(ctx: Mocha.Context, missing: string | undefined): void {
  requirement(ctx, missing, "npm run build");
}
