/**
 * Preloaded into the real latency-exporter (NODE_OPTIONS="--require sidecar-timer.js", with SIDECAR_TIMER_FILE
 * set) to time the phases of its work from inside, without changing it: the built modules' exports are wrapped
 * before the CLI loads them (the compiled CommonJS looks them up on the module object at every call). One JSON
 * line per request is appended to the file:
 * - `{"kind":"metrics", totalMs, histMs, pctMs, gcMs}` for GET /metrics: the whole request until its response
 *   is handed to the socket, the histogram and percentile families' rendering (the sum over their series, each
 *   timed: a few ms of the timer's own at 10k series), and GC pauses meanwhile;
 * - `{"kind":"ingest", ingestMs, validateMs, applyMs, gcMs}` for an ingest body: the synchronous decision
 *   (JSON.parse, validation, apply, self metrics), validation, and the merge into the store.
 */
import { appendFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { performance, PerformanceObserver } from "node:perf_hooks";

const file = process.env.SIDECAR_TIMER_FILE;

type Fn = (...args: unknown[]) => unknown;

if (file) {
  // Loaded by path at run time: the wrapped objects must be the very modules the sidecar's CLI requires.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const lib = join(__dirname, "..", "..");
  const exposition = require(join(lib, "sidecar", "exposition.js")) as Record<string, Fn>;
  const handlers = require(join(lib, "sidecar", "handlers.js")) as Record<string, Fn>;
  const ingest = require(join(lib, "sidecar", "ingest.js")) as Record<string, Fn>;
  const validate = require(join(lib, "wire", "validate.js")) as Record<string, Fn>;
  const store = require(join(lib, "sidecar", "store.js")) as { Store: { prototype: Record<string, Fn> } };
  /* eslint-enable @typescript-eslint/no-require-imports */

  // GC entries reach the observer a little after the pause: keep the recent ones, and sum those that
  // started within a request once it is over.
  const pauses: { start: number; ms: number }[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ start: e.startTime, ms: e.duration });
    if (pauses.length > 10_000) pauses.splice(0, pauses.length - 1_000);
  }).observe({ entryTypes: ["gc"] });
  const gcWithin = (from: number, to: number) =>
    pauses.filter((p) => p.start >= from && p.start < to).reduce((a, p) => a + p.ms, 0);
  const later = (fn: () => void) => setTimeout(fn, 50).unref();

  const acc: Record<string, number> = {};
  const timed = (target: Record<string, Fn>, name: string, key: string) => {
    const orig = target[name];
    target[name] = function (this: unknown, ...args: unknown[]) {
      const t = performance.now();
      try {
        return orig.apply(this, args);
      } finally {
        acc[key] = (acc[key] ?? 0) + performance.now() - t;
      }
    };
  };
  timed(exposition, "renderHistogramSeries", "histMs");
  timed(exposition, "renderPercentileSeries", "pctMs");
  timed(validate, "validatePayload", "validateMs");
  timed(store.Store.prototype, "apply", "applyMs");

  const origIngest = ingest.ingest;
  ingest.ingest = (...args: unknown[]) => {
    for (const k of Object.keys(acc)) delete acc[k];
    const t = performance.now();
    try {
      return origIngest(...args);
    } finally {
      const end = performance.now();
      const line = { kind: "ingest", ingestMs: end - t, validateMs: acc.validateMs ?? 0, applyMs: acc.applyMs ?? 0 };
      later(() => appendFileSync(file, `${JSON.stringify({ ...line, gcMs: gcWithin(t, end) })}\n`));
    }
  };

  const origMetrics = handlers.metricsHandler;
  handlers.metricsHandler = (ctx: unknown) => {
    const handle = origMetrics(ctx) as (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    return (req: IncomingMessage, res: ServerResponse) => {
      if (!req.url?.startsWith("/metrics")) return handle(req, res);
      for (const k of Object.keys(acc)) delete acc[k];
      const t = performance.now();
      res.once("finish", () => {
        const end = performance.now();
        const line = { kind: "metrics", totalMs: end - t, histMs: acc.histMs ?? 0, pctMs: acc.pctMs ?? 0 };
        later(() => appendFileSync(file, `${JSON.stringify({ ...line, gcMs: gcWithin(t, end) })}\n`));
      });
      return handle(req, res);
    };
  };
}
