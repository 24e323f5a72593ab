import { strict as assert } from "node:assert";
import fc from "fast-check";
import { KeyCounts } from "../plugin/key-counts";
import { Recorder } from "../plugin/recorder";
import { keyOf } from "../wire/layout";
import { LATENCY_KINDS, type LatencyKind } from "../wire/payload";
import { readValues, writeValues } from "../wire/sparse";
import { service } from "./support/payloads";

const observation = fc.tuple(
  fc.integer({ min: 0, max: 40 }),
  fc.constantFrom(...LATENCY_KINDS),
  fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 4_000_000 })),
);

/** What take() must hold: per service and kind, the count, the exact sum and a count per latency key. */
function model(obs: [number, LatencyKind, number][], maxServices: number) {
  const want = new Map<string, { count: number; sum: number; keys: Map<number, number> }>();
  const services = new Set<number>();
  let overflow = 0;
  for (const [s, kind, ms] of obs) {
    if (!services.has(s) && services.size >= maxServices) {
      overflow++;
      continue;
    }
    services.add(s);
    const m = want.get(`${s} ${kind}`) ?? { count: 0, sum: 0, keys: new Map<number, number>() };
    m.count++;
    m.sum += ms;
    m.keys.set(keyOf(ms), (m.keys.get(keyOf(ms)) ?? 0) + 1);
    want.set(`${s} ${kind}`, m);
  }
  return { want, overflow };
}

// README "Guarantees and limits": exact totals, and a bound on services and on distinct latencies held.
describe("the plugin's recorder (plugin/recorder.ts)", () => {
  it("takes exactly what was recorded, per service and kind, in increasing keys, then starts empty", () => {
    fc.assert(
      fc.property(fc.array(observation, { maxLength: 400 }), fc.integer({ min: 1, max: 50 }), (obs, max) => {
        const r = new Recorder(max);
        for (const [s, kind, ms] of obs) r.record(service(`id-${s}`, `svc-${s}`), kind, ms);
        const { want, overflow } = model(obs, max);
        const batch = r.take();
        assert.equal(batch.overflow, overflow);
        let seen = 0;
        for (const { service: svc, latencies } of batch.services) {
          for (const [kind, d] of Object.entries(latencies)) {
            const m = want.get(`${svc.id.slice(3)} ${kind}`)!;
            assert.equal(d.count, m.count);
            assert.equal(d.sum, m.sum);
            const pairs = [...m.keys].sort((a, b) => a[0] - b[0]);
            assert.deepEqual(readValues(d.values), { values: pairs.map((e) => e[0]), counts: pairs.map((e) => e[1]) });
            seen++;
          }
        }
        assert.equal(seen, want.size);
        assert.ok(r.isEmpty());
        assert.deepEqual(r.take(), { services: [], overflow: 0 });
      }),
      { numRuns: 300 },
    );
  });

  it("counts an event for a new latency beyond the bound on distinct latencies as overflow, whole", () => {
    // b's only event is refused: b is left out, as the wire takes no service without a latency.
    const r = new Recorder(10, 2);
    r.record(service("a", "a"), "upstream", 5);
    r.record(service("a", "a"), "upstream", 6);
    r.record(service("a", "a"), "upstream", 7);
    r.record(service("b", "b"), "upstream", 5);
    r.record(service("a", "a"), "upstream", 6);
    const batch = r.take();
    assert.equal(batch.overflow, 2);
    assert.deepEqual(
      batch.services.map((s) => [s.service.id, s.latencies.upstream?.count, s.latencies.upstream?.sum]),
      [["a", 3, 17]],
    );
  });

  it("labels a service as it was last described", () => {
    const r = new Recorder(10);
    r.record(service("a", "old-name"), "upstream", 5);
    r.record(service("a", "new-name"), "upstream", 5);
    const [s] = r.take().services;
    assert.equal(s.service.name, "new-name");
    assert.deepEqual(s.latencies.upstream, { count: 2, sum: 10, values: writeValues([5], [2], 0, 1) });
  });
});

describe("the recorder's key table (plugin/key-counts.ts)", () => {
  it("holds at most maxEntries distinct keys, still counting the ones it holds", () => {
    const t = new KeyCounts(3);
    assert.ok(t.add(0, 1) && t.add(0, 2) && t.add(1, 1));
    assert.equal(t.add(1, 2), false);
    assert.ok(t.add(0, 1));
    const { keys, counts } = t.sorted();
    assert.deepEqual([...counts], [2, 1, 1]);
    assert.equal(keys.length, 3);
  });

  it("grows past its first capacity and gives memory back after a burst", () => {
    const t = new KeyCounts(1_000_000);
    for (let s = 0; s < 30_000; s++) for (const k of [10, 20, 4_000]) t.add(s, k);
    assert.equal(t.size, 90_000);
    const { keys, counts } = t.sorted();
    assert.ok(keys.every((k, i) => i === 0 || keys[i - 1] < k));
    assert.ok(counts.every((c) => c === 1));
    const bytes = (x: KeyCounts) => (x as unknown as { keys: Float64Array }).keys.byteLength;
    assert.ok(bytes(t) >= 16 * 90_000, String(bytes(t)));
    t.clear();
    t.add(0, 1);
    t.clear();
    assert.ok(bytes(t) <= 8 * 4096, `kept ${bytes(t)} bytes`);
    assert.equal(t.sorted().keys.length, 0);
  });
});
