import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { OutputRing } from "./output-ring";

/** The repository root: the nearest directory above this (compiled) file that holds package.json. */
export const REPO_ROOT = findRepoRoot(__dirname);
export const PLUGIN_SERVER_BIN = path.join(REPO_ROOT, "node_modules/kong-pdk/bin/kong-js-pluginserver");

/** The compiled directory of a fixture plugin (devstack/plugins/<name>, holding only <name>.js). */
export function fixturePluginDir(name: string): string {
  return path.resolve(__dirname, "../plugins", name);
}

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface PluginServerOptions {
  /** Directory of the plugin(s); made absolute, since the server require()s its entries by joined path. */
  pluginsDir: string;
  /** Default: the directory's name plus ".sock". */
  sockName?: string;
  /**
   * An existing directory to listen in, kept when the server exits: a server restarted there listens on the
   * socket path Kong already uses. Default: a new temporary directory, removed on exit.
   */
  kongPrefix?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** `-v`: the server logs every RPC (and runs at about half speed). */
  verbose?: boolean;
  startTimeoutMs?: number;
}

// Servers still running when the test process exits (mocha --exit, a crash) are killed rather than orphaned.
const live = new Set<PluginServer>();
process.once("exit", () => {
  for (const server of live) {
    server.kill();
    if (server.ownsPrefix) fs.rmSync(server.kongPrefix, { recursive: true, force: true });
  }
});

/** The real kong-js-pluginserver, run as Kong's start_cmd would run it, listening on a socket in a temp prefix. */
export class PluginServer {
  readonly exited: Promise<ExitStatus>;
  private readonly ring = new OutputRing();
  private exitStatus: ExitStatus | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly kongPrefix: string,
    readonly socketPath: string,
    readonly ownsPrefix: boolean,
  ) {
    child.stdout?.setEncoding("utf8").on("data", (s: string) => this.ring.push(s));
    child.stderr?.setEncoding("utf8").on("data", (s: string) => this.ring.push(s));
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitStatus = { code, signal };
        live.delete(this);
        if (ownsPrefix) fs.rmSync(kongPrefix, { recursive: true, force: true });
        resolve(this.exitStatus);
      });
    });
    live.add(this);
  }

  static async start(options: PluginServerOptions): Promise<PluginServer> {
    const pluginsDir = path.resolve(options.pluginsDir);
    const sockName = options.sockName ?? `${path.basename(pluginsDir)}.sock`;
    // A short prefix: a Unix socket path must fit in 107 bytes.
    const kongPrefix = options.kongPrefix ?? fs.mkdtempSync(path.join(os.tmpdir(), "kong-ps-"));
    const args = [PLUGIN_SERVER_BIN, "--plugins-directory", pluginsDir, "--kong-prefix", kongPrefix];
    args.push("--sock-name", sockName);
    if (options.verbose) args.push("-v");
    const child = spawn(process.execPath, args, {
      // Not the repository: the server's ts-node would pick up its tsconfig.json.
      cwd: kongPrefix,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const server = new PluginServer(child, kongPrefix, path.join(kongPrefix, sockName), !options.kongPrefix);
    try {
      await server.waitForSocket(options.startTimeoutMs ?? 15_000);
    } catch (err) {
      server.kill();
      await server.exited;
      throw err;
    }
    return server;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** The last 64 KiB the server printed (stdout and stderr, interleaved). */
  output(): string {
    return this.ring.text();
  }

  /** Sends `signal` and waits for the exit; SIGKILLs and rejects if it has not exited within `timeoutMs`. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 5_000): Promise<ExitStatus> {
    if (this.exitStatus) return this.exitStatus;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const result = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (result !== "timeout") return result;
    this.kill();
    await this.exited;
    throw new Error(`plugin server ${this.pid} did not exit within ${timeoutMs} ms of ${signal}`);
  }

  kill(): void {
    if (this.exitStatus === undefined) this.child.kill("SIGKILL");
  }

  private async waitForSocket(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitStatus) {
        throw new Error(
          `plugin server exited (${JSON.stringify(this.exitStatus)}) before listening:\n${this.output()}`,
        );
      }
      if (await canConnect(this.socketPath)) return;
      if (Date.now() > deadline) {
        throw new Error(`plugin server not listening on ${this.socketPath} after ${timeoutMs} ms:\n${this.output()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection(socketPath);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** What `--dump-all-plugins` prints for each plugin, which Kong's query_cmd parses. */
export interface DumpedPlugin {
  Name: string;
  Version?: string;
  Phases: string[];
  Priority: number;
  Schema: { name: string; fields: unknown[] };
}

export interface DumpResult {
  stdout: string;
  plugins: DumpedPlugin[];
}

/**
 * Runs `kong-js-pluginserver --plugins-directory <dir> --dump-all-plugins` as Kong's query_cmd would and
 * parses its stdout the way Kong does: all of it as one JSON document, so anything else printed there fails.
 */
export async function dumpAllPlugins(
  pluginsDir: string,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<DumpResult> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const args = [PLUGIN_SERVER_BIN, "--plugins-directory", path.resolve(pluginsDir), "--dump-all-plugins"];
  const child = spawn(process.execPath, args, {
    cwd: os.tmpdir(),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const status = await new Promise<ExitStatus>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal }));
  }).finally(() => clearTimeout(timer));
  if (status.code !== 0) {
    throw new Error(
      `--dump-all-plugins exited with ${JSON.stringify(status)} (timeout ${timeoutMs} ms):\n${stderr}${stdout}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    throw new Error(
      `--dump-all-plugins stdout is not clean JSON (${(err as Error).message}); Kong would fail to start:\n` +
        JSON.stringify(stdout.slice(0, 2_000)),
      { cause: err },
    );
  }
  if (!Array.isArray(parsed)) throw new Error(`--dump-all-plugins printed ${typeof parsed}, not a list: ${stdout}`);
  return { stdout, plugins: parsed as DumpedPlugin[] };
}
