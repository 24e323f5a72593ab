import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/** The sidecar's own health, on the same /metrics. */
export class SelfMetrics {
  readonly registry = new Registry();
  readonly payloads = new Counter({
    name: "latency_exporter_payloads_total",
    help: "Ingest payloads by result: applied, duplicate (acknowledged, not counted again), rejected.",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: "latency_exporter_rejected_payloads_total",
    help: "Ingest requests refused, by reason.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly droppedEvents = new Counter({
    name: "latency_exporter_plugin_dropped_events_total",
    help: "Events the plugin reported it could not deliver, by reason: overflow (beyond max_services), rejected (in a refused payload).",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: "latency_exporter_events_total",
    help: "Latency observations merged, by Kong latency kind.",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  readonly seriesOverflow = new Counter({
    name: "latency_exporter_series_overflow_events_total",
    help: "Events not exported because their series would exceed --max-series.",
    registers: [this.registry],
  });
  readonly seriesRemoved = new Counter({
    name: "latency_exporter_series_removed_total",
    help: "Series removed after --series-idle-timeout without updates.",
    registers: [this.registry],
  });
  readonly series: Gauge;
  readonly sources: Gauge;

  constructor(seriesCount: () => number, sourceCount: () => number) {
    this.series = new Gauge({
      name: "latency_exporter_series",
      help: "Histogram series currently exported.",
      registers: [this.registry],
      collect() {
        this.set(seriesCount());
      },
    });
    this.sources = new Gauge({
      name: "latency_exporter_sources",
      help: "Plugin-server processes (sources) remembered for duplicate detection.",
      registers: [this.registry],
      collect() {
        this.set(sourceCount());
      },
    });
    for (const r of ["applied", "duplicate", "rejected"]) this.payloads.inc({ result: r }, 0);
    for (const r of ["overflow", "rejected"]) this.droppedEvents.inc({ reason: r }, 0);
    collectDefaultMetrics({ register: this.registry, prefix: "latency_exporter_" });
  }
}
