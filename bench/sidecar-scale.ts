import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Histogram as PromHistogram, Registry } from "prom-client";
import { request } from "undici";
import { Recorder } from "../plugin/recorder";
import { ChunkWriter } from "../sidecar/chunk-writer";
import { HistogramText, renderHistogramSeries, renderPercentileSeries, SummaryText } from "../sidecar/exposition";
import { FAMILIES, KONG_BUCKETS, percentileFamily } from "../sidecar/families";
import { LABEL_NAMES, serviceLabels } from "../sidecar/labels";
import type { Series } from "../sidecar/series";
import { Store } from "../sidecar/store";
import { type ExporterProcess } from "../devstack/process/exporter-process";
import { SCRAPE_ACCEPT, SCRAPE_ACCEPT_NATIVE_HISTOGRAMS } from "../devstack/prometheus/prometheus";
import { observations, serviceRef } from "./support/latency-profile";
import { INGEST_PATH, WIRE_VERSION, type IngestPayload } from "../wire/payload";
import { validatePayload } from "../wire/validate";
import {
  peakRssBytes,
  preloadOptions,
  probeHeap,
  SIGNAL_PROBE,
  startExporterWithEnv,
  startProfile,
  stopProfile,
  type HeapProbeSample,
} from "../devstack/process/child-probe";
import { cpuSeconds, rssBytes } from "../devstack/process/proc-stats";
import { summarizeProfile, type ProfileEntry } from "./support/profile-summary";
import { postIngest } from "./support/post-ingest";
import { progress } from "./support/progress";
import { fmt, mb, median } from "./support/stats";

/**
 * The sidecar at 1k and 10k Kong Services: /metrics render time and ingest cost of the real latency-exporter
 * process, against prom-client's own Histogram holding the same series (same labels, Kong's 13 buckets)
 * measured in this process in the same run; and the sidecar's memory with every service active in its
 * percentile window (default 60 s, which moves in 10 s slots).
 */

/** Services per ingest payload, as one plugin server with max_services 1000 (the default) ships them. */
const SERVICES_PER_PAYLOAD = 1000;
/** The sidecar's default window moves in 10 s steps: rounds this far apart fill several of its slots. */
const ROUND_SPACING_MS = 5_000;
/** The preload that times the sidecar's phases from inside (see support/sidecar-timer.ts). */
const SIDECAR_TIMER = join(__dirname, "support", "sidecar-timer.js");
/** A sidecar request's bound: a stuck sidecar fails the benchmark rather than hanging it. */
const HTTP_TIMEOUT_MS = 120_000;

/** Scrapes of each format, in turn, once the rounds are in. */
const FORMAT_SCRAPES = 5;
const RENDER_TARGET_RATIO = 0.35;
const RSS_TARGET_BYTES = 300 * 1024 * 1024;
const RSS_TARGET_SERVICES = 10_000;

// ---------------------------------------------------------------------------------------------------------
// Inputs: N services as Kong Ingress Controller names and tags them, each with its own latency profile.

/** Observations per service in the sparse round: a service with a few requests a second, the common case. */
const SPARSE_OBSERVATIONS = 3;

interface Inputs {
  /** bodies[round][payload]: JSON ingest bodies of SERVICES_PER_PAYLOAD services each. */
  bodies: Buffer[][];
  /** One more round, after the others, with SPARSE_OBSERVATIONS per service. */
  sparse: Buffer[];
  observations: number;
  distinctPerServiceRound: number;
  observationsPerServiceRound: number;
  totalCount: number;
  /** prom-client's registry, holding the same observations. */
  registry: Registry;
}

