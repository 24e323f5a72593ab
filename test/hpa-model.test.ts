import { strict as assert } from "node:assert";
import { HorizontalController, type HpaSpec } from "../demo/autoscale/hpa";
import { scaleRangeDurations } from "../demo/autoscale/metric-source";
import { guideHpa } from "../demo/autoscale/scenario";
import { eventsTable, targetsColumn } from "../demo/autoscale/kubectl-format";

const OBJECT: HpaSpec["metric"] = {
  type: "Object",
  name: "kong_upstream_latency_ms_60s_average",
  describedObject: { kind: "Service", name: "echo" },
  targetValue: 40,
};
const ABOVE = "reason: Service metric kong_upstream_latency_ms_60s_average above target";
const SYNC = 15_000;

/** Runs syncs 15 s apart, the Deployment following each decision with every pod Ready; returns the new sizes. */
function drive(
  hpa: HorizontalController,
  metrics: Array<number | undefined>,
  start = 1,
  t0 = 0,
): { sizes: string[]; replicas: number } {
  let replicas = start;
  const sizes: string[] = [];
  metrics.forEach((m, i) => {
    const d = hpa.reconcile(t0 + i * SYNC, replicas, replicas, m === undefined ? { error: "no metric" } : { value: m });
    replicas = d.replicas;
    for (const e of d.events) if (e.reason === "SuccessfulRescale") sizes.push(e.message);
  });
  return { sizes, replicas };
}

