#!/usr/bin/env node
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { findPrometheus } from "../devstack/prometheus/prometheus";
import { DEFAULT_SYNC_PERIOD_MS } from "./autoscale/hpa";
import { eventLine, eventsTable, targetsColumn } from "./autoscale/kubectl-format";
import { autoscaleHtml } from "./autoscale/plot";
import { runAutoscale } from "./autoscale/run";
import { DEFAULT_SCENARIO, type Scenario } from "./autoscale/scenario";
import { onInterrupt, say } from "./cli-interrupts";

function numberIn(min: number, max: number, integer: boolean) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(
        `"${text}" is not ${integer ? "a whole number" : "a number"} from ${min} to ${max}`,
      );
    }
    return n;
  };
}

function parseArgs(): Scenario & { plot: string } {
  const d = DEFAULT_SCENARIO;
  const o = new Command("autoscale-demo")
    .description(
      "Runs the autoscaling loop on loopback: traffic through a Kong stand-in with the upstream-latency plugin (real kong-js-pluginserver), " +
        "the latency-exporter, real Prometheus, the metric as prometheus-adapter (or KEDA) serves it, a model of the Kubernetes HPA controller, " +
        "and real upstream replicas it starts and stops. Prints the HPA's events as kubectl shows them and writes a plot.",
    )
    .addOption(
      new Option(
        "--workload <name>",
        "guide: every request takes --guide-delay-ms whatever the replicas (the guide's loop); capacity: each replica serves --concurrency requests at once",
      )
        .choices(["guide", "capacity"])
        .default(d.workload),
    )
    .addOption(
      new Option(
        "--metric <path>",
        "average: the guide's adapter rule; p99: the windowed p99 rule (worst pod); native-p99: the fleet p99 rule on native histograms; keda: KEDA's metrics-api trigger on /v1/latency",
      )
        .choices(["average", "p99", "native-p99", "keda"])
        .default(d.metric),
    )
    .addOption(
      new Option(
        "--time-scale <k>",
        "multiply every duration (sync period, rule windows, behavior, traffic phases) by k, 0.1 to 1",
      )
        .argParser(numberIn(0.1, 1, false))
        .default(d.timeScale),
    )
    .addOption(
      new Option("--target-ms <ms>", "the HPA's target value")
        .argParser(numberIn(1, 60_000, false))
        .default(d.targetMs),
    )
    .addOption(
      new Option("--guide-delay-ms <ms>", "guide workload: upstream latency of each request once the loop starts")
        .argParser(numberIn(0, 30_000, true))
        .default(d.guideDelayMs),
    )
    .addOption(
      new Option("--rate <n>", "capacity workload: requests per second (Poisson arrivals)")
        .argParser(numberIn(1, 500, false))
        .default(d.rate),
    )
    .addOption(
      new Option("--service-ms <ms>", "capacity workload: each request's service time at a replica")
        .argParser(numberIn(1, 10_000, true))
        .default(d.serviceMs),
    )
    .addOption(
      new Option("--concurrency <n>", "capacity workload: requests one replica serves at once; the others wait")
        .argParser(numberIn(1, 1000, true))
        .default(d.concurrency),
    )
    .addOption(
      new Option("--load-s <s>", "how long the traffic that drives the scale-up lasts, in unscaled seconds").argParser(
        numberIn(10, 3600, false),
      ),
    )
    .addOption(new Option("--plot <file>", "where to write the HTML plot").default("autoscale-demo.html"))
    .allowExcessArguments(false)
    .parse()
    .opts<{
      workload: Scenario["workload"];
      metric: Scenario["metric"];
      timeScale: number;
      targetMs: number;
      guideDelayMs: number;
      rate: number;
      serviceMs: number;
      concurrency: number;
      loadS?: number;
      plot: string;
    }>();
  return { ...d, ...o, loadS: o.loadS ?? (o.workload === "guide" ? d.loadS : 240) };
}

async function main(): Promise<number> {
  const scn = parseArgs();
  if (!findPrometheus()) {
    process.stderr.write(
      "autoscale-demo: needs the real Prometheus on PATH (the HPA reads its metric through it): apt-get install -y --no-install-recommends prometheus\n",
    );
    return 1;
  }
  const abort = new AbortController();
  let exitCode = 0;
  const interrupt = (why: string, code: number) => {
    if (abort.signal.aborted) {
      // A second signal: the user does not want to wait for the cleanup (the children's exit hooks still run).
      process.exit(code);
    }
    exitCode = code;
    say(`\n${why}: stopping the traffic, the replicas and every process the demo started`);
    abort.abort();
  };
  onInterrupt("autoscale-demo", interrupt);

  const s = (ms: number) => `${Math.round(ms / 100) / 10}s`;
  const run = await runAutoscale(
    scn,
    {
      onStart({ source, hpa, t0, loadFrom, loadTo }) {
        say(
          `Workload: ${scn.workload === "guide" ? `the guide's loop (one request at a time, ${scn.timeScale} s apart): fast until ${s(loadFrom - t0)}, then every request ${scn.guideDelayMs} ms until ${s(loadTo - t0)}` : `${scn.rate} req/s (Poisson) of ${scn.serviceMs} ms work, ${scn.concurrency} at once per replica, until ${s(loadTo - t0)}`}; then nothing.`,
        );
        say(
          `Metric: ${source.title}, target ${hpa.metric.targetValue}; HPA ${hpa.name}: ${hpa.minReplicas} to ${hpa.maxReplicas} replicas, the guide's behavior, sync every ${(DEFAULT_SYNC_PERIOD_MS / 1000) * scn.timeScale} s.`,
        );
        say(`The HPA reads: ${source.query.replace(/\s+/g, " ").trim()}`);
        say("");
        say(
          `${"TIME".padEnd(8)}${"TARGETS".padEnd(16)}${"REPLICAS".padEnd(10)}READY   (like kubectl get hpa -w; events as kubectl get events -w)`,
        );
      },
      onSync(x) {
        say(
          `${s(x.tMs).padEnd(8)}${targetsColumn(x.metric, scn.targetMs).padEnd(16)}${String(x.before).padEnd(10)}${x.ready}`,
        );
      },
      onEvent(e, hpa) {
        say(`  0s  ${eventLine(e, hpa.name)}`);
      },
    },
    abort.signal,
  );
  const now = Date.now();
  say("");
  say(
    "kubectl get events -n default --field-selector involvedObject.name=echo,involvedObject.kind=HorizontalPodAutoscaler",
  );
  for (const line of eventsTable(run.events, run.hpa, now)) say(line);
  say("");
  const t = run.clientTotals;
  say(
    `Clients: ${t.ok} requests answered, ${t.failed} failed${t.skipped ? `, ${t.skipped} not sent (too many waiting)` : ""}.`,
  );
  const plot = resolve(scn.plot);
  writeFileSync(plot, autoscaleHtml(run));
  say(`Plot: ${plot}`);
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`autoscale-demo: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
