#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "../sidecar/options";
import { findPrometheus } from "../devstack/prometheus/prometheus";
import { startLoad, type LoadRun, type LoadSnapshot } from "../devstack/load";
import { startLocalStack, type GatewayKind, type LocalStack } from "../devstack/process/local-stack";
import { nginxMissing } from "../devstack/nginx/nginx-process";
import {
  adapterQuery,
  adapterReading,
  exporterFigures,
  fetchMetrics,
  metricsExcerpt,
  upstreamTotals,
  type ServiceFigures,
} from "../devstack/observe";
import { TerminalView, type ViewModel } from "./terminal-view";
import { onInterrupt, say } from "./cli-interrupts";

/** The second Service's upstream latency: fixed, so that the two rows differ visibly. */
const CART_DELAY_MS = 10;
/** Requests per 4 to default/echo; the rest go to shop/cart. */
const ECHO_SHARE = 3;
/** Bounds the sockets the demo holds (client, gateway and upstream all live in this one process). */
const MAX_IN_FLIGHT = 200;
const MAX_RATE = 2_000;
const MAX_DELAY_MS = 30_000;
const TICK_MS = 1_000;

interface DemoOptions {
  duration: number;
  rate: number;
  delayMs: number;
}

function parseRate(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || n < 0.1 || n > MAX_RATE) {
    throw new InvalidArgumentError(`"${text}" is not a rate from 0.1 to ${MAX_RATE} requests per second`);
  }
  return n;
}

function parseDelay(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n > MAX_DELAY_MS)
    throw new InvalidArgumentError(`"${text}" is not a whole number of milliseconds from 0 to ${MAX_DELAY_MS}`);
  return n;
}

function parseArgs(): DemoOptions {
  return new Command("demo")
    .description(
      "Runs the whole path on loopback (an echo upstream, a gateway standing in for Kong (nginx + LuaJIT when installed, " +
        "else a Node stand-in), the real kong-js-pluginserver " +
        "with the upstream-latency plugin, the latency-exporter, and Prometheus when installed), sends traffic, and shows " +
        `what the exporter and the guide's prometheus-adapter query report. ${ECHO_SHARE} requests in ${ECHO_SHARE + 1} go to ` +
        `default/echo with --delay-ms, the others to shop/cart with ${CART_DELAY_MS} ms.`,
    )
    .addOption(
      new Option("--duration <duration>", "how long to send traffic, e.g. 60s, 2m (1s to 1h)")
        .argParser((t) => parseDuration(t, 1_000, 3_600_000))
        .default(60_000, "60s"),
    )
    .addOption(
      new Option("--rate <n>", `requests per second in total (0.1 to ${MAX_RATE})`).argParser(parseRate).default(50),
    )
    .addOption(
      new Option("--delay-ms <ms>", `upstream latency of default/echo's requests (0 to ${MAX_DELAY_MS})`)
        .argParser(parseDelay)
        .default(100),
    )
    .allowExcessArguments(false)
    .parse()
    .opts<DemoOptions>();
}

const GATEWAYS: Record<GatewayKind, string> = {
  nginx: "a Kong-like gateway on nginx + LuaJIT (devstack/nginx): Kong's log timer and plugin-server RPC in Lua",
  node: "the Node stand-in for Kong (devstack/gateway) with the Kong-side emulator",
};

function describeStack(stack: LocalStack): void {
  const routes = stack.routes
    .map((r) => `${r.path} → Kong Service ${r.kongService} (${r.namespace}/${r.name})`)
    .join(", ");
  say("Local stack, on loopback only:");
  say(`  echo upstream         ${stack.upstreamUrl}   answers any path after ?delay_ms=N ms`);
  say(`  gateway (Kong)        ${stack.gatewayUrl}   ${routes}`);
  say(`                        ${GATEWAYS[stack.gateway]}`);
  say(
    `  kong-js-pluginserver  pid ${stack.pids.pluginServer}   runs upstream-latency (global), as Kong's plugin server`,
  );
  say(
    `  latency-exporter      pid ${stack.pids.exporter}   ${stack.exporterMetricsUrl}/metrics and /v1/latency; ingest ${stack.exporterIngestUrl}`,
  );
  if (stack.prometheus) {
    say(`  prometheus            ${stack.prometheus.url}   scrapes the exporter every 1 s as a ServiceMonitor would`);
    say("The guide's prometheus-adapter rule asks Prometheus, for namespaces/default/services/echo:");
    say(`  ${adapterQuery("default", "echo").replace(/\s+/g, " ").trim()}`);
  }
}

