import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Self-contained SVG line charts (no scripts, no external fonts or styles): what bench/RESULTS.md links to.
 */

export interface Point {
  x: number;
  /** NaN leaves a gap. */
  y: number;
}

export interface Line {
  label: string;
  color: string;
  width: number;
  /** stroke-dasharray, e.g. "7 5". */
  dash?: string;
  opacity?: number;
  points: Point[];
  /** Print the last value at the right end of the line. */
  endLabel?: boolean;
}

export interface Band {
  from: number;
  to: number;
  label: string;
  fill: string;
}

export interface LineChart {
  width?: number;
  height?: number;
  title: string;
  subtitle: string[];
  xLabel: string;
  yLabel: string;
  xMax: number;
  /** Legend columns, each a heading and its lines (drawn in the order given, the first column's last). */
  legend: { heading: string; lines: Line[] }[];
  bands: Band[];
  footer: string[];
}

const FONT = "font-family=\"-apple-system, 'Segoe UI', Helvetica, Arial, 'DejaVu Sans', sans-serif\"";

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A tick step of 1, 2, 2.5 or 5 times a power of ten giving about `target` ticks. */
export function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

function num(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function lineChartSvg(c: LineChart): string {
  const W = c.width ?? 1000;
  const H = c.height ?? 640;
  const legendRows = Math.max(...c.legend.map((g) => g.lines.length));
  const top = 58 + c.subtitle.length * 18 + 26 + legendRows * 20 + 16;
  const left = 74;
  const right = W - 70;
  const bottom = H - 58 - c.footer.length * 16;
  const lines = c.legend.flatMap((g) => g.lines);
  const ys = lines.flatMap((l) => l.points.map((p) => p.y)).filter(Number.isFinite);
  const yStep = niceStep(Math.max(1, ...ys) * 1.08, 6);
  const yMax = Math.ceil((Math.max(1, ...ys) * 1.08) / yStep) * yStep;
  const xStep = niceStep(c.xMax, 10);
  const X = (x: number) => left + (Math.min(Math.max(x, 0), c.xMax) / c.xMax) * (right - left);
  const Y = (y: number) => bottom - (Math.min(Math.max(y, 0), yMax) / yMax) * (bottom - top);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`);
  out.push(`<title>${esc(c.title)}</title>`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="32" font-size="20" font-weight="600" fill="#1a1a1a">${esc(c.title)}</text>`);
  c.subtitle.forEach((s, i) =>
    out.push(`<text x="${left}" y="${56 + i * 18}" font-size="13" fill="#555">${esc(s)}</text>`),
  );

  // Legend: columns of sample strokes and labels.
  const legendTop = 58 + c.subtitle.length * 18 + 14;
  const colW = (right - left) / c.legend.length;
  c.legend.forEach((g, gi) => {
    const x0 = left + gi * colW;
    out.push(`<text x="${x0}" y="${legendTop}" font-size="13" font-weight="600" fill="#333">${esc(g.heading)}</text>`);
    g.lines.forEach((l, li) => {
      const y = legendTop + 20 + li * 20;
      out.push(
        `<line x1="${x0}" y1="${y - 4}" x2="${x0 + 34}" y2="${y - 4}" stroke="${l.color}" stroke-width="${l.width}" stroke-linecap="round"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}${l.opacity !== undefined ? ` stroke-opacity="${l.opacity}"` : ""}/>`,
      );
      out.push(`<text x="${x0 + 44}" y="${y}" font-size="13" fill="#222">${esc(l.label)}</text>`);
    });
  });

  // Bands (phases) behind everything else.
  for (const b of c.bands) {
    const x1 = X(b.from);
    const x2 = X(b.to);
    out.push(
      `<rect x="${x1.toFixed(1)}" y="${top}" width="${(x2 - x1).toFixed(1)}" height="${bottom - top}" fill="${b.fill}"/>`,
    );
    out.push(
      `<text x="${((x1 + x2) / 2).toFixed(1)}" y="${top + 18}" font-size="12.5" fill="#555" text-anchor="middle">${esc(b.label)}</text>`,
    );
  }

  // Grid and axes.
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    const y = Y(v).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="${v === 0 ? "#444" : "#d9d9d9"}" stroke-width="1"/>`,
    );
    out.push(
      `<text x="${left - 8}" y="${(Number(y) + 4).toFixed(1)}" font-size="12" fill="#444" text-anchor="end">${num(v)}</text>`,
    );
  }
  for (let v = 0; v <= c.xMax + 1e-9; v += xStep) {
    const x = X(v).toFixed(1);
    out.push(`<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#444"/>`);
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#efefef"/>`);
    out.push(`<text x="${x}" y="${bottom + 20}" font-size="12" fill="#444" text-anchor="middle">${num(v)}</text>`);
  }
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#444"/>`);
  out.push(
    `<text x="${(left + right) / 2}" y="${bottom + 42}" font-size="13" fill="#333" text-anchor="middle">${esc(c.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(${left - 48} ${(top + bottom) / 2}) rotate(-90)" font-size="13" fill="#333" text-anchor="middle">${esc(c.yLabel)}</text>`,
  );

  // Lines: the first legend column is drawn last, on top.
  for (const l of [...c.legend].reverse().flatMap((g) => [...g.lines].reverse())) {
    const segments: string[][] = [[]];
    for (const p of l.points) {
      if (!Number.isFinite(p.y) || !Number.isFinite(p.x)) {
        if (segments[segments.length - 1].length) segments.push([]);
        continue;
      }
      segments[segments.length - 1].push(`${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`);
    }
    for (const s of segments.filter((s) => s.length > 0)) {
      out.push(
        `<polyline points="${s.join(" ")}" fill="none" stroke="${l.color}" stroke-width="${l.width}" stroke-linejoin="round" stroke-linecap="round"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}${l.opacity !== undefined ? ` stroke-opacity="${l.opacity}"` : ""}/>`,
      );
    }
    const last = [...l.points].reverse().find((p) => Number.isFinite(p.y));
    if (l.endLabel && last) {
      out.push(
        `<text x="${(X(last.x) + 6).toFixed(1)}" y="${(Y(last.y) + 4).toFixed(1)}" font-size="12" font-weight="600" fill="${l.color}">${num(Math.round(last.y))}</text>`,
      );
    }
  }
  c.footer.forEach((f, i) =>
    out.push(
      `<text x="${left}" y="${H - 14 - (c.footer.length - 1 - i) * 16}" font-size="11.5" fill="#666">${esc(f)}</text>`,
    ),
  );
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** The latency-over-time figure of the end-to-end load benchmark. */
export interface LatencyOverTime {
  subtitle: string[];
  xMaxS: number;
  windowS: number;
  phases: { fromS: number; toS: number; label: string }[];
  /** Client-observed percentiles of the responses completed in each second, at the second's middle. */
  clientPerSecond: { tS: number; p50: number; p99: number }[];
  /** Client-observed percentiles over the exporter's window, at each reading of the exporter. */
  clientWindow: { tS: number; p50: number; p99: number }[];
  /** The exporter's percentiles (GET /v1/latency), at each reading. */
  exporter: { tS: number; p50: number; p99: number }[];
  footer: string[];
}

