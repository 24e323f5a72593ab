/** Keys are `series * KEY_SPAN + latency key`; latency keys stay below an hour (wire/layout.ts). */
export const KEY_SPAN = 2 ** 22;
const EMPTY = -1;
const MIN_CAPACITY = 1024;

/**
 * Counts per (series, latency key), in one open-addressing table of two typed arrays: 16 bytes a slot at most
 * half full, and no object per series for the garbage collector to trace or promote. Hand-written: a dense
 * HDR histogram held 53 KB per series, and loading hdr-histogram-js adds 14 MiB to the plugin server's RSS.
 */
export class KeyCounts {
  private keys = new Float64Array(MIN_CAPACITY).fill(EMPTY);
  private counts = new Float64Array(MIN_CAPACITY);
  private mask = MIN_CAPACITY - 1;
  size = 0;

  constructor(private readonly maxEntries: number) {}

  /** Counts one more of `key` in `series`; false when that would hold more than maxEntries entries. */
  add(series: number, key: number): boolean {
    const k = series * KEY_SPAN + key;
    let i = slotFor(series, key) & this.mask;
    for (;;) {
      const cur = this.keys[i];
      if (cur === k) {
        this.counts[i]++;
        return true;
      }
      if (cur === EMPTY) break;
      i = (i + 1) & this.mask;
    }
    if (this.size >= this.maxEntries) return false;
    if (2 * (this.size + 1) > this.keys.length) {
      this.resize(2 * this.keys.length);
      return this.add(series, key);
    }
    this.keys[i] = k;
    this.counts[i] = 1;
    this.size++;
    return true;
  }

  /** Every entry, sorted by key (so by series, then latency), with its count. */
  sorted(): { keys: Float64Array; counts: Float64Array } {
    const keys = new Float64Array(this.size);
    let n = 0;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] !== EMPTY) keys[n++] = this.keys[i];
    keys.sort();
    const counts = new Float64Array(n);
    for (let j = 0; j < n; j++) counts[j] = this.countOf(keys[j]);
    return { keys, counts };
  }

  /** Empties the table, giving back memory a burst (an outage, a scan over many services) made it take. */
  clear(): void {
    const wanted = Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(4 * this.size + 1)));
    if (this.keys.length > 2 * wanted) {
      this.keys = new Float64Array(wanted);
      this.counts = new Float64Array(wanted);
      this.mask = wanted - 1;
    }
    this.keys.fill(EMPTY);
    this.size = 0;
  }

  private countOf(k: number): number {
    let i = this.home(k);
    while (this.keys[i] !== k) i = (i + 1) & this.mask;
    return this.counts[i];
  }

  /** Where probing for a stored key starts, as add() placed it. */
  private home(k: number): number {
    const series = Math.floor(k / KEY_SPAN);
    return slotFor(series, k - series * KEY_SPAN) & this.mask;
  }

  private resize(capacity: number): void {
    const { keys, counts } = this;
    this.keys = new Float64Array(capacity).fill(EMPTY);
    this.counts = new Float64Array(capacity);
    this.mask = capacity - 1;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k === EMPTY) continue;
      let j = this.home(k);
      while (this.keys[j] !== EMPTY) j = (j + 1) & this.mask;
      this.keys[j] = k;
      this.counts[j] = counts[i];
    }
  }
}

function slotFor(series: number, key: number): number {
  const h = Math.imul(series, 0x9e3779b1) ^ Math.imul(key, 0x85ebca6b);
  return h ^ (h >>> 15);
}
