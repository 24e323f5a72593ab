import Ajv, { type ErrorObject } from "ajv";
import { HistogramEncodingError, readCounts, SLOT_LOWEST, type SparseCounts } from "./histogram";
import { LATENCY_KINDS, LIMITS, WIRE_VERSION, type IngestPayload, type LatencyKind } from "./payload";

const count = { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
const delta = {
  type: "object",
  additionalProperties: false,
  required: ["count", "sum", "hdr"],
  properties: {
    count,
    sum: count,
    hdr: { type: "string", minLength: 1, maxLength: LIMITS.histogramBase64Length },
  },
};
const nullableText = (max: number) => ({ type: ["string", "null"], maxLength: max });

const schema = {
  type: "object",
  additionalProperties: false,
  required: ["version", "source", "seq", "dropped", "services"],
  properties: {
    version: { const: WIRE_VERSION },
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
};

const ajv = new Ajv({ allErrors: false, strict: true });
const checkShape = ajv.compile<IngestPayload>(schema);

export class PayloadError extends Error {}

function describe(e: ErrorObject): string {
  const where = e.instancePath || "payload";
  if (e.keyword === "additionalProperties") {
    return `${where}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  }
  if (e.keyword === "const")
    return `${where}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
  return `${where}: ${e.message ?? e.keyword}`;
}

/** Histograms decoded from a payload, parallel to payload.services[i].latencies. */
export type DecodedLatencies = Partial<Record<LatencyKind, SparseCounts>>;

export interface ValidPayload {
  payload: IngestPayload;
  histograms: DecodedLatencies[];
}

/**
 * Validates a parsed ingest body in full (shape, limits, histogram encodings, count and sum consistency)
 * before any of it is applied, so that a bad payload changes nothing. Throws PayloadError naming the problem.
 */
export function validatePayload(body: unknown): ValidPayload {
  if (!checkShape(body)) {
    throw new PayloadError(describe(checkShape.errors![0]));
  }
  const ids = new Set<string>();
  const histograms = body.services.map((s, i): DecodedLatencies => {
    if (ids.has(s.service.id))
      throw new PayloadError(`/services/${i}/service/id: service "${s.service.id}" appears twice`);
    ids.add(s.service.id);
    const out: DecodedLatencies = {};
    for (const kind of LATENCY_KINDS) {
      const d = s.latencies[kind];
      if (!d) continue;
      const where = `/services/${i}/latencies/${kind}`;
      let h: SparseCounts;
      try {
        h = readCounts(d.hdr);
      } catch (err) {
        if (err instanceof HistogramEncodingError) throw new PayloadError(`${where}/hdr: ${err.message}`);
        throw err;
      }
      let total = 0;
      let lowestSum = 0;
      for (let k = 0; k < h.slots.length; k++) {
        total += h.counts[k];
        lowestSum += h.counts[k] * SLOT_LOWEST[h.slots[k]];
      }
      if (total !== d.count) throw new PayloadError(`${where}/hdr: holds ${total} values but count says ${d.count}`);
      // Every value lies within its slot (values above the range are clamped to its top), so the exact sum
      // can be no smaller than the slots' lowest values add up to.
      if (d.sum < lowestSum)
        throw new PayloadError(`${where}/sum: ${d.sum} is less than the histogram's values allow (${lowestSum})`);
      out[kind] = h;
    }
    return out;
  });
  return { payload: body, histograms };
}
