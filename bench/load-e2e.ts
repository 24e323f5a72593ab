#!/usr/bin/env node
import { writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import { Command } from "commander";
import { request } from "undici";
import { REPO_ROOT } from "../devstack/kong";
import { parseSamples, select } from "../devstack/prometheus/prom-text";
import { writeLatencyPlot } from "../devstack/plot";
import { spawnLocalStack, type ChildStack } from "../devstack/process/stack-process";
import { machineDescription } from "./support/machine";
import { cpuSeconds } from "../devstack/process/proc-stats";
import { progress, stopProgress } from "./support/progress";
import { fmt, median } from "./support/stats";

/**
 * End to end under load with autocannon: the local stack (gateway standing in for Kong, the real plugin server
 * running upstream-latency, the real latency-exporter) served from child processes, or a real Kong. Two parts:
 * - throughput: autocannon at full speed against the gateway with the plugin and against the same stack with the
 *   plugin not enabled, interleaved round by round (local stack only);
 * - latency tracking: a fixed request rate whose upstream delay steps up halfway, client-observed percentiles
 *   (autocannon's per-request response times) against the exporter's (GET /v1/latency), read every second.
 */

/** Where the figure goes by default, next to RESULTS.md. */
export const DEFAULT_PLOT_PATH = join(REPO_ROOT, "bench", "latency-over-time.svg");

const THROUGHPUT_CONNECTIONS = 32;
/**
 * To shop/cart (DEFAULT_ROUTES), an upstream that answers at once: the gateway's own work is all there is to
 * measure, and the latency tracking's Service (default/echo) starts with an empty window.
 */
const THROUGHPUT_PATH = "/cart?delay_ms=0";
/** A bound on the count of a full-speed run: far above what this stack does, so the duration ends it. */
const MAX_RPS_BOUND = 100_000;
const TRACK_RATE = 200;
/**
 * autocannon's overallRate gives each connection rate/connections requests per second, sent back to back from the
 * start of each second, every connection in step: one instance would send bursts of `connections` requests once a
 * second. TRACK_INSTANCES instances started 1/TRACK_INSTANCES s apart spread them into smaller, evenly spaced bursts.
 */
const TRACK_INSTANCES = 10;
/** Per instance: 2 requests per connection per second, which fit in the second even at the slow phase's 300 ms. */
const TRACK_CONNECTIONS_PER_INSTANCE = 10;
const BASE_DELAY_MS = 100;
const SLOW_DELAY_MS = 200;
/** Every request in TAIL_IN_100 of 100 asks for 1.5x the phase's delay, so that p99 sits apart from p50. */
const TAIL_IN_100 = 3;
/** The local exporter's percentile window: short enough that its percentiles follow the step within the run. */
const LOCAL_WINDOW_S = 12;
/** The exporter's window moves in sixths of its length (sidecar/store.ts). */
const WINDOW_SLOTS = 6;
/** Readings of the exporter after the load ends, so that the last shipments (every 1 s) are in. */
const TAIL_READINGS = 3;
const READ_TIMEOUT_MS = 2_000;

/** The upstream delay of request number i in a phase whose delay is `base`: base to base+20%, 3% at 1.5x. */
export function delayFor(i: number, base: number): number {
  if (i % 100 < TAIL_IN_100) return Math.round(base * 1.5);
  return base + Math.round((base * ((i * 37) % 21)) / 100);
}

function phaseLabel(base: number): string {
  return `${base}–${Math.round(base * 1.2)} ms, ${TAIL_IN_100}% at ${Math.round(base * 1.5)} ms`;
}

/** Nearest-rank percentile (as the exporter computes it) of sorted values; NaN for none. */
export function nearestRank(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

interface Pcts {
  count: number;
  p50: number;
  p99: number;
  avg: number;
}

function pcts(values: number[]): Pcts {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return { count: s.length, p50: nearestRank(s, 0.5), p99: nearestRank(s, 0.99), avg: s.length ? sum / s.length : NaN };
}

// ---------------------------------------------------------------------------------------------------------------
// autocannon

interface CannonRun {
  result: autocannon.Result;
}

/** One autocannon run, bounded by its duration (and a hard stop 15 s past it) and by maxOverallRequests. */
function cannon(opts: autocannon.Options, onResponse?: (status: number, ms: number) => void): Promise<CannonRun> {
  return new Promise((resolve, reject) => {
    const durationS = Number(opts.duration ?? 10);
    const inst = autocannon({ timeout: 10, ...opts }, (err: Error | null, result: autocannon.Result) => {
      clearTimeout(hard);
      if (err) reject(err);
      else resolve({ result });
    });
    const hard = setTimeout(() => inst.stop(), (durationS + 15) * 1000);
    if (onResponse)
      inst.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => onResponse(status, ms));
  });
}

async function getText(url: string): Promise<string> {
  const res = await request(url, { headersTimeout: READ_TIMEOUT_MS, bodyTimeout: READ_TIMEOUT_MS });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  return text;
}

interface ExporterReading {
  window_seconds: number;
  count: number;
  average_ms: number;
  p50_ms: number;
  p99_ms: number;
}

async function readLatency(metricsUrl: string, namespace: string, service: string): Promise<ExporterReading> {
  const q = new URLSearchParams({ namespace, service });
  return JSON.parse(await getText(`${metricsUrl}/v1/latency?${q.toString()}`)) as ExporterReading;
}

/** kong_upstream_latency_ms _count and _sum over every series of one Kubernetes Service, from /metrics. */
async function readTotals(
  metricsUrl: string,
  namespace: string,
  service: string,
): Promise<{ count: number; sum: number }> {
  const samples = parseSamples(await getText(`${metricsUrl}/metrics`));
  const sumOf = (name: string) => select(samples, name, { namespace, service }).reduce((n, s) => n + s.value, 0);
  return { count: sumOf("kong_upstream_latency_ms_count"), sum: sumOf("kong_upstream_latency_ms_sum") };
}

// ---------------------------------------------------------------------------------------------------------------
// throughput

export interface ThroughputRun {
  variant: "plugin" | "no-plugin";
  round: number;
  durationS: number;
  requests: number;
  rps: number;
  errors: number;
  non2xx: number;
  clientP50Ms: number;
  clientP99Ms: number;
  /** Log phases still pending when the load stopped, and how long they took to finish. */
  backlog: number;
  backlogS: number;
  /** CPU milliseconds per 1000 requests, by process, from /proc (the client from process.cpuUsage()). */
  cpuMsPer1k: { gateway: number; pluginServer: number; exporter: number; client: number };
}

export interface ThroughputResult {
  connections: number;
  durationS: number;
  rounds: number;
  runs: ThroughputRun[];
}

function stackCpu(stack: ChildStack): { gateway: number; pluginServer: number; exporter: number; client: number } {
  const c = process.cpuUsage();
  const safe = (pid: number | undefined) => (pid === undefined ? NaN : cpuSeconds(pid));
  return {
    gateway: safe(stack.pids.gateway),
    pluginServer: safe(stack.pids.pluginServer),
    exporter: safe(stack.pids.exporter),
    client: (c.user + c.system) / 1e6,
  };
}

async function waitBacklog(stack: ChildStack, timeoutMs: number): Promise<{ backlog: number; seconds: number }> {
  const t0 = Date.now();
  const backlog = (await stack.stats()).pendingLogs;
  let pending = backlog;
  while (pending > 0 && Date.now() - t0 < timeoutMs) {
    await sleep(25);
    pending = (await stack.stats()).pendingLogs;
  }
  if (pending > 0) throw new Error(`${pending} log phases still pending ${timeoutMs} ms after the load stopped`);
  return { backlog, seconds: backlog > 0 ? (Date.now() - t0) / 1000 : 0 };
}

async function runThroughput(
  stacks: Record<ThroughputRun["variant"], ChildStack>,
  quick: boolean,
): Promise<ThroughputResult> {
  const durationS = quick ? 10 : 30;
  const rounds = quick ? 2 : 3;
  const warmS = quick ? 2 : 3;
  const variants: ThroughputRun["variant"][] = ["plugin", "no-plugin"];
  const total = variants.length * warmS + rounds * variants.length * durationS;
  const bar = progress("load e2e: throughput, plugin vs no plugin (s)", total);
  let base = 0;
  const timed = async <T>(seconds: number, p: Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const tick = setInterval(() => bar.update(base + Math.min(seconds, Math.floor((Date.now() - t0) / 1000))), 1000);
    try {
      return await p;
    } finally {
      clearInterval(tick);
      base += seconds;
      bar.update(base);
    }
  };
  const opts = (stack: ChildStack, seconds: number): autocannon.Options => ({
    url: `${stack.gatewayUrl}${THROUGHPUT_PATH}`,
    connections: THROUGHPUT_CONNECTIONS,
    duration: seconds,
    maxOverallRequests: MAX_RPS_BOUND * seconds,
  });

  // Warm-up: JIT, connection pools and the plugin's first shipments, out of the measured runs.
  for (const v of variants) {
    await timed(warmS, cannon(opts(stacks[v], warmS)));
    await waitBacklog(stacks[v], 60_000);
    await stacks[v].drain(30_000);
  }
  const runs: ThroughputRun[] = [];
  for (let r = 0; r < rounds; r++) {
    // Each round starts with the other variant (A B, B A, ...), so that drift in the machine's load favours neither.
    for (let k = 0; k < variants.length; k++) {
      const variant = variants[(k + r) % variants.length];
      const stack = stacks[variant];
      const cpu0 = stackCpu(stack);
      const { result } = await timed(durationS, cannon(opts(stack, durationS)));
      const { backlog, seconds } = await waitBacklog(stack, 60_000);
      const cpu1 = stackCpu(stack);
      await stack.drain(30_000);
      const n = result.requests.total;
      const per1k = (a: number, b: number) => ((b - a) * 1e6) / Math.max(1, n);
      runs.push({
        variant,
        round: r,
        durationS: result.duration,
        requests: n,
        rps: result["2xx"] / result.duration,
        errors: result.errors,
        non2xx: result.non2xx,
        clientP50Ms: result.latency.p50,
        clientP99Ms: result.latency.p99,
        backlog,
        backlogS: seconds,
        cpuMsPer1k: {
          gateway: per1k(cpu0.gateway, cpu1.gateway),
          pluginServer: per1k(cpu0.pluginServer, cpu1.pluginServer),
          exporter: per1k(cpu0.exporter, cpu1.exporter),
          client: per1k(cpu0.client, cpu1.client),
        },
      });
    }
  }
  bar.stop();
  return { connections: THROUGHPUT_CONNECTIONS, durationS, rounds, runs };
}

// ---------------------------------------------------------------------------------------------------------------
// latency tracking

export interface Reading {
  /** Seconds since the load started. */
  tS: number;
  /** Wall-clock ms of the reading (the exporter's window is aligned on wall-clock slots). */
  atMs: number;
  exporter?: { count: number; averageMs: number; p50: number; p99: number };
  error?: string;
  /** Client responses completed in the exporter's current window. */
  clientWindow: Pcts;
  /** X-Kong-Upstream-Latency of the same responses, when the gateway sends it. */
  kongWindow: Pcts;
  /** The window covers [windowFromS, tS], in seconds since the load started (negative: from before it). */
  windowFromS: number;
}

export interface SecondBucket {
  /** The second [s, s+1) since the load started, by response completion. */
  s: number;
  client: Pcts;
  kong: Pcts;
}

export interface PhaseSummary {
  label: string;
  fromS: number;
  toS: number;
  client: Pcts;
  kong: Pcts;
  /** The last exporter reading of the phase, and the client's figures over that reading's window. */
  reading?: Reading;
  /** True when that reading's window lies inside the phase. */
  windowInPhase: boolean;
}

export interface LatencyTracking {
  url: string;
  metricsUrl: string;
  namespace: string;
  service: string;
  rate: number;
  instances: number;
  connections: number;
  durationS: number;
  stepAtS: number;
  windowS: number;
  sent: number;
  completed: number;
  errors: number;
  non2xx: number;
  /** From the start to the last response, in seconds (the instances start up to a second apart). */
  elapsedS: number;
  seconds: SecondBucket[];
  readings: Reading[];
  phases: PhaseSummary[];
  client: Pcts;
  kong: Pcts;
  /** client − X-Kong-Upstream-Latency, request by request: the gateway's and the client's own time. */
  overheadMs: { p50: number; p99: number } | undefined;
  /** Per-request sum of the X-Kong-Upstream-Latency headers, when every response had one. */
  kongSumMs: number | undefined;
  /** Change of the exporter's kong_upstream_latency_ms _count and _sum over the run (from /metrics). */
  exporterTotals: { count: number; sum: number } | { error: string };
}

interface Done {
  atMs: number;
  ms: number;
  kong: number;
}

interface TrackingOptions {
  baseUrl: string;
  path: string;
  metricsUrl: string;
  namespace: string;
  service: string;
  durationS: number;
  /** Resolves once the exporter holds every request sent. */
  drain?: () => Promise<void>;
}

async function runTracking(o: TrackingOptions): Promise<LatencyTracking> {
  const first = await readLatency(o.metricsUrl, o.namespace, o.service).catch((err: Error) => {
    throw new Error(`the exporter's GET /v1/latency at ${o.metricsUrl} did not answer: ${err.message}`);
  });
  const windowS = first.window_seconds;
  if (!(windowS > 0))
    throw new Error(
      `the exporter's GET /v1/latency at ${o.metricsUrl} has no window_seconds: is it the latency-exporter?`,
    );
  const slotMs = (windowS * 1000) / WINDOW_SLOTS;
  const before = await readTotals(o.metricsUrl, o.namespace, o.service).catch((err: Error) => ({ error: err.message }));
  const stepAtS = o.durationS / 2;
  const sep = o.path.includes("?") ? "&" : "?";
  const done: Done[] = [];
  let sent = 0;
  let non2xx = 0;
  let lastKong = NaN;
  let t0 = 0;
  const bar = progress("load e2e: latency tracking (s)", o.durationS + TAIL_READINGS);

  const setupRequest = (req: autocannon.Request): autocannon.Request => {
    const base = Date.now() - t0 < stepAtS * 1000 ? BASE_DELAY_MS : SLOW_DELAY_MS;
    return { ...req, path: `${o.path}${sep}delay_ms=${delayFor(sent++, base)}` };
  };
  const onResponse = (_status: number, _body: string, _ctx: object, headers: autocannon.Request["headers"]) => {
    lastKong = NaN;
    for (const [k, v] of Object.entries(headers ?? {})) {
      if (k.toLowerCase() === "x-kong-upstream-latency") lastKong = Number(v);
    }
  };
  const readings: Omit<Reading, "clientWindow" | "kongWindow" | "windowFromS">[] = [];
  const onDone = (status: number, ms: number) => {
    if (status >= 200 && status < 300) done.push({ atMs: Date.now(), ms, kong: lastKong });
    else non2xx++;
    lastKong = NaN;
  };
  const perInstance = TRACK_RATE / TRACK_INSTANCES;
  t0 = Date.now();
  // Each instance ends by count (rate × duration: its connections then finish their last request, so that no
  // request is cut off and the exporter's totals can be checked exactly); the duration, with slack, bounds it in time.
  const load = Promise.all(
    Array.from({ length: TRACK_INSTANCES }, async (_, k) => {
      await sleep(Math.max(0, t0 + (k * 1000) / TRACK_INSTANCES - Date.now()));
      return cannon(
        {
          url: `${o.baseUrl}${o.path}`,
          connections: TRACK_CONNECTIONS_PER_INSTANCE,
          overallRate: perInstance,
          duration: o.durationS + 5,
          maxOverallRequests: perInstance * o.durationS,
          requests: [{ method: "GET", setupRequest, onResponse }],
        },
        onDone,
      );
    }),
  );
  // Reads the exporter once a second, on the second; bounded by count.
  const reader = (async () => {
    for (let k = 1; k <= o.durationS + TAIL_READINGS; k++) {
      await sleep(Math.max(0, t0 + k * 1000 - Date.now()));
      const atMs = Date.now();
      try {
        const r = await readLatency(o.metricsUrl, o.namespace, o.service);
        readings.push({
          tS: (atMs - t0) / 1000,
          atMs,
          exporter: { count: r.count, averageMs: r.average_ms, p50: r.p50_ms, p99: r.p99_ms },
        });
      } catch (err) {
        readings.push({ tS: (atMs - t0) / 1000, atMs, error: (err as Error).message });
      }
      bar.update(k);
    }
  })();
  const results = (await load).map((c) => c.result);
  await reader;
  bar.stop();
  if (o.drain) await o.drain();
  const after = await readTotals(o.metricsUrl, o.namespace, o.service).catch((err: Error) => ({ error: err.message }));
  const errors = results.reduce((n, x) => n + x.errors, 0);
  const elapsedS = Math.max(...results.map((x) => x.finish.getTime())) / 1000 - t0 / 1000;

  const within = (fromMs: number, toMs: number) => done.filter((d) => d.atMs >= fromMs && d.atMs < toMs);
  const kongOf = (ds: Done[]) => pcts(ds.map((d) => d.kong).filter(Number.isFinite));
  const full: Reading[] = readings.map((r) => {
    const fromMs = (Math.floor(r.atMs / slotMs) - (WINDOW_SLOTS - 1)) * slotMs;
    const ds = within(fromMs, r.atMs + 1);
    return { ...r, clientWindow: pcts(ds.map((d) => d.ms)), kongWindow: kongOf(ds), windowFromS: (fromMs - t0) / 1000 };
  });
  const seconds: SecondBucket[] = [];
  for (let s = 0; s < o.durationS + 1; s++) {
    const ds = within(t0 + s * 1000, t0 + (s + 1) * 1000);
    if (ds.length) seconds.push({ s, client: pcts(ds.map((d) => d.ms)), kong: kongOf(ds) });
  }
  // The plugin ships every second: a window that starts a second into a phase holds nothing from before it (and,
  // in the first phase, none of the client's connection set-up).
  const phaseFloor = (fromS: number) => fromS + 1;
  const phase = (label: string, fromS: number, toS: number): PhaseSummary => {
    // By when the request was sent, which decided its delay; the last phase takes every later one too.
    const last = toS === o.durationS;
    const ds = done.filter((d) => d.atMs - d.ms >= t0 + fromS * 1000 && (last || d.atMs - d.ms < t0 + toS * 1000));
    const reading = [...full].reverse().find((r) => r.tS <= toS + 0.5 && r.exporter);
    return {
      label,
      fromS,
      toS,
      client: pcts(ds.map((d) => d.ms)),
      kong: kongOf(ds),
      reading,
      windowInPhase: reading !== undefined && reading.windowFromS >= phaseFloor(fromS),
    };
  };
  const withKong = done.filter((d) => Number.isFinite(d.kong));
  const over = withKong.map((d) => d.ms - d.kong).sort((a, b) => a - b);
  return {
    url: `${o.baseUrl}${o.path}`,
    metricsUrl: o.metricsUrl,
    namespace: o.namespace,
    service: o.service,
    rate: TRACK_RATE,
    instances: TRACK_INSTANCES,
    connections: TRACK_INSTANCES * TRACK_CONNECTIONS_PER_INSTANCE,
    durationS: o.durationS,
    stepAtS,
    windowS,
    sent,
    completed: results.reduce((n, x) => n + x.requests.total, 0),
    errors,
    non2xx,
    elapsedS,
    seconds,
    readings: full,
    phases: [phase(phaseLabel(BASE_DELAY_MS), 0, stepAtS), phase(phaseLabel(SLOW_DELAY_MS), stepAtS, o.durationS)],
    client: pcts(done.map((d) => d.ms)),
    kong: kongOf(done),
    overheadMs: over.length ? { p50: nearestRank(over, 0.5), p99: nearestRank(over, 0.99) } : undefined,
    kongSumMs:
      withKong.length === done.length && done.length > 0 ? withKong.reduce((n, d) => n + d.kong, 0) : undefined,
    exporterTotals:
      "error" in before
        ? before
        : "error" in after
          ? after
          : { count: after.count - before.count, sum: after.sum - before.sum },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the benchmark

export interface LoadE2eOptions {
  quick: boolean;
  /** A Kong proxy URL (http://host:port); default the local stack. */
  target?: string;
  /** The exporter's metrics listener (http://host:port), required with `target`. */
  metrics?: string;
  /** With `target`: the path routed to the Kubernetes Service below; default /echo. */
  path?: string;
  /** The Kubernetes Service whose latency the exporter reports; default default/echo. */
  namespace?: string;
  service?: string;
}

export interface LoadE2eResult {
  mode: "local" | "target";
  quick: boolean;
  machine: string;
  startedAt: string;
  runSeconds: number;
  throughput?: ThroughputResult;
  tracking: LatencyTracking;
}

function checkUrl(what: string, url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${what} must be a URL such as http://127.0.0.1:8000, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`${what} must be http(s), got ${url}`);
  return u.origin;
}

export async function runLoadE2e(opts: LoadE2eOptions): Promise<LoadE2eResult> {
  const started = Date.now();
  const namespace = opts.namespace ?? "default";
  const service = opts.service ?? "echo";
  const durationS = opts.quick ? 30 : 60;
  if (opts.target !== undefined || opts.metrics !== undefined) {
    if (!opts.target || !opts.metrics)
      throw new Error("--target and --metrics go together: the Kong proxy URL and the latency-exporter's metrics URL");
    const tracking = await runTracking({
      baseUrl: checkUrl("--target", opts.target),
      path: opts.path ?? "/echo",
      metricsUrl: checkUrl("--metrics", opts.metrics),
      namespace,
      service,
      durationS,
    });
    return {
      mode: "target",
      quick: opts.quick,
      machine: machineDescription(),
      startedAt: new Date(started).toISOString(),
      runSeconds: (Date.now() - started) / 1000,
      tracking,
    };
  }

  const exporterArgs = ["--percentile-window", `${LOCAL_WINDOW_S}s`];
  const settled = await Promise.allSettled([
    spawnLocalStack({ plugin: true, exporterArgs }),
    spawnLocalStack({ plugin: false, exporterArgs }),
  ]);
  const stacks = settled
    .filter((s): s is PromiseFulfilledResult<ChildStack> => s.status === "fulfilled")
    .map((s) => s.value);
  try {
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;
    const [withPlugin, without] = stacks as [ChildStack, ChildStack];
    const throughput = await runThroughput({ plugin: withPlugin, "no-plugin": without }, opts.quick);
    await without.stop();
    const tracking = await runTracking({
      baseUrl: withPlugin.gatewayUrl,
      path: "/echo",
      metricsUrl: withPlugin.exporterMetricsUrl,
      namespace,
      service,
      durationS,
      drain: () => withPlugin.drain(30_000),
    });
    return {
      mode: "local",
      quick: opts.quick,
      machine: machineDescription(),
      startedAt: new Date(started).toISOString(),
      runSeconds: (Date.now() - started) / 1000,
      throughput,
      tracking,
    };
  } finally {
    await Promise.allSettled(stacks.map((s) => s.stop()));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// rendering

const ms = (n: number, d = 1) => (Number.isFinite(n) ? `${fmt(n, d)}` : "–");
const pair = (p: { p50: number; p99: number } | undefined, d = 1) => (p ? `${ms(p.p50, d)} / ${ms(p.p99, d)}` : "–");
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${fmt(a / b)}x` : "–");
const met = (ok: boolean) => (ok ? "**met**" : "**not met**");
const int = (n: number) => Math.round(n).toLocaleString("en-US");

function plotData(t: LatencyTracking, r: LoadE2eResult) {
  const ok = t.readings.filter((x) => x.exporter && x.exporter.count > 0);
  return {
    subtitle: [
      `${t.rate} req/s to ${r.mode === "local" ? "the local gateway's /echo (Kubernetes Service default/echo)" : `${t.url} (${t.namespace}/${t.service})`}; the upstream delay steps up at ${fmt(t.stepAtS, 0)} s.`,
      `Load: autocannon, ${t.instances} staggered instances, ${t.connections} connections. Exporter: GET /v1/latency each second, ${t.windowS} s window (${fmt(t.windowS / WINDOW_SLOTS, 0)} s steps).`,
      `Machine: ${r.machine}; ${r.startedAt.slice(0, 16).replace("T", " ")} UTC.`,
    ],
    xMaxS: t.durationS + TAIL_READINGS,
    windowS: t.windowS,
    phases: [
      { fromS: 0, toS: t.stepAtS, label: `upstream delay ${phaseLabel(BASE_DELAY_MS)}` },
      { fromS: t.stepAtS, toS: t.durationS, label: `upstream delay ${phaseLabel(SLOW_DELAY_MS)}` },
    ],
    clientPerSecond: t.seconds
      .filter((s) => s.s < t.durationS)
      .map((s) => ({ tS: s.s + 0.5, p50: s.client.p50, p99: s.client.p99 })),
    clientWindow: t.readings
      .filter((x) => x.clientWindow.count > 0)
      .map((x) => ({ tS: x.tS, p50: x.clientWindow.p50, p99: x.clientWindow.p99 })),
    exporter: ok.map((x) => ({ tS: x.tS, p50: x.exporter!.p50, p99: x.exporter!.p99 })),
    footer: [
      "Client: autocannon's response time per request (request written to response complete), nearest-rank percentiles. Exporter: the upstream latency the plugin",
      "recorded (Kong's latencies.proxy), shipped every 1 s, so it excludes the gateway's own time and trails the client by up to a second plus its window's steps.",
    ],
  };
}

/**
 * The markdown section; also writes the figure to `plotPath` (SVG) and links it relative to `markdownDir`
 * (default: the figure's directory, i.e. RESULTS.md beside it).
 */
export function renderLoadE2e(
  r: LoadE2eResult,
  plotPath: string = DEFAULT_PLOT_PATH,
  markdownDir: string = dirname(plotPath),
): string {
  const t = r.tracking;
  writeLatencyPlot(plotPath, plotData(t, r));
  const link = relative(markdownDir, plotPath).split("\\").join("/");
  const out: string[] = ["## End to end under load (autocannon)", ""];
  const where =
    r.mode === "local"
      ? "the local stack on loopback: the gateway standing in for Kong's data plane, the echo upstream and Kong's side of the plugin protocol in one child process, the real `kong-js-pluginserver` running upstream-latency (global) and the real latency-exporter in their own processes, autocannon in the benchmark's process"
      : `a real Kong at ${t.url}, its latency-exporter at ${t.metricsUrl}`;
  out.push(
    `Against ${where}. ${r.quick ? "Quick" : "Full"} run of ${fmt(r.runSeconds / 60, 1)} min on ${r.machine}, ${r.startedAt}. Absolute figures are from this machine; the comparisons are ratios within the same run.`,
    "",
  );

  // Throughput.
  out.push("### Gateway throughput with the plugin vs without", "");
  if (!r.throughput) {
    out.push(
      "Not measured against a real Kong: that needs the same Kong without the plugin, which this benchmark cannot switch. To compare, run this benchmark twice against your Kong, with the plugin enabled and disabled, or use the local stack (no `--target`).",
      "",
    );
  } else {
    const th = r.throughput;
    const of = (v: ThroughputRun["variant"]) => th.runs.filter((x) => x.variant === v);
    const P = of("plugin");
    const N = of("no-plugin");
    const mrps = (xs: ThroughputRun[]) => median(xs.map((x) => x.rps));
    const cpuKey = (xs: ThroughputRun[], k: keyof ThroughputRun["cpuMsPer1k"]) =>
      median(xs.map((x) => x.cpuMsPer1k[k]));
    const stackCpuOf = (xs: ThroughputRun[]) =>
      cpuKey(xs, "gateway") + cpuKey(xs, "pluginServer") + cpuKey(xs, "exporter");
    const rp = mrps(P);
    const rn = mrps(N);
    const paired = Array.from({ length: th.rounds }, (_, k) => {
      const inRound = th.runs.filter((x) => x.round === k);
      return (
        (inRound.find((x) => x.variant === "plugin")?.rps ?? NaN) /
        (inRound.find((x) => x.variant === "no-plugin")?.rps ?? NaN)
      );
    });
    const sustained = (xs: ThroughputRun[]) => median(xs.map((x) => x.requests / (x.durationS + x.backlogS)));
    out.push(
      `autocannon at full speed, ${th.connections} connections, ${th.durationS} s per run, \`GET ${THROUGHPUT_PATH}\` (Kong Service shop.cart.80, an upstream that answers at once, so that the gateway's own work is all there is to measure), against two identical stacks: the same processes, but in one the gateway runs upstream-latency in its log phase through the plugin server, in the other it runs no plugin (Kong with the plugin not enabled). ${th.rounds} rounds, each starting with the other variant (A B, B A, ...), after a warm-up of each; medians. CPU from /proc, per 1000 requests, including the time the log phases took to catch up after the load stopped.`,
      "",
      "| run | variant | req/s | client p50 / p99 (ms) | log phases pending at the end | gateway CPU use (100% = one core) | CPU ms / 1k req: gateway | plugin server | exporter | autocannon |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...th.runs.map(
        (x, i) =>
          `| ${i + 1} | ${x.variant === "plugin" ? "with plugin" : "without"} | ${int(x.rps)} | ${ms(x.clientP50Ms, 0)} / ${ms(x.clientP99Ms, 0)} | ${int(x.backlog)}${x.backlog ? ` (${fmt(x.backlogS, 1)} s)` : ""} | ${fmt((x.cpuMsPer1k.gateway * x.rps) / 1e4, 0)}% | ${fmt(x.cpuMsPer1k.gateway, 0)} | ${fmt(x.cpuMsPer1k.pluginServer, 0)} | ${fmt(x.cpuMsPer1k.exporter, 0)} | ${fmt(x.cpuMsPer1k.client, 0)} |`,
      ),
      "",
      `- Requests per second with the plugin / without: ${int(rp)} / ${int(rn)} = **${ratio(rp, rn)}** (medians)${P.some((x) => x.backlogS >= 0.05) ? `; counting the time the log phases took to catch up after the load stopped, ${ratio(sustained(P), sustained(N))}` : ""}. Round by round (the two runs of a round are back to back): ${paired.map((x) => ratio(x, 1)).join(", ")}; their spread is the machine's noise between runs.`,
      `- CPU of the stack's processes (gateway + plugin server + exporter) per 1000 requests, with the plugin / without: ${fmt(stackCpuOf(P), 0)} / ${fmt(stackCpuOf(N), 0)} ms = ${ratio(stackCpuOf(P), stackCpuOf(N))}. The plugin's share: ${fmt(cpuKey(P, "pluginServer"), 0)} ms in the plugin server (the plugin itself, kong-pdk's RPC server and msgpack), ${fmt(cpuKey(P, "gateway") - cpuKey(N, "gateway"), 0)} ms more in the gateway, and ${fmt(cpuKey(P, "exporter") - cpuKey(N, "exporter"), 0)} ms more in the exporter.`,
      `- What limits the rate: the gateway process, whose JavaScript runs on one thread (V8's garbage collector adds a little on other threads) and which proxies, serves the echo upstream and, with the plugin, plays Kong's side of the external-plugin protocol (a msgpack RPC exchange over the plugin server's Unix socket for the log event and for each PDK call, as Kong's nginx workers do in Lua). It is the busiest process in both variants, near one full core (see its CPU use), so its extra work with the plugin sets the ratio. In a real Kong that work is done by Kong's Lua, whose cost differs from this Node stand-in's: the ratio is this stack's, not a prediction for Kong; run the latency part against your Kong with \`--target\`, and compare its throughput with the plugin enabled and disabled.`,
      `- Errors: ${th.runs.reduce((n, x) => n + x.errors, 0)} connection errors, ${th.runs.reduce((n, x) => n + x.non2xx, 0)} non-2xx responses over ${int(th.runs.reduce((n, x) => n + x.requests, 0))} requests.`,
      "",
    );
  }

  // Latency tracking.
  out.push("### Client-observed latency vs the exporter's", "");
  const windowNote =
    r.mode === "local"
      ? `The local exporter runs with \`--percentile-window ${t.windowS}s\` (default 60 s) so that its percentiles follow the step within the run; its window moves in ${fmt(t.windowS / WINDOW_SLOTS, 0)} s steps.`
      : `The exporter's window is ${t.windowS} s (moving in ${fmt(t.windowS / WINDOW_SLOTS, 0)} s steps).`;
  out.push(
    `autocannon at a fixed ${t.rate} req/s (${t.instances} instances of \`overallRate\` ${fmt(t.rate / t.instances, 0)}, started ${fmt(1000 / t.instances, 0)} ms apart so that their once-a-second bursts spread over the second; ${t.connections} connections in all) for ${t.durationS} s to \`${r.mode === "local" ? "/echo" : t.url}\` with \`?delay_ms=\`: ${phaseLabel(BASE_DELAY_MS)} for the first half, then ${phaseLabel(SLOW_DELAY_MS)}${r.mode === "target" ? " (the step shows only if the upstream honours `delay_ms`)" : ""}. Every second the exporter's \`GET /v1/latency?namespace=${t.namespace}&service=${t.service}\` is read, and the client's percentiles are computed over the same window (the responses completed in the exporter's current window). ${windowNote} ${t.completed.toLocaleString("en-US")} responses in ${fmt(t.elapsedS, 1)} s, ${t.errors} errors, ${t.non2xx} non-2xx.`,
    "",
    `![p50 and p99 over time, client vs exporter](${link})`,
    "",
    "The exporter reports the upstream latency the plugin recorded, Kong's `latencies.proxy` (from the end of balancing to the upstream's first response byte), which excludes the gateway's own time and the client's: the client's figures are expected to be at or above the exporter's. The gateway also sends that latency in `X-Kong-Upstream-Latency`, request by request, the ground truth of what the plugin must record. In the first second the client's figures also include opening its connections, which no upstream latency holds.",
    "",
    "| phase | client p50 / p99 (ms) | X-Kong-Upstream-Latency p50 / p99 | exporter p50 / p99, last reading of the phase | client p50 / p99 over that window | exporter ÷ client, p50 / p99 | exporter ÷ X-Kong-Upstream-Latency over that window, p50 / p99 |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...t.phases.map((p) => {
      const rd = p.reading;
      const e = rd?.exporter;
      return `| ${fmt(p.fromS, 0)}–${fmt(p.toS, 0)} s: ${p.label} | ${pair(p.client)} | ${pair(p.kong, 0)} | ${e ? `${pair(e, 0)} (t=${fmt(rd.tS, 1)} s, window from ${fmt(rd.windowFromS, 1)} s${p.windowInPhase ? "" : p.fromS === 0 ? ", so before the load too" : ", so the previous phase too"})` : "–"} | ${rd ? pair(rd.clientWindow) : "–"} | ${e ? `${ratio(e.p50, rd.clientWindow.p50)} / ${ratio(e.p99, rd.clientWindow.p99)}` : "–"} | ${e && rd.kongWindow.count ? `${ratio(e.p50, rd.kongWindow.p50)} / ${ratio(e.p99, rd.kongWindow.p99)}` : "–"} |`;
    }),
    "",
  );

  // The readings whose window lies inside one phase (a second past its start: the plugin ships every second):
  // steady state, where the exporter and the client see the same requests. Across the step, the plot shows them.
  const steady = t.readings.filter(
    (x) =>
      x.exporter &&
      x.exporter.count > 0 &&
      x.clientWindow.count > 0 &&
      t.phases.some((p) => x.windowFromS >= p.fromS + 1 && x.tS <= p.toS + 0.5),
  );
  const ratios = (k: "p50" | "p99", of: "clientWindow" | "kongWindow") =>
    steady.filter((x) => x[of].count > 0).map((x) => x.exporter![k] / x[of][k]);
  const range = (xs: number[]) =>
    xs.length ? `median ${fmt(median(xs), 3)} (${fmt(Math.min(...xs), 3)} to ${fmt(Math.max(...xs), 3)})` : "–";
  const tot = t.exporterTotals;
  const lines: string[] = [];
  if (steady.length) {
    lines.push(
      `- Over the ${steady.length} readings whose window lies inside one phase: exporter ÷ client over the same window, p50 ${range(ratios("p50", "clientWindow"))}, p99 ${range(ratios("p99", "clientWindow"))}.`,
    );
    if (t.kong.count) {
      const k50 = ratios("p50", "kongWindow");
      const k99 = ratios("p99", "kongWindow");
      const worst = Math.max(...[...k50, ...k99].map((x) => Math.abs(x - 1)));
      lines.push(
        `- Exporter ÷ X-Kong-Upstream-Latency over the same window (what the plugin was given): p50 ${range(k50)}, p99 ${range(k99)}; within 1%: ${met(worst <= 0.01)}.`,
      );
    }
  } else {
    lines.push(
      `- No reading's window lies inside one phase (the exporter's window is ${t.windowS} s, a phase ${fmt(t.stepAtS, 0)} s): compare over the plot.`,
    );
  }
  if (t.overheadMs) {
    lines.push(
      `- Client minus X-Kong-Upstream-Latency, request by request (the gateway's own time plus the client's): p50 ${ms(t.overheadMs.p50)} ms, p99 ${ms(t.overheadMs.p99)} ms; client ≥ exporter, as expected.`,
    );
  }
  if ("error" in tot) {
    lines.push(`- The exporter's /metrics could not be read: ${tot.error}.`);
  } else {
    const exact = t.kongSumMs !== undefined && tot.count === t.kong.count && tot.sum === t.kongSumMs;
    lines.push(
      `- Whole run, from /metrics: \`kong_upstream_latency_ms_count\` grew by ${int(tot.count)} for ${int(t.client.count)} 2xx responses${t.non2xx ? ` (+${t.non2xx} non-2xx)` : ""}; average ${ms(tot.sum / tot.count, 2)} ms (\`_sum\`/\`_count\`) vs the client's ${ms(t.client.avg, 2)} ms = ${ratio(tot.sum / tot.count, t.client.avg)}${
        t.kongSumMs !== undefined
          ? `; \`_sum\` ${int(tot.sum)} ms vs the sum of X-Kong-Upstream-Latency ${int(t.kongSumMs)} ms: ${exact ? "exact" : "differ"}${r.mode === "local" ? ` (every request counted exactly once: ${met(exact)})` : " (other traffic to the same Service counts too)"}`
          : ""
      }.`,
    );
  }
  if (!t.readings.some((x) => x.exporter && x.exporter.count > 0)) {
    lines.push(
      `- **The exporter reported no request for ${t.namespace}/${t.service}**: check \`--namespace\` and \`--service\` (the Kubernetes Service behind \`${r.mode === "local" ? "/echo" : t.url}\`) and that the plugin is enabled on its route.`,
    );
  }
  const errs = t.readings.filter((x) => x.error);
  if (errs.length)
    lines.push(`- ${errs.length} readings of /v1/latency failed, the last: ${errs[errs.length - 1].error}.`);
  out.push(...lines, "");
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const o = new Command("load-e2e")
    .description(
      "End to end under load with autocannon: the local stack by default, or a real Kong (--target with --metrics). Writes the markdown section to stdout and the figure to --plot.",
    )
    .option("--quick", "30 s of latency tracking and 2 rounds of 10 s throughput runs (about 1.5 min)", false)
    .option("--target <url>", "a Kong proxy URL, e.g. http://127.0.0.1:8000 (default: the local stack on loopback)")
    .option("--metrics <url>", "the latency-exporter's metrics URL, e.g. http://127.0.0.1:9542 (with --target)")
    .option("--path <path>", "with --target: the path routed to the Service", "/echo")
    .option("--namespace <ns>", "the Kubernetes namespace of the Service", "default")
    .option("--service <name>", "the Kubernetes Service", "echo")
    .option("--plot <file>", "where to write the SVG figure", DEFAULT_PLOT_PATH)
    .option("--json <file>", "also write the raw result as JSON")
    .allowExcessArguments(false)
    .parse()
    .opts<{
      quick: boolean;
      target?: string;
      metrics?: string;
      path: string;
      namespace: string;
      service: string;
      plot: string;
      json?: string;
    }>();
  let result: LoadE2eResult;
  try {
    result = await runLoadE2e(o);
  } finally {
    stopProgress();
  }
  if (o.json) writeFileSync(o.json, JSON.stringify(result, null, 1));
  process.stdout.write(renderLoadE2e(result, o.plot));
  process.stderr.write(`wrote ${o.plot}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    stopProgress();
    process.stderr.write(`load-e2e: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
