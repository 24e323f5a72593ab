import { strict as assert } from "node:assert";
import { nearestRank } from "../devstack/nearest-rank";
import fc from "fast-check";
import { HDR_HIGHEST } from "../wire/layout";
import { validatePayload } from "../wire/validate";
import { QUANTILES } from "../sidecar/percentiles";
import { SlidingWindow } from "../sidecar/window";
import { latencyReport, LatencyQueryError } from "../sidecar/latency-api";
import { Store } from "../sidecar/store";
import { makePayload, service } from "./support/payloads";

const QS = QUANTILES.map((q) => q.q);

/** The nearest-rank percentile of the values themselves: what the exporter must approximate. */
const exact = (values: number[], q: number) =>
  nearestRank(
    [...values].sort((a, b) => a - b),
    q,
  );

function windowOf(values: number[], now: number): SlidingWindow {
  const w = new SlidingWindow(10_000, 6);
  const v = validatePayload(makePayload(values.map((ms) => [service("a", "a"), "upstream", ms])));
  const d = v.payload.services[0].latencies.upstream!;
  w.add(d.count, d.sum, v.histograms[0].upstream!, now);
  return w;
}

/** Latencies over the histogram's whole range, [0, 1 h]: small, uniform, and log-uniform (every slot width). */
const latency = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: HDR_HIGHEST }),
  fc.double({ min: 0, max: Math.log2(HDR_HIGHEST), noNaN: true }).map((e) => Math.min(HDR_HIGHEST, Math.floor(2 ** e))),
);

// README "Percentiles over a sliding window" and "Guarantees and limits": within 0.4%, exact below 256 ms.
describe("windowed percentiles", () => {
  it("are within 0.4% of the exact nearest-rank percentile over the whole range, and exact below 256 ms", () => {
    fc.assert(
      fc.property(fc.array(latency, { minLength: 1, maxLength: 400 }), (values) => {
        const stats = windowOf(values, 1_000_000).stats(1_000_000, QS);
        assert.equal(stats.count, values.length);
        assert.equal(
          stats.sum,
          values.reduce((a, b) => a + b, 0),
        );
        QS.forEach((q, i) => {
          const want = exact(values, q);
          const got = stats.values[i];
          if (want < 256) assert.equal(got, want, `q=${q}`);
          else assert.ok(Math.abs(got - want) <= 0.004 * want, `q=${q}: got ${got}, exact ${want}`);
        });
      }),
      { numRuns: 1000 },
    );
  });

  it("are exact below 256 ms", () => {
    const values = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 250);
    const stats = windowOf(values, 0).stats(0, QS);
    QS.forEach((q, i) => assert.equal(stats.values[i], exact(values, q)));
  });

  // README "Accuracy": a latency above the histogram's top (1 h) counts exactly, but reads as its top slot.
  it("read a latency above one hour as the top slot, 3,596,287.5 ms, with count and sum exact", () => {
    const stats = windowOf([5_000_000, 3_600_000], 0).stats(0, QS);
    assert.equal(stats.count, 2);
    assert.equal(stats.sum, 8_600_000);
    assert.deepEqual(stats.values, [3_596_287.5, 3_596_287.5, 3_596_287.5, 3_596_287.5]);
  });

  it("forget what is older than the window, in sixths of it", () => {
    const w = windowOf([100, 200], 0);
    assert.equal(w.stats(50_000, QS).count, 2);
    assert.equal(w.stats(59_999, QS).count, 2);
    assert.equal(w.stats(60_000, QS).count, 0);
    assert.ok(Number.isNaN(w.stats(60_000, QS).values[0]));
  });
});

// README "Percentiles over a sliding window": the window moves in sixths of its length.
describe("the sidecar's percentile window", () => {
  it("of 12 s moves in 2 s steps: what came at 2.0 s is counted until 13.999 s", () => {
    const store = new Store({
      boundaries: [100],
      mapping: undefined,
      windowMs: 12_000,
      maxSeries: 10,
      idleMs: 600_000,
    });
    store.apply(validatePayload(makePayload([[service("1", "default.echo.80"), "upstream", 7]])), 2_000);
    const count = (now: number) => latencyReport(store, new URLSearchParams("kong_service=default.echo.80"), now).count;
    assert.deepEqual([count(2_000), count(13_999), count(14_000)], [1, 1, 0]);
  });
});

describe("GET /v1/latency report", () => {
  const store = new Store({ boundaries: [100], mapping: undefined, windowMs: 60_000, maxSeries: 100, idleMs: 600_000 });
  const tags = (name: string) => [`k8s-name:${name}`, "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"];
  const now = Date.now();
  store.apply(
    validatePayload(
      makePayload([
        ...[10, 20, 30].map((ms): [ReturnType<typeof service>, "upstream", number] => [
          service("1", "default.echo.80", tags("echo")),
          "upstream",
          ms,
        ]),
        ...[40].map((ms): [ReturnType<typeof service>, "upstream", number] => [
          service("2", "default.echo.8080", tags("echo")),
          "upstream",
          ms,
        ]),
        [service("3", "default.other.80", tags("other")), "upstream", 500],
      ]),
    ),
    now,
  );

  it("merges every series of a Kubernetes Service into the top-level figures", () => {
    const r = latencyReport(store, new URLSearchParams("namespace=default&service=echo"), now);
    assert.equal(r.window_seconds, 60);
    assert.equal(r.count, 4);
    assert.equal(r.average_ms, 25);
    assert.equal(r.p50_ms, 20);
    assert.equal(r.p99_ms, 40);
    assert.equal((r.services as unknown[]).length, 2);
  });

  it("reports an idle selection as zeros, and refuses unknown or repeated parameters", () => {
    const r = latencyReport(store, new URLSearchParams("service=nothing"), now);
    assert.deepEqual([r.count, r.average_ms, r.p99_ms], [0, 0, 0]);
    assert.throws(() => latencyReport(store, new URLSearchParams("svc=echo"), now), LatencyQueryError);
    assert.throws(() => latencyReport(store, new URLSearchParams("latency=total"), now), /latency must be one of/);
    assert.throws(
      () => latencyReport(store, new URLSearchParams("service=echo&service=other"), now),
      /parameter "service" is given more than once/,
    );
  });
});
