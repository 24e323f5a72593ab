import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../devstack/kong";
import { parseDeclarative } from "../devstack/nginx/declarative";
import { resolveConfig } from "../devstack/nginx/gateway-config";

const resolve = (file: string) =>
  resolveConfig(parseDeclarative(readFileSync(join(REPO_ROOT, "kong-config", "declarative", file), "utf8"), file), {
    upstreamUrl: "http://127.0.0.1:8080",
    pluginServer: { plugin: "upstream-latency", socket: "/tmp/upstream-latency.sock" },
  });

const scopes = (c: ReturnType<typeof resolve>) =>
  c.plugins.map((p) => (p.conf.route_id ? "route" : p.conf.service_id ? "service" : "global"));

describe("the nginx gateway's reading of kong-config/declarative", () => {
  it("runs the shipped files: the plugin on each route, on the service, and globally", () => {
    assert.deepEqual(scopes(resolve("route.yaml")), ["route", "route"]);
    assert.deepEqual(scopes(resolve("service.yaml")), ["service"]);
    const global = resolve("global.yaml");
    assert.deepEqual(scopes(global), ["global"]);
    assert.deepEqual(global.plugins[0].conf.latencies, ["upstream", "request", "kong"]);
    assert.deepEqual(
      global.routes.map((r) => [r.name, r.paths, r.strip_path]),
      [
        ["echo", ["/echo"], true],
        ["command", ["/command"], true],
      ],
    );
    const echo = global.services[0];
    assert.equal(echo.entity.name, "echo");
    assert.equal(echo.entity.port, 1027);
    assert.deepEqual(echo.target, { host: "127.0.0.1", port: 8080 });
  });

  it("gives the same ids to the same file, as DB-less Kong does", () => {
    assert.deepEqual(resolve("route.yaml"), resolve("route.yaml"));
  });

  it("refuses what it does not run, naming where", () => {
    const cases: Array<[string, RegExp]> = [
      ['_format_version: "3.0"\nconsumers: []', /\(top\)\.consumers: not supported/],
      ['_format_version: "3.0"\nservices: [{ name: s, url: "tcp://x:1" }]', /services\[0\]\.url: "tcp:\/\/x:1" is not/],
      [
        '_format_version: "3.0"\nservices: [{ name: s, url: "http://x", routes: [{ name: r, paths: [x] }] }]',
        /paths: "x" must start with \//,
      ],
      [
        '_format_version: "3.0"\nservices: [{ name: s, url: "http://x", routes: [{ name: r, paths: [] }] }]',
        /at least one path/,
      ],
      ["services: []", /_format_version: must be a non-empty string/],
    ];
    for (const [yaml, message] of cases) assert.throws(() => parseDeclarative(yaml, "t.yaml"), message, yaml);
    const unknown = parseDeclarative('_format_version: "3.0"\nplugins: [{ name: rate-limiting }]');
    assert.throws(
      () => resolveConfig(unknown, { upstreamUrl: "http://127.0.0.1:1" }),
      /plugin rate-limiting: neither lua-metrics nor served by the plugin server/,
    );
  });
});
