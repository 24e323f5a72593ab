/**
 * images/: Docker is not available here, so the Dockerfiles cannot be built; what can be checked is checked.
 * The files they copy exist and are let through their .dockerignore; they install the application where the
 * chart runs it from; the runtime image keeps only production dependencies, which must therefore hold every
 * module the plugin, the exporter and write-plugin-info.js load.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { render, requireHelm } from "./support/helm";
import { IMAGES, REPO, readText } from "./support/paths";
import { podSpec } from "./support/rendered";

const DOCKERFILES = ["latency-exporter.Dockerfile", "kong.Dockerfile"];

function instructions(file: string): { op: string; args: string }[] {
  const joined = readText(path.join(IMAGES, file)).replace(/\\\n/g, " ");
  return joined
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const i = l.indexOf(" ");
      return { op: l.slice(0, i).toUpperCase(), args: l.slice(i + 1).trim() };
    });
}

/** COPY sources from the build context (not --from=stage). */
function contextCopies(file: string): string[] {
  return instructions(file)
    .filter((x) => x.op === "COPY" && !x.args.startsWith("--from"))
    .flatMap((x) =>
      x.args
        .replace(/--\S+\s+/g, "")
        .split(/\s+/)
        .slice(0, -1),
    );
}

/** Where the runtime stage puts things: destination -> source, for COPY --from=build. */
function runtimeCopies(file: string): Map<string, string> {
  const out = new Map<string, string>();
  let workdir = "/";
  const ins = instructions(file);
  const lastFrom = ins.map((x) => x.op).lastIndexOf("FROM");
  for (const x of ins.slice(lastFrom)) {
    if (x.op === "WORKDIR") workdir = x.args;
    if (x.op === "COPY" && x.args.startsWith("--from=build")) {
      const [src, dest] = x.args.replace(/--\S+\s+/g, "").split(/\s+/) as [string, string];
      out.set(path.posix.resolve(workdir, dest), src);
    }
  }
  return out;
}

/** Minimal .dockerignore matcher for the patterns used here: "**", "!path", "!dir/**". */
function allowedByIgnore(ignoreFile: string, rel: string): boolean {
  let allowed = true;
  for (const raw of readText(ignoreFile).split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const neg = line.startsWith("!");
    const pat = neg ? line.slice(1) : line;
    const re = new RegExp(
      `^${pat
        .replace(/[.+^${}()|[\]\\]/g, "\\$&")
        .replace(/\*\*/g, "\u0000")
        .replace(/\*/g, "[^/]*")
        .replaceAll("\u0000", ".*")}$`,
    );
    if (re.test(rel)) allowed = neg;
  }
  return allowed;
}