function buildInputs(services: number, rounds: number, onService: (n: number) => void): Inputs {
  const registry = new Registry();
  const hist = new PromHistogram({
    name: FAMILIES.upstream.name,
    help: FAMILIES.upstream.help,
    labelNames: [...LABEL_NAMES],
    buckets: KONG_BUCKETS,
    registers: [registry],
  });
  const refs = Array.from({ length: services }, (_, i) => serviceRef(i));
  const children = refs.map((r) => hist.labels(serviceLabels(r)));
  const recorder = new Recorder(SERVICES_PER_PAYLOAD);
  const bodies: Buffer[][] = [];
  let obs = 0;
  let distinct = 0;
  let sparseObs = 0;
  for (let r = 0; r <= rounds; r++) {
    const sparse = r === rounds;
    const round: Buffer[] = [];
    for (let start = 0; start < services; start += SERVICES_PER_PAYLOAD) {
      for (let i = start; i < Math.min(services, start + SERVICES_PER_PAYLOAD); i++) {
        const values = sparse ? observations(i, r).slice(0, SPARSE_OBSERVATIONS) : observations(i, r);
        if (sparse) {
          sparseObs += values.length;
          for (const v of values) {
            recorder.record(refs[i], "upstream", v);
            children[i].observe(v);
          }
          continue;
        }
        const child = children[i];
        for (const v of values) {
          recorder.record(refs[i], "upstream", v);
          child.observe(v);
        }
        obs += values.length;
        distinct += new Set(values).size;
        if (i % 500 === 0) onService(r * services + i);
      }
      const batch = recorder.take();
      const payload: IngestPayload = {
        version: WIRE_VERSION,
        source: `bench-scale-${start / SERVICES_PER_PAYLOAD}`,
        seq: r + 1,
        dropped: { overflow: batch.overflow, rejected: 0 },
        services: batch.services,
      };
      round.push(Buffer.from(JSON.stringify(payload)));
    }
    bodies.push(round);
  }
  return {
    bodies: bodies.slice(0, rounds),
    sparse: bodies[rounds],
    observations: obs,
    distinctPerServiceRound: distinct / (services * rounds),
    observationsPerServiceRound: obs / (services * rounds),
    totalCount: obs + sparseObs,
    registry,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The real sidecar over HTTP.

/**
 * The sidecar-timer lines, in the order the run made its requests: each round's payloads then its fresh and
 * cached scrapes; three more cached scrapes, the sparse round's payloads, the final check's scrape.
 */
function readTimer(file: string, c: ScaleCase): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number> & { kind: string });
  const metrics = lines.filter((l) => l.kind === "metrics");
  const ingests = lines.filter((l) => l.kind === "ingest");
  for (let r = 0; r < c.rounds; r++) {
    const m = metrics[2 * r];
    if (!m) break;
    c.inside.render.totalMs.push(m.totalMs);
    c.inside.render.histMs.push(m.histMs);
    c.inside.render.pctMs.push(m.pctMs);
    c.inside.render.gcMs.push(m.gcMs);
  }
  const add = (into: InsideIngest, l: Record<string, number>) => {
    into.ingestMs.push(l.ingestMs);
    into.validateMs.push(l.validateMs);
    into.applyMs.push(l.applyMs);
  };
  const perRound = c.payloadsPerRound;
  ingests.slice(perRound, perRound * c.rounds).forEach((l) => add(c.inside.ingest, l));
  ingests.slice(perRound * c.rounds, perRound * (c.rounds + 1)).forEach((l) => add(c.inside.sparse, l));
}

