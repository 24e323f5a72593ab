/**
 * The Kubernetes HorizontalPodAutoscaler controller's decision for one HPA with one metric, as pure functions of
 * time, replica counts and the metric's value. Followed from kubernetes/kubernetes v1.31:
 * - pkg/controller/podautoscaler/horizontal.go: reconcileAutoscaler (min/max clamps, rescale reasons and the
 *   `SuccessfulRescale` event "New size: %d; reason: %s"), recordInitialRecommendation,
 *   normalizeDesiredReplicasWithBehaviors, stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate,
 *   calculateScaleUpLimitWithScalingRules, calculateScaleDownLimitWithBehaviors, getReplicasChangePerPeriod,
 *   storeScaleEvent (events older than the longest policy period are replaced), computeStatusForObjectMetric and
 *   computeStatusForExternalMetric (the metric names in reasons), getUnableComputeReplicaCountCondition (the
 *   warning events when the metric cannot be read).
 * - pkg/controller/podautoscaler/replica_calculator.go: GetObjectMetricReplicas and GetExternalMetricReplicas for a
 *   `Value` target: usageRatio = value / target on milli-values; getUsageRatioReplicaCount: within the tolerance
 *   keep the current count, else ceil(usageRatio x ready pods).
 * - pkg/apis/autoscaling/v2/defaults.go: defaults for the rules of a `behavior` that is set (scale up: no
 *   stabilization, max of 100% and 4 pods per 15 s; scale down: 100% per 15 s, stabilization from
 *   --horizontal-pod-autoscaler-downscale-stabilization, 5 min). Without `behavior` the controller takes its
 *   older path (normalizeDesiredReplicas, stabilizeRecommendation, convertDesiredReplicasWithRules): the highest
 *   recommendation of the last 5 min, and at most max(2 x current, 4) per sync.
 * - kube-controller-manager flags: --horizontal-pod-autoscaler-sync-period 15 s, --horizontal-pod-autoscaler-tolerance 0.1.
 */

export interface ScalingPolicy {
  type: "Pods" | "Percent";
  value: number;
  periodSeconds: number;
}

export interface ScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: "Max" | "Min" | "Disabled";
  policies?: ScalingPolicy[];
}

export interface HpaSpec {
  name: string;
  minReplicas: number;
  maxReplicas: number;
  behavior?: { scaleUp?: ScalingRules; scaleDown?: ScalingRules };
  /** An `Object` metric (prometheus-adapter's custom metrics) or an `External` one (KEDA), with a `Value` target. */
  metric:
    | { type: "Object"; name: string; describedObject: { kind: string; name: string }; targetValue: number }
    | { type: "External"; name: string; selector: Record<string, string>; targetValue: number };
}

/** The metric as the controller receives it from the metrics API: a quantity, or the API's error. */
export type MetricReading = { value: number } | { error: string };

