import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { waitFor } from "../devstack/process/wait";
import {
  answerPdkCall,
  API_DISABLED,
  cjsonEncode,
  dumpAllPlugins,
  fixturePluginDir,
  KongEmulator,
  makeLogContext,
  makeService,
  PluginServer,
  RpcConnection,
  RpcPipelineError,
  RpcServerError,
  StartInstanceError,
  type SavedLogContext,
} from "../devstack/kong";

const CALL_TIMEOUT_MS = 5_000;

async function stopServer(server: PluginServer | undefined): Promise<void> {
  if (!server) return;
  try {
    await server.stop("SIGTERM", 3_000);
  } catch {
    server.kill();
  }
}

/** A raw connection, to play steps by hand or look at the server's instances. */
async function withConnection<T>(socketPath: string, f: (c: RpcConnection) => Promise<T>): Promise<T> {
  const conn = await RpcConnection.connect(socketPath, CALL_TIMEOUT_MS);
  try {
    return await f(conn);
  } finally {
    conn.close();
  }
}

describe("Kong emulator against the real kong-js-pluginserver", function () {
  this.timeout(30_000);

  describe("--dump-all-plugins", () => {
    let brokenDir: string | undefined;

    after(() => {
      if (brokenDir) fs.rmSync(brokenDir, { recursive: true, force: true });
    });

    for (const name of ["floor", "serialize-parse"]) {
      it(`prints clean JSON with the one plugin of ${name}/`, async () => {
        const { stdout, plugins } = await dumpAllPlugins(fixturePluginDir(name));
        assert.deepEqual(JSON.parse(stdout), plugins);
        assert.equal(plugins.length, 1);
        assert.equal(plugins[0]?.Name, name);
        assert.deepEqual(plugins[0]?.Phases, ["log"]);
      });
    }

    it("fails clearly when a load warning pollutes stdout", async () => {
      brokenDir = fs.mkdtempSync(path.join(os.tmpdir(), "kong-broken-"));
      fs.writeFileSync(path.join(brokenDir, "broken.js"), 'throw new Error("boom");\n');
      await assert.rejects(dumpAllPlugins(brokenDir), /stdout is not clean JSON/);
    });
  });

  describe("with the floor plugin", () => {
    let server: PluginServer | undefined;
    let kong: KongEmulator;

    before(async () => {
      server = await PluginServer.start({ pluginsDir: fixturePluginDir("floor") });
      kong = new KongEmulator({ socketPath: server.socketPath, pluginName: "floor", callTimeoutMs: CALL_TIMEOUT_MS });
    });

    after(async () => {
      kong?.close();
      await stopServer(server);
    });

    const ctx = makeLogContext({ service: makeService(), proxyMs: 25 });

    it("runs a log event: exactly one get_ctx call, answered by Step, then ret", async () => {
      kong.configurePlugin({ id: "floor-one" });
      const trace = await kong.log(0, "floor-one", ctx);
      assert.deepEqual(trace.pdkCalls, ["kong.nginx.get_ctx"]);
      assert.deepEqual(trace.steps, ["plugin.Step"]);
      assert.deepEqual(trace.errors, []);
    });

    it("starts one instance per worker for the same configuration, and reuses it", async () => {
      kong.configurePlugin({ id: "floor-workers" });
      const a = await kong.log(0, "floor-workers", ctx);
      const b = await kong.log(1, "floor-workers", ctx);
      const again = await kong.log(0, "floor-workers", ctx);
      assert.notEqual(a.instanceId, b.instanceId);
      assert.equal(again.instanceId, a.instanceId);
      const starts = kong.instanceChanges.filter((c) => c.pluginId === "floor-workers");
      assert.deepEqual(
        starts.map((c) => [c.worker, c.kind, c.id]),
        [
          [0, "start", a.instanceId],
          [1, "start", b.instanceId],
        ],
      );
    });

    it("replaces the instance on a new __seq__ and closes the old one", async () => {
      const first = kong.configurePlugin({ id: "floor-seq", config: {} });
      const before = await kong.log(0, "floor-seq", ctx);
      const second = kong.configurePlugin({ id: "floor-seq", config: {} });
      assert.ok(second.__seq__ > first.__seq__);
      const after = await kong.log(0, "floor-seq", ctx);
      assert.notEqual(after.instanceId, before.instanceId);
      assert.deepEqual(kong.runningInstance(0, "floor-seq")?.seq, second.__seq__);
      const close = kong.instanceChanges.find((c) => c.pluginId === "floor-seq" && c.kind === "close");
      assert.deepEqual(close, { worker: 0, pluginId: "floor-seq", kind: "close", id: before.instanceId });
      await withConnection((server as PluginServer).socketPath, async (c) => {
        await assert.rejects(c.call("plugin.InstanceStatus", before.instanceId, CALL_TIMEOUT_MS), /no plugin instance/);
        const status = (await c.call("plugin.InstanceStatus", after.instanceId, CALL_TIMEOUT_MS)) as { Id: number };
        assert.equal(status.Id, after.instanceId);
      });
    });

    it("starts a new instance and retries when the server has lost the instance", async () => {
      kong.configurePlugin({ id: "floor-lost" });
      const first = await kong.log(0, "floor-lost", ctx);
      await withConnection((server as PluginServer).socketPath, (c) =>
        c.call("plugin.CloseInstance", first.instanceId, CALL_TIMEOUT_MS),
      );
      const trace = await kong.log(0, "floor-lost", ctx);
      assert.deepEqual(trace.errors, [`no plugin instance #${first.instanceId}`]);
      assert.deepEqual(trace.pdkCalls, ["kong.nginx.get_ctx"]);
      assert.notEqual(trace.instanceId, first.instanceId);
    });

    it("rejects with the server's error text when StartInstance fails", async () => {
      const wrong = new KongEmulator({
        socketPath: (server as PluginServer).socketPath,
        pluginName: "no-such-plugin",
        callTimeoutMs: CALL_TIMEOUT_MS,
      });
      try {
        wrong.configurePlugin({ id: "wrong" });
        const err = await wrong.log(0, "wrong", ctx).then(
          () => assert.fail("log() resolved"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof StartInstanceError);
        assert.equal(err.serverMessage, "no-such-plugin not initizlied");
        assert.equal(err.message, "starting instance: no-such-plugin not initizlied");
        assert.equal(wrong.runningInstance(0, "wrong"), undefined);
      } finally {
        wrong.close();
      }
    });

    it("completes 200 concurrent events, one request in flight per connection", async () => {
      kong.configurePlugin({ id: "floor-many" });
      // A pipelined request would throw RpcPipelineError out of log(), failing Promise.all.
      const traces = await Promise.all(Array.from({ length: 200 }, (_, i) => kong.log(i % 2, "floor-many", ctx)));
      for (const t of traces) {
        assert.deepEqual(t.pdkCalls, ["kong.nginx.get_ctx"]);
        assert.deepEqual(t.errors, []);
      }
      const stats = [kong.poolStats(0), kong.poolStats(1)];
      assert.ok(
        stats.every((s) => s.peakInUse > 1 && s.inUse === 0),
        JSON.stringify(stats),
      );
      assert.ok(server?.running, server?.output());
      assert.doesNotMatch(server.output(), /Extra \d+ byte/);
    });

    it("refuses a second request on a connection while one is in flight", async () => {
      await withConnection((server as PluginServer).socketPath, async (c) => {
        const first = c.call("plugin.InstanceStatus", 999_999, CALL_TIMEOUT_MS);
        assert.throws(() => c.call("plugin.InstanceStatus", 999_998, CALL_TIMEOUT_MS), RpcPipelineError);
        await assert.rejects(
          first,
          (e: unknown) => e instanceof RpcServerError && /no plugin instance #999999/.test(e.message),
        );
        // The refused call was never sent: the connection still works.
        await assert.rejects(c.call("plugin.InstanceStatus", 999_997, CALL_TIMEOUT_MS), /#999997/);
      });
    });

    it("on a StepError the plugin's await rejects and the event still ends with ret", async () => {
      kong.configurePlugin({ id: "floor-steperror" });
      const { instanceId } = await kong.log(0, "floor-steperror", ctx);
      await withConnection((server as PluginServer).socketPath, async (c) => {
        const event = (await c.call(
          "plugin.HandleEvent",
          { InstanceId: instanceId, EventName: "log" },
          CALL_TIMEOUT_MS,
        )) as {
          EventId: number;
          Data: { Method: string };
        };
        assert.equal(event.Data.Method, "kong.nginx.get_ctx");
        const end = (await c.call(
          "plugin.StepError",
          { EventId: event.EventId, Data: API_DISABLED },
          CALL_TIMEOUT_MS,
        )) as {
          Data: unknown;
        };
        assert.equal(end.Data, "ret");
      });
      // The server's log reaches us through a pipe, possibly after the reply.
      await waitFor("the server's warning", () =>
        /unhandled exception in floor\.log .*API disabled in the current context/.test(
          (server as PluginServer).output(),
        )
          ? true
          : undefined,
      );
    });
  });

  describe("with the serialize-parse plugin", () => {
    let server: PluginServer | undefined;
    let kong: KongEmulator;

    before(async () => {
      server = await PluginServer.start({ pluginsDir: fixturePluginDir("serialize-parse") });
      kong = new KongEmulator({
        socketPath: server.socketPath,
        pluginName: "serialize-parse",
        callTimeoutMs: CALL_TIMEOUT_MS,
      });
      kong.configurePlugin({ id: "sp", config: { report: true } });
    });

    after(async () => {
      kong?.close();
      await stopServer(server);
    });

    it("gets kong.log.serialize() as a JSON string and parses it", async () => {
      const service = makeService({ name: "default.echo.80" });
      const proxied = await kong.log(0, "sp", makeLogContext({ service, proxyMs: 37 }));
      const direct = await kong.log(1, "sp", makeLogContext({ service, status: 401 }));
      for (const t of [proxied, direct]) {
        assert.deepEqual(t.pdkCalls, ["kong.log.serialize", "kong.log.info"]);
        assert.deepEqual(t.errors, []);
      }
      const seen = [proxied, direct].map(
        (t) => JSON.parse(t.pluginLogs[0]?.message ?? "null") as Record<string, unknown>,
      );
      assert.deepEqual([seen[0]?.proxy, seen[0]?.service], [37, "default.echo.80"]);
      assert.deepEqual([seen[1]?.proxy, seen[1]?.service], [-1, "default.echo.80"]);
      assert.ok((seen[0]?.bytes as number) > 2_000 && (seen[0]?.bytes as number) < 3_100, String(seen[0]?.bytes));
      assert.doesNotMatch((server as PluginServer).output(), /unhandled exception/);
    });
  });

  describe("Kong's answers to PDK calls in the log timer", () => {
    const service = makeService();
    const ctx = makeLogContext({ service, proxyMs: 12, kongMs: 3, receiveMs: 1, requestMs: 15 });
    const saved: SavedLogContext = { ...ctx, pluginId: "plugin-1" };
    const ask = (Method: string, ...Args: unknown[]) => answerPdkCall(saved, { Method, Args });

    it("answers from the saved request, with Kong's typed step methods", () => {
      assert.deepEqual(ask("kong.nginx.get_ctx", "KONG_WAITING_TIME"), { step: "plugin.Step", data: 12 });
      assert.deepEqual(ask("kong.nginx.get_ctx", "NOPE"), { step: "plugin.Step", data: undefined });
      assert.deepEqual(ask("kong.router.get_service"), { step: "plugin.StepService", data: service });
      assert.equal(ask("kong.router.get_route").step, "plugin.StepRoute");
      assert.deepEqual(ask("kong.client.get_consumer"), { step: "plugin.StepConsumer", data: undefined });
      assert.deepEqual(ask("kong.response.get_status"), { step: "plugin.Step", data: 200 });
      assert.deepEqual(ask("kong.plugin.get_id"), { step: "plugin.Step", data: "plugin-1" });
      assert.deepEqual(ask("kong.request.get_header", "X_Forwarded_Proto"), { step: "plugin.Step", data: "https" });
      const headers = ask("kong.response.get_headers");
      assert.equal(headers.step, "plugin.StepMultiMap");
      assert.ok(Object.values(headers.data as object).every(Array.isArray));
      const serialized = ask("kong.log.serialize");
      assert.equal(typeof serialized.data, "string");
      assert.match(serialized.data as string, /"uri":"\\\/echo\\\/api/);
      assert.deepEqual(JSON.parse(serialized.data as string), ctx.serialize);
    });

    it("fails ngx.var readers with StepError, as they fail in a timer", () => {
      assert.deepEqual(ask("kong.nginx.get_var", "upstream_status"), { step: "plugin.StepError", data: API_DISABLED });
      assert.deepEqual(ask("kong.service.response.get_status"), { step: "plugin.StepError", data: API_DISABLED });
    });

    it("answers a method it does not know with an empty Step and Kong's error", () => {
      assert.deepEqual(ask("kong.nope.get_thing"), {
        step: "plugin.Step",
        kongError: "could not find pdk method: kong.nope.get_thing",
      });
      assert.deepEqual(ask("kong.log.warn", "a", 1, null), {
        step: "plugin.Step",
        pluginLog: { level: "warn", message: "a1nil" },
      });
    });

    it("builds serialize data consistent with ngx.ctx, the size of a real one", () => {
      const s = ctx.serialize as { latencies: Record<string, number>; service: unknown };
      assert.equal(s.latencies.proxy, ctx.ngxCtx.KONG_WAITING_TIME);
      assert.equal(ctx.ngxCtx.KONG_PROXIED, true);
      assert.equal(
        s.latencies.kong,
        (ctx.ngxCtx.KONG_PROXY_LATENCY as number) + (ctx.ngxCtx.KONG_RECEIVE_TIME as number),
      );
      assert.equal(s.latencies.request, 15);
      assert.equal(s.service, ctx.ngxCtx.service);
      const bytes = cjsonEncode(ctx.serialize).length;
      assert.ok(bytes > 2_000 && bytes < 3_100, String(bytes));

      const direct = makeLogContext({ service, kongMs: 2 });
      const d = direct.serialize as { latencies: Record<string, number> };
      assert.equal(d.latencies.proxy, -1);
      assert.equal(d.latencies.kong, 2);
      assert.equal("KONG_WAITING_TIME" in direct.ngxCtx, false);
      assert.equal(direct.responseStatus, 404);
    });
  });
});
