import { keyOf } from "../wire/layout";
import { LATENCY_KINDS, LIMITS, type LatencyKind, type ServiceDelta, type ServiceRef } from "../wire/payload";
import { writeValues } from "../wire/sparse";
import { KeyCounts, KEY_SPAN } from "./key-counts";

export interface Batch {
  services: ServiceDelta[];
  overflow: number;
}

const KINDS = LATENCY_KINDS.length;
const KIND_INDEX: Record<LatencyKind, number> = { upstream: 0, request: 1, kong: 2 };

/**
 * Distinct latencies held at once, over every service and kind (32 MB of table at most): a bound on memory
 * when the sidecar is away long enough for busy services to spread over thousands of latencies each.
 */
export const MAX_HELD_LATENCIES = 1_000_000;

/**
 * Latency deltas per Kong Service since the last take(): exact count and sum per service and kind, and a
 * count per distinct latency key, so memory follows what was recorded, not the histogram's range. An event
 * for a service beyond maxServices, or for a new latency beyond MAX_HELD_LATENCIES, is counted as overflow.
 */
export class Recorder {
  private readonly index = new Map<string, number>();
  private refs: ServiceRef[] = [];
  /** count and sum per series, series = service index * 3 + kind index. */
  private counts: number[] = [];
  private sums: number[] = [];
  private readonly latencies: KeyCounts;
  private overflow = 0;

  constructor(
    public maxServices: number,
    maxLatencies = MAX_HELD_LATENCIES,
  ) {
    this.latencies = new KeyCounts(maxLatencies);
  }

  record(service: ServiceRef, kind: LatencyKind, ms: number): void {
    let i = this.index.get(service.id);
    if (i === undefined) {
      if (this.refs.length >= this.maxServices) {
        this.overflow++;
        return;
      }
      i = this.refs.length;
      this.index.set(service.id, i);
      this.refs.push(service);
      this.counts.push(0, 0, 0);
      this.sums.push(0, 0, 0);
    } else {
      // The latest description wins: a renamed or retagged service is labelled as it is now.
      this.refs[i] = service;
    }
    const series = i * KINDS + KIND_INDEX[kind];
    if (!this.latencies.add(series, keyOf(ms))) {
      this.overflow++;
      return;
    }
    this.counts[series]++;
    this.sums[series] += ms;
  }

  get size(): number {
    return this.refs.length;
  }

  isEmpty(): boolean {
    return this.refs.length === 0 && this.overflow === 0;
  }

  /** Everything recorded so far, as wire deltas; the recorder is then empty. */
  take(): Batch {
    const { keys, counts } = this.latencies.sorted();
    const services: ServiceDelta[] = this.refs.map((service) => ({ service, latencies: {} }));
    for (let start = 0; start < keys.length;) {
      const series = Math.floor(keys[start] / KEY_SPAN);
      let end = start;
      while (end < keys.length && keys[end] < (series + 1) * KEY_SPAN) end++;
      for (let j = start; j < end; j++) keys[j] -= series * KEY_SPAN;
      const values = writeValues(keys, counts, start, end);
      const kind = LATENCY_KINDS[series % KINDS];
      services[Math.floor(series / KINDS)].latencies[kind] = {
        count: this.counts[series],
        sum: this.sums[series],
        values,
      };
      start = end;
    }
    // A service whose only events were beyond the bound on latencies has none: the wire needs at least one.
    const batch = {
      services: services.filter((s) => LATENCY_KINDS.some((k) => s.latencies[k])),
      overflow: this.overflow,
    };
    this.index.clear();
    this.refs = [];
    this.counts = [];
    this.sums = [];
    this.latencies.clear();
    this.overflow = 0;
    return batch;
  }
}

/**
 * Makes a ServiceRef that always passes the sidecar's validation, whatever Kong's entity holds: a payload
 * the sidecar refuses would lose every service in it.
 */
export function toServiceRef(svc: {
  id?: unknown;
  name?: unknown;
  host?: unknown;
  tags?: unknown;
}): ServiceRef | undefined {
  if (typeof svc.id !== "string" || svc.id === "" || svc.id.length > LIMITS.idLength) return undefined;
  const text = (v: unknown) => (typeof v === "string" ? v.slice(0, LIMITS.nameLength) : null);
  const tags = Array.isArray(svc.tags)
    ? svc.tags
        .filter((t): t is string => typeof t === "string")
        .slice(0, LIMITS.tags)
        .map((t) => t.slice(0, LIMITS.tagLength))
    : [];
  return { id: svc.id, name: text(svc.name), host: text(svc.host), tags };
}
