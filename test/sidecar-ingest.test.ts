import { strict as assert } from "node:assert";
import { request } from "undici";
import { INGEST_PATH } from "../wire/payload";
import { fetchText, startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { makePayload, service } from "./support/payloads";
import { parseSamples, value } from "../devstack/prometheus/prom-text";

async function post(url: string, body: string | Buffer, contentType = "application/json") {
  const res = await request(`${url}${INGEST_PATH}`, { method: "POST", headers: { "content-type": contentType }, body });
  return { status: res.statusCode, body: await res.body.text() };
}

const echo = service("11111111-1111-4111-8111-111111111111", "default.echo.80", [
  "k8s-name:echo",
  "k8s-namespace:default",
  "k8s-kind:Service",
  "k8s-version:v1",
]);

describe("latency-exporter ingest (real process)", () => {
  let exp: ExporterProcess;
  before(async () => {
    exp = await startExporter([
      "--metrics-address",
      "127.0.0.1:0",
      "--ingest-address",
      "127.0.0.1:0",
      "--max-body-bytes",
      "200000",
    ]);
  });
  after(async () => {
    await exp?.stop();
  });

  const histogramState = async () =>
    (await fetchText(`${exp.metricsUrl}/metrics`))
      .split("\n")
      .filter((l) => l.startsWith("kong_"))
      .join("\n");

  it("applies a payload once and acknowledges its duplicate without counting it", async () => {
    const p = makePayload(
      [
        [echo, "upstream", 20],
        [echo, "upstream", 100],
        [echo, "upstream", 5001],
      ],
      { source: "dup-test", seq: 1 },
    );
    const first = await post(exp.ingestUrl, JSON.stringify(p));
    assert.equal(first.status, 200, first.body);
    assert.deepEqual(JSON.parse(first.body), { status: "applied", seq: 1 });
    const again = await post(exp.ingestUrl, JSON.stringify(p));
    assert.equal(again.status, 200);
    assert.deepEqual(JSON.parse(again.body), { status: "duplicate", seq: 1 });

    const samples = parseSamples(await fetchText(`${exp.metricsUrl}/metrics`));
    const m = { kong_service: "default.echo.80" };
    assert.equal(value(samples, "kong_upstream_latency_ms_count", m), 3);
    assert.equal(value(samples, "kong_upstream_latency_ms_sum", m), 5121);
    assert.equal(value(samples, "kong_upstream_latency_ms_bucket", { ...m, le: "25" }), 1);
    assert.equal(value(samples, "kong_upstream_latency_ms_bucket", { ...m, le: "100" }), 2);
    assert.equal(value(samples, "kong_upstream_latency_ms_bucket", { ...m, le: "10000" }), 3);
    assert.equal(value(samples, "kong_upstream_latency_ms_bucket", { ...m, le: "+Inf" }), 3);
    assert.equal(value(samples, "latency_exporter_payloads_total", { result: "duplicate" }), 1);
  });

  it("refuses bad requests with a 4xx naming the problem and changes nothing", async () => {
    const before = await histogramState();
    const valid = makePayload([[echo, "upstream", 42]], { source: "bad-test", seq: 1 });
    const cases: Array<[string | Buffer, string, number, RegExp]> = [
      ["{", "application/json", 400, /body is not JSON/],
      [JSON.stringify({ ...valid, version: 9 }), "application/json", 400, /\/version: must be one of 1, 2/],
      [
        JSON.stringify({
          ...valid,
          services: [
            {
              ...valid.services[0],
              latencies: { upstream: { count: 2, sum: 84, values: valid.services[0].latencies.upstream!.values } },
            },
          ],
        }),
        "application/json",
        400,
        /holds 1 values but count says 2/,
      ],
      [JSON.stringify(valid), "text/plain", 415, /content-type must be application\/json/],
      [Buffer.alloc(300_000, 32), "application/json", 413, /exceeds the limit of 200000 bytes/],
    ];
    for (const [body, type, status, pattern] of cases) {
      const res = await post(exp.ingestUrl, body, type);
      assert.equal(res.status, status, `${res.status} ${res.body}`);
      assert.match((JSON.parse(res.body) as { error: string }).error, pattern);
    }
    assert.equal(await histogramState(), before);
    const wrongPath = await request(`${exp.ingestUrl}/other`, { method: "POST", body: "{}" });
    assert.equal(wrongPath.statusCode, 404);
    await wrongPath.body.text();
  });

  it("serves health and readiness", async () => {
    assert.equal(await fetchText(`${exp.metricsUrl}/healthz`), "ok\n");
    assert.equal(await fetchText(`${exp.metricsUrl}/readyz`), "ready\n");
  });
});

describe("latency-exporter command line", () => {
  it("refuses a bad flag or environment value with a clear message and a non-zero exit", async () => {
    for (const [args, env, pattern] of [
      [["--metrics-address", "nope"], {}, /--metrics-address.*"nope": expected HOST:PORT/],
      [["--buckets", "25,10"], {}, /boundaries must increase: 10 follows 25/],
      [[], { LATENCY_EXPORTER_INGEST_ADDRESS: "unix:relative.sock" }, /must be absolute/],
      [["--log-level", "loud"], {}, /Allowed choices are fatal, error/],
    ] as Array<[string[], Record<string, string>, RegExp]>) {
      const { spawnSync } = await import("node:child_process");
      const { EXPORTER_CLI } = await import("../devstack/process/exporter-process");
      const r = spawnSync(process.execPath, [EXPORTER_CLI, ...args], {
        env: { ...process.env, ...env },
        encoding: "utf8",
        timeout: 10_000,
      });
      assert.notEqual(r.status, 0, `exit ${r.status} for ${args.join(" ")}`);
      assert.match(r.stderr, pattern);
    }
  });
});
