import { strict as assert } from "node:assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { INGEST_PATH } from "../wire/payload";
import { fetchText, startExporter } from "../devstack/process/exporter-process";
import { REPO_ROOT } from "../devstack/kong";
import { makePayload, service } from "./support/payloads";
import { parseSamples, value } from "../devstack/prometheus/prom-text";
import { waitFor } from "../devstack/process/wait";

describe("floods and bounds", function () {
  this.timeout(60_000);

  it("bounds series, counts the overflow, and removes idle series", async () => {
    const exp = await startExporter([
      "--metrics-address",
      "127.0.0.1:0",
      "--ingest-address",
      "127.0.0.1:0",
      "--max-series",
      "50",
      "--series-idle-timeout",
      "10s",
    ]);
    try {
      // 200 distinct Kong Services, 3 events each, in 4 payloads.
      for (let batch = 0; batch < 4; batch++) {
        const obs = Array.from({ length: 150 }, (_, i): [ReturnType<typeof service>, "upstream", number] => {
          const n = batch * 50 + (i % 50);
          return [service(`svc-${n}`, `flood.s${n}.80`), "upstream", 5];
        });
        const res = await request(`${exp.ingestUrl}${INGEST_PATH}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(makePayload(obs, { source: "flood", seq: batch + 1 })),
        });
        assert.equal(res.statusCode, 200, await res.body.text());
      }
      const s = parseSamples(await fetchText(`${exp.metricsUrl}/metrics`));
      assert.equal(value(s, "latency_exporter_series"), 50);
      assert.equal(value(s, "latency_exporter_series_overflow_events_total"), 450);
      assert.equal(s.filter((x) => x.name === "kong_upstream_latency_ms_count").length, 50);
      await waitFor(
        "idle series to be removed",
        async () =>
          value(parseSamples(await fetchText(`${exp.metricsUrl}/metrics`)), "latency_exporter_series") === 0
            ? true
            : undefined,
        30_000,
        250,
      );
      const after = parseSamples(await fetchText(`${exp.metricsUrl}/metrics`));
      assert.equal(value(after, "latency_exporter_series_removed_total"), 50);
      assert.equal(after.filter((x) => x.name.startsWith("kong_")).length, 0);
    } finally {
      await exp.stop();
    }
  });
});

describe("product code", () => {
  it("runs no shell and starts no process", () => {
    const files = ["plugin", "sidecar", "wire"].flatMap((dir) => walk(join(REPO_ROOT, dir)));
    assert.ok(files.length > 10);
    for (const f of files)
      assert.doesNotMatch(readFileSync(f, "utf8"), /child_process|\bexecSync\b|\bspawn\(|\beval\(|new Function\(/, f);
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
  });
}
