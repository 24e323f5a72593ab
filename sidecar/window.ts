import type { SparseCounts } from "../wire/sparse";
import { NearestRanks } from "./percentiles";
import { OpenSlot, Tally, type PackedCounts } from "./slot-counts";

/** A closed slot: its totals and its packed counts (see slot-counts.ts). */
interface ClosedSlot {
  epoch: number;
  count: number;
  sum: number;
  entries: PackedCounts;
}

export interface WindowStats {
  count: number;
  sum: number;
  /** Percentiles in the order asked for; NaN when the window is empty. */
  values: number[];
}

/** Shared by every window: percentiles are computed one series or one request at a time. */
const tally = new Tally();

/** Percentiles over several windows merged, e.g. every series of one Kubernetes Service. */
export function mergedStats(windows: Iterable<SlidingWindow>, now: number, qs: readonly number[]): WindowStats {
  let count = 0;
  let sum = 0;
  for (const w of windows) {
    const s = w.addTo(tally, now);
    count += s.count;
    sum += s.sum;
  }
  return { count, sum, values: ranksOf(count, qs) };
}

function ranksOf(count: number, qs: readonly number[]): number[] {
  const ranks = new NearestRanks(count, qs);
  tally.drainInto(ranks);
  return ranks.values;
}

/**
 * The last `windowMs` of one series, in `slots` steps: the open slot accumulates in place, and is compacted
 * when time moves past it, so that 10k series stay within a few tens of MB.
 */
export class SlidingWindow {
  private closed: ClosedSlot[] = [];
  private openEpoch = -1;
  private readonly open = new OpenSlot();
  private openCount = 0;
  private openSum = 0;
  private cache: { epoch: number; qs: readonly number[]; stats: WindowStats } | undefined;

  constructor(
    private readonly slotMs: number,
    private readonly slots: number,
  ) {}

  add(count: number, sum: number, h: SparseCounts, now: number): void {
    this.roll(now);
    this.open.add(h);
    this.openCount += count;
    this.openSum += sum;
    this.cache = undefined;
  }

  stats(now: number, qs: readonly number[]): WindowStats {
    this.roll(now);
    const epoch = Math.floor(now / this.slotMs);
    if (this.cache && this.cache.epoch === epoch && this.cache.qs === qs) return this.cache.stats;
    const { count, sum } = this.addTo(tally, now);
    const stats = { count, sum, values: ranksOf(count, qs) };
    this.cache = { epoch, qs, stats };
    return stats;
  }

  /** Adds the window's counts into `into`; returns its count and sum. */
  addTo(into: Tally, now: number): { count: number; sum: number } {
    this.roll(now);
    let count = this.openCount;
    let sum = this.openSum;
    into.add(this.open.entries, this.open.length);
    for (const s of this.closed) {
      count += s.count;
      sum += s.sum;
      into.add(s.entries, s.entries.length);
    }
    return { count, sum };
  }

  private roll(now: number): void {
    const epoch = Math.floor(now / this.slotMs);
    // A render that waited for a slow client reads with the time it started: never roll back.
    if (epoch <= this.openEpoch) return;
    if (this.openCount > 0)
      this.closed.push({
        epoch: this.openEpoch,
        count: this.openCount,
        sum: this.openSum,
        entries: this.open.compact(),
      });
    this.open.clear();
    this.openCount = 0;
    this.openSum = 0;
    this.openEpoch = epoch;
    // The open slot plus slots-1 closed ones make the window.
    const oldest = epoch - (this.slots - 1);
    if (this.closed.length && this.closed[0].epoch < oldest) this.closed = this.closed.filter((s) => s.epoch >= oldest);
    this.cache = undefined;
  }
}
