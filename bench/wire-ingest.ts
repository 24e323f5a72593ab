import { performance } from "node:perf_hooks";
import { toV1 } from "../devstack/wire-v1";
import { startExporter } from "../devstack/process/exporter-process";
import { cpuSeconds } from "../devstack/process/proc-stats";
import { Recorder } from "../plugin/recorder";
import { INGEST_PATH, WIRE_VERSION, type IngestPayload } from "../wire/payload";
import { validatePayload } from "../wire/validate";
import { observations, serviceRef } from "./support/latency-profile";
import { postIngest } from "./support/post-ingest";
import { progress } from "./support/progress";
import { fmt, median } from "./support/stats";

/**
 * What a payload of 1,000 Kong Services costs the sidecar, wire version 1 (an HDR histogram per service,
 * deflated) against version 2 (latency keys), the same latencies in both, fed to two real sidecars in turn.
 */
const SERVICES = 1_000;
export const SECTION_TITLE = "## Wire: ingest cost of version 1 and version 2";
/** The issue's bar: version 2 costs the sidecar at most half of version 1's CPU per payload. */
const TARGET_RATIO = 0.5;

interface Side {
  bytes: number;
  /** Sidecar CPU (user + system, from /proc) per payload, over every round after the first. */
  cpuMs: number;
  /** `validatePayload(JSON.parse(body))` in this process, per payload. */
  validateMs: number[];
}

interface WireCase {
  label: string;
  distinct: number;
  v1: Side;
  v2: Side;
}

export interface WireIngestResult {
  rounds: number;
  cases: WireCase[];
}

function bodies(rounds: number, perService: (i: number, r: number) => number[]) {
  const recorder = new Recorder(SERVICES);
  const refs = Array.from({ length: SERVICES }, (_, i) => serviceRef(i));
  const out: { v1: Buffer; v2: Buffer }[] = [];
  let distinct = 0;
  for (let r = 0; r <= rounds; r++) {
    for (let i = 0; i < SERVICES; i++) {
      const values = perService(i, r);
      distinct += new Set(values).size;
      for (const v of values) recorder.record(refs[i], "upstream", v);
    }
    const p: IngestPayload = {
      version: WIRE_VERSION,
      source: "bench-wire",
      seq: r + 1,
      dropped: { overflow: 0, rejected: 0 },
      services: recorder.take().services,
    };
    out.push({ v1: Buffer.from(JSON.stringify(toV1(p))), v2: Buffer.from(JSON.stringify(p)) });
  }
  return { out, distinct: distinct / (SERVICES * (rounds + 1)) };
}

async function runCase(label: string, rounds: number, perService: (i: number, r: number) => number[]) {
  const { out, distinct } = bodies(rounds, perService);
  const args = ["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"];
  const sidecars = { v1: await startExporter(args), v2: await startExporter(args) };
  const c: WireCase = {
    label,
    distinct,
    v1: { bytes: median(out.map((b) => b.v1.length)), cpuMs: 0, validateMs: [] },
    v2: { bytes: median(out.map((b) => b.v2.length)), cpuMs: 0, validateMs: [] },
  };
  const bar = progress(`wire ingest, ${label}`, out.length);
  try {
    for (const [r, round] of out.entries()) {
      // Alternate which version goes first, so that the machine's noise hits both alike.
      const order = r % 2 ? (["v1", "v2"] as const) : (["v2", "v1"] as const);
      for (const v of order) {
        const pid = sidecars[v].child.pid!;
        const cpu0 = cpuSeconds(pid);
        await postIngest(`${sidecars[v].ingestUrl}${INGEST_PATH}`, round[v]);
        // The first round creates every series and label set: what later rounds cost is the steady state.
        if (r > 0) c[v].cpuMs += ((cpuSeconds(pid) - cpu0) * 1000) / rounds;
        const t0 = performance.now();
        validatePayload(JSON.parse(round[v].toString("utf8")));
        c[v].validateMs.push(performance.now() - t0);
      }
      bar.update(r + 1);
    }
  } finally {
    bar.stop();
    await Promise.all([sidecars.v1.stop(), sidecars.v2.stop()]);
  }
  return c;
}

export async function runWireIngest(opts: { quick: boolean }): Promise<WireIngestResult> {
  const rounds = opts.quick ? 8 : 30;
  return {
    rounds,
    cases: [
      await runCase("realistic", rounds, observations),
      await runCase("sparse", rounds, (i, r) => observations(i, r).slice(0, 3)),
    ],
  };
}

export function renderWireIngest(r: WireIngestResult): string {
  const rows = r.cases.map((c) => {
    const v1 = median(c.v1.validateMs);
    const v2 = median(c.v2.validateMs);
    return `| ${c.label}: ${fmt(c.distinct, 0)} distinct latencies per service | ${fmt(c.v1.bytes / 1024, 0)} / ${fmt(c.v2.bytes / 1024, 0)} KiB | ${fmt(c.v1.cpuMs, 1)} | ${fmt(c.v2.cpuMs, 1)} | **${fmt(c.v2.cpuMs / c.v1.cpuMs)}x** | ${fmt((c.v2.cpuMs * 1000) / SERVICES, 1)} | ${fmt(v1, 1)} | ${fmt(v2, 1)} | ${fmt(v2 / v1)}x |`;
  });
  const real = r.cases[0];
  const ratio = real.v2.cpuMs / real.v1.cpuMs;
  return [
    SECTION_TITLE,
    "",
    `A payload of ${SERVICES.toLocaleString("en-US")} Kong Services (named and tagged as Kong Ingress Controller does, latencies from the sidecar-scale profiles), the same latencies encoded as wire version 1 (one deflated HdrHistogram per service) and version 2 (base64 LEB128 \`[key, count]\` pairs), posted in turn to two real sidecars, ${r.rounds} rounds after a first that creates the series. Sidecar CPU per payload from /proc (whole ingest: HTTP, \`JSON.parse\`, validation, merge); validation is \`validatePayload(JSON.parse(body))\` timed in the benchmark process, medians. Both versions are validated as strictly: a payload with any bad delta is refused whole.`,
    "",
    "| payload | size v1 / v2 | sidecar CPU v1 (ms) | v2 (ms) | v2 / v1 | v2 per service (µs) | parse + validate v1 (ms) | v2 (ms) | v2 / v1 |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `Target: version 2 costs the sidecar at most ${TARGET_RATIO}x of version 1's CPU for a realistic payload: ${fmt(ratio)}x, ${ratio <= TARGET_RATIO ? "**met**" : "**not met**"}.`,
    "",
  ].join("\n");
}
