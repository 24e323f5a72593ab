import { strict as assert } from "node:assert";
import fc from "fast-check";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { request } from "undici";
import { startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { SCRAPE_ACCEPT, SCRAPE_ACCEPT_NATIVE_HISTOGRAMS } from "../devstack/prometheus/prometheus";
import { ChunkWriter } from "../sidecar/chunk-writer";
import { LatencyFamiliesProtobuf } from "../sidecar/exposition-protobuf";
import { LatencyFamiliesText } from "../sidecar/metrics-body";
import { PROTOBUF_CONTENT_TYPE, prefersProtobuf, TEXT_CONTENT_TYPE } from "../sidecar/metrics-format";
import { NATIVE_SCHEMA, NativeBuckets, nativeIndex, ZERO_THRESHOLD } from "../sidecar/native-buckets";
import { writeSelfMetrics } from "../sidecar/self-metrics-protobuf";
import { Store } from "../sidecar/store";
import { HDR_HIGHEST, keyOf, slotLowest } from "../wire/layout";
import { INGEST_PATH, type LatencyKind, type ServiceRef } from "../wire/payload";
import { validatePayload } from "../wire/validate";
import { makePayload, service } from "./support/payloads";
import {
  asText,
  decodeFamilies,
  isNative,
  parseTextFamilies,
  type DecodedFamily,
  type DecodedHistogram,
  type Family,
} from "./support/metric-families";

const PROMETHEUS_ACCEPT_PROTOBUF = SCRAPE_ACCEPT_NATIVE_HISTOGRAMS;
const PROMETHEUS_ACCEPT_TEXT = SCRAPE_ACCEPT;

/** The bucket of an integer latency, straight from the definition: the smallest i with v <= 2^(i/32). */
function bucketOf(v: number): number {
  const p = BigInt(v) ** BigInt(2 ** NATIVE_SCHEMA);
  let i = Math.max(0, Math.ceil(Math.log2(v) * 2 ** NATIVE_SCHEMA) - 2);
  while (p > 1n << BigInt(i)) i++;
  return i;
}

function collect(batches: Iterable<Buffer[]>, out: ChunkWriter): Buffer {
  const chunks: Buffer[] = [];
  for (const batch of batches) {
    for (const c of batch) {
      chunks.push(Buffer.from(c));
      out.recycle(c);
    }
  }
  return Buffer.concat([...chunks, ...out.finish()]);
}

/** Both renders of the store's latency families, at `now`, with small chunks so that families straddle them. */
function renderBoth(store: Store, now: number): { text: string; protobuf: Buffer } {
  const t = new ChunkWriter(4096);
  const p = new ChunkWriter(4096);
  return {
    text: collect(new LatencyFamiliesText(store).render(t, now), t).toString("utf8"),
    protobuf: collect(new LatencyFamiliesProtobuf(store).render(p, now), p),
  };
}

/** Native buckets as index → count, from spans and deltas. */
function nativeCounts(h: DecodedHistogram): Map<number, number> {
  const counts = new Map<number, number>();
  const deltas = h.positiveDelta ?? [];
  let index = 0;
  let count = 0;
  let d = 0;
  // The first offset is the first bucket's index; later ones skip empty buckets.
  for (const span of h.positiveSpan ?? []) {
    index += span.offset ?? 0;
    for (let k = 0; k < (span.length ?? 0); k++) {
      count += deltas[d++];
      counts.set(index++, count);
    }
  }
  assert.equal(d, deltas.length, "deltas beyond the spans");
  return counts;
}

/** What the text and the protobuf must agree on: every family but the native ones, which only protobuf has. */
function assertSameContent(
  text: string,
  protobuf: DecodedFamily[],
  skipValues: (name: string) => boolean = () => false,
) {
  const strip = (f: Family) => (skipValues(f.name) ? { ...f, samples: f.samples.map((s) => ({ ...s, value: 0 })) } : f);
  assert.deepStrictEqual(
    protobuf
      .filter((f) => !isNative(f))
      .map(asText)
      .map(strip),
    parseTextFamilies(text).map(strip),
  );
}

describe("native histogram buckets (schema 5)", () => {
  it("put every integer latency in the bucket whose bounds hold it, exactly", () => {
    for (let v = 1; v <= 70_000; v++) assert.equal(nativeIndex(v), bucketOf(v), `${v} ms`);
    for (let v = 70_000; v <= HDR_HIGHEST; v += 997) assert.equal(nativeIndex(v), bucketOf(v), `${v} ms`);
    for (let e = 0; e <= 31; e++) assert.equal(nativeIndex(2 ** e), e * 32, `2^${e} ms, an upper bound`);
  });

  it("hold a bucket's count beyond 32 bits, and keep it as the range grows", () => {
    const b = new NativeBuckets();
    b.add(100, 2 ** 32 - 1);
    b.add(100, 5);
    b.add(1, 1);
    b.add(50_000, 2);
    const at = (v: number) => b.counts[nativeIndex(v) - b.first];
    assert.deepEqual([at(100), at(1), at(50_000)], [2 ** 32 + 4, 1, 2]);
  });

  it("count a latency key in its own bucket: exact to 2047 ms and at slots' lowest values, else within 0.1%", () => {
    let straddling = 0;
    for (let s = 0; slotLowest(s + 1) <= HDR_HIGHEST; s++) {
      const lowest = slotLowest(s);
      const highest = slotLowest(s + 1) - 1;
      // A slot's keys: its lowest value alone, and the rest of the slot counted at the rest's lowest.
      if (highest <= lowest + 1) continue;
      assert.equal(keyOf(highest), lowest + 1);
      if (nativeIndex(lowest + 1) === nativeIndex(highest)) continue;
      assert.ok(lowest >= 2048, `slot of ${lowest} ms straddles a bucket`);
      const bound = 2 ** (nativeIndex(lowest + 1) / 32);
      assert.ok(highest / bound - 1 <= 1 / 1024, `slot ${lowest}-${highest} ms is 0.1% past ${bound}`);
      straddling++;
    }
    // One slot per bucket boundary from 4096 ms to an hour (32 per octave), fewer where a boundary falls
    // between two slots.
    assert.ok(straddling > 0 && straddling <= 32 * Math.log2(HDR_HIGHEST / 2048), String(straddling));
  });
});

describe("/metrics in protobuf, decoded, equals the text", () => {
  const now = 1_700_000_000_000;
  const kinds: LatencyKind[] = ["upstream", "request"];
  const services: ServiceRef[] = [
    service("1", "default.echo.80", ["k8s-name:echo", "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"]),
    service("2", "shop.cart.8080"),
    service("3", 'ünï"cödé\\\n.80'),
    service("4", "legacy"),
  ];
  const observation = fc.tuple(
    fc.integer({ min: 0, max: services.length - 1 }),
    fc.constantFrom(...kinds),
    fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2047 }), fc.integer({ min: 2048, max: 4 * HDR_HIGHEST })),
  );

  it("for every latency family, and the native family holds each latency in its bucket", () => {
    fc.assert(
      fc.property(fc.array(observation, { minLength: 1, maxLength: 300 }), (obs) => {
        const store = new Store({
          boundaries: [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000],
          mapping: undefined,
          windowMs: 60_000,
          maxSeries: 100,
          idleMs: 600_000,
        });
        store.apply(validatePayload(makePayload(obs.map(([s, k, ms]) => [services[s], k, ms]))), now);
        // Now, and once the window is empty (NaN quantiles).
        for (const at of [now, now + 120_000]) {
          const { text, protobuf } = renderBoth(store, at);
          const decoded = decodeFamilies(protobuf);
          assertSameContent(text, decoded);
          for (const kind of kinds) {
            const family = store.families.get(kind);
            const native = decoded.find((f) => f.name === `kong_${kind}_latency_ms_native`);
            assert.equal(native?.metric.length ?? 0, family?.size ?? 0, kind);
            for (const [i, series] of [...(family?.values() ?? [])].entries()) {
              const h = native!.metric[i].histogram!;
              assert.deepEqual(
                Object.fromEntries(native!.metric[i].label!.map((l) => [l.name, l.value])),
                series.labels,
              );
              assert.equal(h.schema, NATIVE_SCHEMA);
              assert.equal(h.zeroThreshold, ZERO_THRESHOLD);
              assert.equal(h.sampleCount, series.count);
              assert.equal(h.sampleSum, series.sum);
              const mine = obs.filter(([s, k]) => k === kind && series.labels.kong_service === services[s].name);
              assert.equal(h.zeroCount ?? 0, mine.filter(([, , ms]) => ms === 0).length);
              const counts = nativeCounts(h);
              // Exact below 2048 ms; above, a slot's lowest value stands for it (see the test above).
              const expected = new Map<number, number>();
              for (const [, , ms] of mine) {
                if (ms === 0) continue;
                const v = keyOf(ms);
                expected.set(bucketOf(v), (expected.get(bucketOf(v)) ?? 0) + 1);
              }
              assert.deepEqual(new Map([...counts].filter(([, c]) => c > 0)), expected);
            }
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  it("for families larger than the encoder's 64 KiB scratch chunks", () => {
    const store = new Store({
      boundaries: [100, 1000],
      mapping: undefined,
      windowMs: 60_000,
      maxSeries: 1000,
      idleMs: 1,
    });
    const many = Array.from({ length: 600 }, (_, i) => service(String(i), `team.svc-${i}.80`, ["k8s-name:x"]));
    store.apply(
      validatePayload(
        makePayload(
          many.flatMap(
            (svc, i) =>
              [
                [svc, "upstream", i + 1],
                [svc, "upstream", 3 * i + 5],
              ] as [ServiceRef, LatencyKind, number][],
          ),
        ),
      ),
      now,
    );
    const { text, protobuf } = renderBoth(store, now);
    assert.ok(protobuf.length > 3 * 64 * 1024, String(protobuf.length));
    assertSameContent(text, decodeFamilies(protobuf));
  });

  it("for the sidecar's own metrics (prom-client): counters, gauges, histograms, labels and all", async () => {
    const registry = new Registry();
    new Counter({ name: "a_total", help: "a\\b\nc", labelNames: ["k"], registers: [registry] }).inc({ k: 'x"y' }, 3);
    new Gauge({ name: "g", help: "g", registers: [registry] }).set(NaN);
    const h = new Histogram({
      name: "h_seconds",
      help: "h",
      labelNames: ["kind"],
      buckets: [0.001, 1],
      registers: [registry],
    });
    h.observe({ kind: "major" }, 0.5);
    h.observe({ kind: "minor" }, 2);
    new Histogram({ name: "empty", help: "never observed", buckets: [1], registers: [registry] });
    const out = new ChunkWriter(64);
    await writeSelfMetrics(out, registry);
    assertSameContent(await registry.metrics(), decodeFamilies(Buffer.concat(out.finish())));
  });
});

describe("content negotiation on Accept", () => {
  it("serves protobuf only when it is the client's first choice", () => {
    const delimited = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
    assert.equal(prefersProtobuf(PROMETHEUS_ACCEPT_PROTOBUF), true);
    assert.equal(prefersProtobuf(delimited), true);
    assert.equal(prefersProtobuf(`text/plain;q=0.5, ${delimited.replace(/;/g, "; ")};q=0.7`), true);
    assert.equal(
      prefersProtobuf(
        `application/vnd.google.protobuf; proto="io.prometheus.client.MetricFamily"; encoding="delimited"`,
      ),
      true,
    );
    for (const accept of [
      undefined,
      "",
      "*/*",
      PROMETHEUS_ACCEPT_TEXT,
      `text/plain, ${delimited}`,
      `${delimited};q=0.5,text/plain`,
      `${delimited};q=0`,
      delimited.replace("delimited", "text"),
      delimited.replace("MetricFamily", "Other"),
      `${delimited};q=bad`,
    ])
      assert.equal(prefersProtobuf(accept), false, String(accept));
  });
});

describe("GET /metrics of the real sidecar, by Accept", function () {
  this.timeout(30_000);
  let exp: ExporterProcess;

  before(async () => {
    exp = await startExporter(["--metrics-address", "127.0.0.1:0", "--ingest-address", "127.0.0.1:0"]);
    const payload = makePayload([
      [service("1", "default.echo.80", ["k8s-name:echo", "k8s-namespace:default"]), "upstream", 102],
      [service("1", "default.echo.80", ["k8s-name:echo", "k8s-namespace:default"]), "upstream", 0],
      [service("2", "legacy"), "upstream", 5000],
    ]);
    const res = await request(`${exp.ingestUrl}${INGEST_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
    });
    assert.equal(res.statusCode, 200, await res.body.text());
  });

  after(() => exp?.stop());

  const get = async (accept?: string, method: "GET" | "HEAD" = "GET") => {
    const res = await request(`${exp.metricsUrl}/metrics`, { method, headers: accept ? { accept } : {} });
    return { type: res.headers["content-type"], body: Buffer.from(await res.body.arrayBuffer()) };
  };

  it("answers Prometheus with native histograms on in protobuf, equal to the text it serves everyone else", async () => {
    const proto = await get(PROMETHEUS_ACCEPT_PROTOBUF);
    const text = await get(PROMETHEUS_ACCEPT_TEXT);
    assert.equal(proto.type, PROTOBUF_CONTENT_TYPE);
    assert.equal(text.type, TEXT_CONTENT_TYPE);
    assert.deepEqual((await get()).type, TEXT_CONTENT_TYPE);
    const decoded = decodeFamilies(proto.body);
    assert.deepEqual(
      decoded.filter(isNative).map((f) => [f.name, f.metric.length]),
      [["kong_upstream_latency_ms_native", 2]],
    );
    // The runtime's own gauges and counters move between two requests: their values are not compared.
    assertSameContent(text.body.toString("utf8"), decoded, (name) => /^latency_exporter_(process|nodejs)_/.test(name));
  });

  it("answers HEAD with the negotiated type and no body", async () => {
    const head = await get(PROMETHEUS_ACCEPT_PROTOBUF, "HEAD");
    assert.equal(head.type, PROTOBUF_CONTENT_TYPE);
    assert.equal(head.body.length, 0);
  });
});