async function healthz(base: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${base}/healthz`, { headersTimeout: HTTP_TIMEOUT_MS, bodyTimeout: HTTP_TIMEOUT_MS });
  await res.body.text();
  return performance.now() - t0;
}

/** GET /metrics to the last byte: wall ms and bytes, the body drained without decoding it. */
async function scrape(url: string, accept?: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const headers = accept ? { accept } : {};
  const res = await request(url, { headers, headersTimeout: HTTP_TIMEOUT_MS, bodyTimeout: HTTP_TIMEOUT_MS });
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  if (res.statusCode !== 200) throw new Error(`/metrics: HTTP ${res.statusCode}`);
  return { ms: performance.now() - t0, bytes };
}

/** Sum of every kong_upstream_latency_ms_count sample, and the number of histogram series. */
function countsIn(text: string): { series: number; count: number; overflow: number } {
  let series = 0;
  let count = 0;
  for (const m of text.matchAll(/^kong_upstream_latency_ms_count\{[^}]*\} (\d+)$/gm)) {
    series++;
    count += Number(m[1]);
  }
  const overflow = Number(/^latency_exporter_series_overflow_events_total (\d+)/m.exec(text)?.[1] ?? NaN);
  return { series, count, overflow };
}

// ---------------------------------------------------------------------------------------------------------

interface InsideIngest {
  ingestMs: number[];
  validateMs: number[];
  applyMs: number[];
}

export interface ScaleCase {
  services: number;
  rounds: number;
  payloadsPerRound: number;
  payloadBytes: number;
  distinctPerServiceRound: number;
  observationsPerServiceRound: number;
  /** POST wall ms of each payload of the first round (which creates every series) and of the later ones. */
  ingestFirstMs: number[];
  ingestMs: number[];
  /** Sidecar CPU ms per payload, one figure per later round. */
  ingestCpuMs: number[];
  /** The sparse round (SPARSE_OBSERVATIONS per service): POST wall ms per payload, sidecar CPU ms per payload, body size. */
  sparse: { ms: number[]; cpuMs: number; payloadBytes: number };
  /** GET /metrics right after a round (every series updated, so every percentile is computed afresh). */
  renderColdMs: number[];
  renderColdCpuMs: number[];
  /** GET /metrics again, nothing new (the sidecar's per-slot percentile cache answers). */
  renderWarmMs: number[];
  /** GET /healthz sent while a scrape renders: how long the render holds the sidecar's event loop. */
  healthzDuringScrapeMs: number[];
  renderBytes: number;
  /** Distinct 10 s window slots the rounds fell in. */
  slotsFilled: number;
  /** The same state built in this process from the same payloads with the sidecar's own Store and renderers. */
  inProcess: { histogramMs: number[]; percentileColdMs: number[]; percentileWarmMs: number[] };
  /** Timed inside the sidecar (sidecar-timer preload): fresh scrapes, and ingest() of later and sparse rounds. */
  inside: {
    render: { totalMs: number[]; histMs: number[]; pctMs: number[]; gcMs: number[] };
    ingest: InsideIngest;
    sparse: InsideIngest;
  };
  prom: { ms: number[]; bytes: number };
  /** Cached scrapes of the final state, text and protobuf (as Prometheus with native histograms asks) in turn. */
  formats: { text: { ms: number[]; bytes: number }; protobuf: { ms: number[]; bytes: number } };
  check: { series: number; count: number; expected: number; overflow: number };
  memory: {
    rssAfterIngest: number;
    rssAfterRender: number;
    peakRss: number;
    heapAfterIngest: HeapProbeSample | undefined;
    heapAfterRender: HeapProbeSample | undefined;
    rssByRound: number[];
  };
  profile?: { totalMs: number; entries: ProfileEntry[] };
  /** Wall seconds of this case's phases: building the inputs, the sidecar run, the in-process comparison. */
  phaseSeconds: { inputs: number; sidecar: number; inProcess: number };
}

export interface SidecarScaleResult {
  quick: boolean;
  roundSpacingMs: number;
  cases: ScaleCase[];
}

async function runCase(services: number, rounds: number, opts: { profile: boolean }): Promise<ScaleCase> {
  const tStart = Date.now();
  const genBar = progress(`sidecar scale ${services}: payloads`, services * rounds);
  const inputs = buildInputs(services, rounds, (n) => genBar.update(n));
  genBar.update(services * rounds);
  genBar.stop();

  const dir = mkdtempSync(join(tmpdir(), "sidecar-scale-"));
  const probeFile = join(dir, "probe.jsonl");
  const profileFile = join(dir, "sidecar.cpuprofile");
  const timerFile = join(dir, "timer.jsonl");
  const env: Record<string, string> = {
    NODE_OPTIONS: preloadOptions(SIGNAL_PROBE, SIDECAR_TIMER),
    SIGNAL_PROBE_FILE: probeFile,
    SIDECAR_TIMER_FILE: timerFile,
  };
  if (opts.profile) env.SIGNAL_PROBE_PROFILE = profileFile;
  const tSidecar = Date.now();
  const exporter: ExporterProcess = await startExporterWithEnv(
    ["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"],
    env,
  );
  const pid = exporter.child.pid!;
  const ingestUrl = `${exporter.ingestUrl}${INGEST_PATH}`;
  const metricsUrl = `${exporter.metricsUrl}/metrics`;
  const c: ScaleCase = {
    services,
    rounds,
    payloadsPerRound: inputs.bodies[0].length,
    payloadBytes: median(inputs.bodies.flat().map((b) => b.length)),
    distinctPerServiceRound: inputs.distinctPerServiceRound,
    observationsPerServiceRound: inputs.observationsPerServiceRound,
    ingestFirstMs: [],
    ingestMs: [],
    ingestCpuMs: [],
    sparse: { ms: [], cpuMs: NaN, payloadBytes: median(inputs.sparse.map((b) => b.length)) },
    renderColdMs: [],
    renderColdCpuMs: [],
    renderWarmMs: [],
    healthzDuringScrapeMs: [],
    renderBytes: 0,
    slotsFilled: 0,
    inProcess: { histogramMs: [], percentileColdMs: [], percentileWarmMs: [] },
    inside: {
      render: { totalMs: [], histMs: [], pctMs: [], gcMs: [] },
      ingest: { ingestMs: [], validateMs: [], applyMs: [] },
      sparse: { ingestMs: [], validateMs: [], applyMs: [] },
    },
    prom: { ms: [], bytes: 0 },
    formats: { text: { ms: [], bytes: 0 }, protobuf: { ms: [], bytes: 0 } },
    check: { series: 0, count: 0, expected: inputs.totalCount, overflow: NaN },
    memory: {
      rssAfterIngest: 0,
      rssAfterRender: 0,
      peakRss: 0,
      heapAfterIngest: undefined,
      heapAfterRender: undefined,
      rssByRound: [],
    },
    phaseSeconds: { inputs: (tSidecar - tStart) / 1000, sidecar: 0, inProcess: 0 },
  };
  const roundTimes: number[] = [];
  try {
    const bar = progress(`sidecar scale ${services}: rounds through the sidecar`, rounds);
    const t0 = Date.now();
    if (opts.profile) startProfile(pid);
    for (let r = 0; r < rounds; r++) {
      const wait = t0 + r * ROUND_SPACING_MS - Date.now();
      if (wait > 0) await sleep(wait);
      roundTimes.push(Date.now());
      const cpu0 = cpuSeconds(pid);
      for (const body of inputs.bodies[r])
        (r === 0 ? c.ingestFirstMs : c.ingestMs).push(await postIngest(ingestUrl, body));
      const cpu1 = cpuSeconds(pid);
      if (r > 0) c.ingestCpuMs.push(((cpu1 - cpu0) * 1000) / inputs.bodies[r].length);
      if (r === rounds - 1) {
        c.memory.rssAfterIngest = rssBytes(pid);
        if (!opts.profile) c.memory.heapAfterIngest = await probeHeap(pid, probeFile);
      }
      const cpu2 = cpuSeconds(pid);
      const cold = await scrape(metricsUrl);
      c.renderColdCpuMs.push((cpuSeconds(pid) - cpu2) * 1000);
      c.renderColdMs.push(cold.ms);
      c.renderBytes = cold.bytes;
      const warm = scrape(metricsUrl);
      await sleep(20);
      c.healthzDuringScrapeMs.push(await healthz(exporter.metricsUrl));
      c.renderWarmMs.push((await warm).ms);
      c.memory.rssByRound.push(rssBytes(pid));
      bar.update(r + 1);
    }
    // A few more renders of the final state, from the percentile cache as a scrape within the same slot gets.
    for (let i = 0; i < 3; i++) c.renderWarmMs.push((await scrape(metricsUrl)).ms);
    for (let i = 0; i < FORMAT_SCRAPES; i++) {
      for (const [format, accept] of [
        ["text", SCRAPE_ACCEPT],
        ["protobuf", SCRAPE_ACCEPT_NATIVE_HISTOGRAMS],
      ] as const) {
        const s = await scrape(metricsUrl, accept);
        c.formats[format].ms.push(s.ms);
        c.formats[format].bytes = s.bytes;
      }
    }
    if (opts.profile) {
      await stopProfile(pid, probeFile);
      c.profile = summarizeProfile(profileFile);
    }
    bar.stop();
    c.memory.rssAfterRender = rssBytes(pid);
    c.memory.peakRss = peakRssBytes(pid);
    if (!opts.profile) c.memory.heapAfterRender = await probeHeap(pid, probeFile);
    const cpuSparse = cpuSeconds(pid);
    for (const body of inputs.sparse) c.sparse.ms.push(await postIngest(ingestUrl, body));
    c.sparse.cpuMs = ((cpuSeconds(pid) - cpuSparse) * 1000) / inputs.sparse.length;
    const res = await request(metricsUrl, { headersTimeout: HTTP_TIMEOUT_MS, bodyTimeout: HTTP_TIMEOUT_MS });
    const check = countsIn(await res.body.text());
    c.check = { ...check, expected: inputs.totalCount };
    // The timer writes each line a moment after its request (once the GC pauses are reported).
    await sleep(200);
    readTimer(timerFile, c);
  } finally {
    await exporter.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  c.slotsFilled = new Set(roundTimes.map((t) => Math.floor(t / 10_000))).size;
  const tInProcess = Date.now();
  c.phaseSeconds.sidecar = (tInProcess - tSidecar) / 1000;
  // The same rounds at the same (recorded) times in this process, through the sidecar's Store and renderers,
  // phase by phase; then prom-client's registry, interleaved with our histogram render.
  const store = new Store({
    boundaries: KONG_BUCKETS,
    mapping: undefined,
    windowMs: 60_000,
    maxSeries: 10_000,
    idleMs: 15 * 60_000,
  });
  const name = FAMILIES.upstream.name;
  const p = percentileFamily("upstream", store.windowMs);
  const histogram = new HistogramText(name, FAMILIES.upstream.help, KONG_BUCKETS);
  const summary = new SummaryText(p.name, p.help);
  const series = () => store.families.get("upstream")!.values();
  const timed = <T>(into: number[], fn: () => T): T => {
    const t = performance.now();
    const out = fn();
    into.push(performance.now() - t);
    return out;
  };
  const ip = c.inProcess;
  for (let r = 0; r < rounds; r++) {
    const now = roundTimes[r];
    for (const body of inputs.bodies[r]) store.apply(validatePayload(JSON.parse(body.toString("utf8"))), now);
    const percentiles = (out: ChunkWriter, s: Series) => renderPercentileSeries(out, summary, s, now);
    timed(ip.percentileColdMs, () => renderFamily(summary.header, series(), percentiles));
    timed(ip.percentileWarmMs, () => renderFamily(summary.header, series(), percentiles));
  }
  const reps = Math.max(5, rounds);
  const promBar = progress(`sidecar scale ${services}: prom-client vs ours in process`, reps + 1);
  c.prom.bytes = (await inputs.registry.metrics()).length;
  const histograms = (out: ChunkWriter, s: Series) => renderHistogramSeries(out, histogram, s);
  renderFamily(histogram.header, series(), histograms);
  promBar.update(1);
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await inputs.registry.metrics();
    c.prom.ms.push(performance.now() - t);
    timed(ip.histogramMs, () => renderFamily(histogram.header, series(), histograms));
    promBar.update(i + 2);
  }
  promBar.stop();
  c.phaseSeconds.inProcess = (Date.now() - tInProcess) / 1000;
  return c;
}

/** One family as the sidecar writes it, into chunks taken back at once (as by a client that never waits). */
function renderFamily(header: Buffer, series: Iterable<Series>, write: (out: ChunkWriter, s: Series) => void): void {
  const out = new ChunkWriter(1024 * 1024);
  out.bytes(header);
  for (const s of series) {
    write(out, s);
    if (out.hasFull) for (const chunk of out.takeFull()) out.recycle(chunk);
  }
  out.finish();
}

export async function runSidecarScale(opts: {
  quick: boolean;
  profile?: boolean;
  sizes?: number[];
}): Promise<SidecarScaleResult> {
  const rounds = opts.quick ? 5 : 7;
  const cases: ScaleCase[] = [];
  for (const n of opts.sizes ?? [1_000, 10_000]) {
    cases.push(await runCase(n, rounds, { profile: opts.profile ?? false }));
    // Let this process's garbage from one case go before the next one's measurements.
    (globalThis as { gc?: () => void }).gc?.();
  }
  return { quick: opts.quick, roundSpacingMs: ROUND_SPACING_MS, cases };
}

// ---------------------------------------------------------------------------------------------------------

const n = (x: number) => x.toLocaleString("en-US");
const met = (ok: boolean) => (ok ? "**met**" : "**not met**");

/** Where the fresh render's time (timed inside the sidecar) and the RSS go, from this run's own figures. */
function breakdown(cases: ScaleCase[], big: ScaleCase | undefined): string[] {
  const rows = cases
    .filter((c) => c.inside.render.totalMs.length > 0)
    .map((c) => {
      const x = c.inside.render;
      const total = median(x.totalMs);
      const hist = median(x.histMs);
      const pct = median(x.pctMs);
      return `| ${n(c.services)} | ${fmt(total, 0)} | ${fmt(hist, 0)} | ${fmt(pct, 0)} | ${fmt(total - hist - pct, 0)} | ${fmt(median(x.gcMs), 0)} |`;
    });
  const h = big ? (big.memory.heapAfterRender ?? big.memory.heapAfterIngest) : undefined;
  const mem =
    big && h
      ? `Memory at ${n(big.services)} services: after a full GC the heap holds ${mb(big.memory.heapAfterIngest?.heapUsed ?? NaN)} MB right after ingest and ${mb(h.heapUsed)} MB after the scrapes, and the windows' slots ${mb(h.arrayBuffers)} MB of array buffers (each slot is one sorted typed array of packed entries, the open one filled in place, a closed one 4 bytes a distinct latency), of ${mb(big.memory.rssAfterRender)} MB resident (${mb(h.rss)} MB right after that GC). V8 keeps ${mb(big.memory.heapAfterIngest?.heapTotal ?? NaN)} / ${mb(h.heapTotal)} MB of heap committed, mostly for the garbage of ingest (parsed bodies, decoded histograms): a scrape writes its ${mb(big.renderBytes)} MB into a few 1 MiB chunks, reused as the socket takes them, and leaves little. Of the RSS after the GC roughly ${mb(Math.max(0, h.rss - h.heapTotal - h.external))} MB is outside the JavaScript heap (Node's own ~70 MB baseline, code, native buffers, the allocator's free lists); the live data (heap used and array buffers) is ${fmt(((h.heapUsed + h.arrayBuffers) / big.memory.rssAfterRender) * 100, 0)}% of the RSS.`
      : "";
  if (rows.length === 0) return mem ? [mem, ""] : [];
  return [
    "Where a fresh scrape's time goes, timed inside the sidecar (sidecar-timer preload; medians over the rounds): from the request to the last byte handed to the socket, building the histogram family's text, the percentile summaries (computing the windowed percentiles and their text; the like-for-like table above shows the computing part as fresh minus cached), and the rest: the self metrics, and handing the 1 MiB chunks to the socket, including the waits for it to drain while the client reads (the body is streamed, not built whole). GC pauses observed during the request are spread over these phases.",
    "",
    "| services | scrape in the sidecar (ms) | histogram text (ms) | percentile summaries (ms) | self metrics, writing, waiting for the client (ms) | GC pauses within (ms) |",
    "|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    ...(mem ? [mem, ""] : []),
  ];
}

