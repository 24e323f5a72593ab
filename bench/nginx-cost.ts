import { readFileSync } from "node:fs";
import { LUA_METRICS_PLUGIN } from "../devstack/nginx/gateway-config";
import { nginxMissing } from "../devstack/nginx/nginx-process";
import { startProfile, stopProfile } from "../devstack/process/child-probe";
import { startLoad, type LoadSnapshot } from "../devstack/load";
import { PLUGIN_NAME } from "../plugin/schema";
import { benchConfig, startNginxBenchStack, type Stretch } from "./support/nginx-stack";
import { summarizeProfile, type ProfileEntry } from "./support/profile-summary";
import { progress } from "./support/progress";
import { runWrk, type WrkResult } from "./support/wrk";

/** What upstream-latency costs the nginx gateway against no plugin and in-process Lua metrics, in one run. */

export const VARIANTS = [
  { key: "none", label: "no plugin", plugins: [] },
  { key: "lua", label: "in-process Lua metrics (global)", plugins: [{ name: LUA_METRICS_PLUGIN, scope: "global" }] },
  { key: "route", label: "upstream-latency on the route", plugins: [{ name: PLUGIN_NAME, scope: "route" }] },
  { key: "global", label: "upstream-latency global", plugins: [{ name: PLUGIN_NAME, scope: "global" }] },
] as const;

export type VariantKey = (typeof VARIANTS)[number]["key"];

export interface Saturation extends Stretch {
  wrk: WrkResult;
}

export interface FixedRate extends Stretch {
  p50Ms: number;
  p99Ms: number;
  /** Requests the load generator could not send on time (more than its bound in flight). */
  dropped: number;
}

export interface LossRound {
  arm: "stock" | "ours";
  proxied: number;
  lost: number;
  connectEagain: number;
  timersRefused: number;
  runningTimerAlerts: number;
}

export interface NginxCostResult {
  workers: number;
  saturationConnections: number;
  saturationSeconds: number;
  saturation: Record<VariantKey, Saturation>;
  /** The rate is half the no-plugin saturation, or half the lowest saturation when a plugin variant's is lower. */
  fixedRate: { rate: number; halfOfNoPlugin: boolean; seconds: number; runs: Record<VariantKey, FixedRate> };
  profile: { totalMs: number; entries: ProfileEntry[]; ours: number };
  loss: { workers: number; connections: number; seconds: number; somaxconn: number; rounds: LossRound[] };
}

const WORKERS = 1;
const LOSS_WORKERS = 2;
const CONNECTIONS = 64;
const LOSS_CONNECTIONS = 256;
/** Files of ours in the plugin server: the plugin and the wire format it encodes. */
const OURS = /\((dist\/lib\/)?(plugin|wire)\//;

export async function runNginxCost(opts: { quick: boolean }): Promise<NginxCostResult> {
  const missing = nginxMissing();
  if (missing) throw new Error(`the nginx cost benchmark needs it: ${missing}`);
  const seconds = opts.quick ? 5 : 10;
  const fixedSeconds = opts.quick ? 5 : 10;
  const lossSeconds = opts.quick ? 4 : 8;
  const lossRounds = opts.quick ? 2 : 4;
  const bar = progress("nginx gateway cost", VARIANTS.length * 2 + 1 + lossRounds * 2);
  let step = 0;
  const tick = () => bar.update(++step);

  const stack = await startNginxBenchStack({ workers: WORKERS, config: benchConfig([]) });
  const saturation = {} as Record<VariantKey, Saturation>;
  const runs = {} as Record<VariantKey, FixedRate>;
  let profile: NginxCostResult["profile"];
  let rate = 0;
  try {
    const url = `${stack.gateway.url}/echo/bench`;
    for (const v of VARIANTS) {
      await stack.gateway.configure(benchConfig([...v.plugins]));
      let wrk!: WrkResult;
      const stretch = await stack.measure(async () => void (wrk = await runWrk(url, CONNECTIONS, seconds)));
      saturation[v.key] = { ...stretch, wrk };
      tick();
    }
    // A run of its own: the profiler's sampling costs CPU, which must not land in the figures above.
    await stack.gateway.configure(benchConfig([{ name: PLUGIN_NAME, scope: "route" }]));
    await stack.measure(async () => {
      startProfile(stack.server.pid!);
      await runWrk(url, CONNECTIONS, seconds);
      await stopProfile(stack.server.pid!, stack.probeFile);
    });
    tick();
    const summary = summarizeProfile(stack.profilePath, Infinity);
    profile = {
      totalMs: summary.totalMs,
      entries: summary.entries.slice(0, 12),
      ours: summary.entries.filter((e) => OURS.test(e.name)).reduce((s, e) => s + e.share, 0),
    };

    // Half the no-plugin saturation, unless a plugin variant saturates below that: then half of the lowest.
    rate = Math.round(Math.min(...VARIANTS.map((v) => saturation[v.key].wrk.perSecond)) / 2);
    for (const v of VARIANTS) {
      await stack.gateway.configure(benchConfig([...v.plugins]));
      let snap!: LoadSnapshot;
      const stretch = await stack.measure(async () => {
        const targets = [{ name: "echo", path: "/echo/bench", weight: 1 }];
        snap = await startLoad({
          baseUrl: stack.gateway.url,
          targets,
          rate,
          durationMs: fixedSeconds * 1000,
          maxInFlight: 512,
        }).done;
      });
      const t = snap.targets[0];
      runs[v.key] = { ...stretch, p50Ms: t.p50Ms, p99Ms: t.p99Ms, dropped: snap.dropped };
      tick();
    }
  } finally {
    await stack.stop();
  }

  // Stock (Node's default backlog, 511) and ours, interleaved, each round on fresh processes.
  const rounds: LossRound[] = [];
  for (let r = 0; r < lossRounds; r++) {
    for (const arm of r % 2 === 0 ? (["stock", "ours"] as const) : (["ours", "stock"] as const)) {
      const s = await startNginxBenchStack({
        workers: LOSS_WORKERS,
        config: benchConfig([{ name: PLUGIN_NAME, scope: "route" }]),
        backlogEnv: arm === "stock" ? "511" : undefined,
      });
      try {
        const stretch = await s.measure(
          async () => void (await runWrk(`${s.gateway.url}/echo/bench`, LOSS_CONNECTIONS, lossSeconds)),
        );
        rounds.push({ arm, ...stretch });
      } finally {
        await s.stop();
      }
      tick();
    }
  }
  bar.stop();
  const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8"));
  return {
    workers: WORKERS,
    saturationConnections: CONNECTIONS,
    saturationSeconds: seconds,
    saturation,
    fixedRate: {
      rate,
      halfOfNoPlugin: rate === Math.round(saturation.none.wrk.perSecond / 2),
      seconds: fixedSeconds,
      runs,
    },
    profile,
    loss: { workers: LOSS_WORKERS, connections: LOSS_CONNECTIONS, seconds: lossSeconds, somaxconn, rounds },
  };
}
