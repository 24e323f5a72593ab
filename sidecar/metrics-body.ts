import { LATENCY_KINDS, type LatencyKind } from "../wire/payload";
import type { ChunkWriter } from "./chunk-writer";
import { HistogramText, renderHistogramSeries, renderPercentileSeries, SummaryText } from "./exposition";
import { FAMILIES, percentileFamily } from "./families";
import type { Store } from "./store";

/** The latency families of /metrics: per kind, the histogram then its percentile summary. */
export class LatencyFamiliesText {
  private readonly texts: Map<LatencyKind, { histogram: HistogramText; summary: SummaryText }>;

  constructor(private readonly store: Store) {
    this.texts = new Map(
      LATENCY_KINDS.map((kind) => {
        const p = percentileFamily(kind, store.windowMs);
        return [
          kind,
          {
            histogram: new HistogramText(FAMILIES[kind].name, FAMILIES[kind].help, store.boundaries),
            summary: new SummaryText(p.name, p.help),
          },
        ];
      }),
    );
  }

  /**
   * Writes every family into `out`, yielding the chunks filled so far after each series: a series' lines are
   * written at once, so they are consistent with each other whenever the caller waits between chunks.
   */
  *render(out: ChunkWriter, now: number): Generator<Buffer[]> {
    for (const kind of LATENCY_KINDS) {
      const family = this.store.families.get(kind);
      if (!family?.size) continue;
      const { histogram, summary } = this.texts.get(kind)!;
      out.bytes(histogram.header);
      for (const s of family.values()) {
        renderHistogramSeries(out, histogram, s);
        if (out.hasFull) yield out.takeFull();
      }
      out.bytes(summary.header);
      for (const s of family.values()) {
        renderPercentileSeries(out, summary, s, now);
        if (out.hasFull) yield out.takeFull();
      }
    }
  }
}
