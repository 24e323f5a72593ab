/**
 * Which payloads were applied, per source. The plugin sends one payload at a time and retries it with the
 * same seq until acknowledged, so a seq at or below the last applied one is a retry of something counted.
 * A restarted sidecar forgets this along with its counters, which Prometheus sees as an ordinary reset.
 */
export class Dedup {
  private readonly last = new Map<string, number>();

  constructor(private readonly maxSources = 10_000) {}

  isDuplicate(source: string, seq: number): boolean {
    const last = this.last.get(source);
    return last !== undefined && seq <= last;
  }

  commit(source: string, seq: number): void {
    // Re-inserting keeps the map in least-recently-used order, so the oldest source is evicted first.
    this.last.delete(source);
    this.last.set(source, seq);
    if (this.last.size > this.maxSources) this.last.delete(this.last.keys().next().value!);
  }

  get sources(): number {
    return this.last.size;
  }
}
