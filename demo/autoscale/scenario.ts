import type { HpaSpec } from "./hpa";
import type { MetricPath } from "./metric-source";

export type WorkloadName = "guide" | "capacity";

/** Everything a run needs; durations are the real ones, multiplied by `timeScale` when run. */
export interface Scenario {
  workload: WorkloadName;
  metric: MetricPath;
  /** 1 runs at Kubernetes' own pace; 0.5 halves every duration (sync period, rule windows, behavior, traffic phases). */
  timeScale: number;
  targetMs: number;
  /** Guide: fast traffic first, so the 60 s average has history to climb from (s). */
  warmupS: number;
  /** Guide: the `sleep 0.1` loop; capacity: the whole load (s). */
  loadS: number;
  /** After the traffic stops, how long to wait for the scale-down at most (s). */
  cooldownS: number;
  /** Guide: each request's upstream latency once the loop starts. */
  guideDelayMs: number;
  /** Capacity: arrivals per second, each request's service time, and requests a replica serves at once. */
  rate: number;
  serviceMs: number;
  concurrency: number;
}

export const DEFAULT_SCENARIO: Scenario = {
  workload: "guide",
  metric: "average",
  timeScale: 1,
  targetMs: 40,
  warmupS: 60,
  loadS: 120,
  cooldownS: 150,
  guideDelayMs: 100,
  rate: 70,
  serviceMs: 20,
  concurrency: 1,
};

/** The guide's HorizontalPodAutoscaler (1 to 10 replicas and its `behavior`), with its periods scaled. */
export function guideHpa(metric: HpaSpec["metric"], timeScale: number): HpaSpec {
  const s = (seconds: number) => seconds * timeScale;
  return {
    name: "echo",
    minReplicas: 1,
    maxReplicas: 10,
    behavior: {
      scaleDown: {
        stabilizationWindowSeconds: s(1),
        policies: [{ type: "Percent", value: 100, periodSeconds: s(10) }],
      },
      scaleUp: {
        stabilizationWindowSeconds: s(1),
        policies: [
          { type: "Percent", value: 100, periodSeconds: s(2) },
          { type: "Pods", value: 4, periodSeconds: s(2) },
        ],
        selectPolicy: "Max",
      },
    },
    metric,
  };
}