export interface HpaEvent {
  atMs: number;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface Decision {
  /** The scale's spec.replicas after this sync. */
  replicas: number;
  /** The metric in milli-units, as the HPA's status shows it; undefined when it could not be read. */
  currentMilli: number | undefined;
  /** What the metric alone asks for, before limits and behavior. */
  metricDesired: number | undefined;
  events: HpaEvent[];
}

export const DEFAULT_SYNC_PERIOD_MS = 15_000;
export const DEFAULT_TOLERANCE = 0.1;
const DEFAULT_DOWNSCALE_STABILIZATION_S = 300;
// horizontal.go, scaleUpLimitFactor and scaleUpLimitMinimum: the scale-up bound without `behavior`.
const LEGACY_UP_FACTOR = 2;
const LEGACY_UP_MINIMUM = 4;

interface Timestamped {
  value: number;
  atMs: number;
}

function resolvedRules(rules: ScalingRules | undefined, up: boolean): Required<ScalingRules> {
  const policies = up
    ? [
        { type: "Pods" as const, value: 4, periodSeconds: 15 },
        { type: "Percent" as const, value: 100, periodSeconds: 15 },
      ]
    : [{ type: "Percent" as const, value: 100, periodSeconds: 15 }];
  return {
    stabilizationWindowSeconds: rules?.stabilizationWindowSeconds ?? (up ? 0 : DEFAULT_DOWNSCALE_STABILIZATION_S),
    selectPolicy: rules?.selectPolicy ?? "Max",
    policies: rules?.policies ?? policies,
  };
}

/** The replica change within the last `periodSeconds` (getReplicasChangePerPeriod: strictly after the cutoff). */
function changeInPeriod(events: Timestamped[], periodSeconds: number, nowMs: number): number {
  const cutoff = nowMs - periodSeconds * 1000;
  return events.filter((e) => e.atMs > cutoff).reduce((n, e) => n + e.value, 0);
}

function limitWithPolicies(
  current: number,
  up: boolean,
  rules: Required<ScalingRules>,
  upEvents: Timestamped[],
  downEvents: Timestamped[],
  nowMs: number,
): number {
  if (rules.selectPolicy === "Disabled") return current;
  // Max is the biggest change: the highest limit up, the lowest limit down.
  const pickHighest = up === (rules.selectPolicy === "Max");
  let result = pickHighest ? -Infinity : Infinity;
  for (const p of rules.policies) {
    const periodStart =
      current - changeInPeriod(upEvents, p.periodSeconds, nowMs) + changeInPeriod(downEvents, p.periodSeconds, nowMs);
    let proposed: number;
    if (p.type === "Pods") proposed = up ? periodStart + p.value : periodStart - p.value;
    // Go's int32(float) truncates; up is rounded up so that a small percentage still adds a pod.
    else proposed = up ? Math.ceil(periodStart * (1 + p.value / 100)) : Math.trunc(periodStart * (1 - p.value / 100));
    result = pickHighest ? Math.max(result, proposed) : Math.min(result, proposed);
  }
  return result;
}

/** Go's %+v of a *metav1.LabelSelector with match labels only, as the controller's messages print it. */
export function labelSelectorText(matchLabels: Record<string, string>): string {
  const labels = Object.entries(matchLabels)
    .map(([k, v]) => `${k}: ${v},`)
    .join("");
  return `&LabelSelector{MatchLabels:map[string]string{${labels}},MatchExpressions:[]LabelSelectorRequirement{},}`;
}

/** One HPA's controller state across syncs: its recommendations and recent scale events. */
export class HorizontalController {
  private readonly up: Required<ScalingRules>;
  private readonly down: Required<ScalingRules>;
  private recommendations: Timestamped[] = [];
  private upEvents: Timestamped[] = [];
  private downEvents: Timestamped[] = [];

  constructor(
    readonly spec: HpaSpec,
    private readonly tolerance = DEFAULT_TOLERANCE,
  ) {
    if (!(spec.minReplicas >= 1 && spec.maxReplicas >= spec.minReplicas))
      throw new Error(`${spec.name}: need 1 <= minReplicas <= maxReplicas`);
    if (!(spec.metric.targetValue > 0)) throw new Error(`${spec.name}: the target value must be positive`);
    this.up = resolvedRules(spec.behavior?.scaleUp, true);
    this.down = resolvedRules(spec.behavior?.scaleDown, false);
  }

  /** The name the controller gives the metric in its events and conditions. */
  get metricDescription(): string {
    const m = this.spec.metric;
    if (m.type === "Object") return `${m.describedObject.kind} metric ${m.name}`;
    return `external metric ${m.name}(${labelSelectorText(m.selector)})`;
  }

