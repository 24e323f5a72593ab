import { strict as assert } from "node:assert";
import { deflateSync, inflateSync } from "node:zlib";
import { encodeHistogram, newHistogram, recordMs } from "../wire/histogram";
import { PayloadError, validatePayload } from "../wire/validate";
import { makePayload, service } from "./support/payloads";

const svc = service("7b5b4a58-0a3c-4d37-9f2a-6d1f3a2b9c01", "default.echo.80", ["k8s-name:echo"]);

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function rejects(body: unknown, pattern: RegExp): void {
  assert.throws(() => validatePayload(body), (err: unknown) => {
    assert.ok(err instanceof PayloadError, `expected PayloadError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("wire payload validation", () => {
  const good = makePayload([
    [svc, "upstream", 100],
    [svc, "upstream", 2500],
    [svc, "request", 120],
  ]);

  it("accepts what the recorder produces and decodes the histograms", () => {
    const v = validatePayload(clone(good));
    assert.equal(v.histograms[0]!.upstream!.totalCount, 2);
    assert.equal(v.histograms[0]!.request!.totalCount, 1);
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
    tooLong.services[0]!.service.name = "x".repeat(8193);
    rejects(tooLong, /\/services\/0\/service\/name: must NOT have more than 8192 characters/);
  });

  it("refuses a histogram whose slots do not add up to its count", () => {
    const p = clone(good);
    p.services[0]!.latencies.upstream!.count = 3;
    rejects(p, /\/services\/0\/latencies\/upstream\/hdr: holds 2 values but count says 3/);
  });

  it("refuses a sum smaller than the recorded values allow", () => {
    const p = clone(good);
    p.services[0]!.latencies.upstream!.sum = 5;
    rejects(p, /\/services\/0\/latencies\/upstream\/sum: 5 is less/);
  });

  it("refuses garbage, foreign layouts and inflation bombs before decoding", () => {
    const withHdr = (hdr: string) => {
      const p = clone(good);
      p.services[0]!.latencies.upstream!.hdr = hdr;
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

  it("refuses a service listed twice", () => {
    const p = clone(good);
    p.services.push(clone(p.services[0]!));
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
