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
}

export interface StoreOptions {
  boundaries: readonly number[];
  mapping: StaticMapping | undefined;
  /** Length of the percentile window. */
  windowMs: number;
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

  constructor(private readonly options: StoreOptions) {
    this.boundaries = options.boundaries;
    this.windowMs = options.windowMs;
  }

  /** Applies a validated payload; cannot fail half-way (validation has decoded everything already). */
  apply({ payload, histograms }: ValidPayload, now = Date.now()): void {
    payload.services.forEach((s, i) => {
      const label = this.labelsFor(s.service);
      const decoded = histograms[i]!;
      for (const [kind, d] of Object.entries(s.latencies) as [LatencyKind, { count: number; sum: number }][]) {
        let family = this.families.get(kind);
        if (!family) {
          family = new Map();
          this.families.set(kind, family);
        }
        let series = family.get(label.text);
        if (!series) {
          series = new Series(label.text, label.labels, this.boundaries, new SlidingWindow(this.windowMs / WINDOW_SLOTS, WINDOW_SLOTS));
          family.set(label.text, series);
        }
        series.add(d.count, d.sum, decoded[kind]!, now);
      }
    });
  }

  seriesCount(): number {
    let n = 0;
    for (const f of this.families.values()) n += f.size;
    return n;
  }

  private labelsFor(svc: ServiceRef): LabelCacheEntry {
    const fingerprint = `${svc.name}\u0000${svc.host}\u0000${svc.tags.join("\u0000")}`;
    const hit = this.labels.get(svc.id);
    if (hit && hit.fingerprint === fingerprint) return hit;
    const labels = serviceLabels(svc, this.options.mapping);
    const entry = { fingerprint, text: labelText(labels), labels };
    this.labels.set(svc.id, entry);
    return entry;
  }
}
