import { inflateSync } from "node:zlib";
import { HDR_DIGITS, HDR_HIGHEST, HDR_LOWEST, SLOT_COUNT, slotLowest } from "./layout";
import { HistogramEncodingError, isBase64, type SparseCounts } from "./sparse";

// HdrHistogram's V2 compressed format: [cookie][deflated length][deflate([cookie][payload length]
// [normalizing offset][digits][lowest i64][highest i64][ratio f64][ZigZag LEB128 counts])].
const V2_COMPRESSED_COOKIE_BASE = 0x1c849304;
const V2_COOKIE_BASE = 0x1c849303;
const HEADER_BYTES = 40;
/** The longest encoding a valid delta can have: every slot holding a 9-byte word, plus the header. */
const MAX_INFLATED_BYTES = HEADER_BYTES + 9 * SLOT_COUNT;
/** A slot's count within one delta: hdr-histogram-js's 32-bit counts. */
const MAX_SLOT_COUNT = 2 ** 31 - 1;

/**
 * Reads a version 1 delta (an HdrHistogram V2 compressed encoding of the layout) into keys, checking everything
 * on the way. Written by hand rather than with hdr-histogram-js's decoder, which trusts its input (it allocates
 * whatever range the header claims and inflates without a size limit) and builds a full ~50 KB counts array per
 * histogram: the sidecar decodes one per Kong Service per payload, from the network.
 */
export function readCounts(base64: string): SparseCounts {
  if (!isBase64(base64)) throw new HistogramEncodingError("is not base64");
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
  const values: number[] = [];
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
      // A slot's values are all counted at its lowest, as version 1 carries no more.
      const lowest = slotLowest(slot);
      if (lowest > HDR_HIGHEST) throw new HistogramEncodingError(`has counts above ${HDR_HIGHEST} ms`);
      values.push(lowest);
      counts.push(word);
    }
    slot++;
  }
  return { values, counts };
}
