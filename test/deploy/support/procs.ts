import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { Decoder, encode } from "@msgpack/msgpack";

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

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded), like Kong's io.popen or a container that exits. */
export function run(argv: string[], opts: { timeoutMs?: number; shell?: boolean; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = opts.shell
    ? spawnSync("/bin/sh", ["-c", argv.join(" ")], { encoding: "utf8", timeout: opts.timeoutMs ?? 20_000, env: opts.env ?? process.env })
    : spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: opts.timeoutMs ?? 20_000, env: opts.env ?? process.env });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Long-running processes started by a test; stopped (by pid) in its after hook. */
export class Processes {
  private readonly procs: { child: ChildProcess; name: string; log: string[] }[] = [];

  start(name: string, argv: string[], opts: { shell?: boolean; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = opts.shell
      ? spawn("/bin/sh", ["-c", argv.join(" ")], { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env })
      : spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env });
    const log: string[] = [];
    child.stdout!.on("data", (d: Buffer) => log.push(d.toString()));
    child.stderr!.on("data", (d: Buffer) => log.push(d.toString()));
    this.procs.push({ child, name, log });
    return child;
  }

  logs(): string {
    return this.procs.map((p) => `--- ${p.name} (pid ${p.child.pid}, exit ${p.child.exitCode ?? p.child.signalCode ?? "running"})\n${p.log.join("").slice(-4000)}`).join("\n");
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

export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function isSocket(file: string): boolean {
  try {
    return fs.statSync(file).isSocket();
  } catch {
    return false;
  }
}

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on("error", reject);
  });
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
        return reject(err);
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
