import { MAX_VALUES_LENGTH } from "./sparse";

/**
 * The ingest payload: what the plugin ships to the sidecar every flush interval. Deltas since the last
 * acknowledged payload of the same source; (source, seq) identifies a payload so a retry is not counted twice.
 */
export const WIRE_VERSION = 2;
/** The sidecar still takes version 1 (HDR-encoded deltas) from plugins not yet upgraded. */
export const WIRE_VERSIONS = [1, 2] as const;
export const INGEST_PATH = "/v1/ingest";

/** Kong's three latencies, named as Kong's `latencies` table names them. */
export const LATENCY_KINDS = ["upstream", "request", "kong"] as const;
export type LatencyKind = (typeof LATENCY_KINDS)[number];

export const LIMITS = {
  sourceLength: 128,
  services: 100_000,
  idLength: 64,
  // KIC names a multi-backend HTTPRoute service after all its backends: up to ~5,400 characters.
  nameLength: 8192,
  tags: 64,
  tagLength: 512,
  histogramBase64Length: 1_000_000,
  valuesLength: MAX_VALUES_LENGTH,
  /** Default bound on one request body; the sidecar's --max-body-bytes can change it. */
  bodyBytes: 32 * 1024 * 1024,
} as const;

export interface LatencyTotals {
  /** Number of requests recorded. */
  count: number;
  /** Exact sum of their latencies, integer milliseconds. */
  sum: number;
}

export interface LatencyDelta extends LatencyTotals {
  /** A count per distinct latency key (wire/layout.ts), encoded by wire/sparse.ts. */
  values: string;
}

export interface LatencyDeltaV1 extends LatencyTotals {
  /** HdrHistogram V2 compressed base64 of the layout (wire/hdr-v1.ts). */
  hdr: string;
}

/** A Kong Service, as Kong's router and Kong Ingress Controller describe it. */
export interface ServiceRef {
  id: string;
  name: string | null;
  host: string | null;
  tags: string[];
}

export interface ServiceDelta<D extends LatencyTotals = LatencyDelta> {
  service: ServiceRef;
  latencies: Partial<Record<LatencyKind, D>>;
}

export interface IngestPayload<D extends LatencyTotals = LatencyDelta> {
  version: (typeof WIRE_VERSIONS)[number];
  /** New for every plugin-server process (and pipeline within it). */
  source: string;
  /** 1, 2, 3, ... per source; a payload is retried with the same seq until acknowledged. */
  seq: number;
  /**
   * Events lost since the previous payload, by reason: `overflow`, recorded for a service beyond the plugin's
   * max_services bound; `rejected`, carried by an earlier payload the sidecar refused as invalid.
   */
  dropped: { overflow: number; rejected: number };
  services: ServiceDelta<D>[];
}

export interface IngestAck {
  /** "applied", or "duplicate" for a seq already applied for this source. */
  status: "applied" | "duplicate";
  seq: number;
}
