import { EVENTS_PER_SERVICE, FLEET_WORKERS } from "../devstack/kong/route-fleet";
import { FLUSH_MS, type Delivery, type PluginScaleResult, type ScaleRow } from "./plugin-scale";
import { fmt, mb } from "./support/stats";

export const SECTION_TITLE = "## Plugin at scale";

/** The targets, at 10,000 active services. */
const TARGET_SERVICES = 10_000;
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
  const at = (v: string) => rows.find((r) => r.services === TARGET_SERVICES && r.variant === v);
  const ours = at("ours");
  const floor = at("floor");
  if (!ours?.delivery || !floor) return `No run at ${n(TARGET_SERVICES)} services: targets not checked.`;
  const t = ours.delivery.totals;
  const dropped = (t.dropped.overflow ?? 0) + (t.dropped.rejected ?? 0);
  const sidecarUs = sidecarUsPerService(ours.delivery);
  return [
    `Targets at ${n(TARGET_SERVICES)} active services:`,
    `plugin-server RSS at most ${TARGET_RSS_MB} MB: ${mb(ours.afterRss)} MB, ${met(ours.afterRss <= TARGET_RSS_MB * 2 ** 20)};`,
    `idle at most ${TARGET_IDLE_MB} MB: ${mb(ours.idleRss)} MB, ${met(ours.idleRss <= TARGET_IDLE_MB * 2 ** 20)};`,
    `no event dropped: ${n(t.count)} of ${n(ours.events)} counted, ${n(dropped)} reported dropped, ${met(t.count === ours.events && dropped === 0)};`,
    `p99 event time ${fmt(ours.p99WarmMs, 1)} ms against the floor's ${fmt(floor.p99WarmMs, 1)} ms (after a service's first event);`,
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
  const floorAt = (s: number) => r.rows.find((x) => x.services === s && x.variant === "floor");
  return [
    SECTION_TITLE,
    "",
    `The real \`kong-js-pluginserver\` with one route-scoped plugin instance per Kong Service (a route each, Services named and tagged as Kong Ingress Controller makes them), ${EVENTS_PER_SERVICE} log events per Service with ${EVENTS_PER_SERVICE} distinct upstream latencies, 16 in flight over ${FLEET_WORKERS} emulated nginx workers (a route's events on one worker: one instance per route). upstream-latency runs with its default configuration (flush_interval ${FLUSH_MS / 1000} s, the default max_services) and ships to a real latency-exporter (with --max-series raised to the number of services, so that the sidecar's own bound is not measured) through a counting proxy; the floor plugin makes one \`kong.nginx.get_ctx\` per event. Variants alternate which runs first at each size. "Idle" is RSS 1 s after the server listens, plugin loaded, before any instance; "after" is ${fmt((1.5 * FLUSH_MS) / 1000, 1)} s after the last event, once everything is shipped; peak is VmHWM. Event time is each event's round trip as Kong's timer sees it: over all events (a Service's first one starts its instance) / over the later ones. At 100 services a run is 300 events, a fraction of a second: its rates are noise.`,
    "",
    "| services | plugin | idle RSS (MB) | RSS after (MB) | above the floor's (MB) | peak RSS (MB) | events/s | vs floor | p99 event, all / later (ms) | plugin-server CPU (µs/event) | vs floor | events with an error |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...r.rows.map((x) => `| ${memoryRow(x, x.variant === "ours" ? floorAt(x.services) : undefined)} |`),
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
