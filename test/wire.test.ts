import { strict as assert } from "node:assert";
import { deflateSync, inflateSync } from "node:zlib";
import fc from "fast-check";
import { encodeHistogram, newHistogram, readCounts, recordMs, SLOT_COUNT, SLOT_LOWEST } from "../wire/histogram";
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
    assert.deepEqual(v.histograms[0].upstream!.counts, [1, 1]);
    assert.deepEqual(v.histograms[0].request!.counts, [1]);
  });

  it("names the field of a shape error", () => {
    rejects({ ...clone(good), version: 2 }, /^\/version: must be 1/);
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

  it("refuses a histogram whose slots do not add up to its count", () => {
    const p = clone(good);
    p.services[0].latencies.upstream!.count = 3;
    rejects(p, /\/services\/0\/latencies\/upstream\/hdr: holds 2 values but count says 3/);
  });

  it("refuses a sum smaller than the recorded values allow", () => {
    const p = clone(good);
    p.services[0].latencies.upstream!.sum = 5;
    rejects(p, /\/services\/0\/latencies\/upstream\/sum: 5 is less/);
  });

  it("refuses garbage, foreign layouts and inflation bombs before decoding", () => {
    const withHdr = (hdr: string) => {
      const p = clone(good);
      p.services[0].latencies.upstream!.hdr = hdr;
      return p;
    };
    rejects(withHdr("not base64!"), /hdr: is not base64/);
    rejects(withHdr(Buffer.from("hello world!").toString("base64")), /is not an HdrHistogram V2 compressed encoding/);

    const other = newHistogram();
    recordMs(other, 5);
    const foreign = Buffer.from(encodeHistogram(other), "base64");
    // Same histogram, header patched to claim 2 significant digits.
    const patched = Buffer.from(decodeInner(foreign));
    patched.writeInt32BE(2, 12);
    rejects(withHdr(reframe(patched)), /has layout \(lowest 1, highest 3600000, digits 2\)/);

    const bomb = Buffer.alloc(50_000_000);
    bomb.writeInt32BE(0x1c849313, 0);
    rejects(withHdr(reframe(bomb)), /does not inflate within/);
  });

  it("decodes exactly what hdr-histogram-js encoded", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4_000_000 }), { maxLength: 300 }), (values) => {
        const h = newHistogram();
        for (const v of values) recordMs(h, v);
        const { slots, counts } = readCounts(encodeHistogram(h));
        assert.equal(
          counts.reduce((a, b) => a + b, 0),
          values.length,
        );
        const want = values.map((v) => Math.min(v, 3_600_000)).sort((a, b) => a - b);
        let k = 0;
        slots.forEach((slot, i) => {
          for (let c = 0; c < counts[i]; c++, k++)
            assert.ok(
              SLOT_LOWEST[slot] <= want[k] && want[k] < SLOT_LOWEST[slot + 1],
              `value ${want[k]} in slot ${slot}`,
            );
        });
      }),
      { numRuns: 100 },
    );
  });

  it("refuses counts past the layout's last slot and counts beyond 32 bits", () => {
    const header = decodeInner(Buffer.from(encodeHistogram(newHistogram()), "base64")).subarray(0, 40);
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
    assert.deepEqual(readCounts(frame([0, 3, -5, 2])), { slots: [1, 7], counts: [3, 2] });
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
