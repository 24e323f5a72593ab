import { normal, pareto, rng } from "../../devstack/random";
import type { ServiceRef } from "../../wire/payload";

const SEED = 0x5ca1e;

/** Kong Service i, named and tagged as Kong Ingress Controller makes it. */
export function serviceRef(i: number): ServiceRef {
  const ns = `team-${String(i % 100).padStart(2, "0")}`;
  const name = `svc-${String(i).padStart(5, "0")}`;
  const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
  return {
    id,
    name: `${ns}.${name}.80`,
    host: `${name}.${ns}.80.svc`,
    tags: [`k8s-name:${name}`, `k8s-namespace:${ns}`, "k8s-kind:Service", `k8s-uid:${id}`, "k8s-version:v1"],
  };
}

/**
 * One round of one service's latencies: drawn from its own log-normal body (median 30-500 ms) with a 2%
 * Pareto tail until it has 50-200 distinct values (at most 1,000 draws), so that every series carries a
 * realistic spread of HDR slots.
 */
export function observations(i: number, round: number): number[] {
  const p = rng(SEED ^ Math.imul(i + 1, 0x9e3779b1));
  const medianMs = 30 * Math.exp(Math.log(500 / 30) * p());
  const sigma = 0.3 + 0.4 * p();
  const distinct = 50 + Math.floor(150 * p());
  const u = rng(SEED ^ Math.imul(i + 1, 0x85ebca6b) ^ Math.imul(round + 1, 0xc2b2ae35));
  const seen = new Set<number>();
  const out: number[] = [];
  while (seen.size < distinct && out.length < 1_000) {
    const v = u() < 0.02 ? pareto(u, 2 * medianMs, 1.5) : medianMs * Math.exp(sigma * normal(u));
    const ms = Math.min(60_000, Math.max(0, Math.round(v)));
    seen.add(ms);
    out.push(ms);
  }
  return out;
}
