import { lineChartSvg, type Point } from "../../devstack/plot";
import { DEFAULT_SYNC_PERIOD_MS } from "./hpa";
import type { AutoscaleRun } from "./run";

const METRIC = "#d1495b";
const CLIENT = "#2e6fba";
const REPLICAS = "#2a9d62";

/** Replica counts hold between syncs: a step line. */
function steps(points: Point[], xEnd: number): Point[] {
  const out: Point[] = [];
  points.forEach((p, i) => {
    if (i > 0) out.push({ x: p.x, y: out[out.length - 1].y });
    out.push(p);
  });
  if (out.length) out.push({ x: xEnd, y: out[out.length - 1].y });
  return out;
}

/** A self-contained HTML page: latency (what the HPA read, its target, what clients saw) over replicas, on one time axis. */
export function autoscaleHtml(run: AutoscaleRun): string {
  const s = (ms: number) => ms / 1000;
  const xMax = s(run.phases.end);
  const cap = run.scenario.targetMs * 5;
  const target = run.hpa.metric.targetValue;
  const bands = [
    ...(run.phases.warmup
      ? [{ from: s(run.phases.warmup[0]), to: s(run.phases.warmup[1]), label: "fast traffic", fill: "#eef3f8" }]
      : []),
    {
      from: s(run.phases.load[0]),
      to: s(run.phases.load[1]),
      label:
        run.scenario.workload === "guide"
          ? `every request ${run.scenario.guideDelayMs} ms`
          : `${run.scenario.rate} req/s`,
      fill: "#f3efe6",
    },
  ];
  const subtitle = [
    `${run.scenario.workload} workload; metric: ${run.source.title}; target ${target} ms; time scale ${run.scenario.timeScale}`,
    `HPA model: kubernetes v1.31 horizontal.go / replica_calculator.go, the guide's behavior, sync every ${(DEFAULT_SYNC_PERIOD_MS / 1000) * run.scenario.timeScale} s`,
  ];
  const latency = lineChartSvg({
    title: "Latency: what the HPA read vs its target",
    subtitle,
    xLabel: "seconds since the start",
    yLabel: `latency (ms, clipped at ${cap})`,
    xMax,
    legend: [
      {
        heading: "HPA",
        lines: [
          {
            label: "metric read at each sync (0 when the query returns NaN)",
            color: METRIC,
            width: 3,
            points: steps(
              run.syncs.map((x) => ({ x: s(x.tMs), y: x.metric === undefined ? NaN : Math.min(cap, x.metric) })),
              xMax,
            ),
            endLabel: true,
          },
          {
            label: `target (${target} ms)`,
            color: "#444",
            width: 1.5,
            dash: "6 5",
            points: [
              { x: 0, y: target },
              { x: xMax, y: target },
            ],
          },
        ],
      },
      {
        heading: "clients",
        lines: [
          {
            label: "mean latency of each second",
            color: CLIENT,
            width: 1.3,
            opacity: 0.6,
            points: run.client.map((c) => ({ x: c.tS + 0.5, y: Math.min(cap, c.meanMs) })),
          },
        ],
      },
    ],
    bands,
    footer: [],
    height: 460,
  });
  const replicas = lineChartSvg({
    title: "Replicas",
    subtitle: [
      run.events
        .filter((e) => e.reason === "SuccessfulRescale")
        .map((e) => e.message.replace(/;.*/, ""))
        .join(", ") || "no rescale",
    ],
    xLabel: "seconds since the start",
    yLabel: "replicas",
    xMax,
    legend: [
      {
        heading: "Deployment",
        lines: [
          {
            label: "spec.replicas (set by the HPA)",
            color: REPLICAS,
            width: 3,
            points: steps(
              run.syncs.map((x) => ({ x: s(x.tMs), y: x.after })),
              xMax,
            ),
            endLabel: true,
          },
          {
            label: "Ready when the HPA read them",
            color: "#7a7a7a",
            width: 1.5,
            dash: "4 4",
            points: run.syncs.map((x) => ({ x: s(x.tMs), y: x.ready })),
          },
        ],
      },
    ],
    bands,
    footer: [],
    height: 380,
  });
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>Autoscaling on Kong upstream latency</title></head>\n<body style="margin:16px;background:#fff">\n${latency}<br>\n${replicas}</body></html>\n`;
}
