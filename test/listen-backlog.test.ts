import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PluginServer } from "../devstack/kong";
import { PRODUCT_PLUGIN_DIR } from "../devstack/process/plugin-stack";
import { BACKLOG_ENV, backlogFromEnv, DEFAULT_BACKLOG, raiseServerBacklog } from "../plugin/listen-backlog";

const ATTEMPTS = 40;
const PLUGIN_SERVER_MAIN = "/app/node_modules/kong-pdk/bin/kong-js-pluginserver";

/**
 * Connects ATTEMPTS times to `path` from another process while this one is blocked (so nothing is accepted),
 * as Kong's timers do to a busy plugin server; returns how many connections the kernel queued before EAGAIN.
 */
function queuedWhileBlocked(path: string, attempts = ATTEMPTS): number {
  const script = `
    const net = require("node:net");
    let ok = 0, done = 0;
    const end = () => { if (++done === ${attempts}) { console.log(ok); process.exit(0); } };
    for (let i = 0; i < ${attempts}; i++) {
      net.connect(process.argv[1]).on("connect", () => { ok++; end(); }).on("error", end);
    }`;
  return Number(execFileSync(process.execPath, ["-e", script, path], { encoding: "utf8", timeout: 10_000 }));
}

describe("the plugin server's listen backlog", () => {
  const dir = mkdtempSync(join(tmpdir(), "backlog-"));
  const servers: Server[] = [];
  const listen = (name: string) =>
    new Promise<string>((resolve) => {
      const server = createServer();
      servers.push(server);
      const path = join(dir, name);
      // As kong-js-pluginserver calls it: the path alone.
      server.once("listening", () => resolve(path));
      server.listen(path);
    });
  after(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is Node's default (511) without the hook: every connection is queued", async () => {
    assert.equal(queuedWhileBlocked(await listen("stock.sock")), ATTEMPTS);
  });

  it("is what the hook sets for kong-js-pluginserver's listen(path), once", async () => {
    assert.equal(raiseServerBacklog(8, PLUGIN_SERVER_MAIN), true);
    const queued = queuedWhileBlocked(await listen("raised.sock"));
    assert.ok(queued >= 8 && queued <= 9, `${queued} queued with a backlog of 8`);
    assert.equal(queuedWhileBlocked(await listen("after.sock")), ATTEMPTS, "the hook removed itself");
  });

  it("is left alone in any process other than kong-js-pluginserver", async () => {
    assert.equal(raiseServerBacklog(8, "/app/node_modules/mocha/bin/mocha.js"), false);
    assert.equal(queuedWhileBlocked(await listen("other.sock")), ATTEMPTS);
  });

  it("is what the real kong-js-pluginserver listens with once it has loaded the plugin; 511 on request", async () => {
    // The kernel queues backlog + 1 (capped by net.core.somaxconn), less the start-up probe if it is still queued.
    const cap = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8")) + 1;
    for (const [env, backlog] of [
      [{}, 65_535],
      [{ [BACKLOG_ENV]: "511" }, 511],
    ] as const) {
      const server = await PluginServer.start({ pluginsDir: PRODUCT_PLUGIN_DIR, env });
      // A stopped server accepts nothing: the kernel's queue is all there is.
      process.kill(server.pid!, "SIGSTOP");
      try {
        const expected = Math.min(1000, backlog + 1, cap);
        const queued = queuedWhileBlocked(server.socketPath, 1000);
        assert.ok(queued >= expected - 1 && queued <= expected, `${queued} queued, ${JSON.stringify(env)}`);
      } finally {
        process.kill(server.pid!, "SIGCONT");
        await server.stop();
      }
    }
  });

  it("reads the environment, falling back to the default on a bad value", () => {
    assert.equal(backlogFromEnv({}), DEFAULT_BACKLOG);
    assert.equal(backlogFromEnv({ [BACKLOG_ENV]: "511" }), 511);
    assert.equal(backlogFromEnv({ [BACKLOG_ENV]: "many" }), DEFAULT_BACKLOG);
    assert.equal(backlogFromEnv({ [BACKLOG_ENV]: "0" }), DEFAULT_BACKLOG);
  });
});
