/**
 * Prometheus text exposition for the latency histograms, written by hand as bytes: prom-client's registry
 * formats every sample through generic label objects into one string, several times slower at 10k services
 * x 15 buckets, and /metrics is scraped every few seconds. Every fixed part of a line (metric name, `le` or
 * `quantile` label) is encoded once per family and each series' labels once per series, so a scrape only
 * copies bytes and writes digits. prom-client still serves the sidecar's own metrics.
 */
import type { ChunkWriter } from "./chunk-writer";
import { QUANTILES } from "./percentiles";
import type { Series } from "./series";

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
    .join(",");
}

export function formatNumber(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return Number.isNaN(n) ? "NaN" : String(n);
}

const NEWLINE = 0x0a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE_SPACE = Buffer.from("} ");
const SPACE = 0x20;

const HALF = Buffer.from(".5");

/** formatNumber's text, with the common cases written directly: counts, and percentiles (slot midpoints, x.5). */
function writeNumber(out: ChunkWriter, n: number): void {
  if (Number.isSafeInteger(n) && n >= 0) {
    out.digits(n);
  } else if (Number.isSafeInteger(n * 2) && n > 0) {
    out.digits(n - 0.5);
    out.bytes(HALF);
  } else {
    out.ascii(formatNumber(n));
  }
}

/** `# HELP` and `# TYPE` lines. */
function header(name: string, help: string, type: string): Buffer {
  return Buffer.from(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
}

/** `{<labels>,<label>="<value>"} `, as the text after the series' labels, with and without labels before it. */
function labelTail(label: string, value: string): { after: Buffer; alone: Buffer } {
  return { after: Buffer.from(`,${label}="${value}"} `), alone: Buffer.from(`${label}="${value}"} `) };
}

/** The fixed bytes of one family's lines. */
class FamilyText {
  readonly header: Buffer;
  readonly sum: Buffer;
  readonly count: Buffer;

  constructor(name: string, help: string, type: string) {
    this.header = header(name, help, type);
    this.sum = Buffer.from(`${name}_sum`);
    this.count = Buffer.from(`${name}_count`);
  }
}

export class HistogramText extends FamilyText {
  readonly bucket: Buffer;
  /** One per boundary, then +Inf. */
  readonly les: { after: Buffer; alone: Buffer }[];

  constructor(name: string, help: string, boundaries: readonly number[]) {
    super(name, help, "histogram");
    this.bucket = Buffer.from(`${name}_bucket{`);
    this.les = [...boundaries.map(formatNumber), "+Inf"].map((le) => labelTail("le", le));
  }
}

/**
 * A summary `<name>{<labels>,quantile="0.99"}` from each series' sliding window: Prometheus's type for
 * quantiles over a sliding window, so the `quantile` label is where tools expect it. `_sum` and `_count`
 * are the series' totals since start, as for any summary. A series with nothing in its window exports NaN
 * quantiles, as Prometheus's Go client does for an empty summary: an adapter rule on them then reads NaN,
 * which prometheus-adapter serves as 0 so the HPA scales down as with the guide's average (0/0 = NaN), where
 * absent samples would make the metric "not found" and hold the HPA at its size.
 */
export class SummaryText extends FamilyText {
  readonly open: Buffer;
  readonly quantiles = QUANTILES.map((q) => labelTail("quantile", q.label));

  constructor(name: string, help: string) {
    super(name, help, "summary");
    this.open = Buffer.from(`${name}{`);
  }
}

export function renderHistogramSeries(out: ChunkWriter, f: HistogramText, s: Series): void {
  const labels = s.labelBytes;
  let cumulative = 0;
  for (let i = 0; i < f.les.length; i++) {
    cumulative += s.counts[i];
    out.bytes(f.bucket);
    out.bytes(labels);
    out.bytes(labels.length === 0 ? f.les[i].alone : f.les[i].after);
    writeNumber(out, cumulative);
    out.byte(NEWLINE);
  }
  sumAndCount(out, f, s);
}

/** One array for every renderer: a series' window caches its percentiles for the array it was asked with. */
export const QS = QUANTILES.map((q) => q.q);

export function renderPercentileSeries(out: ChunkWriter, f: SummaryText, s: Series, now: number): void {
  const { values } = s.window.stats(now, QS);
  const labels = s.labelBytes;
  for (let i = 0; i < f.quantiles.length; i++) {
    out.bytes(f.open);
    out.bytes(labels);
    out.bytes(labels.length === 0 ? f.quantiles[i].alone : f.quantiles[i].after);
    writeNumber(out, values[i]);
    out.byte(NEWLINE);
  }
  sumAndCount(out, f, s);
}

/** A series' `_sum` and `_count` lines, shared by its histogram and its percentile summary. */
function sumAndCount(out: ChunkWriter, f: FamilyText, s: Series): void {
  sampleName(out, f.sum, s.labelBytes);
  writeNumber(out, s.sum);
  out.byte(NEWLINE);
  sampleName(out, f.count, s.labelBytes);
  writeNumber(out, s.count);
  out.byte(NEWLINE);
}

/** `<name>{<labels>} `, or `<name> ` for a series without labels. */
function sampleName(out: ChunkWriter, name: Buffer, labels: Buffer): void {
  out.bytes(name);
  if (labels.length === 0) {
    out.byte(SPACE);
    return;
  }
  out.byte(OPEN_BRACE);
  out.bytes(labels);
  out.bytes(CLOSE_BRACE_SPACE);
}
