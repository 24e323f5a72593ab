import { strict as assert } from "node:assert";
import fc from "fast-check";
import { request } from "undici";
import { INGEST_PATH } from "../wire/payload";
import { fetchText, startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { makePayload, service } from "./support/payloads";
import { rawExchange, type RawAnswer } from "./support/raw-http";
import { fuzzRequest, type FuzzRequest } from "./support/raw-requests";

const SEED = Number(process.env.FUZZ_SEED ?? 1102);
const REQUESTS = 5_000;
const BATCH = 250;
const CONCURRENCY = 16;
/** Past the exporter's --request-timeout (1 s, checked every 0.5 s): a stalled request is cut off before. */
const ANSWER_TIMEOUT_MS = 3_000;

const echo = service("33333333-3333-4333-8333-333333333333", "default.echo.80", [
  "k8s-name:echo",
  "k8s-namespace:default",
  "k8s-kind:Service",
]);

async function mapConcurrently<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

function shown(r: FuzzRequest): string {
  return `${r.listener} ${r.mode} ${JSON.stringify(r.bytes.toString("latin1").slice(0, 200))}`;
}

describe("raw HTTP to both latency-exporter listeners", function () {
  this.timeout(120_000);
  let exp: ExporterProcess;
  let ports: Record<FuzzRequest["listener"], number>;
  let kongBefore: string;

  const kongLines = async () =>
    (await fetchText(`${exp.metricsUrl}/metrics`))
      .split("\n")
      .filter((l) => l.startsWith("kong_"))
      .join("\n");

  const send = (listener: FuzzRequest["listener"], text: string): Promise<RawAnswer> =>
    rawExchange(ports[listener], Buffer.from(text), "end", ANSWER_TIMEOUT_MS);

  /** The process is up, healthy, and serves the same latencies as before. */
  const assertServing = async (after: string) => {
    assert.ok(
      exp.child.exitCode === null && exp.child.signalCode === null,
      `the exporter exited after ${after}:\n${exp.logs().slice(-3000)}`,
    );
    assert.equal(await fetchText(`${exp.metricsUrl}/healthz`), "ok\n");
    assert.equal(await kongLines(), kongBefore, `kong_* lines of /metrics changed after ${after}`);
  };

  before(async () => {
    exp = await startExporter([
      "--metrics-address",
      "127.0.0.1:0",
      "--ingest-address",
      "127.0.0.1:0",
      "--request-timeout",
      "1s",
      // The percentiles must not move while the test runs.
      "--percentile-window",
      "1h",
    ]);
    ports = { metrics: Number(new URL(exp.metricsUrl).port), ingest: Number(new URL(exp.ingestUrl).port) };
    const res = await request(`${exp.ingestUrl}${INGEST_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(makePayload([[echo, "upstream", 42]], { source: "fuzz", seq: 1 })),
    });
    assert.equal(res.statusCode, 200, await res.body.text());
    kongBefore = await kongLines();
    assert.match(kongBefore, /^kong_upstream_latency_ms_count\{.*\} 1$/m);
  });
  after(async () => {
    await exp?.stop();
  });

  for (const listener of ["metrics", "ingest"] as const) {
    it(`answers GET // on the ${listener} listener with a 404 naming the path`, async () => {
      const a = await send(listener, "GET // HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.equal(a.status, 404, a.text);
      assert.match(a.text, /no such path \\"\/\/\\"/);
      await assertServing("GET //");
    });
  }

  it("answers a malformed %-escape, an asterisk-form and a NUL in the target with a 400 naming it", async () => {
    for (const [listener, target, message] of [
      ["metrics", "/%zz", /malformed %-escape \\"%zz\\"/],
      ["ingest", "/v1/ingest?x=%4", /malformed %-escape \\"%4\\"/],
      ["metrics", "*", /request target \\"\*\\" is neither a path nor an http URL/],
      ["ingest", "*", /request target \\"\*\\" is neither a path nor an http URL/],
      ["metrics", "/\0", /malformed HTTP request: Invalid char/],
      ["ingest", "/v1/ingest\0", /malformed HTTP request: Invalid char/],
    ] as const) {
      const a = await send(listener, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal(a.status, 400, `${listener} ${JSON.stringify(target)}: ${a.text}`);
      assert.match(a.text, message);
    }
    await assertServing("malformed targets");
  });

  it("serves an absolute-form target as its path", async () => {
    const health = await send("metrics", "GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(health.status, 200, health.text);
    const ingest = await send(
      "ingest",
      `POST http://x${INGEST_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    );
    assert.equal(ingest.status, 400, ingest.text);
    assert.match(ingest.text, /must have required property 'version'/);
    await assertServing("absolute-form targets");
  });

  it(`stays up and serves the same latencies through ${REQUESTS} generated raw requests`, async () => {
    console.log(`      seed ${SEED} (set FUZZ_SEED to change it)`);
    const requests = fc.sample(fuzzRequest, { numRuns: REQUESTS, seed: SEED });
    const seen = new Map<string, number>();
    for (let from = 0; from < requests.length; from += BATCH) {
      const batch = requests.slice(from, from + BATCH);
      const answers = await mapConcurrently(batch, CONCURRENCY, (r) =>
        rawExchange(ports[r.listener], r.bytes, r.mode, ANSWER_TIMEOUT_MS),
      );
      answers.forEach((a, i) => {
        const key = `${a.status ?? "no answer"}${a.timedOut ? " (timed out)" : ""}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        assert.ok(a.status === undefined || a.status < 500, `${shown(batch[i])}\ngot ${a.text.slice(0, 500)}`);
      });
      await assertServing(`requests ${from} to ${from + batch.length - 1}`);
    }
    console.log(`      answers: ${[...seen].map(([k, n]) => `${k} x${n}`).join(", ")}`);
    assert.doesNotMatch(exp.logs(), /"level":50/, "an error (a bug of ours) was logged");
  });
});