describe("deploy: container images", function () {
  this.timeout(60_000);

  for (const df of DOCKERFILES) {
    it(`${df}: copies files that exist and that its .dockerignore lets through`, function () {
      const copies = contextCopies(df);
      assert.ok(copies.length > 0);
      const ignore = path.join(IMAGES, `${df}.dockerignore`);
      assert.ok(fs.existsSync(ignore), `${df}.dockerignore (BuildKit's per-Dockerfile ignore file) is missing`);
      for (const src of copies) {
        const abs = path.join(REPO, src.replace(/^\.\//, ""));
        assert.ok(fs.existsSync(abs), `${df}: COPY ${src}: no such file in the checkout`);
        const files = fs.statSync(abs).isDirectory()
          ? fs.readdirSync(abs, { recursive: true }).map((f) => path.join(src, String(f)))
          : [src];
        for (const f of files)
          assert.ok(allowedByIgnore(ignore, f.replace(/^\.\//, "")), `${df}: ${f} is excluded by its .dockerignore`);
      }
    });

    it(`${df}: builds every source directory the TypeScript build needs`, function () {
      const tsconfig = JSON.parse(readText(path.join(REPO, "tsconfig.json"))) as { include: string[] };
      // Only the product is built into an image; the rest is development.
      const needed = tsconfig.include.filter((d) => ["wire", "plugin", "sidecar"].includes(d));
      const copies = contextCopies(df);
      for (const d of needed) assert.ok(copies.includes(d), `${df} does not COPY ${d}/, which the build compiles`);
      const runs = instructions(df)
        .filter((x) => x.op === "RUN")
        .map((x) => x.args)
        .join("\n");
      assert.match(runs, /npm ci/);
      assert.match(runs, /npm run build/);
      assert.match(runs, /npm prune --omit=dev/);
    });
  }

  it("latency-exporter.Dockerfile: distroless non-root runtime, installed where the chart runs it", function () {
    const helm = requireHelm(this);
    const ins = instructions("latency-exporter.Dockerfile");
    const froms = ins.filter((x) => x.op === "FROM").map((x) => x.args);
    assert.match(froms.at(-1)!, /^gcr\.io\/distroless\/nodejs\$\{NODE_VERSION\}-debian12:nonroot$/);
    assert.match(ins.filter((x) => x.op === "USER").at(-1)!.args, /^65532/);
    assert.equal(ins.find((x) => x.op === "ENTRYPOINT")?.args, '["/nodejs/bin/node"]');
    const layout = runtimeCopies("latency-exporter.Dockerfile");
    // Every path under /opt/upstream-latency the chart's containers use comes from the build.
    const spec = podSpec(render(helm));
    const used = new Set<string>();
    for (const c of [...spec.initContainers, ...spec.containers]) {
      for (const a of [...(c.command ?? []), ...(c.args ?? [])] as string[])
        if (a.startsWith("/opt/upstream-latency/")) used.add(a);
      if (c.name !== "proxy")
        assert.equal(
          c.command[0],
          "/nodejs/bin/node",
          `${c.name}: the distroless image has Node.js at /nodejs/bin/node`,
        );
    }
    assert.ok(used.size >= 4);
    for (const p of used) {
      const dest = [...layout.keys()].find((d) => p === d || p.startsWith(`${d}/`));
      assert.ok(dest, `${p}: nothing in the image is copied there`);
      const local = path.join(REPO, layout.get(dest)!.replace(/^\/src\//, "") + p.slice(dest.length));
      assert.ok(fs.existsSync(local), `${p} (from ${local}) does not exist in this checkout after npm run build`);
    }
  });

  it("kong.Dockerfile: Node.js where Kong's commands expect it, Kong's user at the end", function () {
    const ins = instructions("kong.Dockerfile");
    assert.match(ins.filter((x) => x.op === "FROM").at(-1)!.args, /^\$\{KONG_IMAGE\}$/);
    assert.ok(ins.some((x) => x.op === "COPY" && x.args === "--from=node /usr/local/bin/node /usr/local/bin/node"));
    assert.equal(ins.filter((x) => x.op === "USER").at(-1)!.args, "kong");
    const layout = runtimeCopies("kong.Dockerfile");
    for (const d of ["/opt/upstream-latency/dist", "/opt/upstream-latency/node_modules"])
      assert.ok(layout.has(d), `kong.Dockerfile does not install ${d}`);
  });

  it("the runtime image's production dependencies cover every module the plugin, the exporter and the scripts load", function () {
    const pkg = JSON.parse(readText(path.join(REPO, "package.json"))) as { dependencies?: Record<string, string> };
    const lock = JSON.parse(readText(path.join(REPO, "package-lock.json"))) as {
      packages: Record<string, { dev?: boolean }>;
    };
    // What `npm prune --omit=dev` keeps at the top level of node_modules.
    const kept = new Set(
      Object.entries(lock.packages)
        .filter(([k, v]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(k) && !v.dev)
        .map(([k]) => k.slice("node_modules/".length)),
    );
    const missing: string[] = [];
    const roots = ["plugin", "sidecar", "wire"].map((d) => path.join(REPO, "dist", "lib", d));
    for (const root of roots)
      assert.ok(fs.existsSync(root), `${path.relative(REPO, root)} does not exist: run npm run build`);
    for (const root of roots) {
      for (const f of fs
        .readdirSync(root, { recursive: true })
        .map(String)
        .filter((x) => x.endsWith(".js"))) {
        const src = readText(path.join(root, f));
        for (const m of src.matchAll(/require\("([^"./][^"]*)"\)/g)) {
          const spec = m[1];
          if (
            spec.startsWith("node:") ||
            [
              "fs",
              "path",
              "net",
              "http",
              "os",
              "crypto",
              "util",
              "events",
              "stream",
              "zlib",
              "url",
              "child_process",
              "worker_threads",
              "perf_hooks",
              "timers",
              "assert",
              "buffer",
              "dns",
              "tls",
              "https",
            ].includes(spec)
          )
            continue;
          const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
          if (!kept.has(name))
            missing.push(
              `${path.relative(REPO, path.join(root, f))} requires "${name}", which npm prune --omit=dev removes${pkg.dependencies?.[name] ? "" : " (move it to dependencies in package.json)"}`,
            );
        }
      }
    }
    assert.deepEqual(missing, [], missing.join("\n"));
  });
});
