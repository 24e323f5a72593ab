/**
 * Content negotiation for /metrics: Prometheus's protobuf exposition to a scraper that prefers it (Prometheus
 * with native histograms on lists it first in Accept), the text exposition, unchanged, to everyone else.
 */
import type { Registry } from "prom-client";
import type { ChunkWriter } from "./chunk-writer";
import { LatencyFamiliesProtobuf } from "./exposition-protobuf";
import { LatencyFamiliesText } from "./metrics-body";
import { writeSelfMetrics } from "./self-metrics-protobuf";
import type { Store } from "./store";

export const TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const PROTOBUF_CONTENT_TYPE =
  "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

export interface MetricsFormat {
  contentType: string;
  /** The latency families, in batches of chunks (see LatencyFamiliesText.render). */
  latency(out: ChunkWriter, now: number): Iterable<Buffer[]>;
  /** The sidecar's own metrics, after them. */
  own(out: ChunkWriter, registry: Registry): Promise<void>;
}

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

/** One media range of an Accept header; undefined when it is malformed (it is then ignored). */
function mediaRange(part: string): MediaRange | undefined {
  const [type, ...rest] = part.split(";").map((s) => s.trim());
  if (!/^[\w.+*-]+\/[\w.+*-]+$/.test(type)) return undefined;
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf("=");
    if (eq <= 0) return undefined;
    params.set(
      p.slice(0, eq).trim().toLowerCase(),
      p
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, "$1"),
    );
  }
  const q = params.has("q") ? Number(params.get("q")) : 1;
  if (!(q >= 0 && q <= 1)) return undefined;
  return { type: type.toLowerCase(), params, q };
}

function isDelimitedMetricFamily(r: MediaRange): boolean {
  return (
    r.type === "application/vnd.google.protobuf" &&
    r.params.get("proto") === "io.prometheus.client.MetricFamily" &&
    r.params.get("encoding") === "delimited"
  );
}

/**
 * True when the protobuf exposition is the client's first choice: the range with the highest q, the first
 * listed among equals (as client_golang's expfmt.Negotiate decides). Anything else, no Accept included,
 * gets the text.
 */
export function prefersProtobuf(accept: string | undefined): boolean {
  let best: MediaRange | undefined;
  for (const part of (accept ?? "").split(",")) {
    const r = mediaRange(part);
    if (r && r.q > 0 && (!best || r.q > best.q)) best = r;
  }
  return best !== undefined && isDelimitedMetricFamily(best);
}

/** Both formats over one store, built once per listener. */
export class MetricsFormats {
  private readonly text: MetricsFormat;
  private readonly protobuf: MetricsFormat;

  constructor(store: Store) {
    const text = new LatencyFamiliesText(store);
    const protobuf = new LatencyFamiliesProtobuf(store);
    this.text = {
      contentType: TEXT_CONTENT_TYPE,
      latency: (out, now) => text.render(out, now),
      own: async (out, registry) => out.bytes(Buffer.from(await registry.metrics())),
    };
    this.protobuf = {
      contentType: PROTOBUF_CONTENT_TYPE,
      latency: (out, now) => protobuf.render(out, now),
      own: writeSelfMetrics,
    };
  }

  for(accept: string | undefined): MetricsFormat {
    return prefersProtobuf(accept) ? this.protobuf : this.text;
  }
}
