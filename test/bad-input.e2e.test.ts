import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { Pool } from "undici";
import { INGEST_PATH, type IngestPayload } from "../wire/payload";
import { writeValues } from "../wire/sparse";
import { EXPORTER_CLI, fetchText, startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { makePayload, service } from "./support/payloads";
import { parseSamples, select } from "../devstack/prometheus/prom-text";
import { findExecutable, INSTALL_PROMETHEUS, requirement } from "../devstack/requirement";

const echo = service("22222222-2222-4222-8222-222222222222", "default.echo.80", [
  "k8s-name:echo",
  "k8s-namespace:default",
  "k8s-kind:Service",
]);
const base = makePayload(
  [
    [echo, "upstream", 12],
    [echo, "upstream", 3000],
    [echo, "request", 20],
  ],
  { source: "fuzz", seq: 1 },
);

/** Ways to break a valid payload, each invalid by construction. */
const breakers: fc.Arbitrary<(p: IngestPayload) => string | Buffer>[] = [
  fc.jsonValue().map((v) => () => JSON.stringify(v)),
  fc.uint8Array({ maxLength: 200 }).map((b) => () => Buffer.from(b)),
  fc.nat().map((n) => (p) => {
    const text = JSON.stringify(p);
    return text.slice(0, n % text.length);
  }),
  fc.constantFrom("version", "source", "seq", "dropped", "services").map((k) => (p) => {
    const q: Record<string, unknown> = { ...p };
    delete q[k];
    return JSON.stringify(q);
  }),
  fc
    .tuple(
      fc.constantFrom("version", "source", "seq", "dropped", "services"),
      fc.oneof(fc.string(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.nat(), { minLength: 1 })),
    )
    .map(([k, v]) => (p) => {
      // A generated value may happen to be valid (seq 3, version 1); make sure it is not.
      const bad =
        (k === "seq" || k === "version") && typeof v === "number" && Number.isSafeInteger(v) && v >= 1 ? -v : v;
      return JSON.stringify({ ...p, [k]: k === "source" && typeof bad === "string" ? `${bad} bad/space` : bad });
    }),
  fc.string({ minLength: 1 }).map((k) => (p) => JSON.stringify({ ...p, [`x${k}`]: 1 })),
  fc.integer({ min: 1, max: 1_000 }).map((n) => (p) => {
    const q = structuredClone(p);
    q.services[0].latencies.upstream!.count += n;
    return JSON.stringify(q);
  }),
  fc.tuple(fc.constantFrom(4098, 5002, 3_600_001, 2 ** 40), fc.boolean()).map(([key, first]) => (p) => {
    // A latency that is no key of the layout, with the right count, or values that are not base64.
    const q = structuredClone(p);
    const d = q.services[0].latencies.upstream!;
    d.values = first ? writeValues([key], [d.count], 0, 1) : `${d.values.slice(0, -4)}!${key}`;
    return JSON.stringify(q);
  }),
  fc.constantFrom("name", "host", "tags", "id").map((k) => (p) => {
    const q = structuredClone(p) as unknown as { services: { service: Record<string, unknown> }[] };
    q.services[0].service[k] = k === "tags" ? Array.from({ length: 65 }, () => "t") : "n".repeat(9000);
    return JSON.stringify(q);
  }),
  fc.constantFrom(-1, 1.5, "3", null).map((v) => (p) => {
    const q = structuredClone(p) as unknown as { services: { latencies: { upstream: Record<string, unknown> } }[] };
    q.services[0].latencies.upstream.sum = v;
    return JSON.stringify(q);
  }),
];

describe("bad input to the real latency-exporter", function () {
  this.timeout(120_000);
  let exp: ExporterProcess;
  let pool: Pool;
  before(async () => {
    exp = await startExporter([
      "--metrics-address",
      "127.0.0.1:0",
      "--ingest-address",
      "127.0.0.1:0",
      "--max-body-bytes",
      "1000000",
      "--request-timeout",
      "2s",
      "--log-level",
      "info",
    ]);
    pool = new Pool(exp.ingestUrl, { connections: 4 });
  });
  after(async () => {
    await pool?.close();
    await exp?.stop();
  });

  const histograms = async () =>
    (await fetchText(`${exp.metricsUrl}/metrics`))
      .split("\n")
      .filter((l) => l.startsWith("kong_"))
      .join("\n");

  it("answers 10,000 malformed, truncated, oversized and type-confused payloads with a 4xx naming the problem, and changes nothing", async () => {
    const applied = await pool.request({
      path: INGEST_PATH,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(base),
    });
    assert.equal(applied.statusCode, 200, await applied.body.text());
    const before = await histograms();
    await fc.assert(
      fc.asyncProperty(fc.oneof(...breakers), async (breaker) => {
        const res = await pool.request({
          path: INGEST_PATH,
          method: "POST",
          headers: { "content-type": "application/json" },
          body: breaker({ ...base, seq: 2 }),
        });
        const text = await res.body.text();
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, `status ${res.statusCode}: ${text}`);
        const error = (JSON.parse(text) as { error: string }).error;
        assert.ok(error.length > 5, `message "${error}"`);
      }),
      { numRuns: 10_000 },
    );
    assert.equal(await histograms(), before);
    assert.equal(await fetchText(`${exp.metricsUrl}/healthz`), "ok\n");
  });

  it("refuses an oversized body as soon as it exceeds the limit, without reading the rest", async () => {
    const url = new URL(exp.ingestUrl);
    let sent = 0;
    // A raw socket: an HTTP client would report the server's hang-up on the rest of the body (EPIPE)
    // rather than the answer that came before it.
    const answer = await new Promise<string>((resolve) => {
      let data = "";
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST ${INGEST_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
        );
        const chunk = Buffer.concat([Buffer.from("10000\r\n"), Buffer.alloc(0x10000, 32), Buffer.from("\r\n")]);
        // Up to 100 MB, unless the server answers (or hangs up) first.
        const pump = () => {
          while (sent < 100 * 1024 * 1024 && !socket.destroyed && !data) {
            sent += 0x10000;
            if (!socket.write(chunk)) return void socket.once("drain", pump);
          }
        };
        pump();
      });
      socket.on("data", (d: Buffer) => {
        data += d.toString();
        socket.destroy();
      });
      socket.on("error", () => undefined);
      socket.on("close", () => resolve(data));
    });
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1]);
    assert.equal(status, 413);
    assert.ok(sent < 50 * 1024 * 1024, `${sent} bytes sent before the refusal`);
  });

  it("cuts off a client that stalls in the middle of its body", async () => {
    const url = new URL(exp.ingestUrl);
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST ${INGEST_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"version":`,
        );
      });
      let data = "";
      socket.on("data", (d: Buffer) => (data += d.toString()));
      socket.on("close", () => resolve(data));
      setTimeout(() => socket.destroy(), 20_000).unref();
    });
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  describe("any service name or tag text", () => {
    const nasty = [
      'quote " and backslash \\ and newline \n end',
      'a",namespace="evil',
      "ünïcødé ✓ 服务",
      "\\",
      "x".repeat(5000),
    ];
    let text: string;
    before(async () => {
      const payload = makePayload(
        nasty.map((name, i): [ReturnType<typeof service>, "upstream", number] => [
          service(`n${i}`, name, [
            `k8s-name:${name.slice(0, 400)}`,
            `k8s-namespace:${name.slice(0, 400)}`,
            `k8s-kind:${name.slice(0, 400)}`,
          ]),
          "upstream",
          7,
        ]),
        { source: "nasty", seq: 1 },
      );
      const res = await pool.request({
        path: INGEST_PATH,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload),
      });
      assert.equal(res.statusCode, 200, await res.body.text());
      text = await fetchText(`${exp.metricsUrl}/metrics`);
    });

    it("is exported as one series each, with no label injected", () => {
      const samples = parseSamples(text);
      for (const name of nasty) {
        const found = select(samples, "kong_upstream_latency_ms_count", { kong_service: name });
        assert.equal(found.length, 1, `one series for ${JSON.stringify(name.slice(0, 40))}`);
        assert.notEqual(found[0].labels.namespace, "evil");
      }
    });

    it("is valid exposition for promtool check metrics", function () {
      const promtool = findExecutable("promtool");
      requirement(this, promtool ? undefined : "promtool is not on PATH", INSTALL_PROMETHEUS);
      const r = spawnSync(promtool!, ["check", "metrics"], { input: text, encoding: "utf8", timeout: 20_000 });
      // promtool parses first (exit 1 on any syntax error), then lints (exit 3). Allowed lints: Kong's metric
      // names, which the guide's adapter rule needs, carry a unit abbreviation; prom-client's default process
      // metrics name three gauges `_total`.
      const problems = `${r.stdout}${r.stderr}`
        .split("\n")
        .filter(
          (l) =>
            l.trim() &&
            !/metric names should not contain abbreviated units/.test(l) &&
            !/^latency_exporter_nodejs_active_\w+_total non-counter/.test(l),
        );
      assert.ok(r.status === 0 || r.status === 3, `promtool exit ${r.status}: ${r.stderr}`);
      assert.deepEqual(problems, []);
    });
  });
});

describe("a locked-down ingest", function () {
  this.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), "token-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "s3cret-token-0123456789\n");
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses to listen for ingest off loopback without a token, and accepts it with one", async () => {
    const r = spawnSync(
      process.execPath,
      [EXPORTER_CLI, "--ingest-address", "0.0.0.0:0", "--metrics-address", "127.0.0.1:0"],
      { encoding: "utf8", timeout: 10_000 },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /refusing to listen for ingest on 0\.0\.0\.0:0 without --ingest-token-file/);
    const exp = await startExporter([
      "--ingest-address",
      "0.0.0.0:0",
      "--metrics-address",
      "127.0.0.1:0",
      "--ingest-token-file",
      tokenFile,
    ]);
    await exp.stop();
  });

  it("requires the bearer token, and never logs or exports it", async () => {
    const exp = await startExporter([
      "--ingest-address",
      "127.0.0.1:0",
      "--metrics-address",
      "127.0.0.1:0",
      "--ingest-token-file",
      tokenFile,
    ]);
    try {
      const url = exp.ingestUrl.replace("0.0.0.0", "127.0.0.1");
      const post = async (authorization?: string) => {
        const { request } = await import("undici");
        const res = await request(`${url}${INGEST_PATH}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
          body: JSON.stringify(makePayload([[echo, "upstream", 5]], { source: "tok", seq: 1 })),
        });
        return { status: res.statusCode, text: await res.body.text() };
      };
      assert.equal((await post()).status, 401);
      assert.match((await post("Bearer wrong-token-0000000000")).text, /missing or wrong bearer token/);
      assert.equal((await post("Bearer s3cret-token-0123456789")).status, 200);
      const metrics = await fetchText(`${exp.metricsUrl}/metrics`);
      assert.doesNotMatch(metrics + exp.logs(), /s3cret/);
    } finally {
      await exp.stop();
    }
  });

  it("refuses a token file that is too short or missing, at start", () => {
    const short = join(dir, "short");
    writeFileSync(short, "abc");
    for (const [file, pattern] of [
      [short, /shorter than 16 characters/],
      [join(dir, "absent"), /cannot read the ingest token file/],
    ] as const) {
      const r = spawnSync(process.execPath, [EXPORTER_CLI, "--ingest-token-file", file], {
        encoding: "utf8",
        timeout: 10_000,
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, pattern);
    }
  });
});
