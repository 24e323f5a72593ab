import { randomUUID } from "node:crypto";
import type { KongEmulator } from "./emulator";
import { kicService } from "./kic-service";
import { makeLogContext, type KongService } from "./serialize";

/** N routes as Kong Ingress Controller makes them, each with its own Service and its own plugin instance. */
export interface RouteFleet {
  services: KongService[];
  pluginIds: string[];
}

/** Events each service gets, in rounds over the fleet, each with one of three distinct latencies. */
export const EVENTS_PER_SERVICE = 3;
/** Emulated nginx workers; a route's events all go to one, so the fleet is N instances, not one per worker. */
export const FLEET_WORKERS = 2;
const BLOCK = 64;

/** Configures `n` route-scoped entities of the emulator's plugin with `config`, in one rebuild. */
export function configureRouteFleet(kong: KongEmulator, n: number, config: Record<string, unknown>): RouteFleet {
  const services = Array.from({ length: n }, (_, i) => kicService(`svc-${i}`));
  const entities = services.map(() => ({ id: randomUUID(), routeId: randomUUID(), config }));
  kong.configurePlugins(entities);
  return { services, pluginIds: entities.map((e) => e.id) };
}

/** A few distinct upstream latencies per service (one per round), different across services. */
export function fleetLatencyMs(service: number, round: number): number {
  return [12 + (service % 97), 140 + (service % 311), 900 + (service % 1009)][round % 3];
}

export interface FleetTraffic {
  /** Events completed (fewer than asked only when the deadline passed). */
  events: number;
  /** Events for which Kong would have logged an error (an RPC failure, an unknown PDK call). */
  errors: number;
  seconds: number;
  /** Each event's round trip as Kong's timer sees it, ascending, in ms: all, and those after a service's first. */
  allMs: number[];
  warmMs: number[];
}

/**
 * Event i's service and round: the fleet in blocks of BLOCK services, each block's rounds in turn, so that a
 * service's events come close together (nearly always in one flush interval, one payload) yet more than the
 * events in flight apart (its first event, which starts the instance, is done before its second).
 */
function eventAt(i: number, n: number): { service: number; round: number } {
  const block = Math.floor(i / (BLOCK * EVENTS_PER_SERVICE));
  const start = block * BLOCK;
  const size = Math.min(BLOCK, n - start);
  const j = i - start * EVENTS_PER_SERVICE;
  return { service: start + (j % size), round: Math.floor(j / size) };
}

/**
 * EVENTS_PER_SERVICE events per service, `concurrency` in flight as Kong's timers run them; a service's first
 * event starts its instance (StartInstance), as a route's first request does. Bounded by `deadlineMs`.
 */
export async function driveRouteFleet(
  kong: KongEmulator,
  fleet: RouteFleet,
  opts: { concurrency?: number; deadlineMs: number; onProgress?: (done: number) => void },
): Promise<FleetTraffic> {
  const n = fleet.services.length;
  const total = n * EVENTS_PER_SERVICE;
  const times = new Float64Array(total).fill(NaN);
  const warm = new Uint8Array(total);
  const deadline = Date.now() + opts.deadlineMs;
  let next = 0;
  let done = 0;
  let errors = 0;
  const t0 = process.hrtime.bigint();
  const lane = async () => {
    for (let i = next++; i < total && Date.now() < deadline; i = next++) {
      const { service: s, round } = eventAt(i, n);
      const ctx = makeLogContext({ service: fleet.services[s], proxyMs: fleetLatencyMs(s, round) });
      const start = process.hrtime.bigint();
      const trace = await kong.log(s % FLEET_WORKERS, fleet.pluginIds[s], ctx);
      times[i] = Number(process.hrtime.bigint() - start) / 1e6;
      warm[i] = round > 0 ? 1 : 0;
      if (trace.errors.length) errors++;
      if (++done % 1000 === 0) opts.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const allMs = Array.from(times.filter((x) => !Number.isNaN(x)).sort());
  const warmMs = Array.from(times.filter((_, i) => warm[i] === 1).sort());
  return { events: done, errors, seconds, allMs, warmMs };
}
