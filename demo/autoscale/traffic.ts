import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { rng } from "../../devstack/random";

/** Client-side latency per second of the run, for the plot next to what the HPA read. */
export interface ClientSecond {
  tS: number;
  count: number;
  meanMs: number;
  failed: number;
}

export class ClientStats {
  private readonly seconds = new Map<number, { count: number; sumMs: number; failed: number }>();
  /** Arrivals not sent because the backlog bound was reached. */
  skipped = 0;

  constructor(private readonly t0: number) {}

  record(endMs: number, latencyMs: number, ok: boolean): void {
    const s = Math.floor((endMs - this.t0) / 1000);
    const b = this.seconds.get(s) ?? { count: 0, sumMs: 0, failed: 0 };
    if (ok) {
      b.count++;
      b.sumMs += latencyMs;
    } else b.failed++;
    this.seconds.set(s, b);
  }

  series(): ClientSecond[] {
    return [...this.seconds.entries()]
      .sort(([a], [b]) => a - b)
      .map(([tS, b]) => ({ tS, count: b.count, failed: b.failed, meanMs: b.count ? b.sumMs / b.count : NaN }));
  }

  totals(): { ok: number; failed: number; skipped: number } {
    let ok = 0;
    let failed = 0;
    for (const b of this.seconds.values()) {
      ok += b.count;
      failed += b.failed;
    }
    return { ok, failed, skipped: this.skipped };
  }
}

const REQUEST_TIMEOUT_MS = 30_000;

async function timedGet(pool: Pool, path: string, stats: ClientStats, signal: AbortSignal): Promise<void> {
  const t0 = performance.now();
  let ok = false;
  try {
    const res = await pool.request({
      path,
      method: "GET",
      signal,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    await res.body.dump();
    ok = res.statusCode < 400;
  } catch {
    // counted as failed below
  }
  if (!signal.aborted) stats.record(Date.now(), performance.now() - t0, ok);
}

/**
 * The guide's traffic: `while curl ".../echo/shell?cmd=sleep%200.1"; do sleep 1; done`, one request at a time
 * with a pause between them. `delayAt(now)` gives each request's upstream latency (`delay_ms`), or undefined to stop.
 */
export async function runSequentialLoop(o: {
  baseUrl: string;
  path: string;
  pauseMs: number;
  delayAt(nowMs: number): number | undefined;
  stats: ClientStats;
  signal: AbortSignal;
}): Promise<void> {
  const pool = new Pool(o.baseUrl, { connections: 1 });
  try {
    for (let delay = o.delayAt(Date.now()); delay !== undefined && !o.signal.aborted; delay = o.delayAt(Date.now())) {
      await timedGet(pool, `${o.path}?delay_ms=${delay}`, o.stats, o.signal);
      await sleep(o.pauseMs, undefined, { signal: o.signal }).catch(() => undefined);
    }
  } finally {
    await pool.destroy();
  }
}

/**
 * Open-loop Poisson arrivals at `rate` until `untilMs` (epoch): many independent clients, so requests bunch up and
 * queue at a busy replica. A request due while `maxInFlight` are outstanding is not sent (a bound on the backlog).
 */
export async function runPoissonLoad(o: {
  baseUrl: string;
  path: string;
  rate: number;
  untilMs: number;
  seed: number;
  maxInFlight: number;
  stats: ClientStats;
  signal: AbortSignal;
}): Promise<void> {
  const pool = new Pool(o.baseUrl, { connections: o.maxInFlight });
  const u = rng(o.seed);
  const inFlight = new Set<Promise<void>>();
  try {
    let due = Date.now();
    while (!o.signal.aborted) {
      due += (-Math.log(1 - u()) * 1000) / o.rate;
      if (due >= o.untilMs) break;
      if (due > Date.now()) await sleep(due - Date.now(), undefined, { signal: o.signal }).catch(() => undefined);
      if (o.signal.aborted) break;
      if (inFlight.size >= o.maxInFlight) {
        o.stats.skipped++;
        continue;
      }
      const p = timedGet(pool, o.path, o.stats, o.signal);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await Promise.all([...inFlight]);
  } finally {
    await pool.destroy();
  }
}
