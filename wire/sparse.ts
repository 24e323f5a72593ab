import { isKey, SLOT_COUNT } from "./layout";

/** A decoded delta: distinct latency keys (see layout.ts) in increasing order, with their counts. */
export interface SparseCounts {
  values: number[];
  counts: number[];
}

export class HistogramEncodingError extends Error {}

/**
 * Most keys one delta can hold: every value up to 2047 ms, then a slot's lowest value and the rest of the slot
 * for each of the layout's slots above.
 */
export const MAX_KEYS = 2 * SLOT_COUNT;

/**
 * Reads version 2's `values`, flat pairs `[key, count, key, count, ...]` with keys increasing, checking that
 * every key is one the layout makes and every count a positive integer.
 */
export function readValues(flat: readonly number[]): SparseCounts {
  if (flat.length % 2 !== 0) throw new HistogramEncodingError("must hold [latency, count] pairs");
  const n = flat.length / 2;
  const values = new Array<number>(n);
  const counts = new Array<number>(n);
  let previous = -1;
  for (let i = 0; i < n; i++) {
    const v = flat[2 * i];
    const c = flat[2 * i + 1];
    if (!isKey(v)) throw new HistogramEncodingError(`has ${v} at ${2 * i}, not a latency key of the layout`);
    if (v <= previous) throw new HistogramEncodingError(`has ${v} at ${2 * i} after ${previous}: keys must increase`);
    if (!Number.isSafeInteger(c) || c < 1)
      throw new HistogramEncodingError(`has count ${c} at ${2 * i + 1}: must be an integer >= 1`);
    values[i] = v;
    counts[i] = c;
    previous = v;
  }
  return { values, counts };
}