/** Builds the view from the load's counters, the exporter's figures and the adapter's reading. */
function viewModel(
  snap: LoadSnapshot,
  rates: number[],
  opts: DemoOptions,
  stack: LocalStack,
  figures: PromiseSettledResult<ServiceFigures[]>,
  adapter: PromiseSettledResult<ViewModel["adapter"]>,
): ViewModel {
  const found = figures.status === "fulfilled" ? figures.value : [];
  return {
    elapsedS: Math.min(snap.elapsedMs, opts.duration) / 1000,
    durationS: opts.duration / 1000,
    rate: rates.reduce((a, b) => a + b, 0),
    sent: snap.sent,
    failed: snap.targets.reduce((n, t) => n + t.failed, 0),
    dropped: snap.dropped,
    inFlight: snap.inFlight,
    lastError: snap.lastError,
    rows: snap.targets.map((t, i) => {
      const e = found.find((f) => f.kong_service === stack.routes[i].kongService);
      return {
        service: t.name,
        route: t.path,
        client: { rate: rates[i], p50Ms: t.p50Ms, p99Ms: t.p99Ms },
        exporter: e && { count: e.count, averageMs: e.average_ms, p50Ms: e.p50_ms, p99Ms: e.p99_ms },
      };
    }),
    exporterError: figures.status === "rejected" ? (figures.reason as Error).message : undefined,
    adapter:
      adapter.status === "fulfilled"
        ? adapter.value
        : { object: "namespaces/default/services/echo", error: (adapter.reason as Error).message },
  };
}

function observe(
  stack: LocalStack,
): Promise<[PromiseSettledResult<ServiceFigures[]>, PromiseSettledResult<ViewModel["adapter"]>]> {
  const prom = stack.prometheus;
  const object = "namespaces/default/services/echo";
  return Promise.allSettled([
    exporterFigures(stack.exporterMetricsUrl),
    prom
      ? adapterReading(prom, "default", "echo").then((reading) => ({ object, reading }))
      : Promise.resolve(undefined),
  ]);
}

/** The exporter's totals against what Kong measured request by request: they must be equal. */
async function printTotals(stack: LocalStack, snap: LoadSnapshot): Promise<void> {
  const metrics = await fetchMetrics(stack.exporterMetricsUrl);
  const totals = upstreamTotals(metrics);
  say("");
  say(
    "Upstream latency Kong measured (X-Kong-Upstream-Latency of each response) against the exporter's totals (/metrics):",
  );
  snap.targets.forEach((t, i) => {
    const exported = totals.get(stack.routes[i].kongService);
    const exact = exported?.count === t.kongUpstream.count && exported.sum === t.kongUpstream.sumMs;
    say(
      `  ${t.name.padEnd(14)} Kong: ${t.kongUpstream.count} requests, ${t.kongUpstream.sumMs} ms in all; ` +
        `exporter: kong_upstream_latency_ms_count ${exported?.count ?? "-"}, _sum ${exported?.sum ?? "-"}: ${exact ? "exact" : "DIFFERENT"}`,
    );
  });
  say("");
  say(
    `What the exporter exports for ${stack.routes[0].namespace}/${stack.routes[0].name} (GET ${stack.exporterMetricsUrl}/metrics, excerpt):`,
  );
  for (const line of metricsExcerpt(metrics, stack.routes[0].kongService)) say(`  ${line}`);
}

