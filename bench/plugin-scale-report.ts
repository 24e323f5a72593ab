import { EVENTS_PER_SERVICE, FLEET_WORKERS } from "../devstack/kong/route-fleet";
import { FLUSH_MS, TARGET_SERVICES, type Delivery, type PluginScaleResult, type ScaleRow } from "./plugin-scale";
import { fmt, mb, median } from "./support/stats";

export const SECTION_TITLE = "## Plugin at scale";

const TARGET_RSS_MB = 150;
const TARGET_IDLE_MB = 90;
/** Half of the 76 ms of sidecar CPU a 1,000-service payload costs before the rework. */
const TARGET_SIDECAR_US_PER_SERVICE = 38;

const n = (x: number) => x.toLocaleString("en-US");
const met = (ok: boolean) => (ok ? "**met**" : "**not met**");
const cpuUsPerEvent = (r: ScaleRow) => (r.serverCpuSeconds * 1e6) / r.events;
/** Services that reached the sidecar (have a series): events the plugin dropped cost the sidecar nothing. */
const delivered = (d: Delivery) => Math.max(1, d.totals.kongServices.size);
const sidecarUsPerService = (d: Delivery) => (d.sidecarCpuSeconds * 1e6) / delivered(d);

function memoryRow(r: ScaleRow, floor: ScaleRow | undefined): string {
  const ours = r.variant === "ours";
  const vs = (x: number) => (ours && floor ? `${fmt(x)}x` : "");
  return [
    n(r.services),
    ours ? "upstream-latency" : "floor",
    mb(r.idleRss),
    mb(r.afterRss),
    ours && floor ? mb(r.afterRss - floor.afterRss) : "",
    mb(r.peakRss),
    fmt(r.eventsPerSecond, 0),
    vs(floor ? r.eventsPerSecond / floor.eventsPerSecond : NaN),
    `${fmt(r.p99Ms, 1)} / ${fmt(r.p99WarmMs, 1)}`,
    fmt(cpuUsPerEvent(r), 0),
    vs(floor ? cpuUsPerEvent(r) / cpuUsPerEvent(floor) : NaN),
    r.errors ? n(r.errors) : "0",
  ].join(" | ");
}

function deliveryRow(r: ScaleRow): string {
  const d = r.delivery!;
  const t = d.totals;
  const sent = r.events;
  return [
    n(r.services),
    n(d.payloads),
    fmt(d.bodyBytes / delivered(d), 0),
    fmt(sidecarUsPerService(d), 0),
    `${n(t.count)} / ${n(sent)}${t.count === sent ? "" : " **short**"}`,
    n(t.kongServices.size),
    `${n(t.dropped.overflow ?? 0)} / ${n(t.dropped.rejected ?? 0)}`,
    n(t.seriesOverflow),
  ].join(" | ");
}

function targets(rows: ScaleRow[]): string {
  const runs = (v: string) => rows.filter((r) => r.services === TARGET_SERVICES && r.variant === v);
  const ours = runs("ours");
  const floor = runs("floor");
  if (!ours.length || !floor.length || ours.some((r) => !r.delivery))
    return `No run at ${n(TARGET_SERVICES)} services: targets not checked.`;
  const of = (rs: ScaleRow[], f: (r: ScaleRow) => number) => median(rs.map(f));
  const spread = (rs: ScaleRow[]) => (rs.length > 1 ? ` (runs ${rs.map((r) => mb(r.afterRss)).join(", ")})` : "");
  const rss = of(ours, (r) => r.afterRss);
  const idle = of(ours, (r) => r.idleRss);
  const count = ours.reduce((a, r) => a + r.delivery!.totals.count, 0);
  const sent = ours.reduce((a, r) => a + r.events, 0);
  const dropped = ours.reduce(
    (a, r) => a + (r.delivery!.totals.dropped.overflow ?? 0) + (r.delivery!.totals.dropped.rejected ?? 0),
    0,
  );
  const sidecarUs = of(ours, (r) => sidecarUsPerService(r.delivery!));
  const p99 = (rs: ScaleRow[]) => of(rs, (r) => r.p99WarmMs);
  return [
    `Targets at ${n(TARGET_SERVICES)} active services, medians of ${ours.length} runs:`,
    `plugin-server RSS at most ${TARGET_RSS_MB} MB: ${mb(rss)} MB${spread(ours)}, ${met(rss <= TARGET_RSS_MB * 2 ** 20)}, the floor plugin's ${mb(of(floor, (r) => r.afterRss))} MB${spread(floor)};`,
    `idle at most ${TARGET_IDLE_MB} MB: ${mb(idle)} MB, ${met(idle <= TARGET_IDLE_MB * 2 ** 20)};`,
    `no event dropped: ${n(count)} of ${n(sent)} counted, ${n(dropped)} reported dropped, ${met(count === sent && dropped === 0)};`,
    `p99 event time ${fmt(p99(ours), 1)} ms against the floor's ${fmt(p99(floor), 1)} ms (after a service's first event);`,
    `sidecar CPU per service at most ${TARGET_SIDECAR_US_PER_SERVICE} µs: ${fmt(sidecarUs, 0)} µs, ${met(sidecarUs <= TARGET_SIDECAR_US_PER_SERVICE)}.`,
  ].join(" ");
}