const P99 = "#d1495b";
const P50 = "#2e6fba";

export function latencyOverTimeSvg(d: LatencyOverTime): string {
  const pts = (xs: { tS: number; p50: number; p99: number }[], k: "p50" | "p99") =>
    xs.map((s) => ({ x: s.tS, y: s[k] }));
  const w = `${d.windowS} s`;
  const legendFor = (k: "p50" | "p99", color: string) => ({
    heading: k,
    lines: [
      {
        label: `exporter ${k} (GET /v1/latency, last ${w})`,
        color,
        width: 3.2,
        points: pts(d.exporter, k),
        endLabel: true,
      },
      { label: `client ${k} over the same ${w} window`, color, width: 2, dash: "7 5", points: pts(d.clientWindow, k) },
      { label: `client ${k} of each second`, color, width: 1.3, opacity: 0.45, points: pts(d.clientPerSecond, k) },
    ],
  });
  return lineChartSvg({
    title: "Upstream latency under load: what clients see vs what the exporter reports",
    subtitle: d.subtitle,
    xLabel: "seconds since the load started",
    yLabel: "latency (ms)",
    xMax: d.xMaxS,
    legend: [legendFor("p99", P99), legendFor("p50", P50)],
    bands: d.phases.map((p, i) => ({ from: p.fromS, to: p.toS, label: p.label, fill: i % 2 ? "#f3efe6" : "#eef3f8" })),
    footer: d.footer,
  });
}

export function writeLatencyPlot(path: string, d: LatencyOverTime): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, latencyOverTimeSvg(d));
}
