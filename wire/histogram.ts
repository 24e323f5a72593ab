import { inflateSync } from "node:zlib";
import * as hdr from "hdr-histogram-js";

/**
 * One HDR layout for every histogram the plugin records and the sidecar merges, so that deltas can be added
 * index by index. Kong's latencies are integer milliseconds: with 3 significant digits every value up to
 * 2047 ms is its own bucket and larger ones are within 0.1%. Values above an hour are clamped (the exact
 * sum is carried separately, so only their percentile position is affected).
 */
export const HDR_LOWEST = 1;
export const HDR_HIGHEST = 3_600_000;
export const HDR_DIGITS = 3;

export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: HDR_LOWEST,
    highestTrackableValue: HDR_HIGHEST,
    numberOfSignificantValueDigits: HDR_DIGITS,
    bitBucketSize: 32,
    autoResize: false,
  });
}

/** Records an integer millisecond latency, clamped into the histogram's range. */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(ms > HDR_HIGHEST ? HDR_HIGHEST : ms);
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

// HdrHistogram's V2 compressed format: [cookie][deflated length][deflate([cookie][payload length]
// [normalizing offset][digits][lowest i64][highest i64][ratio f64][zigzag LEB128 counts])].
const V2_COMPRESSED_COOKIE_BASE = 0x1c849304;
const V2_COOKIE_BASE = 0x1c849303;
const HEADER_BYTES = 40;
/** Longest encoding a valid delta can have: every counts slot holding a 9-byte word, plus the header. */
const MAX_INFLATED_BYTES = HEADER_BYTES + 9 * countsLength();

function countsLength(): number {
  const h = newHistogram() as unknown as { countsArrayLength: number };
  return h.countsArrayLength;
}

export class HistogramEncodingError extends Error {}

/**
 * Checks an encoded histogram before anything is allocated for it: hdr-histogram-js's decoder trusts the
 * header (it would allocate whatever range a payload claims, and inflate without a size limit), and ingest
 * takes payloads from the network.
 */
function checkEncoding(base64: string): void {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw new HistogramEncodingError("is not base64");
  }
  const raw = Buffer.from(base64, "base64");
  if (raw.length < 8 || (raw.readInt32BE(0) & ~0xf0) !== V2_COMPRESSED_COOKIE_BASE) {
    throw new HistogramEncodingError("is not an HdrHistogram V2 compressed encoding");
  }
  const deflatedLength = raw.readInt32BE(4);
  if (deflatedLength !== raw.length - 8) {
    throw new HistogramEncodingError(`declares ${deflatedLength} compressed bytes but carries ${raw.length - 8}`);
  }
  let inner: Buffer;
  try {
    inner = inflateSync(raw.subarray(8), { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (err) {
    throw new HistogramEncodingError(`does not inflate within ${MAX_INFLATED_BYTES} bytes: ${(err as Error).message}`);
  }
  if (inner.length < HEADER_BYTES || (inner.readInt32BE(0) & ~0xf0) !== V2_COOKIE_BASE) {
    throw new HistogramEncodingError("has no HdrHistogram V2 header inside");
  }
  const payloadLength = inner.readInt32BE(4);
  if (payloadLength !== inner.length - HEADER_BYTES) {
    throw new HistogramEncodingError(`declares ${payloadLength} payload bytes but carries ${inner.length - HEADER_BYTES}`);
  }
  const digits = inner.readInt32BE(12);
  const lowest = Number(inner.readBigInt64BE(16));
  const highest = Number(inner.readBigInt64BE(24));
  if (digits !== HDR_DIGITS || lowest !== HDR_LOWEST || highest !== HDR_HIGHEST) {
    throw new HistogramEncodingError(
      `has layout (lowest ${lowest}, highest ${highest}, digits ${digits}); expected ` +
        `(lowest ${HDR_LOWEST}, highest ${HDR_HIGHEST}, digits ${HDR_DIGITS})`,
    );
  }
}

interface IndexedHistogram {
  countsArrayLength: number;
  getCountAtIndex(i: number): number;
  valueFromIndex(i: number): number;
}

/** Calls fn(lowest value of the slot, count) for every non-empty slot, in increasing value order. */
export function forEachSlot(h: Histogram, fn: (value: number, count: number) => void): void {
  const ih = h as unknown as IndexedHistogram;
  const n = ih.countsArrayLength;
  for (let i = 0; i < n; i++) {
    const c = ih.getCountAtIndex(i);
    if (c !== 0) fn(ih.valueFromIndex(i), c);
  }
}

/**
 * Decodes a delta and checks it against the count the payload declares, so that a histogram whose slots
 * do not add up (negative, overflowing or out-of-range counts) is refused rather than merged.
 */
export function decodeHistogram(base64: string, expectedCount: number): Histogram {
  checkEncoding(base64);
  let h: Histogram;
  try {
    h = hdr.decodeFromCompressedBase64(base64, 32, false);
  } catch (err) {
    throw new HistogramEncodingError(`does not decode: ${(err as Error).message}`);
  }
  let total = 0;
  let negative = false;
  forEachSlot(h, (_v, c) => {
    if (c < 0) negative = true;
    total += c;
  });
  if (negative) throw new HistogramEncodingError("has negative counts");
  if (total !== expectedCount || h.totalCount !== expectedCount) {
    throw new HistogramEncodingError(`holds ${total} values but count says ${expectedCount}`);
  }
  return h;
}
