import { COARSE_COUNT, coarseOf } from "../wire/layout";
import type { SparseCounts } from "../wire/sparse";
import type { NearestRanks } from "./percentiles";

/**
 * A window slot's counts as one sorted typed array of packed entries, `count * SPAN + coarse slot`: one
 * number a distinct latency instead of a Map entry or two parallel arrays, at 10k series x 6 slots x a
 * few hundred distinct latencies. The coarse slot is read back with `& MASK`: ToInt32 keeps the low bits of
 * any integer below 2^53, so this holds for counts up to 2^42.
 */
const SPAN = 2048;
const MASK = SPAN - 1;
if (COARSE_COUNT > SPAN) throw new Error(`coarse layout of ${COARSE_COUNT} slots does not pack into ${SPAN}`);

/** 4 bytes an entry while every count fits (2^21 in 10 s of one series and latency: nearly always). */
const UINT32_MAX_COUNT = 2 ** 32 / SPAN - 1;

export type PackedCounts = Uint32Array | Float64Array;

function countOf(entry: number): number {
  return (entry - (entry & MASK)) / SPAN;
}

/** A delta's latencies folded into the coarse layout (several share a coarse slot). */
const scratch = new Float64Array(COARSE_COUNT);

function foldDelta(h: SparseCounts): number {
  let n = 0;
  for (let i = 0; i < h.values.length; i++) {
    const key = coarseOf(h.values[i]);
    const c = h.counts[i] * SPAN;
    if (n > 0 && (scratch[n - 1] & MASK) === key) scratch[n - 1] += c;
    else scratch[n++] = c + key;
  }
  return n;
}

let merged = new Float64Array(4096);

/** The slot of the window that is still filling: sorted packed entries, each delta merged into them. */
export class OpenSlot {
  entries = new Float64Array(0);
  length = 0;

  add(h: SparseCounts): void {
    const m = foldDelta(h);
    if (m === 0) return;
    // One merging pass into a shared buffer, then a copy back: a copy costs less than a second pass.
    if (merged.length < this.length + m) merged = new Float64Array(Math.max(this.length + m, 2 * merged.length));
    const e = this.entries;
    let i = 0;
    let j = 0;
    let w = 0;
    while (i < this.length && j < m) {
      const a = e[i] & MASK;
      const b = scratch[j] & MASK;
      if (a < b) merged[w++] = e[i++];
      else if (a > b) merged[w++] = scratch[j++];
      else merged[w++] = e[i++] + scratch[j++] - b;
    }
    while (i < this.length) merged[w++] = e[i++];
    while (j < m) merged[w++] = scratch[j++];
    if (w > e.length) this.entries = new Float64Array(Math.max(w, Math.ceil(e.length * 1.5), 16));
    this.entries.set(merged.subarray(0, w));
    this.length = w;
  }

  /** The entries as a closed slot keeps them, in the smallest array that holds them. */
  compact(): PackedCounts {
    const live = this.entries.subarray(0, this.length);
    let max = 0;
    for (let i = 0; i < live.length; i++) max = Math.max(max, countOf(live[i]));
    return max <= UINT32_MAX_COUNT ? Uint32Array.from(live) : live.slice();
  }

  /** Empties the slot, keeping its array: the next slot of an active series fills about as much. */
  clear(): void {
    this.length = 0;
  }
}

/**
 * Slots added up over the coarse layout, then read in increasing order until the last percentile is found.
 * Dense, because adding is then one store an entry; but only the range of slots the entries span is read and
 * cleared afterwards, not the ~2,000 of the layout, which at 10k series a scrape would otherwise sweep.
 */
export class Tally {
  private readonly dense = new Float64Array(COARSE_COUNT);
  private lo = COARSE_COUNT;
  private hi = -1;

  add(entries: PackedCounts, length: number): void {
    if (length === 0) return;
    this.lo = Math.min(this.lo, entries[0] & MASK);
    this.hi = Math.max(this.hi, entries[length - 1] & MASK);
    const d = this.dense;
    for (let i = 0; i < length; i++) {
      const e = entries[i];
      d[e & MASK] += countOf(e);
    }
  }

  /** Feeds the added-up slots to `ranks`, as far as it wants them; the tally is then empty again. */
  drainInto(ranks: NearestRanks): void {
    const d = this.dense;
    for (let i = this.lo; i <= this.hi && ranks.wanting; i++) if (d[i] !== 0) ranks.add(i, d[i]);
    if (this.hi >= this.lo) d.fill(0, this.lo, this.hi + 1);
    this.lo = COARSE_COUNT;
    this.hi = -1;
  }
}
