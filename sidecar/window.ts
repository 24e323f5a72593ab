import { COARSE_COUNT, COARSE_OF, type SparseCounts } from "../wire/histogram";
import { percentiles } from "./percentiles";

/** A closed slot, compacted: coarse slot numbers and their counts. */
interface ClosedSlot {
  epoch: number;
  count: number;
  sum: number;
  keys: Uint16Array;
  counts: Float64Array;
}

export interface WindowStats {
  count: number;
  sum: number;
  /** Percentiles in the order asked for; NaN when the window is empty. */
  values: number[];
}

/** Scratch space shared by every window: percentiles are computed one series at a time. */
const dense = new Float64Array(COARSE_COUNT);

/** Percentiles over several windows merged, e.g. every series of one Kubernetes Service. */
export function mergedStats(windows: Iterable<SlidingWindow>, now: number, qs: readonly number[]): WindowStats {
  dense.fill(0);
  let count = 0;
  let sum = 0;
  for (const w of windows) {
    const s = w.addTo(dense, now);
    count += s.count;
    sum += s.sum;
  }
  return { count, sum, values: percentiles(dense, count, qs) };
}

/**
 * The last `windowMs` of one series, in `slots` steps: the open slot accumulates in a Map, and is compacted
 * into typed arrays when time moves past it (6 bytes a distinct coarse value), so that 10k series stay
 * within a few tens of MB.
 */
export class SlidingWindow {
  private closed: ClosedSlot[] = [];
  private openEpoch = -1;
  private open = new Map<number, number>();
  private openCount = 0;
  private openSum = 0;
  private cache: { epoch: number; qs: readonly number[]; stats: WindowStats } | undefined;

  constructor(
    private readonly slotMs: number,
    private readonly slots: number,
  ) {}

  add(count: number, sum: number, h: SparseCounts, now: number): void {
    this.roll(now);
    for (let i = 0; i < h.slots.length; i++) {
      const key = COARSE_OF[h.slots[i]!]!;
      this.open.set(key, (this.open.get(key) ?? 0) + h.counts[i]!);
    }
    this.openCount += count;
    this.openSum += sum;
    this.cache = undefined;
  }

  stats(now: number, qs: readonly number[]): WindowStats {
    this.roll(now);
    const epoch = Math.floor(now / this.slotMs);
    if (this.cache && this.cache.epoch === epoch && this.cache.qs === qs) return this.cache.stats;
    dense.fill(0);
    const { count, sum } = this.addTo(dense, now);
    const stats = { count, sum, values: percentiles(dense, count, qs) };
    this.cache = { epoch, qs, stats };
    return stats;
  }

  /** Adds the window's counts into `into` (dense, coarse layout); returns its count and sum. */
  addTo(into: Float64Array, now: number): { count: number; sum: number } {
    this.roll(now);
    let count = this.openCount;
    let sum = this.openSum;
    for (const [k, c] of this.open) into[k] += c;
    for (const s of this.closed) {
      count += s.count;
      sum += s.sum;
      for (let i = 0; i < s.keys.length; i++) into[s.keys[i]!] += s.counts[i]!;
    }
    return { count, sum };
  }

  private roll(now: number): void {
    const epoch = Math.floor(now / this.slotMs);
    if (epoch === this.openEpoch) return;
    if (this.openCount > 0) {
      const keys = Uint16Array.from([...this.open.keys()].sort((a, b) => a - b));
      const counts = Float64Array.from(keys, (k) => this.open.get(k)!);
      this.closed.push({ epoch: this.openEpoch, count: this.openCount, sum: this.openSum, keys, counts });
    }
    this.open.clear();
    this.openCount = 0;
    this.openSum = 0;
    this.openEpoch = epoch;
    // The open slot plus slots-1 closed ones make the window.
    const oldest = epoch - (this.slots - 1);
    if (this.closed.length && this.closed[0]!.epoch < oldest) this.closed = this.closed.filter((s) => s.epoch >= oldest);
    this.cache = undefined;
  }
}
