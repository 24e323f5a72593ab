import Ajv, { type ErrorObject } from "ajv";
import { readCounts } from "./hdr-v1";
import {
  LATENCY_KINDS,
  LIMITS,
  WIRE_VERSIONS,
  type IngestPayload,
  type LatencyDelta,
  type LatencyDeltaV1,
  type LatencyKind,
  type LatencyTotals,
} from "./payload";
import { HistogramEncodingError, readValues, type SparseCounts } from "./sparse";

const count = { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
/** A latency delta: count, sum, and the histogram in the field one wire version names. */
const delta = (field: string, schema: object) => ({
  type: "object",
  additionalProperties: false,
  required: ["count", "sum", field],
  properties: { count, sum: count, [field]: schema },
});
// Version 2's length is checked by readValues: ajv's maxLength counts code points, a loop over every character.
const deltaV2 = delta("values", { type: "string" });
const deltaV1 = delta("hdr", { type: "string", minLength: 1, maxLength: LIMITS.histogramBase64Length });
const nullableText = (max: number) => ({ type: ["string", "null"], maxLength: max });

const schemaOf = (delta: object) => ({
  type: "object",
  additionalProperties: false,
  required: ["version", "source", "seq", "dropped", "services"],
  properties: {
    version: { enum: WIRE_VERSIONS },
    source: { type: "string", minLength: 1, maxLength: LIMITS.sourceLength, pattern: "^[A-Za-z0-9._:/-]+$" },
    seq: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    dropped: {
      type: "object",
      additionalProperties: false,
      required: ["overflow", "rejected"],
      properties: { overflow: count, rejected: count },
    },
    services: {
      type: "array",
      maxItems: LIMITS.services,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["service", "latencies"],
        properties: {
          service: {
            type: "object",
            additionalProperties: false,
            required: ["id", "name", "host", "tags"],
            properties: {
              id: { type: "string", minLength: 1, maxLength: LIMITS.idLength },
              name: nullableText(LIMITS.nameLength),
              host: nullableText(LIMITS.nameLength),
              tags: {
                type: "array",
                maxItems: LIMITS.tags,
                items: { type: "string", maxLength: LIMITS.tagLength },
              },
            },
          },
          latencies: {
            type: "object",
            additionalProperties: false,
            minProperties: 1,
            properties: Object.fromEntries(LATENCY_KINDS.map((k) => [k, delta])),
          },
        },
      },
    },
  },
});

const ajv = new Ajv({ allErrors: false, strict: true });
const checkV2 = ajv.compile<IngestPayload>(schemaOf(deltaV2));
const checkV1 = ajv.compile<IngestPayload<LatencyDeltaV1>>(schemaOf(deltaV1));

export class PayloadError extends Error {}

function describe(e: ErrorObject): string {
  const where = e.instancePath || "payload";
  if (e.keyword === "additionalProperties") {
    return `${where}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  }
  if (e.keyword === "enum")
    return `${where}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(", ")}`;
  return `${where}: ${e.message ?? e.keyword}`;
}

/** Histograms decoded from a payload, parallel to payload.services[i].latencies. */
export type DecodedLatencies = Partial<Record<LatencyKind, SparseCounts>>;

export interface ValidPayload {
  payload: IngestPayload<LatencyTotals>;
  histograms: DecodedLatencies[];
}

function checkShape(body: unknown): IngestPayload<LatencyDelta | LatencyDeltaV1> {
  const check = (body as { version?: unknown } | null)?.version === 1 ? checkV1 : checkV2;
  if (!check(body)) throw new PayloadError(describe(check.errors![0]));
  return body;
}

function decode(d: LatencyDelta | LatencyDeltaV1): SparseCounts {
  return "values" in d ? readValues(d.values) : readCounts(d.hdr);
}

/**
 * Validates a parsed ingest body in full (shape, limits, histogram encodings, count and sum consistency)
 * before any of it is applied, so that a bad payload changes nothing. Throws PayloadError naming the problem.
 */
export function validatePayload(body: unknown): ValidPayload {
  const payload = checkShape(body);
  const ids = new Set<string>();
  const histograms = payload.services.map((s, i): DecodedLatencies => {
    if (ids.has(s.service.id))
      throw new PayloadError(`/services/${i}/service/id: service "${s.service.id}" appears twice`);
    ids.add(s.service.id);
    const out: DecodedLatencies = {};
    for (const kind of LATENCY_KINDS) {
      const d = s.latencies[kind];
      if (!d) continue;
      const where = `/services/${i}/latencies/${kind}/${"values" in d ? "values" : "hdr"}`;
      let h: SparseCounts;
      try {
        h = decode(d);
      } catch (err) {
        if (err instanceof HistogramEncodingError) throw new PayloadError(`${where}: ${err.message}`);
        throw err;
      }
      let total = 0;
      let lowestSum = 0;
      for (let k = 0; k < h.values.length; k++) {
        total += h.counts[k];
        lowestSum += h.counts[k] * h.values[k];
      }
      if (total !== d.count) throw new PayloadError(`${where}: holds ${total} values but count says ${d.count}`);
      // A key is the lowest value it stands for (values above the range are clamped to its top), so the
      // exact sum can be no smaller than the keys add up to.
      if (d.sum < lowestSum)
        throw new PayloadError(
          `/services/${i}/latencies/${kind}/sum: ${d.sum} is less than the histogram's values allow (${lowestSum})`,
        );
      out[kind] = h;
    }
    return out;
  });
  return { payload, histograms };
}
