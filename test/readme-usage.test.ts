import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../devstack/kong";
import { EXPORTER_CLI } from "../devstack/process/exporter-process";

interface Flag {
  env: string;
  default: string | undefined;
}

/** The README's usage block of the sidecar: `--flag <arg>  text (env NAME, default VALUE)` per line. */
function readmeFlags(): Map<string, Flag> {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const block = /```\nlatency-exporter \[options\]\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "README.md has the sidecar's usage block");
  return new Map(
    block[1]
      .trim()
      .split("\n")
      .map((line) => {
        const m = /^\s*(--[\w-]+) .*\(env (\w+)(?:, default (.+))?\)$/.exec(line);
        assert.ok(m, `usage line: ${line}`);
        return [m[1], { env: m[2], default: m[3] }];
      }),
  );
}

/** What the sidecar's --help says of each flag (commander: `(default: X, env: NAME)`). */
function helpFlags(): Map<string, Flag> {
  const r = spawnSync(process.execPath, [EXPORTER_CLI, "--help"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  const flags = new Map<string, Flag>();
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*(--[\w-]+) .*?(?:default: "?([^",]+(?:,\d+)*)"?, )?env: (\w+)\)$/.exec(line);
    if (m) flags.set(m[1], { env: m[3], default: m[2] });
  }
  return flags;
}

/** The README spells two defaults for people: Kong's buckets, and the body limit in MiB. */
const spelled: Record<string, string> = {
  "Kong's 25,...,60000": "25,50,80,100,250,400,700,1000,2000,5000,10000,30000,60000",
  "32 MiB": String(32 * 1024 * 1024),
};

// README "The sidecar: latency-exporter": its flags, their variables and defaults, as the real CLI has them.
describe("the README's usage of latency-exporter", () => {
  it("lists every flag of the CLI, with its environment variable and default", () => {
    const readme = readmeFlags();
    const help = helpFlags();
    assert.deepEqual([...readme.keys()].sort(), [...help.keys()].sort());
    for (const [flag, r] of readme) {
      const h = help.get(flag)!;
      assert.equal(r.env, h.env, `${flag}: variable`);
      assert.equal(r.default && (spelled[r.default] ?? r.default), h.default, `${flag}: default`);
    }
  });
});