async function main(): Promise<number> {
  const opts = parseArgs();
  let stopped: { exitCode: number } | undefined;
  let load: LoadRun | undefined;
  let wake!: () => void;
  const interrupted = new Promise<void>((resolve) => (wake = resolve));
  const interrupt = (why: string, exitCode: number) => {
    if (stopped) {
      say(`${why}: already stopping; every process is stopped within seconds`);
      return;
    }
    stopped = { exitCode };
    say(`\n${why}: stopping the traffic and every process the demo started`);
    load?.stop();
    wake();
  };
  onInterrupt("demo", interrupt);
  const exitCode = () => stopped?.exitCode ?? 0;

  const withPrometheus = findPrometheus() !== undefined;
  if (!withPrometheus) {
    say(
      "prometheus is not installed, so the demo goes on without it and cannot show what the guide's prometheus-adapter query returns.",
    );
    say("To see that too: apt-get install -y --no-install-recommends prometheus");
    say("");
  }
  const missing = nginxMissing();
  if (missing) {
    say(`${missing}; the demo runs the Node stand-in for Kong instead.`);
    say("");
  }
  let stack: LocalStack;
  try {
    stack = await startLocalStack({ withPrometheus, gateway: missing ? "node" : "nginx" });
  } catch (err) {
    // A Ctrl-C on a terminal signals the whole process group, so a child may have stopped first and failed the start.
    if (stopped) return exitCode();
    throw err;
  }
  try {
    describeStack(stack);
    if (stopped) return exitCode();
    const targets = stack.routes.map((r, i) => ({
      name: `${r.namespace}/${r.name}`,
      path: `${r.path}?delay_ms=${i === 0 ? opts.delayMs : CART_DELAY_MS}`,
      weight: i === 0 ? ECHO_SHARE : 1,
    }));
    say(
      `Traffic: ${opts.rate} req/s for ${opts.duration / 1000}s, ${targets.map((t) => `${t.weight} in ${ECHO_SHARE + 1} to ${t.path}`).join(", ")}` +
        ` (at most ${MAX_IN_FLIGHT} in flight)`,
    );
    say("");

    const view = new TerminalView(process.stdout);
    const run = startLoad({
      baseUrl: stack.gatewayUrl,
      targets,
      rate: opts.rate,
      durationMs: opts.duration,
      maxInFlight: MAX_IN_FLIGHT,
    });
    load = run;
    let last = { at: Date.now(), completed: run.snapshot().targets.map((t) => t.completed) };
    let polling = false;
    // A poll still out when the run ends must not redraw over the final output.
    let live = true;
    const ticker = setInterval(() => {
      if (polling) return;
      polling = true;
      const snap = run.snapshot();
      const now = Date.now();
      const rates = snap.targets.map((t, i) => ((t.completed - last.completed[i]) * 1000) / Math.max(1, now - last.at));
      last = { at: now, completed: snap.targets.map((t) => t.completed) };
      void observe(stack)
        .then(([figures, adapter]) => {
          if (live) view.render(viewModel(snap, rates, opts, stack, figures, adapter));
        })
        .finally(() => (polling = false));
    }, TICK_MS);

    const done = await run.done;
    clearInterval(ticker);
    live = false;
    if (!stopped) await Promise.race([stack.drain(), interrupted]);
    if (stopped) {
      const failed = done.targets.reduce((n, t) => n + t.failed, 0);
      say(`Sent ${done.sent} requests (${failed} failed or cut short, ${done.dropped} dropped).`);
      return exitCode();
    }
    const [figures, adapter] = await observe(stack);
    const overall = done.targets.map(
      (t) => (t.completed * 1000) / Math.max(1, Math.min(done.elapsedMs, opts.duration)),
    );
    view.render(viewModel(done, overall, opts, stack, figures, adapter), true);
    await printTotals(stack, done);
    const stats = await stack.gatewayStats();
    if (stats.logErrors > 0)
      say(`\nThe plugin's log phase failed ${stats.logErrors} times; last: ${stats.lastLogError}`);
    return exitCode();
  } finally {
    await stack.stop();
    if (!stopped) say("\nStopped every process the demo started.");
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
