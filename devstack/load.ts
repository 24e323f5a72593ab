import { performance } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import { Pool } from "undici";

export interface LoadTarget {
  /** What the results call it, e.g. "default/echo". */
  name: string;
  /** Path and query, appended to the base URL. */
  path: string;
  /** Its share of the requests relative to the other targets' weights; a positive integer. */
  weight: number;
}

export interface LoadOptions {
  /** An origin, http://host:port: the local stack's gateway or a real Kong proxy. */
  baseUrl: string;
  targets: LoadTarget[];
  /** Requests per second, sent on schedule whatever the responses do (open loop). */
  rate: number;
  durationMs: number;
  /** A request due while this many are in flight is not sent, and counted as dropped; default 200. */
  maxInFlight?: number;
  /** For a response's headers, then again for its body; default 60 s. */
  timeoutMs?: number;
}

export interface TargetStats {
  name: string;
  path: string;
  sent: number;
  completed: number;
  /** Answered below 400. */
  ok: number;
  /** Answered 400 or above, or not answered. */
  failed: number;
  /** Request sent to last body byte, over every answered request; NaN before the first. */
  p50Ms: number;
  p99Ms: number;
  /** The X-Kong-Upstream-Latency headers received: the upstream latency Kong measured, request by request. */
  kongUpstream: { count: number; sumMs: number };
}

export interface LoadSnapshot {
  elapsedMs: number;
  sent: number;
  completed: number;
  dropped: number;
  inFlight: number;
  lastError: string | undefined;
  targets: TargetStats[];
}

export interface LoadRun {
  snapshot(): LoadSnapshot;
  /** Resolves once every request is sent and settled, or after stop(). */
  done: Promise<LoadSnapshot>;
  /** Sends nothing more and aborts what is in flight. */
  stop(): void;
}

const HIGHEST_US = 3_600_000_000;

interface TargetState {
  target: LoadTarget;
  hist: hdr.Histogram;
  sent: number;
  completed: number;
  ok: number;
  failed: number;
  kongUpstream: { count: number; sumMs: number };
}

/**
 * A bounded open-loop load: rate × duration requests, each sent at its scheduled time, so a slow upstream does not
 * slow the sending (and hide its own latency) as a closed loop would. Latency is measured from the actual send, in
 * microseconds, into HDR histograms per target.
 */
export function startLoad(options: LoadOptions): LoadRun {
  if (options.targets.length === 0) throw new Error("no load targets");
  const maxInFlight = options.maxInFlight ?? 200;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const total = Math.max(1, Math.round((options.rate * options.durationMs) / 1000));
  const pool = new Pool(options.baseUrl, { connections: maxInFlight });
  const abort = new AbortController();
  const states: TargetState[] = options.targets.map((target) => ({
    target,
    hist: hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: HIGHEST_US,
      numberOfSignificantValueDigits: 3,
    }),
    sent: 0,
    completed: 0,
    ok: 0,
    failed: 0,
    kongUpstream: { count: 0, sumMs: 0 },
  }));
  // Request i goes to wheel[i % length]: a fixed interleaving in proportion to the weights.
  const wheel = options.targets.flatMap((t, i) => Array<number>(t.weight).fill(i));
  const start = performance.now();
  let next = 0;
  let dropped = 0;
  let inFlight = 0;
  let lastError: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  let resolveDone!: (s: LoadSnapshot) => void;
  const done = new Promise<LoadSnapshot>((resolve) => (resolveDone = resolve));

  const snapshot = (): LoadSnapshot => ({
    elapsedMs: performance.now() - start,
    sent: states.reduce((n, s) => n + s.sent, 0),
    completed: states.reduce((n, s) => n + s.completed, 0),
    dropped,
    inFlight,
    lastError,
    targets: states.map((s) => ({
      name: s.target.name,
      path: s.target.path,
      sent: s.sent,
      completed: s.completed,
      ok: s.ok,
      failed: s.failed,
      p50Ms: s.hist.totalCount ? s.hist.getValueAtPercentile(50) / 1000 : NaN,
      p99Ms: s.hist.totalCount ? s.hist.getValueAtPercentile(99) / 1000 : NaN,
      kongUpstream: { ...s.kongUpstream },
    })),
  });

  const maybeDone = () => {
    if (finished || inFlight > 0 || (!stopped && next < total)) return;
    finished = true;
    void (stopped ? pool.destroy() : pool.close()).finally(() => resolveDone(snapshot()));
  };

  const send = async (s: TargetState) => {
    inFlight++;
    s.sent++;
    const t0 = performance.now();
    try {
      const res = await pool.request({
        path: s.target.path,
        method: "GET",
        signal: abort.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      for await (const chunk of res.body) {
        void chunk;
        // read to the last byte: that is when the client has its response
      }
      s.hist.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round((performance.now() - t0) * 1000))));
      const kong = res.headers["x-kong-upstream-latency"];
      if (typeof kong === "string" && /^\d+$/.test(kong)) {
        s.kongUpstream.count++;
        s.kongUpstream.sumMs += Number(kong);
      }
      if (res.statusCode < 400) s.ok++;
      else {
        s.failed++;
        lastError = `HTTP ${res.statusCode} for ${s.target.path}`;
      }
    } catch (err) {
      s.failed++;
      lastError = `${s.target.path}: ${(err as Error).message}`;
    } finally {
      inFlight--;
      s.completed++;
      maybeDone();
    }
  };

  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - start) * options.rate) / 1000) + 1);
    while (!stopped && next < due) {
      const s = states[wheel[next % wheel.length]];
      next++;
      if (inFlight >= maxInFlight) dropped++;
      else void send(s);
    }
    if (stopped || next >= total) return maybeDone();
    timer = setTimeout(tick, Math.max(1, start + (next * 1000) / options.rate - performance.now()));
  };
  tick();

  return {
    snapshot,
    done,
    stop() {
      stopped = true;
      clearTimeout(timer);
      abort.abort();
      maybeDone();
    },
  };
}
