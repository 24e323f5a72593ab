import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../kong/pluginserver";
import { request } from "undici";

export const EXPORTER_CLI = join(REPO_ROOT, "dist", "lib", "sidecar", "cli.js");

export interface ExporterProcess {
  child: ChildProcess;
  metricsUrl: string;
  /** http://127.0.0.1:PORT or unix:/path, as the plugin's exporter_url takes it. */
  ingestUrl: string;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the real latency-exporter (the built CLI) and waits until it logs its bound addresses.
 * TCP port 0 is allowed: the real ports are read from that log line.
 */
export async function startExporter(args: string[], timeoutMs = 10_000): Promise<ExporterProcess> {
  const child = spawn(process.execPath, [EXPORTER_CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const listening = await new Promise<{ ingest: string; metrics: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`latency-exporter did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = () => {
      for (const line of out.split("\n")) {
        if (!line.includes("latency-exporter listening")) continue;
        clearTimeout(timer);
        child.stdout.off("data", onData);
        resolve(JSON.parse(line) as { ingest: string; metrics: string });
        return;
      }
    };
    child.stdout.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`latency-exporter exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    metricsUrl: `http://${listening.metrics}`,
    ingestUrl: listening.ingest.startsWith("unix:") ? listening.ingest : `http://${listening.ingest}`,
    logs: () => out,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export async function fetchText(url: string): Promise<string> {
  const res = await request(url);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}: ${text}`);
  return text;
}