export function renderSidecarScale(r: SidecarScaleResult): string {
  const rows = r.cases.map((c) => {
    const ours = median(c.renderColdMs);
    const prom = median(c.prom.ms);
    return `| ${n(c.services)} | ${fmt(ours, 0)} | ${fmt(median(c.renderColdCpuMs), 0)} | ${fmt(median(c.renderWarmMs), 0)} | ${fmt(prom, 0)} | **${fmt(ours / prom)}x** | ${fmt(median(c.renderWarmMs) / prom)}x | ${mb(c.renderBytes)} | ${mb(c.prom.bytes)} |`;
  });
  const like = r.cases.map((c) => {
    const prom = median(c.prom.ms);
    const h = median(c.inProcess.histogramMs);
    const pc = median(c.inProcess.percentileColdMs);
    const pw = median(c.inProcess.percentileWarmMs);
    return `| ${n(c.services)} | ${fmt(h, 1)} | ${fmt(h / prom)}x | ${fmt(pc, 1)} | ${fmt(pw, 1)} | ${fmt((h + pc) / prom)}x | ${fmt(prom, 1)} |`;
  });
  const ingest = r.cases.map((c) => {
    const perPayload = median(c.ingestMs);
    const cpu = median(c.ingestCpuMs);
    const split = (x: InsideIngest) => {
      const total = median(x.ingestMs);
      const v = median(x.validateMs);
      const a = median(x.applyMs);
      return `${fmt(total, 1)}: ${fmt(v, 1)} / ${fmt(a, 1)} / ${fmt(total - v - a, 1)}`;
    };
    return [
      `| ${n(c.services)} | ${fmt(c.distinctPerServiceRound, 0)} distinct of ${fmt(c.observationsPerServiceRound, 0)} | ${c.payloadsPerRound} x ${n(SERVICES_PER_PAYLOAD)} | ${fmt(c.payloadBytes / 1024, 0)} KiB | ${fmt(median(c.ingestFirstMs), 1)} | ${fmt(perPayload, 1)} | ${fmt(cpu, 1)} | ${fmt((cpu * 1000) / SERVICES_PER_PAYLOAD, 1)} | ${split(c.inside.ingest)} |`,
      `| ${n(c.services)} | ${SPARSE_OBSERVATIONS} | ${c.payloadsPerRound} x ${n(SERVICES_PER_PAYLOAD)} | ${fmt(c.sparse.payloadBytes / 1024, 0)} KiB | | ${fmt(median(c.sparse.ms), 1)} | ${fmt(c.sparse.cpuMs, 1)} | ${fmt((c.sparse.cpuMs * 1000) / SERVICES_PER_PAYLOAD, 1)} | ${split(c.inside.sparse)} |`,
    ];
  });
  const mem = r.cases.map((c) => {
    const h = (s: HeapProbeSample | undefined) =>
      s ? `${mb(s.heapUsed)} / ${mb(s.heapTotal)} / ${mb(s.arrayBuffers)}` : "n/a";
    return `| ${n(c.services)} | ${mb(c.memory.rssAfterIngest)} | ${h(c.memory.heapAfterIngest)} | ${mb(c.memory.rssAfterRender)} | ${h(c.memory.heapAfterRender)} | ${mb(c.memory.peakRss)} | ${c.memory.rssByRound.map(mb).join(", ")} |`;
  });
  const formats = r.cases.map((c) => {
    const text = median(c.formats.text.ms);
    const proto = median(c.formats.protobuf.ms);
    return `| ${n(c.services)} | ${fmt(text, 0)} | ${mb(c.formats.text.bytes)} | ${fmt(proto, 0)} | ${mb(c.formats.protobuf.bytes)} | ${fmt(proto / text)}x | ${fmt(median(c.prom.ms), 0)} | ${mb(c.prom.bytes)} |`;
  });
  const checks = r.cases.map(
    (c) =>
      `${n(c.services)} services: ${n(c.check.series)} series, \`_count\` total ${n(c.check.count)} of ${n(c.check.expected)} observations sent, ${c.check.overflow} overflow events`,
  );
  const big = r.cases.find((c) => c.services === RSS_TARGET_SERVICES);
  const ratio = big ? median(big.renderColdMs) / median(big.prom.ms) : NaN;
  const rss = big ? Math.max(big.memory.rssAfterIngest, big.memory.rssAfterRender) : NaN;
  const peak = big ? big.memory.peakRss : NaN;
  const c0 = r.cases[0];
  const profiles = r.cases.filter((c) => c.profile);
  return [
    "## Sidecar at 1k and 10k services",
    "",
    `The real latency-exporter process (default options: 60 s percentile window in 10 s slots, \`--max-series\` 10,000) fed ${c0.rounds} rounds of ingest payloads, ${ROUND_SPACING_MS / 1000} s apart (${((c0.rounds - 1) * ROUND_SPACING_MS) / 1000} s of data, which fell in ${r.cases.map((c) => c.slotsFilled).join(" / ")} of the window's 10 s slots: every service is active in the window with several slots populated), each round holding every service, in payloads of ${n(SERVICES_PER_PAYLOAD)} services as a plugin server with the default \`max_services\` ships them. Services are named and tagged as Kong Ingress Controller does (7 labels). Each service has its own latency profile (log-normal body, median 30-500 ms, with a Pareto tail); a round holds ${r.cases.map((c) => `${fmt(c.observationsPerServiceRound, 0)} observations and ${fmt(c.distinctPerServiceRound, 0)} distinct latencies`).join(" / ")} per service on average (${r.cases.map((c) => n(c.services)).join(" / ")} services).`,
    "",
    `prom-client (15.1.3) is measured in the benchmark process: one \`Histogram\` in a \`Registry\`, with the same label names and values and Kong's 13 buckets, fed the same observations; its time is \`await registry.metrics()\` (a string, no HTTP), median of ${c0.prom.ms.length} after a warm-up. Ours is the real sidecar's GET /metrics to the last byte over loopback HTTP, so it also includes the transfer, the sidecar's own prom-client metrics, and the percentile summaries (\`kong_upstream_latency_ms_percentile\`: 4 quantiles plus \`_sum\`/\`_count\` per series), which prom-client's side does not render at all. "Fresh" is a scrape right after a round of ingest: every series was updated, so every windowed percentile is computed anew, as in steady state with the plugin shipping every second; "cached" is a repeat within the same 10 s slot with nothing new. Medians over the rounds.`,
    "",
    "| services | ours: GET /metrics, fresh (ms) | sidecar CPU (ms) | ours, cached (ms) | prom-client `metrics()` (ms) | ours fresh / prom-client | cached / prom-client | our body (MB) | prom-client text (MB) |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `The render gives way to other requests whenever the socket asks it to wait, about every 1 MiB chunk: a GET /healthz sent 20 ms into a (cached) scrape was answered after ${r.cases.map((c) => `${fmt(median(c.healthzDuringScrapeMs), 0)} ms (max ${fmt(Math.max(...c.healthzDuringScrapeMs), 0)})`).join(" / ")} at ${r.cases.map((c) => n(c.services)).join(" / ")} services, rather than after the whole render.`,
    "",
    "Like for like, in the benchmark process: the sidecar's own `Store` and renderers (`sidecar/exposition.ts`, writing UTF-8 bytes into 1 MiB chunks, here taken back as soon as filled) over the same payloads applied at the same times, without HTTP; the histogram family alone is what prom-client renders (as a string, not yet encoded).",
    "",
    "| services | our histogram family (ms) | vs prom-client | + percentile summaries, fresh (ms) | cached (ms) | histogram + fresh percentiles vs prom-client | prom-client (ms) |",
    "|---:|---:|---:|---:|---:|---:|---:|",
    ...like,
    "",
    `Ingest through the sidecar (sequential POSTs of one round; the first round creates every series and label set): wall ms per payload to the acknowledgement, and the sidecar's CPU (from /proc) per payload and per service. The last column is timed inside the sidecar (a preload wrapping its modules' exports, \`bench/support/sidecar-timer.ts\`): the synchronous \`ingest()\` of one payload, split into validation (schema, inflating and decoding every HDR histogram) / merge into the store (bucket counts and the window's open slot) / the rest (\`JSON.parse\`, the self metrics); the gap to the wall time is reading the body and HTTP. The second row of each size is one more round with only ${SPARSE_OBSERVATIONS} latencies per service, a service with a few requests per flush interval, which is what most of 10k services send.`,
    "",
    "| services | latencies per service in a payload | payloads per round | payload size | first round (ms/payload) | later rounds (ms/payload) | sidecar CPU (ms/payload) | CPU per service (µs) | in the sidecar, ms/payload: ingest(): validate / apply / parse and the rest |",
    "|---:|---|---|---:|---:|---:|---:|---:|---|",
    ...ingest.flat(),
    "",
    `Protobuf scrape: what Prometheus with \`--enable-feature=native-histograms\` asks for (its \`Accept\` lists the delimited \`MetricFamily\` protobuf first). The sidecar's GET /metrics to the last byte over loopback HTTP, ${FORMAT_SCRAPES} scrapes of each format in turn once the rounds are in (percentiles cached, as a second scrape within a 10 s slot finds them), medians; prom-client's \`registry.metrics()\` as above (its histogram family alone, as text, in process). The protobuf body carries every family of the text (classic histograms, percentile summaries, the sidecar's own metrics) plus \`kong_upstream_latency_ms_native\` (schema 5), which the text cannot carry.`,
    "",
    "| services | text GET /metrics (ms) | text body (MB) | protobuf GET /metrics (ms) | protobuf body (MB) | protobuf / text | prom-client text `metrics()` (ms) | prom-client text (MB) |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...formats,
    "",
    'Memory of the sidecar: RSS from /proc; from inside the process after a forced full GC (signal-probe preload), the heap used, the heap V8 keeps committed, and array buffers (the window\'s closed slots are typed arrays, outside the heap); "after ingest" is right after the last round\'s payloads, "after render" after the scrapes that followed; peak is the kernel\'s high-water mark (VmHWM).',
    "",
    "| services | RSS after ingest (MB) | heap used / committed / array buffers (MB) | RSS after render (MB) | heap used / committed / array buffers (MB) | peak RSS (MB) | RSS after each round's scrapes (MB) |",
    "|---:|---:|---:|---:|---:|---:|---|",
    ...mem,
    "",
    `Checks: ${checks.join("; ")}.`,
    "",
    `Targets at ${n(RSS_TARGET_SERVICES)} services: render at most ${RENDER_TARGET_RATIO}x prom-client's time: ${fmt(ratio)}x (fresh, over HTTP, percentile summaries included), ${met(ratio <= RENDER_TARGET_RATIO)}; sidecar RSS at most ${RSS_TARGET_BYTES / 2 ** 20} MB with every service active in the window: ${mb(rss)} MB after ingest and render, ${met(rss <= RSS_TARGET_BYTES)} (peak during the run ${mb(peak)} MB, ${peak <= RSS_TARGET_BYTES ? "also within" : "above"} the bound).`,
    "",
    ...breakdown(r.cases, big),
    `Run time: ${r.cases.map((c) => `${n(c.services)} services ${fmt(c.phaseSeconds.inputs + c.phaseSeconds.sidecar + c.phaseSeconds.inProcess, 0)} s (inputs ${fmt(c.phaseSeconds.inputs, 0)} s, sidecar ${fmt(c.phaseSeconds.sidecar, 0)} s, in process ${fmt(c.phaseSeconds.inProcess, 0)} s)`).join("; ")}. \`node dist/lib/bench/sidecar-scale.js [--quick] [--profile] [--sizes 1000,10000]\` runs this section alone; \`--profile\` adds a CPU profile of the sidecar (which slows it, so its timings are not comparable).`,
    "",
    ...profiles.flatMap((c) => [
      `CPU profile of the sidecar over the ${n(c.services)}-service run (ingest and renders; ${fmt(c.profile!.totalMs, 0)} ms of samples), self time by function:`,
      "",
      "| function | self ms | share |",
      "|---|---:|---:|",
      ...c.profile!.entries.map(
        (e) => `| \`${e.name.replace(/\|/g, "\\|")}\` | ${fmt(e.selfMs, 0)} | ${fmt(e.share * 100, 1)}% |`,
      ),
      "",
    ]),
  ].join("\n");
}

if (require.main === module) {
  // Standalone: node dist/lib/bench/sidecar-scale.js [--quick] [--profile] [--sizes 1000,10000]
  const args = process.argv.slice(2);
  const sizesArg = args[args.indexOf("--sizes") + 1];
  const sizes = args.includes("--sizes") && sizesArg ? sizesArg.split(",").map(Number) : undefined;
  void (async () => {
    const { stopProgress } = await import("./support/progress");
    try {
      const r = await runSidecarScale({ quick: args.includes("--quick"), profile: args.includes("--profile"), sizes });
      stopProgress();
      process.stdout.write(renderSidecarScale(r));
    } catch (err) {
      stopProgress();
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exitCode = 1;
    }
  })();
}
