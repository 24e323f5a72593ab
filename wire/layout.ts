/**
 * The HDR layout every latency is recorded in (HdrHistogram's, lowest 1, 3 significant digits, up to an hour),
 * computed rather than looked up: slot i holds every value up to 2047 ms on its own and, above, 2^k values
 * from a multiple of 2^k. The plugin records, and the wire carries, a latency as its *key*: a slot's lowest value
 * kept apart from the rest of the slot, so every integer up to 2047 ms, and every slot's lowest value above
 * (each of Kong's default boundaries is one), is counted exactly.
 */
export const HDR_LOWEST = 1;
export const HDR_HIGHEST = 3_600_000;
export const HDR_DIGITS = 3;

/** log2 of the sub-bucket count: 2048 single-value slots for 3 digits, 256 for 2. */
const FINE_BITS = 11;
const COARSE_BITS = 8;

function slotOf(v: number, bits: number): number {
  if (v < 2 ** bits) return v;
  const shift = 31 - Math.clz32(v) - (bits - 1);
  return shift * 2 ** (bits - 1) + (v >>> shift);
}

function lowestOf(slot: number, bits: number): number {
  const half = 2 ** (bits - 1);
  if (slot < 2 * half) return slot;
  const shift = Math.floor(slot / half) - 1;
  return (slot - shift * half) * 2 ** shift;
}

/** The fine slot of an integer latency of 0 to HDR_HIGHEST ms. */
export const slotOfValue = (v: number): number => slotOf(v, FINE_BITS);
/** The lowest value of fine slot i. */
export const slotLowest = (slot: number): number => lowestOf(slot, FINE_BITS);
/** Fine slots in hdr-histogram-js's counts array for this range (13,312). */
export const SLOT_COUNT = (Math.floor(slotOfValue(HDR_HIGHEST) / 2 ** (FINE_BITS - 1)) + 1) * 2 ** (FINE_BITS - 1);

/** The key a latency of `ms` (an integer >= 0) is recorded under: itself, or its slot's lowest value plus one. */
export function keyOf(ms: number): number {
  const v = ms > HDR_HIGHEST ? HDR_HIGHEST : ms;
  return v < 2 ** FINE_BITS ? v : v - lowestAbove(v) <= 1 ? v : lowestAbove(v) + 1;
}

/** True for the values keyOf() returns: what the wire may carry. */
export function isKey(v: number): boolean {
  if (!(v >= 0 && v <= HDR_HIGHEST && Number.isInteger(v))) return false;
  return v < 2 ** FINE_BITS || v - lowestAbove(v) <= 1;
}

/** The lowest value of the slot of v, from 2048 to an hour; bit operations, as it runs per event and key. */
function lowestAbove(v: number): number {
  const shift = 31 - Math.clz32(v) - (FINE_BITS - 1);
  return (v >>> shift) << shift;
}

/**
 * A coarser layout (2 significant digits: slots at most 1/128 wide) for the sidecar's sliding windows, where
 * memory per series matters more than the last 0.1%; each fine slot lies within one coarse slot.
 */
export const coarseOf = (v: number): number => slotOf(v, COARSE_BITS);
export const COARSE_COUNT = coarseOf(HDR_HIGHEST) + 1;
/** COARSE_LOWEST[i] is the lowest value of coarse slot i; one entry past the last slot closes it. */
export const COARSE_LOWEST: Float64Array = Float64Array.from({ length: COARSE_COUNT + 1 }, (_, i) =>
  lowestOf(i, COARSE_BITS),
);
