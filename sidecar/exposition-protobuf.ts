/**
 * The latency families in Prometheus's protobuf exposition: per kind, the classic histogram and the percentile
 * summary as in the text, then the native histogram, which only this format can carry. Written by hand over
 * a varint writer into the scrape's chunks, as the text is: protobufjs's writer queues an object per field, a
 * few million per scrape at 10k series.
 */
import { LATENCY_KINDS, type LatencyKind } from "../wire/payload";
import type { ChunkWriter } from "./chunk-writer";
import { QS } from "./exposition";
import { FAMILIES, nativeFamily, percentileFamily } from "./families";
import {
  classicHistogramSize,
  familyHeader,
  familyScratch,
  labelPairs,
  MetricField,
  MetricType,
  writeClassicHistogram,
  writeFamily,
  type MetricEncoder,
} from "./metric-family";
import { NATIVE_SCHEMA, ZERO_THRESHOLD, type NativeBuckets } from "./native-buckets";
import {
  DOUBLE_FIELD_SIZE,
  lenFieldSize,
  uintFieldSize,
  varintSize,
  writeDouble,
  writeLen,
  writeTag,
  writeUint,
  writeVarint,
  zigzag,
  LEN,
} from "./protobuf";
import type { Series } from "./series";
import type { Store } from "./store";

/** Each series' LabelPair fields, encoded at its first scrape; dropped with the series. */
const labelCache = new WeakMap<Series, Buffer>();

function labelsOf(s: Series): Buffer {
  let b = labelCache.get(s);
  if (!b) {
    b = labelPairs(Object.entries(s.labels));
    labelCache.set(s, b);
  }
  return b;
}

/** A latency Metric: the series' labels, then one message in `field` of `inner` bytes. */
abstract class SeriesMetric implements MetricEncoder<Series> {
  protected inner = 0;

  constructor(private readonly field: number) {}

  size(s: Series): number {
    this.inner = this.innerSize(s);
    return labelsOf(s).length + lenFieldSize(this.inner);
  }

  write(out: ChunkWriter, s: Series): void {
    out.bytes(labelsOf(s));
    writeLen(out, this.field, this.inner);
    this.writeInner(out, s);
  }

  protected abstract innerSize(s: Series): number;
  protected abstract writeInner(out: ChunkWriter, s: Series): void;
}

class ClassicHistogram extends SeriesMetric {
  private readonly cumulative: Float64Array;

  constructor(private readonly bounds: readonly number[]) {
    super(MetricField.histogram);
    this.cumulative = new Float64Array(bounds.length);
  }

  protected innerSize(s: Series): number {
    let c = 0;
    for (let i = 0; i < this.bounds.length; i++) this.cumulative[i] = c += s.counts[i];
    return classicHistogramSize(s.count, this.bounds, this.cumulative);
  }

  protected writeInner(out: ChunkWriter, s: Series): void {
    writeClassicHistogram(out, s.count, s.sum, this.bounds, this.cumulative);
  }
}

const QUANTILE_SIZE = 2 * DOUBLE_FIELD_SIZE;

/** Summary{sample_count, sample_sum, quantile}, the same windowed percentiles as the text's. */
class PercentileSummary extends SeriesMetric {
  now = 0;

  constructor() {
    super(MetricField.summary);
  }

  protected innerSize(s: Series): number {
    return uintFieldSize(s.count) + DOUBLE_FIELD_SIZE + QS.length * lenFieldSize(QUANTILE_SIZE);
  }

  protected writeInner(out: ChunkWriter, s: Series): void {
    const { values } = s.window.stats(this.now, QS);
    writeUint(out, 1, s.count);
    writeDouble(out, 2, s.sum);
    for (let i = 0; i < QS.length; i++) {
      writeLen(out, 3, QUANTILE_SIZE);
      writeDouble(out, 1, QS[i]);
      writeDouble(out, 2, values[i]);
    }
  }
}

/**
 * Histogram{sample_count, sample_sum, schema, zero_threshold, zero_count, positive_span, positive_delta}.
 * zero_threshold is always set: Prometheus 2.42 takes a family for classic unless its first series has
 * buckets, a zero count or a zero threshold, and an empty histogram gets a no-op span for later versions.
 */
class NativeHistogram extends SeriesMetric {
  /** The last sized series' spans, as (offset, length) pairs, and the size of its deltas. */
  private readonly spans: number[] = [];
  private spansSize = 0;
  private deltasSize = 0;

  constructor() {
    super(MetricField.histogram);
  }

