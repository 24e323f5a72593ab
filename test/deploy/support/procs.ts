import { strict as assert } from "node:assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { Decoder, encode } from "@msgpack/msgpack";
import { freePort } from "../../../devstack/process/plugin-stack";
import { waitFor } from "../../../devstack/process/wait";
import { REPO, WRITE_PLUGIN_INFO } from "./paths";

type Obj = Record<string, any>;

/**
 * Container paths -> paths on this machine, so that the exact command lines the chart renders run here: the
 * image's Node.js, its /opt/upstream-latency (this checkout: dist/ and node_modules/), its
 * bin/write-plugin-info.js (images/), and the shared emptyDir (a temporary directory).
 */
export type PathMap = [containerPath: string, localPath: string][];

function ordered(map: PathMap): PathMap {
  return [...map].sort((a, b) => b[0].length - a[0].length);
}

/** One argv element: a path (or a path prefix of it) is replaced; anything else is left alone. */
export function mapArg(arg: string, map: PathMap): string {
  for (const [from, to] of ordered(map)) {
    if (arg === from) return to;
    if (arg.startsWith(`${from}/`)) return to + arg.slice(from.length);
  }
  return arg;
}

/** Paths inside a string (a shell command line, a `node -e` script): only where a whole path starts. */
export function mapInString(text: string, map: PathMap): string {
  let out = text;
  for (const [from, to] of ordered(map)) {
    const re = new RegExp(`(^|[\\s'"(=:])${from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=$|[\\s'"/)])`, "g");
    out = out.replace(re, (_m, lead: string) => `${lead}${to}`);
  }
  return out;
}

/** A container's argv (command + args) with the container paths mapped, whole arguments and paths inside them. */
export function argvOf(c: Obj, map: PathMap): string[] {
  return [...c.command, ...(c.args ?? [])].map((a: string) => mapInString(mapArg(a, map), map));
}

/** The token the test writes where the chart mounts the ingest token's Secret (exporter.ingestToken). */
export const INGEST_TOKEN = randomBytes(24).toString("hex");

/**
 * The paths of the images and of the pod's volumes -> this machine: the images' Node.js, their /opt/upstream-latency
 * (this checkout) and bin/write-plugin-info.js (images/), the shared emptyDir and the ingest token's Secret volume
 * (directories created under `tmp`, the token written as the kubelet would).
 */
export function podPathMap(tmp: string): PathMap {
  const shared = path.join(tmp, "shared");
  const token = path.join(tmp, "ingest-token");
  fs.mkdirSync(shared, { recursive: true });
  fs.mkdirSync(token, { recursive: true });
  fs.writeFileSync(path.join(token, "token"), `${INGEST_TOKEN}\n`);
  return [
    ["/nodejs/bin/node", process.execPath],
    ["/usr/local/bin/node", process.execPath],
    ["/opt/upstream-latency/bin/write-plugin-info.js", WRITE_PLUGIN_INFO],
    ["/opt/upstream-latency", REPO],
    ["/upstream-latency", shared],
    ["/etc/upstream-latency/ingest-token", token],
  ];
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded), like Kong's io.popen or a container that exits. */
export function run(
  argv: string[],
  opts: { timeoutMs?: number; shell?: boolean; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  const r = opts.shell
    ? spawnSync("/bin/sh", ["-c", argv.join(" ")], {
        encoding: "utf8",
        timeout: opts.timeoutMs ?? 20_000,
        env: opts.env ?? process.env,
      })
    : spawnSync(argv[0], argv.slice(1), {
        encoding: "utf8",
        timeout: opts.timeoutMs ?? 20_000,
        env: opts.env ?? process.env,
      });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Long-running processes started by a test; stopped (by pid) in its after hook. */
export class Processes {
  private readonly procs: { child: ChildProcess; name: string; log: string[] }[] = [];

  start(name: string, argv: string[], opts: { shell?: boolean; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = opts.shell
      ? spawn("/bin/sh", ["-c", argv.join(" ")], { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env })
      : spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env });
    const log: string[] = [];
    child.stdout.on("data", (d: Buffer) => log.push(d.toString()));
    child.stderr.on("data", (d: Buffer) => log.push(d.toString()));
    this.procs.push({ child, name, log });
    return child;
  }

  /** `wait`, failing at once (with the logs) if `child` exits first, rather than when `wait` times out. */
  whileRunning<T>(child: ChildProcess, wait: Promise<T>): Promise<T> {
    const name = this.procs.find((p) => p.child === child)?.name ?? `pid ${child.pid}`;
    const exited = new Promise<never>((_resolve, reject) => {
      const fail = () =>
        reject(new Error(`${name} exited with ${child.exitCode ?? child.signalCode}:\n${this.logs()}`));
      if (child.exitCode !== null || child.signalCode !== null) fail();
      else child.once("exit", fail);
    });
    return Promise.race([wait, exited]);
  }

  logs(): string {
    return this.procs
      .map(
        (p) =>
          `--- ${p.name} (pid ${p.child.pid}, exit ${p.child.exitCode ?? p.child.signalCode ?? "running"})\n${p.log.join("").slice(-4000)}`,
      )
      .join("\n");
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.procs.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              child.kill("SIGKILL");
            }, 3000);
            child.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
    this.procs.length = 0;
  }
}

