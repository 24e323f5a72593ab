/**
 * Both expositions of /metrics read into one shape, so a test can compare them: the protobuf one decoded with
 * protobufjs from client_model's metrics.proto (the messages and fields Prometheus reads, written out here),
 * the text one parsed line by line. Histograms and summaries are expanded into the samples the text has.
 */
import { parse, Reader } from "protobufjs";
import { parseSamples, type Sample } from "../../devstack/prometheus/prom-text";

const METRICS_PROTO = `
syntax = "proto2";
package io.prometheus.client;
message LabelPair { optional string name = 1; optional string value = 2; }
enum MetricType { COUNTER = 0; GAUGE = 1; SUMMARY = 2; UNTYPED = 3; HISTOGRAM = 4; GAUGE_HISTOGRAM = 5; }
message Gauge { optional double value = 1; }
message Counter { optional double value = 1; }
message Quantile { optional double quantile = 1; optional double value = 2; }
message Summary { optional uint64 sample_count = 1; optional double sample_sum = 2; repeated Quantile quantile = 3; }
message Untyped { optional double value = 1; }
message Bucket { optional uint64 cumulative_count = 1; optional double cumulative_count_float = 4; optional double upper_bound = 2; }
message BucketSpan { optional sint32 offset = 1; optional uint32 length = 2; }
message Histogram {
  optional uint64 sample_count = 1; optional double sample_count_float = 4; optional double sample_sum = 2;
  repeated Bucket bucket = 3;
  optional sint32 schema = 5; optional double zero_threshold = 6; optional uint64 zero_count = 7;
  optional double zero_count_float = 8;
  repeated BucketSpan negative_span = 9; repeated sint64 negative_delta = 10; repeated double negative_count = 11;
  repeated BucketSpan positive_span = 12; repeated sint64 positive_delta = 13; repeated double positive_count = 14;
}
message Metric {
  repeated LabelPair label = 1; optional Gauge gauge = 2; optional Counter counter = 3; optional Summary summary = 4;
  optional Untyped untyped = 5; optional Histogram histogram = 7; optional int64 timestamp_ms = 6;
}
message MetricFamily { optional string name = 1; optional string help = 2; optional MetricType type = 3; repeated Metric metric = 4; optional string unit = 5; }
`;

const MetricFamilyType = parse(METRICS_PROTO).root.lookupType("io.prometheus.client.MetricFamily");

export interface DecodedHistogram {
  sampleCount?: number;
  sampleSum?: number;
  bucket?: { cumulativeCount?: number; upperBound?: number }[];
  schema?: number;
  zeroThreshold?: number;
  zeroCount?: number;
  positiveSpan?: { offset?: number; length?: number }[];
  positiveDelta?: number[];
  negativeSpan?: unknown[];
}

export interface DecodedMetric {
  label?: { name?: string; value?: string }[];
  gauge?: { value?: number };
  counter?: { value?: number };
  untyped?: { value?: number };
  summary?: { sampleCount?: number; sampleSum?: number; quantile?: { quantile?: number; value?: number }[] };
  histogram?: DecodedHistogram;
}

export interface DecodedFamily {
  name: string;
  help?: string;
  type?: string;
  metric: DecodedMetric[];
}

/** Every length-delimited MetricFamily of a body, in order; throws on anything malformed or left over. */
export function decodeFamilies(body: Uint8Array): DecodedFamily[] {
  const reader = Reader.create(body);
  const out: DecodedFamily[] = [];
  while (reader.pos < reader.len) {
    const msg = MetricFamilyType.decodeDelimited(reader);
    const err = MetricFamilyType.verify(msg);
    if (err) throw new Error(`MetricFamily #${out.length}: ${err}`);
    out.push(
      MetricFamilyType.toObject(msg, { longs: Number, enums: String, arrays: true, defaults: false }) as DecodedFamily,
    );
  }
  return out;
}

/** A family as both formats can say it: name, help, type and the text's samples. */
export interface Family {
  name: string;
  help: string;
  type: string;
  samples: Sample[];
}

function labelsOf(m: DecodedMetric): Record<string, string> {
  return Object.fromEntries((m.label ?? []).map((l) => [l.name ?? "", l.value ?? ""]));
}

/** True for a histogram that carries native buckets (or says it is one): it has no text form. */
export function isNative(f: DecodedFamily): boolean {
  return f.type === "HISTOGRAM" && f.metric.some((m) => m.histogram?.schema !== undefined);
}

/** A decoded classic family as the text would say it; +Inf is sample_count, as Prometheus reads it. */
export function asText(f: DecodedFamily): Family {
  const samples: Sample[] = [];
  const type = (f.type ?? "UNTYPED").toLowerCase();
  for (const m of f.metric) {
    const labels = labelsOf(m);
    const push = (name: string, value: number | undefined, more: Record<string, string> = {}) =>
      samples.push({ name, labels: { ...labels, ...more }, value: value ?? 0 });
    if (m.histogram) {
      const h = m.histogram;
      for (const b of h.bucket ?? []) push(`${f.name}_bucket`, b.cumulativeCount, { le: String(b.upperBound ?? 0) });
      push(`${f.name}_bucket`, h.sampleCount, { le: "+Inf" });
      push(`${f.name}_sum`, h.sampleSum);
      push(`${f.name}_count`, h.sampleCount);
    } else if (m.summary) {
      const s = m.summary;
      for (const q of s.quantile ?? []) push(f.name, q.value, { quantile: String(q.quantile ?? 0) });
      push(`${f.name}_sum`, s.sampleSum);
      push(`${f.name}_count`, s.sampleCount);
    } else {
      push(f.name, (m.counter ?? m.gauge ?? m.untyped)?.value);
    }
  }
  return { name: f.name, help: f.help ?? "", type, samples };
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
}

/** The text exposition's families, in order; a sample belongs to the family whose # TYPE came last. */
export function parseTextFamilies(text: string): Family[] {
  const families: Family[] = [];
  const helps = new Map<string, string>();
  for (const line of text.split("\n")) {
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (help) helps.set(help[1], unescapeHelp(help[2]));
    else if (type) families.push({ name: type[1], help: helps.get(type[1]) ?? "", type: type[2], samples: [] });
    else if (line !== "" && !line.startsWith("#")) {
      const family = families.at(-1);
      if (!family) throw new Error(`a sample before any # TYPE: ${line}`);
      family.samples.push(...parseSamples(line));
    }
  }
  return families;
}
