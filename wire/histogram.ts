import { inflateSync } from "node:zlib";
import * as hdr from "hdr-histogram-js";

/**
 * One HDR layout for every histogram the plugin records and the sidecar merges, so that deltas can be added
 * slot by slot. Kong's latencies are integer milliseconds: with 3 significant digits every value up to
 * 2047 ms is its own slot and larger ones share slots 0.1% wide. Values above an hour are clamped (the exact
 * sum is carried separately, so only their percentile position is affected).
 */
export const HDR_LOWEST = 1;
export const HDR_HIGHEST = 3_600_000;
export const HDR_DIGITS = 3;

export type Histogram = hdr.Histogram;

function build(digits: 2 | 3): Histogram {
  return hdr.build({
    lowestDiscernibleValue: HDR_LOWEST,
    highestTrackableValue: HDR_HIGHEST,
    numberOfSignificantValueDigits: digits,
    bitBucketSize: 32,
    autoResize: false,
  });
}

export function newHistogram(): Histogram {
  return build(HDR_DIGITS);
}

/** Records an integer millisecond latency, clamped into the histogram's range. */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(ms > HDR_HIGHEST ? HDR_HIGHEST : ms);
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

interface IndexedHistogram {
  countsArrayLength: number;
  valueFromIndex(i: number): number;
  countsArrayIndex(v: number): number;
}

/** For every slot of the layout, the lowest value it holds; slot i holds [SLOT_LOWEST[i], SLOT_LOWEST[i+1]). */
export const SLOT_LOWEST: Float64Array = (() => {
  const h = newHistogram() as unknown as IndexedHistogram;
  const t = new Float64Array(h.countsArrayLength + 1);
  for (let i = 0; i <= h.countsArrayLength; i++) t[i] = h.valueFromIndex(i);
  return t;
})();
export const SLOT_COUNT = SLOT_LOWEST.length - 1;

/**
 * A coarser layout (2 significant digits: slots at most 1/128 wide) for the sidecar's sliding windows,
 * where memory per series matters more than the last 0.1%: COARSE_OF[slot] is the coarse slot holding it.
 */
export const COARSE_DIGITS = 2;
export const { COARSE_OF, COARSE_LOWEST } = (() => {
  const coarse = build(COARSE_DIGITS) as unknown as IndexedHistogram;
  const of = new Uint16Array(SLOT_COUNT);
  for (let i = 0; i < SLOT_COUNT; i++) of[i] = coarse.countsArrayIndex(SLOT_LOWEST[i]);
  const lowest = new Float64Array(coarse.countsArrayLength + 1);
  for (let i = 0; i <= coarse.countsArrayLength; i++) lowest[i] = coarse.valueFromIndex(i);
  return { COARSE_OF: of, COARSE_LOWEST: lowest };
})();
export const COARSE_COUNT = COARSE_LOWEST.length - 1;

/** A decoded delta: the non-empty slots, in increasing order, with their counts. */
export interface SparseCounts {
  slots: number[];
  counts: number[];
}

// HdrHistogram's V2 compressed format: [cookie][deflated length][deflate([cookie][payload length]
// [normalizing offset][digits][lowest i64][highest i64][ratio f64][ZigZag LEB128 counts])].
const V2_COMPRESSED_COOKIE_BASE = 0x1c849304;
const V2_COOKIE_BASE = 0x1c849303;
const HEADER_BYTES = 40;
/** The longest encoding a valid delta can have: every slot holding a 9-byte word, plus the header. */
const MAX_INFLATED_BYTES = HEADER_BYTES + 9 * SLOT_COUNT;
/** A slot's count within one delta: hdr-histogram-js's 32-bit counts. */
const MAX_SLOT_COUNT = 2 ** 31 - 1;

export class HistogramEncodingError extends Error {}

/**
 * Reads an encoded delta into sparse slots, checking everything on the way. Written by hand rather than
 * with hdr-histogram-js's decoder, which trusts its input (it allocates whatever range the header claims
 * and inflates without a size limit) and builds a full ~50 KB counts array per histogram: the sidecar
 * decodes one per Kong Service per payload, from the network.
 */
export function readCounts(base64: string): SparseCounts {
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
    throw new HistogramEncodingError(
      `declares ${payloadLength} payload bytes but carries ${inner.length - HEADER_BYTES}`,
    );
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
  return readV2Counts(inner, HEADER_BYTES);
}

/** Positive words are counts of consecutive slots; a negative word -n skips n empty slots. */
function readV2Counts(buf: Buffer, start: number): SparseCounts {
  const slots: number[] = [];
  const counts: number[] = [];
  let pos = start;
  let slot = 0;
  while (pos < buf.length) {
    // LEB128, 7 bits a byte for up to 8 bytes, then a 9th byte of 8 bits; arithmetic rather than bitwise
    // operators, which JavaScript limits to 32 bits.
    let raw = 0;
    let scale = 1;
    let i = 0;
    for (;;) {
      if (pos >= buf.length) throw new HistogramEncodingError("ends inside a count");
      const b = buf[pos++];
      if (i === 8) {
        raw += b * scale;
        break;
      }
      raw += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) break;
      scale *= 128;
      i++;
    }
    if (raw > Number.MAX_SAFE_INTEGER) throw new HistogramEncodingError("has a count beyond 2^53");
    const word = raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
    if (word < 0) {
      slot += -word;
      continue;
    }
    if (slot >= SLOT_COUNT) throw new HistogramEncodingError(`has counts beyond its ${SLOT_COUNT} slots`);
    if (word > MAX_SLOT_COUNT) throw new HistogramEncodingError(`has a slot count of ${word}, beyond 32 bits`);
    if (word > 0) {
      slots.push(slot);
      counts.push(word);
    }
    slot++;
  }
  return { slots, counts };
}
