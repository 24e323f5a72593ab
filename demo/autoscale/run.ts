import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { startLocalStack } from "../../devstack/process/local-stack";
import { startDeployment } from "./deployment";
import { DEFAULT_SYNC_PERIOD_MS, HorizontalController, type HpaEvent, type HpaSpec } from "./hpa";
import { metricSource, type MetricSource } from "./metric-source";
import { guideHpa, type Scenario } from "./scenario";
import { ClientStats, runPoissonLoad, runSequentialLoop, type ClientSecond } from "./traffic";

const NAMESPACE = "default";
const SERVICE = "echo";
/** The step of the guide's rule, `[60s:10s]`. */
const RULE_STEP_MS = 10_000;

export interface SyncSample {
  /** ms since the run's start. */
  tMs: number;
  /** The metric the controller read, in its unit (ms); undefined when it could not. */
  metric: number | undefined;
  error: string | undefined;
  /** spec.replicas before and after the sync, and Ready pods when it read them. */
  before: number;
  after: number;
  ready: number;
}

export interface AutoscaleRun {
  scenario: Scenario;
  source: MetricSource;
  hpa: HpaSpec;
  /** Epoch ms of the run's start; events carry epoch ms. */
  t0: number;
  events: HpaEvent[];
  syncs: SyncSample[];
  client: ClientSecond[];
  clientTotals: { ok: number; failed: number; skipped: number };
  /** ms since t0. */
  phases: { warmup?: [number, number]; load: [number, number]; end: number };
}

export interface RunHooks {
  onStart?(run: { source: MetricSource; hpa: HpaSpec; t0: number; loadFrom: number; loadTo: number }): void;
  onEvent?(e: HpaEvent, hpa: HpaSpec): void;
  onSync?(s: SyncSample): void;
}

/**
 * The autoscaling loop on loopback: traffic → gateway (balancing over the Deployment's Ready replicas) → plugin →
 * latency-exporter → Prometheus → the metric path (prometheus-adapter's query or KEDA's read of /v1/latency) →
 * the HPA controller model → replicas started or stopped. Bounded: it ends at the scale-down after the traffic
 * stops, or `cooldownS` later.
 */
