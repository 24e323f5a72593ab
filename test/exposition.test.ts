import { strict as assert } from "node:assert";
import { ChunkWriter } from "../sidecar/chunk-writer";
import { LatencyFamiliesText } from "../sidecar/metrics-body";
import { QUANTILES } from "../sidecar/percentiles";
import { Store } from "../sidecar/store";
import { SlidingWindow } from "../sidecar/window";
import { validatePayload } from "../wire/validate";
import { makePayload, service } from "./support/payloads";

function render(store: Store, now: number, chunkBytes: number): string {
  const out = new ChunkWriter(chunkBytes);
  const chunks: Buffer[] = [];
  // Copied as they come: a chunk handed back is filled again.
  for (const batch of new LatencyFamiliesText(store).render(out, now)) {
    for (const c of batch) {
      chunks.push(Buffer.from(c));
      out.recycle(c);
    }
  }
  return Buffer.concat([...chunks, ...out.finish()]).toString("utf8");
}

describe("/metrics text, written into chunks", () => {
  const now = 1_700_000_000_000;
  const store = new Store({
    boundaries: [100, 1000],
    mapping: undefined,
    windowMs: 60_000,
    maxSeries: 100,
    idleMs: 600_000,
  });
  store.apply(
    validatePayload(
      makePayload([
        [
          service("1", "default.echo.80", [
            "k8s-name:echo",
            "k8s-namespace:default",
            "k8s-kind:Service",
            "k8s-version:v1",
          ]),
          "upstream",
          40,
        ],
        [
          service("1", "default.echo.80", [
            "k8s-name:echo",
            "k8s-namespace:default",
            "k8s-kind:Service",
            "k8s-version:v1",
          ]),
          "upstream",
          700,
        ],
        [service("2", 'ünï"cödé\\.80'), "upstream", 123_456_789],
      ]),
    ),
    now,
  );

  it("is the exposition format, percentiles included", () => {
    const lines = render(store, now, 1 << 20).split("\n");
    const labels =
      'namespace="default",service="echo",kubernetes_namespace="default",kubernetes_name="echo",kubernetes_kind="service",kubernetes_apiversion="v1",kong_service="default.echo.80"';
    for (const want of [
      "# TYPE kong_upstream_latency_ms histogram",
      `kong_upstream_latency_ms_bucket{${labels},le="100"} 1`,
      `kong_upstream_latency_ms_bucket{${labels},le="1000"} 2`,
      `kong_upstream_latency_ms_bucket{${labels},le="+Inf"} 2`,
      `kong_upstream_latency_ms_sum{${labels}} 740`,
      `kong_upstream_latency_ms_count{${labels}} 2`,
      "# TYPE kong_upstream_latency_ms_percentile summary",
      `kong_upstream_latency_ms_percentile{${labels},quantile="0.5"} 40`,
      `kong_upstream_latency_ms_percentile{${labels},quantile="0.99"} 701.5`,
    ]) {
      assert.ok(lines.includes(want), `missing: ${want}`);
    }
    assert.ok(lines.some((l) => l.includes('kong_service="ünï\\"cödé\\\\.80"') && l.endsWith(" 123456789")));
  });

  it("exports NaN quantiles, and the totals, once a series' window is empty", () => {
    const lines = render(store, now + 61_000, 1 << 20).split("\n");
    const labels =
      'namespace="default",service="echo",kubernetes_namespace="default",kubernetes_name="echo",kubernetes_kind="service",kubernetes_apiversion="v1",kong_service="default.echo.80"';
    for (const q of QUANTILES)
      assert.ok(
        lines.includes(`kong_upstream_latency_ms_percentile{${labels},quantile="${q.label}"} NaN`),
        `quantile ${q.label}`,
      );
    assert.ok(lines.includes(`kong_upstream_latency_ms_percentile_count{${labels}} 2`));
  });

  it("does not depend on where the chunks end, even inside a character", () => {
    const whole = render(store, now, 1 << 20);
    for (const size of [1, 2, 3, 7, 64]) assert.equal(render(store, now, size), whole);
  });
});

describe("sliding window slots", () => {
  it("do not roll back when read with an earlier time (a render that waited for a slow client)", () => {
    const w = new SlidingWindow(10_000, 6);
    w.add(1, 10, { values: [10], counts: [1] }, 0);
    w.add(1, 20, { values: [20], counts: [1] }, 25_000);
    assert.equal(w.stats(5_000, [1]).count, 2);
    w.add(1, 30, { values: [30], counts: [1] }, 26_000);
    assert.equal(w.stats(26_000, [1]).count, 3);
  });

  it("keep counts too large for 4-byte entries when a slot is closed", () => {
    const w = new SlidingWindow(10_000, 6);
    const n = 5_000_000;
    w.add(n + 1, 10 * n + 20, { values: [10, 20], counts: [n, 1] }, 0);
    // Read after the slot closed (10 s on), when its counts are compacted.
    const stats = w.stats(
      15_000,
      QUANTILES.map((q) => q.q),
    );
    assert.equal(stats.count, n + 1);
    assert.deepEqual(stats.values, [10, 10, 10, 10]);
    assert.equal(w.stats(15_000, [1]).values[0], 20);
  });
});
