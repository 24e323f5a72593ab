/**
 * The sidecar's own metrics (prom-client, which has no protobuf output) as MetricFamily messages, from the
 * registry's JSON: the same collect() and values as its text, one Metric per label set.
 */
import type { MetricObjectWithValues, MetricValue, Registry } from "prom-client";
import type { ChunkWriter } from "./chunk-writer";
import {
  classicHistogramSize,
  familyHeader,
  familyScratch,
  labelPairs,
  MetricField,
  MetricType,
  VALUE_SIZE,
  writeClassicHistogram,
  writeFamily,
  writeValue,
  type MetricEncoder,
} from "./metric-family";
import { lenFieldSize, writeLen } from "./protobuf";

interface ValueMetric {
  labels: Buffer;
  value: number;
}

interface HistogramMetric {
  labels: Buffer;
  bounds: number[];
  cumulative: number[];
  count: number;
  sum: number;
}

type Labels = Record<string, string | number | undefined>;
/** What getMetricsAsJSON() holds: a histogram's series labels are in sharedLabels, its `le` in labels. */
type ExportedValue = MetricValue<string> & { metricName?: string; sharedLabels?: Labels };

function valueOf(v: ExportedValue): { labels: Labels; value: number; name: string | undefined } {
  return { labels: { ...v.sharedLabels, ...v.labels }, value: v.value, name: v.metricName };
}

function encodeLabels(labels: Labels): Buffer {
  return labelPairs(Object.entries(labels).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
}

function valueMetric(field: number): MetricEncoder<ValueMetric> {
  return {
    size: (m) => m.labels.length + lenFieldSize(VALUE_SIZE),
    write(out, m) {
      out.bytes(m.labels);
      writeLen(out, field, VALUE_SIZE);
      writeValue(out, m.value);
    },
  };
}

const histogramMetric: MetricEncoder<HistogramMetric> = {
  size: (m) => m.labels.length + lenFieldSize(classicHistogramSize(m.count, m.bounds, m.cumulative)),
  write(out, m) {
    out.bytes(m.labels);
    writeLen(out, MetricField.histogram, classicHistogramSize(m.count, m.bounds, m.cumulative));
    writeClassicHistogram(out, m.count, m.sum, m.bounds, m.cumulative);
  },
};

/** prom-client lists a histogram as `_bucket` (with `le`, +Inf last), `_sum` and `_count` values per label set. */
function histograms(family: MetricObjectWithValues<MetricValue<string>>): HistogramMetric[] {
  const byLabels = new Map<string, HistogramMetric>();
  for (const raw of family.values) {
    const { labels, value, name } = valueOf(raw);
    const { le, ...own } = labels;
    const key = JSON.stringify(own);
    let m = byLabels.get(key);
    if (!m) {
      m = { labels: encodeLabels(own), bounds: [], cumulative: [], count: 0, sum: 0 };
      byLabels.set(key, m);
    }
    if (name === `${family.name}_bucket`) {
      if (le !== "+Inf") {
        m.bounds.push(Number(le));
        m.cumulative.push(value);
      }
    } else if (name === `${family.name}_sum`) m.sum = value;
    else if (name === `${family.name}_count`) m.count = value;
    else throw new Error(`histogram ${family.name} has an unexpected value ${name}`);
  }
  return [...byLabels.values()];
}

export async function writeSelfMetrics(out: ChunkWriter, registry: Registry): Promise<void> {
  const scratch = familyScratch();
  for (const family of await registry.getMetricsAsJSON()) {
    const { name, help } = family;
    // prom-client's typings declare a numeric enum; the values are its text format's type names.
    const type = String(family.type);
    const values = family.values.map(valueOf).map((v) => ({ labels: encodeLabels(v.labels), value: v.value }));
    switch (type) {
      case "counter":
        writeFamily(
          out,
          scratch,
          familyHeader(name, help, MetricType.COUNTER),
          values,
          valueMetric(MetricField.counter),
        );
        break;
      case "gauge":
        writeFamily(out, scratch, familyHeader(name, help, MetricType.GAUGE), values, valueMetric(MetricField.gauge));
        break;
      case "histogram":
        writeFamily(out, scratch, familyHeader(name, help, MetricType.HISTOGRAM), histograms(family), histogramMetric);
        break;
      default:
        throw new Error(`metric ${name} of type ${type} has no protobuf encoding here`);
    }
  }
}
