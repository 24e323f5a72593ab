/**
 * io.prometheus.client.MetricFamily messages (client_model's metrics.proto), length-delimited as Prometheus's
 * protobuf scrape reads them. A family's length comes first: its metrics are written into a scratch writer,
 * without yielding (so a series cannot change half-way), then copied after the length.
 */
import { ChunkWriter } from "./chunk-writer";
import {
  DOUBLE_FIELD_SIZE,
  lenField,
  lenFieldSize,
  uintFieldSize,
  writeDouble,
  writeLen,
  writeUint,
  writeVarint,
} from "./protobuf";

export const MetricType = { COUNTER: 0, GAUGE: 1, SUMMARY: 2, UNTYPED: 3, HISTOGRAM: 4 } as const;

/** Metric's fields holding the value, by the family's type. */
export const MetricField = { label: 1, gauge: 2, counter: 3, summary: 4, untyped: 5, histogram: 7 } as const;
const FAMILY_METRIC_FIELD = 4;

/** name, help and type of a MetricFamily, encoded once. */
export function familyHeader(name: string, help: string, type: number): Buffer {
  return Buffer.concat([lenField(1, Buffer.from(name)), lenField(2, Buffer.from(help)), Buffer.from([3 << 3, type])]);
}

/** A Metric's LabelPair fields. */
export function labelPairs(labels: Iterable<[string, string]>): Buffer {
  const pairs: Buffer[] = [];
  for (const [name, value] of labels) {
    const pair = Buffer.concat([lenField(1, Buffer.from(name)), lenField(2, Buffer.from(value))]);
    pairs.push(lenField(MetricField.label, pair));
  }
  return Buffer.concat(pairs);
}

/** One kind of Metric: `size` returns the Metric's length and may leave state that the `write` right after uses. */
export interface MetricEncoder<T> {
  size(item: T): number;
  write(out: ChunkWriter, item: T): void;
}

/** Where a family's metrics are written before their length is known; 64 KiB chunks, kept for the next. */
export function familyScratch(): ChunkWriter {
  return new ChunkWriter(64 * 1024);
}

/** A delimited MetricFamily of `items`, through `scratch` (empty before and after). */
export function writeFamily<T>(
  out: ChunkWriter,
  scratch: ChunkWriter,
  header: Buffer,
  items: Iterable<T>,
  metric: MetricEncoder<T>,
): void {
  for (const item of items) {
    writeLen(scratch, FAMILY_METRIC_FIELD, metric.size(item));
    metric.write(scratch, item);
  }
  writeVarint(out, header.length + scratch.length);
  out.bytes(header);
  scratch.moveTo(out);
}

/** Histogram{sample_count, sample_sum, bucket}: classic buckets, without +Inf (sample_count stands for it). */
export function classicHistogramSize(count: number, bounds: ArrayLike<number>, cumulative: ArrayLike<number>): number {
  let size = uintFieldSize(count) + DOUBLE_FIELD_SIZE;
  for (let i = 0; i < bounds.length; i++) size += lenFieldSize(uintFieldSize(cumulative[i]) + DOUBLE_FIELD_SIZE);
  return size;
}

export function writeClassicHistogram(
  out: ChunkWriter,
  count: number,
  sum: number,
  bounds: ArrayLike<number>,
  cumulative: ArrayLike<number>,
): void {
  writeUint(out, 1, count);
  writeDouble(out, 2, sum);
  for (let i = 0; i < bounds.length; i++) {
    writeLen(out, 3, uintFieldSize(cumulative[i]) + DOUBLE_FIELD_SIZE);
    writeUint(out, 1, cumulative[i]);
    writeDouble(out, 2, bounds[i]);
  }
}

/** Counter, Gauge and Untyped: {value = 1}. */
export const VALUE_SIZE = DOUBLE_FIELD_SIZE;

export function writeValue(out: ChunkWriter, v: number): void {
  writeDouble(out, 1, v);
}
