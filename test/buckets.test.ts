import { strict as assert } from "node:assert";
import fc from "fast-check";
import { KONG_BUCKETS } from "../sidecar/families";
import { Series } from "../sidecar/series";
import { SlidingWindow } from "../sidecar/window";
import { HDR_HIGHEST } from "../wire/histogram";
import { validatePayload } from "../wire/validate";
import { makePayload, service } from "./support/payloads";

/** The cumulative bucket counts the sidecar exports for these latencies, one per Kong boundary. */
function cumulativeBuckets(values: number[]): number[] {
  const series = new Series("", {}, KONG_BUCKETS, new SlidingWindow(10_000, 6));
  const v = validatePayload(makePayload(values.map((ms) => [service("a", "a"), "upstream", ms])));
  const d = v.payload.services[0].latencies.upstream!;
  series.add(d.count, d.sum, v.histograms[0].upstream!, 0);
  let total = 0;
  return KONG_BUCKETS.map((_, i) => (total += series.counts[i]));
}

/** Above 2047 ms, anywhere up to an hour or just around a boundary, where a 0.1% slot can straddle it. */
const largeLatency = fc.oneof(
  fc.integer({ min: 2048, max: HDR_HIGHEST }),
  fc
    .constantFrom(...KONG_BUCKETS.filter((b) => b > 2048))
    .chain((b) => fc.integer({ min: b - 10, max: Math.ceil(b * 1.002) + 10 })),
);

// README "Accuracy" and "Guarantees and limits": bucket counts exact up to 2047 ms; above, a slot is 0.1% wide.
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

  it("count a larger latency in le=b when it is at most b, and past b only when within 0.1% of it", () => {
    fc.assert(
      fc.property(largeLatency, (v) => {
        cumulativeBuckets([v]).forEach((n, i) => {
          const b = KONG_BUCKETS[i];
          if (v <= b) assert.equal(n, 1, `${v} in le=${b}`);
          else if (n === 1) assert.ok(v <= b * 1.001, `${v} counted in le=${b}`);
        });
      }),
      { numRuns: 5000 },
    );
    // The README's example: 5001 and 5003 fall in the slot [5000, 5004) and are counted in le="5000".
    assert.equal(cumulativeBuckets([5001, 5003])[KONG_BUCKETS.indexOf(5000)], 2);
    assert.equal(cumulativeBuckets([5004])[KONG_BUCKETS.indexOf(5000)], 0);
  });
});
