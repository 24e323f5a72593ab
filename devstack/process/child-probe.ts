import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startExporter, type ExporterProcess } from "./exporter-process";

/** The preload that answers probeHeap() and toggleProfile() (see signal-probe.ts). */
export const SIGNAL_PROBE = join(__dirname, "signal-probe.js");
/** The preload that samples the heap periodically (see heap-probe.ts). */
export const HEAP_PROBE = join(__dirname, "heap-probe.js");

/** NODE_OPTIONS preloading `modules` (after a forced-GC flag), kept with whatever options we run with. */
export function preloadOptions(...modules: string[]): string {
  return [process.env.NODE_OPTIONS ?? "", "--expose-gc", ...modules.map((m) => `--require ${m}`)].join(" ").trim();
}

/**
 * startExporter() spawns the real sidecar with our environment: it is set for the synchronous start of the
 * call (where the spawn happens) and restored at once, so that nothing else we start inherits it.
 */
export function startExporterWithEnv(args: string[], env: Record<string, string>): Promise<ExporterProcess> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return startExporter(args);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

export interface HeapProbeSample {
  t: number;
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, number>;
}

function lines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function signalAndWait(
  pid: number,
  signal: NodeJS.Signals,
  file: string,
  kind: string,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const before = lines(file).length;
  process.kill(pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const now = lines(file);
    const found = now.slice(before).find((l) => l.kind === kind);
    if (found) return found;
    await sleep(20);
  }
  throw new Error(`process ${pid} did not answer ${signal} within ${timeoutMs} ms (is ${SIGNAL_PROBE} preloaded?)`);
}

/** A full GC in the child, then its memory figures. */
export async function probeHeap(pid: number, file: string, timeoutMs = 10_000): Promise<HeapProbeSample> {
  return (await signalAndWait(pid, "SIGUSR2", file, "heap", timeoutMs)) as unknown as HeapProbeSample;
}

/** Starts the child's CPU profiler. */
export function startProfile(pid: number): void {
  process.kill(pid, "SIGWINCH");
}

/** Stops the child's CPU profiler and waits for the profile to be written. */
export async function stopProfile(pid: number, file: string, timeoutMs = 30_000): Promise<void> {
  await signalAndWait(pid, "SIGWINCH", file, "profile", timeoutMs);
}

/** The last sample heap-probe.ts wrote to `file`, if any. */
export function lastHeapSample(file: string): { t: number; heapUsed: number; rss: number } | undefined {
  const all = lines(file);
  return all[all.length - 1] as { t: number; heapUsed: number; rss: number } | undefined;
}

/** Peak resident set size of a process so far (VmHWM), in bytes. */
export function peakRssBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}
