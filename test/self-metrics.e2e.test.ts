import { strict as assert } from "node:assert";
import { request } from "undici";
import { fetchText, startExporter } from "../devstack/process/exporter-process";
import { parseSamples, value } from "../devstack/prometheus/prom-text";
import { INGEST_PATH } from "../wire/payload";
import { makePayload, service } from "./support/payloads";
import { exporterArgs } from "./support/plugin-events";

// README "The sidecar's own metrics": every family it lists, with its label, on the real sidecar's /metrics.
describe("the sidecar's own metrics (real process)", function () {
  this.timeout(30_000);

  it("counts payloads, refusals, the plugin's dropped events and events per kind; gauges series and sources", async () => {
    const exp = await startExporter(exporterArgs(0));
    try {
      const post = async (body: string) =>
        (
          await request(`${exp.ingestUrl}${INGEST_PATH}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          })
        ).body.text();
      const payload = makePayload([
        [service("a", "default.a.80"), "upstream", 5],
        [service("a", "default.a.80"), "request", 9],
      ]);
      await post(JSON.stringify({ ...payload, dropped: { overflow: 2, rejected: 3 } }));
      await post("{");
      const text = await fetchText(`${exp.metricsUrl}/metrics`);
      const s = parseSamples(text);
      assert.equal(value(s, "latency_exporter_payloads_total", { result: "applied" }), 1);
      assert.equal(value(s, "latency_exporter_plugin_dropped_events_total", { reason: "overflow" }), 2);
      assert.equal(value(s, "latency_exporter_plugin_dropped_events_total", { reason: "rejected" }), 3);
      assert.equal(value(s, "latency_exporter_events_total", { kind: "upstream" }), 1);
      assert.equal(value(s, "latency_exporter_events_total", { kind: "request" }), 1);
      assert.equal(value(s, "latency_exporter_series"), 2);
      assert.equal(value(s, "latency_exporter_sources"), 1);
      assert.ok(
        s.some((x) => x.name === "latency_exporter_rejected_payloads_total" && x.value === 1 && x.labels.reason),
      );
      for (const family of [
        "latency_exporter_series_overflow_events_total",
        "latency_exporter_series_removed_total",
        "latency_exporter_process_cpu_user_seconds_total",
      ])
        assert.match(text, new RegExp(`^# TYPE ${family} `, "m"), family);
    } finally {
      await exp.stop();
    }
  });
});