describe("HPA controller model (kubernetes v1.31 horizontal.go, replica_calculator.go)", () => {
  it("with the guide's behavior, a constant 100 ms against 40 goes 1 → 3 → 7 → 10: selectPolicy Max allows +4 pods from 1 and 2", () => {
    const { sizes } = drive(new HorizontalController(guideHpa(OBJECT, 1)), [40, 100, 100, 100]);
    assert.deepEqual(sizes, [`New size: 3; ${ABOVE}`, `New size: 7; ${ABOVE}`, `New size: 10; ${ABOVE}`]);
  });

  it("a 60 s average still climbing gives the guide's 2, 4, 8, 10, and a NaN (read as 0) after the traffic gives 1", () => {
    const { sizes, replicas } = drive(new HorizontalController(guideHpa(OBJECT, 1)), [5, 20, 58, 79, 105, 106, 106, 0]);
    assert.deepEqual(sizes, [
      `New size: 2; ${ABOVE}`,
      `New size: 4; ${ABOVE}`,
      `New size: 8; ${ABOVE}`,
      `New size: 10; ${ABOVE}`,
      "New size: 1; reason: All metrics below target",
    ]);
    assert.equal(replicas, 1);
  });

  it("does nothing within the 0.1 tolerance, on both sides", () => {
    const hpa = new HorizontalController(guideHpa(OBJECT, 1));
    for (const m of [36.1, 43.9, 40])
      assert.deepEqual(hpa.reconcile(0, 4, 4, { value: m }), {
        replicas: 4,
        currentMilli: m * 1000,
        metricDesired: 4,
        events: [],
      });
    assert.equal(hpa.reconcile(SYNC, 4, 4, { value: 44.1 }).replicas, 5);
  });

  it("holds the first sync's scale-up: the controller's initial recommendation (the current count) is within the up window", () => {
    const hpa = new HorizontalController(guideHpa(OBJECT, 1));
    assert.deepEqual(hpa.reconcile(0, 1, 1, { value: 100 }).events, []);
    assert.equal(hpa.reconcile(SYNC, 1, 1, { value: 100 }).replicas, 3);
  });

  it("scales on Ready pods, not on spec.replicas", () => {
    const hpa = new HorizontalController(guideHpa(OBJECT, 1));
    hpa.reconcile(-SYNC, 4, 4, { value: 40 });
    assert.equal(hpa.reconcile(0, 4, 2, { value: 100 }).replicas, 5);
  });

  it("keeps the replica count and records warnings when the metric cannot be read", () => {
    const d = new HorizontalController(guideHpa(OBJECT, 1)).reconcile(0, 3, 3, {
      error: "the server could not find the metric",
    });
    assert.equal(d.replicas, 3);
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason]),
      [
        ["Warning", "FailedGetObjectMetric"],
        ["Warning", "FailedComputeMetricsReplicas"],
      ],
    );
  });

  it("limits a scale-up by the changes within the policies' periods", () => {
    const spec = guideHpa(OBJECT, 1);
    const hpa = new HorizontalController(spec);
    hpa.reconcile(-SYNC, 1, 1, { value: 40 });
    assert.equal(hpa.reconcile(0, 1, 1, { value: 400 }).replicas, 5); // max(100%: 2, 4 pods: 5)
    assert.equal(hpa.reconcile(1_000, 5, 5, { value: 400 }).replicas, 5); // still within the 2 s periods, counted from 1
    assert.equal(hpa.reconcile(2_500, 5, 5, { value: 400 }).replicas, 10);
  });

  it("with selectPolicy Min, the smallest change wins", () => {
    const spec = guideHpa(OBJECT, 1);
    spec.behavior!.scaleUp!.selectPolicy = "Min";
    assert.deepEqual(
      drive(new HorizontalController(spec), [40, 100, 100, 100, 100]).sizes.map((m) => m.replace(/;.*/, "")),
      ["New size: 2", "New size: 4", "New size: 8", "New size: 10"],
    );
  });

  it("without behavior, a scale-down waits for the default 5-minute stabilization window", () => {
    const hpa = new HorizontalController({ name: "echo", minReplicas: 1, maxReplicas: 10, metric: OBJECT });
    hpa.reconcile(0, 10, 10, { value: 100 });
    let t = SYNC;
    for (; t < 300_000; t += SYNC) assert.equal(hpa.reconcile(t, 10, 10, { value: 0 }).replicas, 10, `at ${t / 1000}s`);
    assert.equal(hpa.reconcile(t + SYNC, 10, 10, { value: 0 }).replicas, 1);
  });

  it("without behavior, a scale-up is bounded by max(2 x current, 4) per sync", () => {
    const hpa = new HorizontalController({ name: "echo", minReplicas: 1, maxReplicas: 50, metric: OBJECT });
    assert.deepEqual(
      drive(hpa, [1000, 1000, 1000]).sizes.map((m) => m.replace(/;.*/, "")),
      ["New size: 4", "New size: 8", "New size: 16"],
    );
  });

  it("with a behavior that leaves its rules out, a scale-up allows 4 pods or 100% per 15 s, whichever is more", () => {
    const hpa = new HorizontalController({
      name: "echo",
      minReplicas: 1,
      maxReplicas: 50,
      behavior: {},
      metric: OBJECT,
    });
    assert.deepEqual(
      drive(hpa, [40, 1000, 1000, 1000]).sizes.map((m) => m.replace(/;.*/, "")),
      ["New size: 5", "New size: 10", "New size: 20"],
    );
  });

  it("clamps to minReplicas and maxReplicas with the controller's reasons", () => {
    const hpa = new HorizontalController(guideHpa(OBJECT, 1));
    assert.equal(
      hpa.reconcile(0, 12, 12, { value: 100 }).events[0].message,
      "New size: 10; reason: Current number of replicas above Spec.MaxReplicas",
    );
    const atLeastTwo = new HorizontalController({ ...guideHpa(OBJECT, 1), minReplicas: 2 });
    assert.equal(
      atLeastTwo.reconcile(SYNC, 1, 1, { value: 100 }).events[0].message,
      "New size: 2; reason: Current number of replicas below Spec.MinReplicas",
    );
  });

  it("leaves a workload scaled to zero by hand alone", () => {
    assert.deepEqual(new HorizontalController(guideHpa(OBJECT, 1)).reconcile(0, 0, 0, { value: 100 }), {
      replicas: 0,
      currentMilli: undefined,
      metricDesired: undefined,
      events: [],
    });
  });

  it("names an External metric (KEDA) as the controller does", () => {
    const hpa = new HorizontalController(
      guideHpa(
        {
          type: "External",
          name: "s0-metric-api-p99_ms",
          selector: { "scaledobject.keda.sh/name": "echo" },
          targetValue: 40,
        },
        1,
      ),
    );
    hpa.reconcile(-SYNC, 1, 1, { value: 40 });
    assert.equal(
      hpa.reconcile(0, 1, 1, { value: 70 }).events[0].message,
      "New size: 2; reason: external metric s0-metric-api-p99_ms(&LabelSelector{MatchLabels:map[string]string{scaledobject.keda.sh/name: echo,},MatchExpressions:[]LabelSelectorRequirement{},}) above target",
    );
  });

  it("refuses an HPA the API server would refuse", () => {
    assert.throws(
      () => new HorizontalController({ name: "x", minReplicas: 0, maxReplicas: 3, metric: OBJECT }),
      /minReplicas/,
    );
    assert.throws(
      () => new HorizontalController({ name: "x", minReplicas: 4, maxReplicas: 3, metric: OBJECT }),
      /maxReplicas/,
    );
    assert.throws(
      () =>
        new HorizontalController({ name: "x", minReplicas: 1, maxReplicas: 3, metric: { ...OBJECT, targetValue: 0 } }),
      /target/,
    );
  });
});

describe("autoscale demo helpers", () => {
  it("scales a rule's range and step, and leaves the adapter's query untouched at scale 1", () => {
    const q = "rate(x[60s:10s]) / rate(y[2m])";
    assert.equal(scaleRangeDurations(q, 1), q);
    assert.equal(scaleRangeDurations(q, 0.5), "rate(x[30000ms:5000ms]) / rate(y[60000ms])");
  });

  it("prints kubectl's TARGETS column and aggregates repeated events", () => {
    assert.equal(targetsColumn(102.312, 40), "102312m/40");
    assert.equal(targetsColumn(0, 40), "0/40");
    assert.equal(targetsColumn(undefined, 40), "<unknown>/40");
    const e = (atMs: number, reason: string) => ({ atMs, type: "Warning" as const, reason, message: "m" });
    const lines = eventsTable(
      [e(0, "FailedGetObjectMetric"), e(15_000, "FailedGetObjectMetric")],
      guideHpa(OBJECT, 1),
      45_000,
    );
    assert.match(lines[0], /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    assert.match(
      lines[1],
      /^30s \(x2 over 45s\)\s+Warning\s+FailedGetObjectMetric\s+horizontalpodautoscaler\/echo\s+m$/,
    );
  });
});
