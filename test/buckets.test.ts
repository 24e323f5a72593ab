import { strict as assert } from "node:assert";
import fc from "fast-check";
import { KONG_BUCKETS } from "../sidecar/families";
import { Series } from "../sidecar/series";
import { SlidingWindow } from "../sidecar/window";
import { HDR_HIGHEST, slotLowest, slotOfValue } from "../wire/layout";
import { validatePayload } from "../wire/validate";
import { makePayload, service } from "./support/payloads";

/** The cumulative bucket counts the sidecar exports for these latencies, one per Kong boundary. */
function cumulativeBuckets(values: number[], boundaries: readonly number[] = KONG_BUCKETS): number[] {
  const series = new Series("", {}, boundaries, new SlidingWindow(10_000, 6));
  const v = validatePayload(makePayload(values.map((ms) => [service("a", "a"), "upstream", ms])));
  const d = v.payload.services[0].latencies.upstream!;
  series.add(d.count, d.sum, v.histograms[0].upstream!, 0);
  let total = 0;
  return boundaries.map((_, i) => (total += series.counts[i]));
}

/** Above 2047 ms, anywhere up to an hour or just around a boundary, where a 0.1% slot can straddle it. */
const largeLatency = fc.oneof(
  fc.integer({ min: 2048, max: HDR_HIGHEST }),
  fc
    .constantFrom(...KONG_BUCKETS.filter((b) => b > 2048))
    .chain((b) => fc.integer({ min: b - 10, max: Math.ceil(b * 1.002) + 10 })),
);

// README "Accuracy" and "Guarantees and limits": bucket counts exact at every one of Kong's boundaries; for a
// custom boundary, exact up to 2047 ms and at a slot's edges, else within the slot's 0.1%.
describe("bucket counts over Kong's boundaries", () => {
  it("count every latency up to 2047 ms exactly in le=b when it is at most b", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2047 }), { minLength: 1, maxLength: 200 }), (values) => {
        assert.deepEqual(
          cumulativeBuckets(values),
          KONG_BUCKETS.map((b) => values.filter((v) => v <= b).length),
        );
      }),
      { numRuns: 500 },
    );
  });

  it("count every larger integer latency exactly at each of Kong's boundaries", () => {
    fc.assert(
      fc.property(fc.array(largeLatency, { minLength: 1, maxLength: 50 }), (values) => {
        assert.deepEqual(
          cumulativeBuckets(values),
          KONG_BUCKETS.map((b) => values.filter((v) => v <= b).length),
        );
      }),
      { numRuns: 2000 },
    );
    // Around every boundary above 2047 ms, every integer: b - 40 .. b + 40.
    for (const b of KONG_BUCKETS.filter((x) => x > 2047))
      for (let v = b - 40; v <= b + 40; v++)
        assert.deepEqual(
          cumulativeBuckets([v]),
          KONG_BUCKETS.map((x) => (v <= x ? 1 : 0)),
          `${v} ms`,
        );
    // Kong's default upstream timeout: a request that took 60001 ms is past le="60000", as Kong counts it.
    assert.equal(cumulativeBuckets([60_000, 60_001])[KONG_BUCKETS.indexOf(60_000)], 1);
  });

  it("with custom boundaries: exact at a slot's edges, else past b only within 0.1% of it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2048, max: HDR_HIGHEST - 1 }), fc.integer({ min: -70, max: 70 }), (b, d) => {
        const v = Math.max(0, b + d);
        const [n] = cumulativeBuckets([v], [b]);
        const lowest = slotLowest(slotOfValue(b));
        const edge = b === lowest || slotLowest(slotOfValue(b + 1)) === b + 1;
        if (v <= b || edge) assert.equal(n, v <= b ? 1 : 0, `${v} in le=${b}`);
        else if (n === 1) assert.ok(v <= b * 1.001, `${v} counted in le=${b}`);
      }),
      { numRuns: 5000 },
    );
    // The README's example: with le="5002", 5003 (in the slot [5000, 5004)) is counted in it.
    assert.deepEqual(cumulativeBuckets([5001, 5002, 5003, 5004], [5000, 5002, 5003]), [0, 3, 3]);
  });
});
