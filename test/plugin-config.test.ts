import { strict as assert } from "node:assert";
import { latencyMs } from "../plugin/handler";
import { DEFAULTS, KONG_SCHEMA, parseConfig, parseExporterUrl } from "../plugin/schema";

// README "The plugin": the configuration table's ranges and forms, and what is recorded.
describe("the plugin's configuration (plugin/schema.ts)", () => {
  it("fills in the table's defaults", () => {
    assert.deepEqual(parseConfig({}), DEFAULTS);
    assert.deepEqual(DEFAULTS, {
      exporter_url: "http://127.0.0.1:9543",
      flush_interval: 1,
      latencies: ["upstream"],
      max_services: 10_000,
    });
  });

  it("takes flush_interval from 0.1 to 60 s and max_services from 1 to 100,000, in its own check and Kong's", () => {
    for (const ok of [{ flush_interval: 0.1 }, { flush_interval: 60 }, { max_services: 1 }, { max_services: 100_000 }])
      assert.doesNotThrow(() => parseConfig(ok), JSON.stringify(ok));
    for (const [bad, message] of [
      [{ flush_interval: 0.09 }, /flush_interval must be >= 0.1 \(got 0.09\)/],
      [{ flush_interval: 60.5 }, /flush_interval must be <= 60/],
      [{ max_services: 0 }, /max_services must be >= 1/],
      [{ max_services: 100_001 }, /max_services must be <= 100000/],
      [{ latencies: [] }, /latencies must NOT have fewer than 1 items/],
      [{ exporter_token_file: "token" }, /exporter_token_file must be an absolute path/],
    ] as const)
      assert.throws(() => parseConfig(bad), message);
    const kong = Object.assign({}, ...KONG_SCHEMA) as Record<string, { between?: number[] }>;
    assert.deepEqual(kong.flush_interval.between, [0.1, 60]);
    assert.deepEqual(kong.max_services.between, [1, 100_000]);
  });

  it("ships to http://HOST:PORT or unix:/absolute/path, and nothing else", () => {
    assert.deepEqual(parseExporterUrl("http://127.0.0.1:9543"), { kind: "http", origin: "http://127.0.0.1:9543" });
    assert.deepEqual(parseExporterUrl("unix:/run/ingest.sock"), { kind: "unix", socketPath: "/run/ingest.sock" });
    assert.throws(() => parseExporterUrl("https://x:1"), /scheme must be http or unix/);
    assert.throws(() => parseExporterUrl("http://x:1/v1/ingest"), /give only scheme, host and port/);
  });

  it("records a latency that is a number >= 0, rounded to integer ms; -1 (not proxied) is not one", () => {
    assert.deepEqual([0, 12, 12.4, 12.6, -1, NaN, "12", null].map(latencyMs), [
      0,
      12,
      12,
      13,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});
