import { execFile } from "node:child_process";
import { existsSync } from "node:fs";

const WRK = "/usr/bin/wrk";

export interface WrkResult {
  /** Responses wrk completed (not those in flight when it stopped). */
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors and non-2xx/3xx responses. */
  errors: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };

function percentile(out: string, p: string): number {
  const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
  if (!m) throw new Error(`wrk printed no ${p}% latency:\n${out}`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

/** wrk's closed-loop load on one URL for `durationS` seconds with `connections` connections (one thread). */
export function runWrk(url: string, connections: number, durationS: number): Promise<WrkResult> {
  if (!existsSync(WRK)) throw new Error("wrk is not installed: apt-get install -y --no-install-recommends wrk");
  const args = ["-t1", `-c${connections}`, `-d${durationS}s`, "--latency", url];
  return new Promise((resolve, reject) => {
    execFile(WRK, args, { timeout: (durationS + 30) * 1000 }, (err, out) => {
      if (err) return reject(new Error(`wrk ${args.join(" ")}: ${err.message}\n${out}`));
      const requests = /^\s+(\d+) requests in/m.exec(out);
      const perSecond = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
      if (!requests || !perSecond) return reject(new Error(`unexpected wrk output:\n${out}`));
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      const errors = (socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0) + Number(non2xx?.[1] ?? 0);
      resolve({
        requests: Number(requests[1]),
        perSecond: Number(perSecond[1]),
        p50Ms: percentile(out, "50"),
        p99Ms: percentile(out, "99"),
        errors,
      });
    });
  });
}