/**
 * What route-scoped instances cost by themselves: the floor's RSS above its idle, and per instance between the
 * two largest sizes (a difference, so that what any traffic costs, JIT and buffers, cancels out).
 */
function instancesNote(rows: ScaleRow[]): string {
  const floors = rows.filter((r) => r.variant === "floor").sort((a, b) => a.services - b.services);
  const [a, b] = floors.slice(-2);
  if (!a || !b) return "";
  const above = floors.map((r) => `${mb(r.afterRss - r.idleRss)} MB with ${n(r.services)}`).join(", ");
  const each = (b.afterRss - b.idleRss - (a.afterRss - a.idleRss)) / (b.services - a.services);
  return `The instances themselves: the floor plugin's RSS above its idle is ${above} instances, about ${fmt(each / 1024, 1)} KiB more per instance from ${n(a.services)} to ${n(b.services)}; any plugin pays this, so the RSS targets include it.`;
}

export function renderPluginScale(r: PluginScaleResult): string {
  return [
    SECTION_TITLE,
    "",
    `The real \`kong-js-pluginserver\` with one route-scoped plugin instance per Kong Service (a route each, Services named and tagged as Kong Ingress Controller makes them), ${EVENTS_PER_SERVICE} log events per Service with ${EVENTS_PER_SERVICE} distinct upstream latencies, 16 in flight over ${FLEET_WORKERS} emulated nginx workers (a route's events on one worker: one instance per route). upstream-latency runs with its default configuration (flush_interval ${FLUSH_MS / 1000} s, the default max_services) and ships to a real latency-exporter (with --max-series raised to the number of services, so that the sidecar's own bound is not measured) through a counting proxy; the floor plugin makes one \`kong.nginx.get_ctx\` per event. Variants alternate which runs first at each size. "Idle" is RSS 1 s after the server listens, plugin loaded, before any instance; "after" is ${fmt((1.5 * FLUSH_MS) / 1000, 1)} s after the last event, once everything is shipped; peak is VmHWM. Event time is each event's round trip as Kong's timer sees it: over all events (a Service's first one starts its instance) / over the later ones. At 100 services a run is 300 events, a fraction of a second: its rates are noise.`,
    "",
    "| services | plugin | idle RSS (MB) | RSS after (MB) | above the floor's (MB) | peak RSS (MB) | events/s | vs floor | p99 event, all / later (ms) | plugin-server CPU (µs/event) | vs floor | events with an error |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    // Rows come in pairs, one run of each variant at a size: the floor of a run is its pair's.
    ...r.rows.map((x, i) => `| ${memoryRow(x, x.variant === "ours" ? r.rows[i ^ 1] : undefined)} |`),
    "",
    'What the sidecar received from upstream-latency and counted. Payload bytes are request bodies over the run and sidecar CPU all of its CPU during the run, each per Service delivered (one with a series; a Service\'s events come within ~0.05 s, nearly always in one payload); "counted" sums `kong_upstream_latency_ms_count` over every series.',
    "",
    "| services | payloads | payload bytes per service delivered | sidecar CPU per service delivered (µs) | counted / sent | series | dropped by the plugin: overflow / rejected | beyond the sidecar's --max-series |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...r.rows.filter((x) => x.delivery).map((x) => `| ${deliveryRow(x)} |`),
    "",
    targets(r.rows),
    "",
    instancesNote(r.rows),
    "",
  ].join("\n");
}
