import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * True when CI is set to anything but "", "0" or "false" (CI=1, CI=yes and GitHub's CI=true alike): a CI run
 * must not turn a missing dependency into a skipped, green-looking test.
 */
export function inCi(): boolean {
  const ci = (process.env.CI ?? "").trim().toLowerCase();
  return ci !== "" && ci !== "0" && ci !== "false";
}

/** The executable `name` in the first directory of PATH that holds one, if any. */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * What a test needs from the machine. `missing` undefined: nothing to do. Otherwise the test is pending (with
 * the message) on a developer's machine and fails under CI, naming `fix`: never a pass.
 */
export function requirement(ctx: Mocha.Context, missing: string | undefined, fix: string): void {
  if (missing === undefined) return;
  if (inCi()) throw new Error(`${missing}, and CI=${process.env.CI} requires it: ${fix}`);
  console.warn(`      pending: ${missing} (${fix}; under CI this fails)`);
  ctx.skip();
}

/** The install command of the Debian package that holds prometheus and promtool. */
export const INSTALL_PROMETHEUS = "apt-get install -y --no-install-recommends prometheus";
