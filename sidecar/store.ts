import type { LatencyKind, ServiceRef } from "../wire/payload";
import type { ValidPayload } from "../wire/validate";
import { labelText } from "./exposition";
import { serviceLabels, type ServiceLabels } from "./labels";
import type { StaticMapping } from "./mapping-file";
import { Series } from "./series";
import { SlidingWindow } from "./window";

interface LabelCacheEntry {
  fingerprint: string;
  text: string;
  labels: ServiceLabels;
  lastSeen: number;
}

export interface StoreOptions {
  boundaries: readonly number[];
  mapping: StaticMapping | undefined;
  /** Length of the percentile window. */
  windowMs: number;
  /** Bound on series across all families: a flood of distinct services must not exhaust memory. */
  maxSeries: number;
  /** A series not updated for this long is removed (a Kong Service that is gone, or renamed). */
  idleMs: number;
}

export interface ApplyResult {
  /** Events of series that could not be created because maxSeries was reached. */
  overflowEvents: number;
}

/** The window moves in steps of a sixth of its length (10 s for the default 60 s). */
const WINDOW_SLOTS = 6;

/**
 * The merged state: for each latency kind, one Series per distinct label set. Kong Services that map to
 * the same labels (two ports of one Kubernetes Service, say) share a series, as Prometheus would need.
 */
export class Store {
  readonly families = new Map<LatencyKind, Map<string, Series>>();
  readonly boundaries: readonly number[];
  readonly windowMs: number;
  private readonly labels = new Map<string, LabelCacheEntry>();
  private series = 0;

  constructor(private readonly options: StoreOptions) {
    this.boundaries = options.boundaries;
    this.windowMs = options.windowMs;
  }

  /** Applies a validated payload; cannot fail half-way (validation has decoded everything already). */
  apply({ payload, histograms }: ValidPayload, now = Date.now()): ApplyResult {
    let overflowEvents = 0;
    payload.services.forEach((s, i) => {
      const label = this.labelsFor(s.service, now);
      const decoded = histograms[i];
      for (const [kind, d] of Object.entries(s.latencies) as [LatencyKind, { count: number; sum: number }][]) {
        let family = this.families.get(kind);
        if (!family) {
          family = new Map();
          this.families.set(kind, family);
        }
        let series = family.get(label.text);
        if (!series) {
          if (this.series >= this.options.maxSeries) {
            overflowEvents += d.count;
            continue;
          }
          this.series++;
          series = new Series(
            label.text,
            label.labels,
            this.boundaries,
            new SlidingWindow(this.windowMs / WINDOW_SLOTS, WINDOW_SLOTS),
          );
          family.set(label.text, series);
        }
        series.add(d.count, d.sum, decoded[kind]!, now);
      }
    });
    return { overflowEvents };
  }

  /** Removes idle series and forgets idle services; returns how many series went. */
  sweep(now = Date.now()): number {
    const before = now - this.options.idleMs;
    let removed = 0;
    for (const family of this.families.values()) {
      for (const [key, series] of family) {
        if (series.lastUpdate < before) {
          family.delete(key);
          removed++;
        }
      }
    }
    for (const [id, entry] of this.labels) if (entry.lastSeen < before) this.labels.delete(id);
    this.series -= removed;
    return removed;
  }

  seriesCount(): number {
    return this.series;
  }

  private labelsFor(svc: ServiceRef, now: number): LabelCacheEntry {
    const fingerprint = `${svc.name}\u0000${svc.host}\u0000${svc.tags.join("\u0000")}`;
    const hit = this.labels.get(svc.id);
    if (hit && hit.fingerprint === fingerprint) {
      hit.lastSeen = now;
      return hit;
    }
    const labels = serviceLabels(svc, this.options.mapping);
    const entry = { fingerprint, text: labelText(labels), labels, lastSeen: now };
    this.labels.set(svc.id, entry);
    return entry;
  }
}
