import { VARIANTS, type NginxCostResult, type VariantKey } from "./nginx-cost";
import { fmt } from "./support/stats";

const n = (x: number) => Math.round(x).toLocaleString("en-US");
const total = (c: { gateway: number; pluginServer: number; exporter: number }) =>
  c.gateway + c.pluginServer + c.exporter;

/** CPU per 1,000 requests/s, in cores, from microseconds per request. */
const coresPerKrps = (us: number) => us / 1000;

export const SECTION_TITLE = "## What the plugin costs a Kong-like gateway (nginx + LuaJIT)";

export function renderNginxCost(r: NginxCostResult): string {
  const sat = r.saturation;
  const label = (k: VariantKey) => VARIANTS.find((v) => v.key === k)!.label;
  const satRows = VARIANTS.map(({ key }) => {
    const s = sat[key];
    return `| ${label(key)} | ${n(s.wrk.perSecond)} | ${fmt(s.wrk.perSecond / sat.none.wrk.perSecond)}x | ${fmt(s.wrk.p50Ms, 1)} | ${fmt(s.wrk.p99Ms, 1)} | ${fmt(s.cpuUs.gateway, 1)} | ${fmt(s.cpuUs.pluginServer, 1)} | ${fmt(s.cpuUs.exporter, 1)} | ${key === "none" || key === "lua" ? "-" : `${s.lost} of ${n(s.proxied)}`} |`;
  });
  const fixed = r.fixedRate.runs;
  const fixedRows = VARIANTS.map(({ key }) => {
    const f = fixed[key];
    const added = total(f.cpuUs) - total(fixed.none.cpuUs);
    return `| ${label(key)} | ${fmt(f.p50Ms, 1)} | ${fmt(f.p99Ms, 1)} | ${key === "none" ? "-" : `${fmt(f.p99Ms - fixed.none.p99Ms, 1)}`} | ${fmt(f.cpuUs.gateway, 1)} | ${fmt(f.cpuUs.pluginServer, 1)} | ${fmt(f.cpuUs.exporter, 1)} | ${key === "none" ? "-" : fmt(added, 1)} | ${key === "none" || key === "lua" ? "-" : `${f.lost} of ${n(f.proxied)}`} |`;
  });
  const ceiling = (k: VariantKey) => sat[k].pluginServerPerCpuSecond;
  const addedRoute = total(fixed.route.cpuUs) - total(fixed.none.cpuUs);
  const addedLua = total(fixed.lua.cpuUs) - total(fixed.none.cpuUs);
  const lossRows = r.loss.rounds.map(
    (x, i) =>
      `| ${x.arm === "stock" ? "stock: 511 (Node's default)" : `ours: ${r.loss.somaxconn} (the kernel's cap)`} | ${i + 1} | ${n(x.proxied)} | ${x.lost} (${fmt((x.lost / Math.max(1, x.proxied)) * 100, 2)}%) | ${x.connectEagain} | ${x.timersRefused} | ${x.runningTimerAlerts} |`,
  );
  const lostBy = (arm: string) => r.loss.rounds.filter((x) => x.arm === arm).reduce((s, x) => s + x.lost, 0);
  const proxiedBy = (arm: string) => r.loss.rounds.filter((x) => x.arm === arm).reduce((s, x) => s + x.proxied, 0);
  return [
    SECTION_TITLE,
    "",
    `The gateway of \`devstack/nginx\` (nginx 1.22 with lua-nginx-module and OpenResty's LuaJIT, doing per request what Kong does for an external plugin: the \`kong.log.serialize()\` snapshot, a 0-delay timer, lua-MessagePack RPCs over Kong's keepalive pool) in front of an nginx echo upstream that answers at once, with the real \`kong-js-pluginserver\` running upstream-latency and the real latency-exporter; every process on the same 2 cores as the load generator. ${r.workers} nginx worker; one configuration change between variants, so every variant runs on the same processes. CPU per request is each process's CPU time (from /proc) over the stretch, drain included, divided by the requests proxied. An event is lost when the gateway proxied a request the exporter's \`_count\` does not have.`,
    "",
    `### At saturation (wrk, ${r.saturationConnections} connections, ${r.saturationSeconds} s per variant)`,
    "",
    "| gateway | requests/s | vs no plugin | p50 (ms) | p99 (ms) | gateway CPU (µs/req) | plugin server (µs/req) | exporter (µs/req) | events lost |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...satRows,
    "",
    `The plugin server's ceiling on one core (requests proxied per second of its CPU): ${n(ceiling("route"))} events/s with the plugin on a route (one PDK call per event), ${n(ceiling("global"))} with it global (two). One plugin server is one Node thread for all of Kong's workers.`,
    "",
    `### At a fixed rate of ${n(r.fixedRate.rate)} requests/s (open loop, ${r.fixedRate.seconds} s per variant)`,
    "",
    r.fixedRate.halfOfNoPlugin
      ? "The rate is half the no-plugin saturation above."
      : "The rate is half the lowest saturation above: half the no-plugin saturation would exceed what the gateway sustains with the external plugin.",
    "",
    "| gateway | p50 (ms) | p99 (ms) | added p99 (ms) | gateway CPU (µs/req) | plugin server (µs/req) | exporter (µs/req) | added CPU, all processes (µs/req) | events lost |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...fixedRows,
    "",
    `Requests the load generator could not send on time (over 512 in flight): ${VARIANTS.reduce((s, v) => s + fixed[v.key].dropped, 0)}.`,
    "",
    `Rule of thumb on this machine: upstream-latency (on a route) costs about ${fmt(coresPerKrps(addedRoute), 2)} CPU cores per 1,000 requests/s, gateway and plugin server together; the in-process Lua metrics plugin ${fmt(coresPerKrps(addedLua), 3)}.`,
    "",
    `### Events lost at saturation: the plugin server's listen backlog, stock and ours`,
    "",
    `${r.loss.workers} nginx workers (Kong's \`auto\` on 2 cores), upstream-latency on the route, wrk with ${r.loss.connections} connections for ${r.loss.seconds} s; fresh processes every round, arms interleaved. "connect() EAGAIN" counts nginx's error-log lines \`connect() to unix:... failed (11: Resource temporarily unavailable)\`: one per event lost that way.`,
    "",
    "| listen backlog | round | proxied | lost | connect() EAGAIN | timers refused | running-timer alerts |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...lossRows,
    "",
    `In all: stock lost ${n(lostBy("stock"))} of ${n(proxiedBy("stock"))} events, ours ${n(lostBy("ours"))} of ${n(proxiedBy("ours"))}.`,
    "",
    `### Where the plugin server's CPU goes (V8 profile of a separate saturation run with the plugin on a route)`,
    "",
    `Our code (the plugin and the wire format: dist/lib/plugin, dist/lib/wire) takes ${fmt(r.profile.ours * 100, 1)}% of the plugin server's CPU (target: under 5%); the rest is kong-pdk's RPC and event machinery, msgpack, sockets and GC. Top functions by self time (${n(r.profile.totalMs)} ms profiled):`,
    "",
    "| function | self (ms) | share |",
    "|---|---:|---:|",
    ...r.profile.entries.map(
      (e) => `| ${e.name.replace(/\|/g, "\\|")} | ${fmt(e.selfMs, 0)} | ${fmt(e.share * 100, 1)}% |`,
    ),
    "",
  ].join("\n");
}