export async function runAutoscale(scn: Scenario, hooks: RunHooks = {}, signal?: AbortSignal): Promise<AutoscaleRun> {
  const k = scn.timeScale;
  if (!(k >= 0.1 && k <= 1)) throw new Error(`timeScale must be within 0.1..1, got ${k}`);
  const deployment = startDeployment({
    replicas: 1,
    concurrency: scn.workload === "capacity" ? scn.concurrency : undefined,
  });
  const abort = new AbortController();
  // Every request in flight listens on it.
  setMaxListeners(0, abort.signal);
  const stopTraffic = () => abort.abort();
  signal?.addEventListener("abort", stopTraffic);
  let stack;
  try {
    await deployment.settled();
    stack = await startLocalStack({
      withPrometheus: true,
      // The fleet p99 reads the native histogram family, which Prometheus scrapes only with this on.
      prometheusFeatures: scn.metric === "native-p99" ? ["native-histograms"] : [],
      scrapeInterval: `${Math.round(1000 * k)}ms`,
      flushInterval: Math.max(0.1, Math.round(10 * k) / 10),
      routes: [{ path: "/echo", namespace: NAMESPACE, name: SERVICE, upstream: () => deployment.balancer() }],
      exporterArgs: ["--percentile-window", `${Math.round(60_000 * k)}ms`],
    });
    const source = metricSource(scn.metric, {
      prometheus: stack.prometheus!,
      exporterMetricsUrl: stack.exporterMetricsUrl,
      namespace: NAMESPACE,
      name: SERVICE,
      targetMs: scn.targetMs,
      timeScale: k,
    });
    const hpa = new HorizontalController(guideHpa(source.metric, k));
    const sync = DEFAULT_SYNC_PERIOD_MS * k;
    const step = RULE_STEP_MS * k;

    // Prometheus evaluates the rule's subquery at multiples of its step. The HPA syncs a quarter step after a
    // boundary, and the guide's slow loop starts at that sync: where the 15 s syncs fall on the 60 s average's
    // climb decides the sizes the HPA picks (see README, "Autoscaling, end to end"). A quarter step puts the
    // syncs that see 3 and 4 slow steps of the window's 5 in the middle of the ranges that give 2 then 4.
    const t0 = Date.now();
    const firstSync = Math.ceil((t0 + 500) / step) * step + step / 4;
    let loadFrom = t0;
    if (scn.workload === "guide") {
      const warmEnd = t0 + scn.warmupS * 1000 * k;
      const cycle = 3 * step; // two syncs
      loadFrom =
        firstSync - step / 4 + Math.max(0, Math.ceil((warmEnd - (firstSync - step / 4)) / cycle)) * cycle + step / 4;
    }
    const loadTo = loadFrom + scn.loadS * 1000 * k;
    hooks.onStart?.({ source, hpa: hpa.spec, t0, loadFrom, loadTo });

    const stats = new ClientStats(t0);
    const gateway = stack.gatewayUrl;
    const traffic =
      scn.workload === "guide"
        ? runSequentialLoop({
            baseUrl: gateway,
            path: "/echo",
            pauseMs: 1000 * k,
            delayAt: (now) => (now < loadFrom ? 0 : now < loadTo ? scn.guideDelayMs : undefined),
            stats,
            signal: abort.signal,
          })
        : runPoissonLoad({
            baseUrl: gateway,
            path: `/echo?delay_ms=${scn.serviceMs}`,
            rate: scn.rate,
            untilMs: loadTo,
            seed: 7,
            maxInFlight: 256,
            stats,
            signal: abort.signal,
          });

    const events: HpaEvent[] = [];
    const syncs: SyncSample[] = [];
    const deadline = loadTo + scn.cooldownS * 1000 * k;
    let settledSyncs = 0;
    // Every sync period, on the phase set above; a sync that overran is followed by one overdue sync, not a burst.
    for (let at = firstSync; at <= deadline && !signal?.aborted; at = Math.max(at + sync, Date.now())) {
      await sleep(Math.max(0, at - Date.now()), undefined, { signal }).catch(() => undefined);
      if (signal?.aborted) break;
      const failed = deployment.failure();
      if (failed) throw failed;
      const reading = await source.read();
      const before = deployment.replicas();
      const ready = deployment.ready();
      const d = hpa.reconcile(Date.now(), before, ready, reading);
      deployment.scale(d.replicas);
      const sample: SyncSample = {
        tMs: Date.now() - t0,
        metric: d.currentMilli === undefined ? undefined : d.currentMilli / 1000,
        error: "error" in reading ? reading.error : undefined,
        before,
        after: d.replicas,
        ready,
      };
      syncs.push(sample);
      hooks.onSync?.(sample);
      for (const e of d.events) {
        events.push(e);
        hooks.onEvent?.(e, hpa.spec);
      }
      // Two more syncs after the scale-down show that it holds.
      if (
        d.replicas === hpa.spec.minReplicas &&
        events.some((e) => e.atMs > loadTo && e.reason === "SuccessfulRescale")
      )
        settledSyncs++;
      if (settledSyncs > 2) break;
    }
    stopTraffic();
    await traffic;
    return {
      scenario: scn,
      source,
      hpa: hpa.spec,
      t0,
      events,
      syncs,
      client: stats.series(),
      clientTotals: stats.totals(),
      phases: {
        warmup: scn.workload === "guide" ? [0, loadFrom - t0] : undefined,
        load: [loadFrom - t0, loadTo - t0],
        end: Date.now() - t0,
      },
    };
  } finally {
    signal?.removeEventListener("abort", stopTraffic);
    stopTraffic();
    await deployment.stop();
    await stack?.stop();
  }
}
