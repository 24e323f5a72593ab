import { strict as assert } from "node:assert";
import { deflateSync, inflateSync } from "node:zlib";
import fc from "fast-check";
import { newV1Histogram, toV1, v1Delta } from "../devstack/wire-v1";
import { readCounts } from "../wire/hdr-v1";
import { HDR_HIGHEST, isKey, keyOf, SLOT_COUNT, slotLowest, slotOfValue } from "../wire/layout";
import { LIMITS } from "../wire/payload";
import { readValues, writeValues } from "../wire/sparse";
import { PayloadError, validatePayload } from "../wire/validate";
import { makePayload, service } from "./support/payloads";

const svc = service("7b5b4a58-0a3c-4d37-9f2a-6d1f3a2b9c01", "default.echo.80", ["k8s-name:echo"]);

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function rejects(body: unknown, pattern: RegExp): void {
  assert.throws(
    () => validatePayload(body),
    (err: unknown) => {
      assert.ok(err instanceof PayloadError, `expected PayloadError, got ${String(err)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe("wire payload validation", () => {
  const good = makePayload([
    [svc, "upstream", 100],
    [svc, "upstream", 2500],
    [svc, "request", 120],
  ]);

  it("accepts what the recorder produces and decodes the histograms", () => {
    const v = validatePayload(clone(good));
    assert.deepEqual(v.histograms[0].upstream, { values: [100, 2500], counts: [1, 1] });
    assert.deepEqual(v.histograms[0].request, { values: [120], counts: [1] });
  });

  it("still accepts version 1 (HDR-encoded deltas), each slot counted at its lowest value", () => {
    const v = validatePayload(toV1(clone(good)));
    assert.deepEqual(v.histograms[0].upstream, { values: [100, 2500], counts: [1, 1] });
    const coarse = validatePayload({
      ...toV1(clone(good)),
      services: [{ service: svc, latencies: { upstream: v1Delta([5001, 5003]) } }],
    });
    assert.deepEqual(coarse.histograms[0].upstream, { values: [5000], counts: [2] });
    rejects({ ...clone(good), version: 1 }, /\/services\/0\/latencies\/upstream: must have required property 'hdr'/);
  });

  it("names the field of a shape error", () => {
    rejects({ ...clone(good), version: 3 }, /^\/version: must be one of 1, 2/);
    rejects({ ...clone(good), seq: 0 }, /^\/seq: must be >= 1/);
    rejects({ ...clone(good), seq: "1" }, /^\/seq: must be integer/);
    rejects({ ...clone(good), extra: 1 }, /unknown field "extra"/);
    const p = clone(good);
    delete (p as Partial<typeof p>).source;
    rejects(p, /must have required property 'source'/);
    rejects([], /^payload: must be object/);
    const tooLong = clone(good);
    tooLong.services[0].service.name = "x".repeat(8193);
    rejects(tooLong, /\/services\/0\/service\/name: must NOT have more than 8192 characters/);
  });

  it("refuses a histogram whose counts do not add up to its count", () => {
    const p = clone(good);
    p.services[0].latencies.upstream!.count = 3;
    rejects(p, /\/services\/0\/latencies\/upstream\/values: holds 2 values but count says 3/);
    rejects(toV1(p), /\/services\/0\/latencies\/upstream\/hdr: holds 2 values but count says 3/);
  });

  it("refuses values that are not base64 LEB128 pairs of the layout's keys", () => {
    const withValues = (values: string) => {
      const p = clone(good);
      p.services[0].latencies.upstream!.values = values;
      return p;
    };
    const encode = (keys: number[], counts: number[]) => writeValues(keys, counts, 0, keys.length);
    assert.deepEqual(readValues(encode([0, 5, 4096, 3_598_337], [1, 200, 3, 2 ** 40])), {
      values: [0, 5, 4096, 3_598_337],
      counts: [1, 200, 3, 2 ** 40],
    });
    rejects(withValues("not base64!"), /upstream\/values: is not base64/);
    rejects(withValues(Buffer.from([100]).toString("base64")), /upstream\/values: ends inside a number/);
    rejects(
      withValues(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1, 0]).toString("base64")),
      /longer than 8 bytes/,
    );
    rejects(withValues(encode([100, 4098], [1, 1])), /upstream\/values: has 4098, not a latency key of the layout/);
    rejects(withValues(encode([100, 3_600_001], [1, 1])), /has 3600001, not a latency key/);
    rejects(withValues(encode([100, 2500], [1, 2 ** 54])), /has a count beyond 2\^53/);
    rejects(withValues("x".repeat(LIMITS.valuesLength + 4)), /upstream\/values: must NOT have more than/);
    // Gaps are counted from the previous key, so keys can only increase; the sum check still applies.
    rejects(
      withValues(encode([100, 2600], [1, 1])),
      /upstream\/sum: 2600 is less than the histogram's values allow \(2700\)/,
    );
  });

  it("refuses a sum smaller than the recorded values allow", () => {
    const p = clone(good);
    p.services[0].latencies.upstream!.sum = 5;
    rejects(p, /\/services\/0\/latencies\/upstream\/sum: 5 is less/);
    rejects(toV1(p), /\/services\/0\/latencies\/upstream\/sum: 5 is less/);
  });

  it("refuses version 1 garbage, foreign layouts and inflation bombs before decoding", () => {
    const withHdr = (hdr: string) => {
      const p = toV1(clone(good));
      p.services[0].latencies.upstream!.hdr = hdr;
      return p;
    };
    rejects(withHdr("not base64!"), /hdr: is not base64/);
    rejects(withHdr(Buffer.from("hello world!").toString("base64")), /is not an HdrHistogram V2 compressed encoding/);

    const foreign = Buffer.from(v1Delta([5]).hdr, "base64");
    // Same histogram, header patched to claim 2 significant digits.
    const patched = Buffer.from(decodeInner(foreign));
    patched.writeInt32BE(2, 12);
    rejects(withHdr(reframe(patched)), /has layout \(lowest 1, highest 3600000, digits 2\)/);

    const bomb = Buffer.alloc(50_000_000);
    bomb.writeInt32BE(0x1c849313, 0);
    rejects(withHdr(reframe(bomb)), /does not inflate within/);
  });

  it("decodes version 1 exactly as hdr-histogram-js encoded it", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4_000_000 }), { maxLength: 300 }), (latencies) => {
        const { values, counts } = readCounts(v1Delta(latencies).hdr);
        assert.equal(
          counts.reduce((a, b) => a + b, 0),
          latencies.length,
        );
        const want = latencies.map((v) => Math.min(v, HDR_HIGHEST)).sort((a, b) => a - b);
        let k = 0;
        values.forEach((lowest, i) => {
          for (let c = 0; c < counts[i]; c++, k++) assert.equal(lowest, slotLowest(slotOfValue(want[k])), `${want[k]}`);
        });
      }),
      { numRuns: 100 },
    );
  });

  it("computes hdr-histogram-js's layout, and keys that keep each slot's lowest value apart", () => {
    const h = newV1Histogram() as unknown as { countsArrayLength: number; countsArrayIndex(v: number): number };
    assert.equal(SLOT_COUNT, h.countsArrayLength);
    for (let v = 0; v <= HDR_HIGHEST; v += v < 5000 ? 1 : 97) {
      const slot = slotOfValue(v);
      assert.equal(slot, h.countsArrayIndex(v), `slot of ${v}`);
      const lowest = slotLowest(slot);
      assert.equal(keyOf(v), v - lowest <= 1 ? v : lowest + 1, `key of ${v}`);
      assert.ok(isKey(keyOf(v)));
    }
    assert.deepEqual([5000, 5001, 5003, 5004].map(keyOf), [5000, 5001, 5001, 5004]);
    assert.equal(keyOf(60_001), 60_001);
    assert.equal(keyOf(60_031), 60_001);
    assert.equal(keyOf(4_000_000), keyOf(HDR_HIGHEST));
    assert.ok(!isKey(5002) && !isKey(4098) && !isKey(-1) && !isKey(1.5));
  });

  it("refuses counts past the layout's last slot and counts beyond 32 bits", () => {
    const header = decodeInner(Buffer.from(v1Delta([]).hdr, "base64")).subarray(0, 40);
    const zigzag = (n: number) => {
      let z = n >= 0 ? n * 2 : -n * 2 - 1;
      const out: number[] = [];
      while (z >= 128) {
        out.push((z % 128) | 0x80);
        z = Math.floor(z / 128);
      }
      out.push(z);
      return out;
    };
    const frame = (words: number[]) => {
      const body = Buffer.from(words.flatMap(zigzag));
      const inner = Buffer.concat([header, body]);
      inner.writeInt32BE(body.length, 4);
      return reframe(inner);
    };
    assert.throws(() => readCounts(frame([-SLOT_COUNT, 1])), /has counts beyond its \d+ slots/);
    assert.throws(() => readCounts(frame([2 ** 31])), /beyond 32 bits/);
    assert.deepEqual(readCounts(frame([0, 3, -5, 2])), { values: [1, 7], counts: [3, 2] });
    assert.throws(() => readCounts(frame([-(SLOT_COUNT - 1), 1])), /has counts above 3600000 ms/);
  });

  it("refuses a service listed twice", () => {
    const p = clone(good);
    p.services.push(clone(p.services[0]));
    rejects(p, /\/services\/1\/service\/id: service ".*" appears twice/);
  });
});

function decodeInner(outer: Buffer): Buffer {
  return inflateSync(outer.subarray(8));
}

function reframe(inner: Buffer): string {
  const deflated = deflateSync(inner);
  const head = Buffer.alloc(8);
  head.writeInt32BE(0x1c849314, 0);
  head.writeInt32BE(deflated.length, 4);
  return Buffer.concat([head, deflated]).toString("base64");
}
