import type { AdapterReading } from "../devstack/observe";

export interface ServiceRow {
  /** The Kubernetes Service, namespace/name. */
  service: string;
  /** What the load sends, path and query. */
  route: string;
  client: { rate: number; p50Ms: number; p99Ms: number };
  /** Undefined until the exporter has the series. */
  exporter?: { count: number; averageMs: number; p50Ms: number; p99Ms: number };
}

export interface ViewModel {
  elapsedS: number;
  durationS: number;
  /** Completed requests per second since the previous view. */
  rate: number;
  sent: number;
  failed: number;
  dropped: number;
  inFlight: number;
  lastError?: string;
  rows: ServiceRow[];
  /** Why the exporter could not be read, if it could not. */
  exporterError?: string;
  /** Without Prometheus, undefined. */
  adapter?: { object: string; reading?: AdapterReading; error?: string };
}

type Out = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** Error texts may hold line breaks, which would break a plain line in two and throw off a frame's row count. */
const oneLine = (s: string) => s.replace(/\s+/g, " ").trim();

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "-");

function adapterText(a: NonNullable<ViewModel["adapter"]>): string {
  if (a.error) return `unavailable (${oneLine(a.error)})`;
  if (!a.reading) return "no value yet (rate() over [60s:10s] needs two 10 s steps of scrapes)";
  return Number.isNaN(a.reading.ms)
    ? `${a.reading.quantity} (no request in the last 60 s)`
    : `${a.reading.quantity} (${a.reading.ms.toFixed(1)} ms)`;
}

/**
 * The demo's live view: on a terminal, one frame redrawn in place; otherwise (a pipe, a log file, a test) one
 * plain line every `plainEvery` renders, since cursor movements would only garble the output there.
 */
export class TerminalView {
  private drawn = 0;
  private renders = 0;

  constructor(
    private readonly out: Out,
    private readonly plainEvery = 2,
  ) {}

  get isTTY(): boolean {
    return this.out.isTTY === true;
  }

  render(m: ViewModel, final = false): void {
    if (this.isTTY) return this.redraw(this.frame(m));
    if (!final && this.renders++ % this.plainEvery !== 0) return;
    this.out.write(`${final ? "final " : ""}${this.line(m)}\n`);
  }

  private redraw(lines: string[]): void {
    // A pty without a size (script, some CI runners) reports 0 columns.
    const width = Math.max(40, this.out.columns || 100);
    // A wrapped line would take two rows and throw off the count of rows to move up.
    const text = lines.map((l) => (l.length > width - 1 ? l.slice(0, width - 1) : l)).join("\n");
    this.out.write(`${this.drawn > 0 ? `\x1b[${this.drawn}F\x1b[J` : ""}${text}\n`);
    this.drawn = lines.length;
  }

  /** Two narrow tables rather than one wide one, to fit an 80-column terminal. */
  private frame(m: ViewModel): string[] {
    const row = (cells: Array<string | number>) =>
      `  ${String(cells[0]).padEnd(14)}${String(cells[1]).padEnd(20)}${cells
        .slice(2)
        .map((c) => String(c).padStart(9))
        .join("")}`;
    const lines = [
      `kong upstream latency demo   ${m.elapsedS.toFixed(0)}s / ${m.durationS.toFixed(0)}s   Ctrl-C stops everything`,
      `client: ${m.rate.toFixed(1)} req/s   sent ${m.sent}   failed ${m.failed}   dropped ${m.dropped}   in flight ${m.inFlight}`,
      "",
      "client, through the gateway",
      row(["service", "request", "req/s", "p50 ms", "p99 ms"]),
      ...m.rows.map((r) => row([r.service, r.route, r.client.rate.toFixed(1), ms(r.client.p50Ms), ms(r.client.p99Ms)])),
      "",
      "latency-exporter, GET /v1/latency (its window)",
      row(["service", "", "count", "avg ms", "p50 ms", "p99 ms"]),
      ...m.rows.map((r) => {
        const e = r.exporter;
        return row([r.service, "", e?.count ?? "-", e ? ms(e.averageMs) : "-", e?.p50Ms ?? "-", e?.p99Ms ?? "-"]);
      }),
    ];
    if (m.exporterError) lines.push(`  ${oneLine(m.exporterError)}`);
    if (m.adapter)
      lines.push(
        "",
        `prometheus-adapter (the guide's rule), ${m.adapter.object}:`,
        `  kong_upstream_latency_ms_60s_average = ${adapterText(m.adapter)}`,
      );
    if (m.lastError) lines.push("", `last client error: ${oneLine(m.lastError)}`);
    return lines;
  }

  private line(m: ViewModel): string {
    const parts = [
      `[${m.elapsedS.toFixed(0)}s/${m.durationS.toFixed(0)}s] client ${m.rate.toFixed(1)} req/s sent=${m.sent} failed=${m.failed} dropped=${m.dropped}`,
    ];
    for (const r of m.rows) {
      const e = r.exporter;
      const exporter = e
        ? `exporter n=${e.count} avg=${ms(e.averageMs)}ms p50=${e.p50Ms}ms p99=${e.p99Ms}ms`
        : "exporter: no data yet";
      parts.push(`${r.service} client p50=${ms(r.client.p50Ms)}ms p99=${ms(r.client.p99Ms)}ms ${exporter}`);
    }
    if (m.exporterError) parts.push(`exporter: ${oneLine(m.exporterError)}`);
    if (m.adapter) parts.push(`adapter ${m.adapter.object}: ${adapterText(m.adapter)}`);
    if (m.lastError) parts.push(`last client error: ${oneLine(m.lastError)}`);
    return parts.join(" | ");
  }
}
