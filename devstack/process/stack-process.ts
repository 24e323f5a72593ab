import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { GatewayStats } from "../gateway/node-gateway";
import { startLocalStack, type LocalStackOptions, type StackRoute } from "./local-stack";

/**
 * The local stack served from a child process, so that a load generator in the parent does not share an event
 * loop with the gateway and the echo upstream (whose timing the upstream latency is). The child holds the
 * gateway, the echo upstream and Kong's side of the plugin protocol; the plugin server and the exporter are its
 * own children, as in startLocalStack.
 *
 * Protocol: the child writes one JSON line when ready ({type:"ready",...}), then answers one JSON line per
 * command line on its stdin: `stats`, `drain <timeoutMs>`, `stop`. It stops everything and exits when its
 * stdin closes (the parent went away) or on SIGTERM/SIGINT.
 */

export interface ChildStackOptions {
  plugin?: boolean;
  flushInterval?: number;
  exporterArgs?: string[];
}

export interface ChildStack {
  gatewayUrl: string;
  upstreamUrl: string;
  exporterMetricsUrl: string;
  routes: StackRoute[];
  /** The child (gateway, echo upstream, Kong emulator), the plugin server and the exporter. */
  pids: { gateway: number; pluginServer: number | undefined; exporter: number | undefined };
  stats(): Promise<GatewayStats>;
  /** Every log phase ended and, with the plugin, the exporter counted every request; rejects past timeoutMs. */
  drain(timeoutMs?: number): Promise<void>;
  /** Idempotent; SIGKILLs the child when it does not exit within 15 s. */
  stop(): Promise<void>;
}

interface Ready {
  type: "ready";
  gatewayUrl: string;
  upstreamUrl: string;
  exporterMetricsUrl: string;
  routes: StackRoute[];
  pids: { gateway: number; pluginServer: number | undefined; exporter: number | undefined };
}

type Reply =
  | { type: "stats"; stats: GatewayStats }
  | { type: "drained" }
  | { type: "stopped" }
  | { type: "error"; message: string };

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** Starts the local stack in a child process (dist/lib/devstack/process/stack-process.js). */
export async function spawnLocalStack(options: ChildStackOptions = {}): Promise<ChildStack> {
  const args = [__filename];
  if (options.plugin === false) args.push("--no-plugin");
  if (options.flushInterval !== undefined) args.push("--flush-interval", String(options.flushInterval));
  for (const a of options.exporterArgs ?? []) args.push(`--exporter-arg=${a}`);
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // A parent that dies abruptly closes the pipe, and the child stops; this covers a parent exiting normally.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const waiting: Array<(r: Reply | Ready) => void> = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on("line", (line) => {
    let msg: Reply | Ready;
    try {
      msg = JSON.parse(line) as Reply | Ready;
    } catch {
      return; // not ours
    }
    waiting.shift()?.(msg);
  });
  const next = (timeoutMs: number, what: string) =>
    new Promise<Reply | Ready>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`stack child: no answer to ${what} within ${timeoutMs} ms\n${stderr}`)),
        timeoutMs,
      );
      const done = (r: Reply | Ready) => {
        clearTimeout(timer);
        resolve(r);
      };
      waiting.push(done);
      void exited.then(() => {
        clearTimeout(timer);
        reject(
          new Error(`stack child exited (${child.exitCode ?? child.signalCode}) before answering ${what}\n${stderr}`),
        );
      });
    });
  let chain: Promise<unknown> = Promise.resolve();
  const ask = (cmd: string, timeoutMs: number): Promise<Reply> => {
    const p = chain.then(async () => {
      const answer = next(timeoutMs, cmd);
      child.stdin!.write(`${cmd}\n`);
      const r = (await answer) as Reply;
      if (r.type === "error") throw new Error(`stack child: ${cmd}: ${r.message}`);
      return r;
    });
    chain = p.catch(() => undefined);
    return p;
  };

  let ready: Ready;
  try {
    const r = await next(START_TIMEOUT_MS, "start");
    if (r.type !== "ready") throw new Error(`stack child did not start: ${r.type === "error" ? r.message : r.type}`);
    ready = r;
  } catch (err) {
    child.kill("SIGKILL");
    process.off("exit", killOnExit);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    gatewayUrl: ready.gatewayUrl,
    upstreamUrl: ready.upstreamUrl,
    exporterMetricsUrl: ready.exporterMetricsUrl,
    routes: ready.routes,
    pids: ready.pids,
    stats: async () => ((await ask("stats", 5_000)) as { stats: GatewayStats }).stats,
    drain: async (timeoutMs = 10_000) => {
      await ask(`drain ${timeoutMs}`, timeoutMs + 5_000);
    },
    stop: () =>
      (stopping ??= (async () => {
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        if (child.exitCode === null && child.signalCode === null) child.stdin!.end("stop\n");
        await exited;
        clearTimeout(timer);
        process.off("exit", killOnExit);
      })()),
  };
}

/** The child's side. */
async function serve(argv: string[]): Promise<void> {
  const options: LocalStackOptions = { withPrometheus: false, plugin: !argv.includes("--no-plugin"), exporterArgs: [] };
  const fi = argv.indexOf("--flush-interval");
  if (fi >= 0) options.flushInterval = Number(argv[fi + 1]);
  for (const a of argv)
    if (a.startsWith("--exporter-arg=")) options.exporterArgs!.push(a.slice("--exporter-arg=".length));
  const send = (msg: Reply | Ready) => process.stdout.write(`${JSON.stringify(msg)}\n`);

  let stack;
  try {
    stack = await startLocalStack(options);
  } catch (err) {
    send({ type: "error", message: (err as Error).message });
    process.exit(1);
  }
  const s = stack;
  let stopped = false;
  const stop = async (reply: boolean) => {
    if (stopped) return;
    stopped = true;
    try {
      await s.stop();
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
    }
    if (reply) send({ type: "stopped" });
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop(false));
  process.once("SIGINT", () => void stop(false));

  const lines = createInterface({ input: process.stdin });
  lines.on("close", () => void stop(false));
  lines.on("line", (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === "stats") {
      s.gatewayStats().then(
        (stats) => send({ type: "stats", stats }),
        (err: Error) => send({ type: "error", message: err.message }),
      );
    } else if (cmd === "drain") {
      s.drain(Number(arg) || 10_000).then(
        () => send({ type: "drained" }),
        (err: Error) => send({ type: "error", message: err.message }),
      );
    } else if (cmd === "stop") void stop(true);
    else send({ type: "error", message: `unknown command ${JSON.stringify(line)}` });
  });

  send({
    type: "ready",
    gatewayUrl: s.gatewayUrl,
    upstreamUrl: s.upstreamUrl,
    exporterMetricsUrl: s.exporterMetricsUrl,
    routes: s.routes,
    pids: { gateway: process.pid, pluginServer: s.pids.pluginServer, exporter: s.pids.exporter },
  });
}

if (require.main === module) {
  serve(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`stack-process: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