  protected innerSize(s: Series): number {
    this.layout(s.native);
    return (
      uintFieldSize(s.count) +
      DOUBLE_FIELD_SIZE +
      uintFieldSize(zigzag(NATIVE_SCHEMA)) +
      DOUBLE_FIELD_SIZE +
      uintFieldSize(s.native.zeroCount) +
      this.spansSize +
      (this.deltasSize > 0 ? lenFieldSize(this.deltasSize) : 0)
    );
  }

  protected writeInner(out: ChunkWriter, s: Series): void {
    writeUint(out, 1, s.count);
    writeDouble(out, 2, s.sum);
    writeUint(out, 5, zigzag(NATIVE_SCHEMA));
    writeDouble(out, 6, ZERO_THRESHOLD);
    writeUint(out, 7, s.native.zeroCount);
    const spans = this.spans;
    for (let i = 0; i < spans.length; i += 2) {
      writeLen(out, 12, spanSize(spans[i], spans[i + 1]));
      writeUint(out, 1, zigzag(spans[i]));
      writeUint(out, 2, spans[i + 1]);
    }
    if (this.deltasSize === 0) return;
    writeTag(out, 13, LEN);
    writeVarint(out, this.deltasSize);
    this.deltas(s.native, out);
  }

  /**
   * Spans of the buckets to send (the first offset absolute, then gaps), with gaps of one or two empty buckets
   * sent as zeros, as client_golang does: a zero costs a byte or two, a new span about six.
   */
  private layout(b: NativeBuckets): void {
    const spans = this.spans;
    spans.length = 0;
    const { counts, first } = b;
    let end = 0;
    for (let k = 0; k < counts.length; k++) {
      if (counts[k] === 0) continue;
      const index = first + k;
      if (spans.length === 0) spans.push(index, 1);
      else if (index - end <= 2) spans[spans.length - 1] += index - end + 1;
      else spans.push(index - end, 1);
      end = index + 1;
    }
    this.deltasSize = this.deltas(b);
    if (spans.length === 0) spans.push(0, 0);
    this.spansSize = 0;
    for (let i = 0; i < spans.length; i += 2) this.spansSize += lenFieldSize(spanSize(spans[i], spans[i + 1]));
  }

  /** The size of the deltas (each sent bucket's count less the previous one's), written into `out` if given. */
  private deltas(b: NativeBuckets, out?: ChunkWriter): number {
    const spans = this.spans;
    const { counts, first } = b;
    let size = 0;
    let index = 0;
    let previous = 0;
    for (let i = 0; i < spans.length; i += 2) {
      index += spans[i];
      for (const stop = index + spans[i + 1]; index < stop; index++) {
        const c = counts[index - first];
        const z = zigzag(c - previous);
        if (out) writeVarint(out, z);
        else size += varintSize(z);
        previous = c;
      }
    }
    return size;
  }
}

function spanSize(offset: number, length: number): number {
  return uintFieldSize(zigzag(offset)) + uintFieldSize(length);
}

interface KindFamilies {
  families: { header: Buffer; metric: SeriesMetric }[];
  summary: PercentileSummary;
}

/** The latency families of /metrics in protobuf: per kind, the classic histogram, the summary, the native. */
export class LatencyFamiliesProtobuf {
  private readonly kinds: Map<LatencyKind, KindFamilies>;

  constructor(private readonly store: Store) {
    this.kinds = new Map(
      LATENCY_KINDS.map((kind) => {
        const p = percentileFamily(kind, store.windowMs);
        const n = nativeFamily(kind);
        const summary = new PercentileSummary();
        const families = [
          {
            header: familyHeader(FAMILIES[kind].name, FAMILIES[kind].help, MetricType.HISTOGRAM),
            metric: new ClassicHistogram(store.boundaries),
          },
          { header: familyHeader(p.name, p.help, MetricType.SUMMARY), metric: summary },
          { header: familyHeader(n.name, n.help, MetricType.HISTOGRAM), metric: new NativeHistogram() },
        ];
        return [kind, { families, summary }];
      }),
    );
  }

  /** Writes every family into `out`, yielding the chunks filled after each: a family is written at once. */
  *render(out: ChunkWriter, now: number): Generator<Buffer[]> {
    const scratch = familyScratch();
    for (const kind of LATENCY_KINDS) {
      const series = this.store.families.get(kind);
      if (!series?.size) continue;
      const { families, summary } = this.kinds.get(kind)!;
      summary.now = now;
      for (const { header, metric } of families) {
        writeFamily(out, scratch, header, series.values(), metric);
        if (out.hasFull) yield out.takeFull();
      }
    }
  }
}
