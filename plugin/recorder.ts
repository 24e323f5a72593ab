import { encodeHistogram, newHistogram, recordMs, type Histogram } from "../wire/histogram";
import { LIMITS, type LatencyKind, type ServiceDelta, type ServiceRef } from "../wire/payload";

interface Series {
  h: Histogram;
  count: number;
  sum: number;
}

interface ServiceEntry {
  service: ServiceRef;
  series: Partial<Record<LatencyKind, Series>>;
}

export interface Batch {
  services: ServiceDelta[];
  overflow: number;
}

/**
 * Latency deltas per Kong Service since the last take(). Memory is bounded by maxServices histograms per
 * recorded kind: an event for a service beyond the bound is counted as overflow instead of recorded.
 * Histograms are reused across intervals because one is ~50 KB and services recur.
 */
export class Recorder {
  private entries = new Map<string, ServiceEntry>();
  private overflow = 0;
  private readonly spare: Histogram[] = [];

  constructor(public maxServices: number) {}

  record(service: ServiceRef, kind: LatencyKind, ms: number): void {
    let entry = this.entries.get(service.id);
    if (!entry) {
      if (this.entries.size >= this.maxServices) {
        this.overflow++;
        return;
      }
      entry = { service, series: {} };
      this.entries.set(service.id, entry);
    } else {
      // The latest description wins: a renamed or retagged service is labelled as it is now.
      entry.service = service;
    }
    let s = entry.series[kind];
    if (!s) {
      s = { h: this.spare.pop() ?? newHistogram(), count: 0, sum: 0 };
      entry.series[kind] = s;
    }
    recordMs(s.h, ms);
    s.count++;
    s.sum += ms;
  }

  get size(): number {
    return this.entries.size;
  }

  isEmpty(): boolean {
    return this.entries.size === 0 && this.overflow === 0;
  }

  /** Encodes and clears everything recorded so far. */
  take(): Batch {
    const services: ServiceDelta[] = [];
    for (const { service, series } of this.entries.values()) {
      const latencies: ServiceDelta["latencies"] = {};
      for (const [kind, s] of Object.entries(series) as [LatencyKind, Series][]) {
        latencies[kind] = { count: s.count, sum: s.sum, hdr: encodeHistogram(s.h) };
        s.h.reset();
        this.spare.push(s.h);
      }
      services.push({ service, latencies });
    }
    const batch = { services, overflow: this.overflow };
    this.entries.clear();
    this.overflow = 0;
    // Keep no more spare histograms than the bound can use.
    this.spare.length = Math.min(this.spare.length, this.maxServices * 3);
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
