/**
 * Preloaded into a benchmarked process (NODE_OPTIONS="--expose-gc --require signal-probe.js") to look inside
 * it at moments the benchmark chooses, without periodic work disturbing the timings in between:
 * - SIGUSR2, when SIGNAL_PROBE_FILE is set: a full GC, then one JSON line of memory figures (heap used after
 *   the GC, RSS, external memory, and the size of each V8 heap space) appended to that file;
 * - SIGWINCH, when SIGNAL_PROBE_PROFILE is set: the first signal starts V8's CPU profiler, the next one stops
 *   it and writes the profile (Chrome's .cpuprofile JSON) to that path, then a "profile" line to the file.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { getHeapSpaceStatistics } from "node:v8";

const file = process.env.SIGNAL_PROBE_FILE;
const profilePath = process.env.SIGNAL_PROBE_PROFILE;
const gc = (globalThis as { gc?: () => void }).gc;

if (file) {
  process.on("SIGUSR2", () => {
    gc?.();
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
    appendFileSync(
      file,
      `${JSON.stringify({ t: Date.now(), kind: "heap", heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers, spaces })}\n`,
    );
  });
}

if (profilePath) {
  let session: Session | undefined;
  process.on("SIGWINCH", () => {
    if (!session) {
      session = new Session();
      session.connect();
      session.post("Profiler.enable", () =>
        session!.post("Profiler.setSamplingInterval", { interval: 200 }, () => session!.post("Profiler.start")),
      );
      return;
    }
    const s = session;
    session = undefined;
    s.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(profilePath, JSON.stringify(res.profile));
      s.disconnect();
      if (file) appendFileSync(file, `${JSON.stringify({ t: Date.now(), kind: "profile", ok: !err })}\n`);
    });
  });
}