  /** One sync: `current` is the scale's spec.replicas, `ready` its Ready pods. */
  reconcile(nowMs: number, current: number, ready: number, reading: MetricReading): Decision {
    if (this.recommendations.length === 0) this.recommendations.push({ value: current, atMs: nowMs });
    const events: HpaEvent[] = [];
    const event = (type: HpaEvent["type"], reason: string, message: string) =>
      events.push({ atMs: nowMs, type, reason, message });
    let desired: number;
    let reason: string;
    let currentMilli: number | undefined;
    let metricDesired: number | undefined;
    if (current === 0) {
      // Scaled to zero by hand: the controller leaves it there (condition ScalingActive=False, ScalingDisabled).
      return { replicas: 0, currentMilli: undefined, metricDesired: undefined, events };
    } else if (current > this.spec.maxReplicas) {
      desired = this.spec.maxReplicas;
      reason = "Current number of replicas above Spec.MaxReplicas";
    } else if (current < this.spec.minReplicas) {
      desired = this.spec.minReplicas;
      reason = "Current number of replicas below Spec.MinReplicas";
    } else {
      if ("error" in reading) {
        const failed = this.spec.metric.type === "Object" ? "FailedGetObjectMetric" : "FailedGetExternalMetric";
        event("Warning", failed, reading.error);
        event(
          "Warning",
          "FailedComputeMetricsReplicas",
          `invalid metrics (1 invalid out of 1), first error is: failed to get ${this.spec.metric.type === "Object" ? "object" : "external"} metric value: ${reading.error}`,
        );
        return { replicas: current, currentMilli: undefined, metricDesired: undefined, events };
      }
      // Quantities reach the controller as int64 milli-values.
      currentMilli = Math.trunc(reading.value * 1000);
      const ratio = currentMilli / Math.trunc(this.spec.metric.targetValue * 1000);
      metricDesired = Math.abs(1 - ratio) <= this.tolerance ? current : Math.ceil(ratio * ready);
      desired = metricDesired;
      reason = desired > current ? `${this.metricDescription} above target` : "All metrics below target";
      desired = this.spec.behavior
        ? this.normalize(nowMs, current, desired)
        : this.normalizeWithoutBehavior(nowMs, current, desired);
    }
    if (desired !== current) {
      event("Normal", "SuccessfulRescale", `New size: ${desired}; reason: ${reason}`);
      if (this.spec.behavior) this.storeScaleEvent(nowMs, current, desired);
    }
    return { replicas: desired, currentMilli, metricDesired, events };
  }

  private normalizeWithoutBehavior(nowMs: number, current: number, desired: number): number {
    const cutoff = nowMs - DEFAULT_DOWNSCALE_STABILIZATION_S * 1000;
    let highest = desired;
    let oldIndex = -1;
    this.recommendations.forEach((r, i) => {
      if (r.atMs < cutoff) oldIndex = i;
      else highest = Math.max(highest, r.value);
    });
    const rec = { value: desired, atMs: nowMs };
    if (oldIndex >= 0) this.recommendations[oldIndex] = rec;
    else this.recommendations.push(rec);
    const upLimit = Math.max(LEGACY_UP_FACTOR * current, LEGACY_UP_MINIMUM);
    return Math.max(this.spec.minReplicas, Math.min(highest, this.spec.maxReplicas, upLimit));
  }

  private normalize(nowMs: number, current: number, desired: number): number {
    const stabilized = this.stabilize(nowMs, current, desired);
    if (stabilized > current) {
      const limit = Math.max(current, limitWithPolicies(current, true, this.up, this.upEvents, this.downEvents, nowMs));
      return Math.min(stabilized, this.spec.maxReplicas, limit);
    }
    if (stabilized < current) {
      const limit = Math.min(
        current,
        limitWithPolicies(current, false, this.down, this.upEvents, this.downEvents, nowMs),
      );
      return Math.max(stabilized, this.spec.minReplicas, limit);
    }
    return stabilized;
  }

  /** Up: the lowest recommendation within the up window; down: the highest within the down window. */
  private stabilize(nowMs: number, current: number, desired: number): number {
    const upCutoff = nowMs - this.up.stabilizationWindowSeconds * 1000;
    const downCutoff = nowMs - this.down.stabilizationWindowSeconds * 1000;
    let upRec = desired;
    let downRec = desired;
    let oldIndex = -1;
    this.recommendations.forEach((r, i) => {
      if (r.atMs > upCutoff) upRec = Math.min(upRec, r.value);
      if (r.atMs > downCutoff) downRec = Math.max(downRec, r.value);
      if (r.atMs < upCutoff && r.atMs < downCutoff) oldIndex = i;
    });
    const rec = { value: desired, atMs: nowMs };
    if (oldIndex >= 0) this.recommendations[oldIndex] = rec;
    else this.recommendations.push(rec);
    return Math.min(Math.max(current, upRec), downRec);
  }

  private storeScaleEvent(nowMs: number, from: number, to: number): void {
    const up = to > from;
    const rules = up ? this.up : this.down;
    const list = up ? this.upEvents : this.downEvents;
    const longest = Math.max(0, ...rules.policies.map((p) => p.periodSeconds)) * 1000;
    let outdated = -1;
    list.forEach((e, i) => {
      if (e.atMs < nowMs - longest) outdated = i;
    });
    const e = { value: Math.abs(to - from), atMs: nowMs };
    if (outdated >= 0) list[outdated] = e;
    else list.push(e);
  }
}
