/**
 * Preloaded into a benchmarked process (NODE_OPTIONS="--expose-gc --require heap-probe.js") to report its
 * heap after a full GC, which only the process itself can see. Appends one JSON line per sample to the
 * file named by HEAP_PROBE_FILE.
 */
import { appendFileSync } from "node:fs";

const file = process.env.HEAP_PROBE_FILE;
const everyMs = Number(process.env.HEAP_PROBE_EVERY_MS ?? 1000);
const gc = (globalThis as { gc?: () => void }).gc;

if (file) {
  setInterval(() => {
    gc?.();
    const m = process.memoryUsage();
    appendFileSync(
      file,
      `${JSON.stringify({ t: Date.now(), heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers })}\n`,
    );
  }, everyMs).unref();
}