export function isSocket(file: string): boolean {
  try {
    return fs.statSync(file).isSocket();
  } catch {
    return false;
  }
}

export function httpRequest(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? "GET", headers: opts.headers, timeout: opts.timeoutMs ?? 3000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${opts.method ?? "GET"} ${url}: timeout`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

export function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return httpRequest(url, { timeoutMs });
}

export interface RunningExporter {
  /** Its metrics port on 127.0.0.1. */
  metricsPort: number;
  /** Where it takes ingest, as the plugin's exporter_url says it: http://127.0.0.1:PORT or unix:/mapped/path.sock. */
  exporterUrl: string;
  /** Its argv as started. */
  argv: string[];
}

/**
 * The latency-exporter container, started with its rendered command line (paths mapped) on free ports: the
 * metrics address moves to 127.0.0.1, a TCP ingest address keeps its host (0.0.0.0 stays every interface, so that
 * the exporter's own refusal of a non-loopback address without a token is exercised) and gets a free port.
 * Resolves once /readyz answers 200; fails at once if the exporter exits.
 */
export async function startExporterContainer(
  procs: Processes,
  c: Obj,
  map: PathMap,
  name = "latency-exporter",
): Promise<RunningExporter> {
  const argv = argvOf(c, map);
  const mi = argv.indexOf("--metrics-address") + 1;
  assert.match(argv[mi], /^0\.0\.0\.0:\d+$/, "metrics on all interfaces in the pod");
  const metricsPort = await freePort();
  argv[mi] = `127.0.0.1:${metricsPort}`;
  const ii = argv.indexOf("--ingest-address") + 1;
  let exporterUrl = argv[ii];
  if (!exporterUrl.startsWith("unix:")) {
    const host = exporterUrl.replace(/:\d+$/, "");
    assert.ok(
      /^(127\.0\.0\.1|localhost|\[::1\])$/.test(host) || argv.includes("--ingest-token-file"),
      `ingest on ${host} without --ingest-token-file: the chart must not render it`,
    );
    const port = await freePort();
    argv[ii] = `${host}:${port}`;
    exporterUrl = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  }
  const child = procs.start(name, argv);
  const ready = `http://127.0.0.1:${metricsPort}/readyz`;
  await procs.whileRunning(
    child,
    waitFor(`${name} ${ready}`, async () => ((await httpGet(ready)).status === 200 ? true : undefined), 15_000),
  );
  return { metricsPort, exporterUrl, argv };
}

let msgid = 0;

/**
 * One call of Kong's side of the plugin-server protocol (MsgPack-RPC over the Unix socket, one request per
 * connection, the argument wrapped in an array): resolves to [error, result].
 */
export function pluginRpc(socket: string, method: string, arg: unknown, timeoutMs = 5000): Promise<[unknown, unknown]> {
  return new Promise((resolve, reject) => {
    const id = ++msgid;
    const conn = net.createConnection(socket);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`${method}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.on("connect", () => conn.write(encode([0, id, method, [arg]])));
    conn.on("data", (d: Buffer) => {
      chunks.push(d);
      let msg: unknown;
      try {
        msg = new Decoder().decode(Buffer.concat(chunks));
      } catch (err) {
        if ((err as Error).message.includes("Insufficient data")) return;
        clearTimeout(timer);
        conn.destroy();
        return reject(new Error("cannot decode the reply", { cause: err }));
      }
      clearTimeout(timer);
      conn.end();
      const [type, rid, error, result] = msg as [number, number, unknown, unknown];
      if (type !== 1 || rid !== id) return reject(new Error(`${method}: unexpected reply ${JSON.stringify(msg)}`));
      resolve([error ?? null, result]);
    });
    conn.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
