import type { LatencyKind, ServiceRef } from "../wire/payload";
import type { ValidPayload } from "../wire/validate";
import { labelText } from "./exposition";
import { serviceLabels } from "./labels";
import type { StaticMapping } from "./mapping-file";
import { Series } from "./series";

interface LabelCacheEntry {
  fingerprint: string;
  text: string;
}

/**
 * The merged state: for each latency kind, one Series per distinct label set. Kong Services that map to
 * the same labels (two ports of one Kubernetes Service, say) share a series, as Prometheus would need.
 */
export class Store {
  readonly families = new Map<LatencyKind, Map<string, Series>>();
  private readonly labels = new Map<string, LabelCacheEntry>();

  constructor(
    readonly boundaries: readonly number[],
    private readonly mapping: StaticMapping | undefined,
  ) {}

  /** Applies a validated payload; cannot fail half-way (validation has decoded everything already). */
  apply({ payload, histograms }: ValidPayload, now = Date.now()): void {
    payload.services.forEach((s, i) => {
      const text = this.labelTextFor(s.service);
      const decoded = histograms[i]!;
      for (const [kind, d] of Object.entries(s.latencies) as [LatencyKind, { count: number; sum: number }][]) {
        let family = this.families.get(kind);
        if (!family) {
          family = new Map();
          this.families.set(kind, family);
        }
        let series = family.get(text);
        if (!series) {
          series = new Series(text, this.boundaries);
          family.set(text, series);
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

  private labelTextFor(svc: ServiceRef): string {
    const fingerprint = `${svc.name}\u0000${svc.host}\u0000${svc.tags.join("\u0000")}`;
    const hit = this.labels.get(svc.id);
    if (hit && hit.fingerprint === fingerprint) return hit.text;
    const text = labelText(serviceLabels(svc, this.mapping));
    this.labels.set(svc.id, { fingerprint, text });
    return text;
  }
}
