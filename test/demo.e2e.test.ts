import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { request } from "undici";
import { startLocalStack, type LocalStack } from "../devstack/process/local-stack";
import { nginxMissing } from "../devstack/nginx/nginx-process";
import { fetchMetrics, upstreamTotals } from "../devstack/observe";
import { REPO_ROOT } from "../devstack/kong";
import { freePort } from "../devstack/process/plugin-stack";
import { waitFor } from "../devstack/process/wait";

const DEMO = join(REPO_ROOT, "dist", "lib", "demo", "demo.js");

interface Demo {
  child: ChildProcess;
  output(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every process seen below the demo while it ran (from /proc), including ones already gone. */
  descendants: Set<number>;
}

/** Process ids whose parent is in `roots`, transitively, from /proc (Linux). */
function descendantsOf(root: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name, in parentheses, may hold spaces: the fields after it are fixed.
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [pid, ppid] of parent) {
      if (ppid === p) {
        out.push(pid);
        queue.push(pid);
      }
    }
  }
  return out;
}

function runDemo(args: string[], options: { detached?: boolean } = {}): Demo {
  // Non-TTY stdout: the demo prints plain lines.
  const child = spawn(process.execPath, [DEMO, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached,
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const descendants = new Set<number>();
  const watch = setInterval(() => {
    for (const pid of descendantsOf(child.pid!)) descendants.add(pid);
  }, 200);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      clearInterval(watch);
      resolve({ code, signal });
    }),
  );
  return { child, output: () => out, stderr: () => err, exited, descendants };
}

async function exitWithin(demo: Demo, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      demo.child.kill("SIGKILL");
      reject(new Error(`the demo did not exit within ${ms} ms:\n${demo.output()}\n${demo.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([demo.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Every loopback port the demo printed is closed, and no process it started (printed or seen in /proc) is left. */
async function assertNothingLeft(demo: Demo): Promise<void> {
  const text = demo.output();
  const ports = [...new Set([...text.matchAll(/http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
  // echo upstream, gateway, exporter metrics and ingest, and Prometheus when installed
  assert.ok(ports.length >= 4, `ports printed:\n${text}`);
  for (const port of ports) assert.equal(await portOpen(port), false, `port ${port} is still open`);
  const pids = new Set([...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1])));
  assert.equal(pids.size, 2, "the plugin server's and the exporter's pids are printed");
  for (const pid of demo.descendants) pids.add(pid);
  assert.ok(demo.descendants.size >= 2, "the demo's child processes were seen");
  await waitFor(
    "every process the demo started to be gone",
    () => ([...pids].every((p) => !alive(p)) ? true : undefined),
    3_000,
  );
}

describe("npm run demo (demo/demo.ts)", function () {
  this.timeout(60_000);

  it("runs bounded, shows the exporter's figures near --delay-ms and exact totals, prints /metrics, leaves nothing behind", async () => {
    const demo = runDemo(["--duration", "8s", "--rate", "50", "--delay-ms", "30"]);
    const { code } = await exitWithin(demo, 45_000);
    const out = demo.output();
    assert.equal(code, 0, `${out}\n${demo.stderr()}`);

    // 50 req/s for 8 s, 3 in 4 to default/echo: 300 requests, all in the exporter's 60 s window.
    const final =
      /^final .*default\/echo client p50=[\d.]+ms p99=[\d.]+ms exporter n=(\d+) avg=([\d.]+)ms p50=(\d+)ms p99=(\d+)ms/m.exec(
        out,
      );
    assert.ok(final, `no final line with the exporter's figures for default/echo:\n${out}`);
    const [n, avg, p50] = [Number(final[1]), Number(final[2]), Number(final[3])];
    assert.equal(n, 300, final[0]);
    // The upstream waits 30 ms; Kong's integer-ms clock can make that 29. The top bounds leave room for a busy machine.
    assert.ok(p50 >= 29 && p50 <= 50, `exporter p50 ${p50} ms is not near 30 ms: ${final[0]}`);
    assert.ok(avg >= 29 && avg <= 60, `exporter average ${avg} ms is not near 30 ms: ${final[0]}`);
    assert.match(out, /^\[\d+s\/8s\] client [\d.]+ req\/s/m, "periodic plain lines while it runs");
    const gateway = nginxMissing() ? /the Node stand-in for Kong/ : /a Kong-like gateway on nginx \+ LuaJIT/;
    assert.match(out, gateway, "says which gateway it runs: nginx where it is installed");

    const totals =
      /default\/echo\s+Kong: 300 requests, (\d+) ms in all; exporter: kong_upstream_latency_ms_count 300, _sum (\d+): exact/.exec(
        out,
      );
    assert.ok(totals, `no exact totals line for default/echo:\n${out}`);
    assert.equal(totals[1], totals[2]);
    assert.match(
      out,
      /shop\/cart\s+Kong: 100 requests, \d+ ms in all; exporter: kong_upstream_latency_ms_count 100, _sum \d+: exact/,
    );

    const series =
      'namespace="default",service="echo",kubernetes_namespace="default",kubernetes_name="echo",kubernetes_kind="service",kubernetes_apiversion="v1",kong_service="default.echo.80"';
    assert.ok(out.includes("# TYPE kong_upstream_latency_ms histogram"), out);
    assert.ok(out.includes(`kong_upstream_latency_ms_bucket{${series},le="+Inf"} 300`), out);
    assert.ok(out.includes(`kong_upstream_latency_ms_count{${series}} 300`), out);
    assert.ok(out.includes(`kong_upstream_latency_ms_sum{${series}} ${totals[1]}`), out);
    assert.ok(out.includes(`kong_upstream_latency_ms_percentile{${series},quantile="0.99"}`), out);
    assert.ok(
      !/kong_service="shop\.cart\.80"/.test(out.slice(out.indexOf("# TYPE kong_upstream_latency_ms histogram"))),
      "the excerpt is default/echo's only",
    );

    await assertNothingLeft(demo);
  });

  it("on Ctrl-C (SIGINT to its whole process group, as a terminal sends it) stops everything and exits 130", async () => {
    const demo = runDemo(["--duration", "60s", "--rate", "50", "--delay-ms", "30"], { detached: true });
    await waitFor("the first live line", () => (/^\[\d+s\/60s\]/m.test(demo.output()) ? true : undefined), 30_000, 100);
    process.kill(-demo.child.pid!, "SIGINT");
    const { code } = await exitWithin(demo, 20_000);
    assert.equal(code, 130, `${demo.output()}\n${demo.stderr()}`);
    assert.match(demo.output(), /SIGINT: stopping the traffic and every process the demo started/);
    await assertNothingLeft(demo);
  });

  it("on SIGTERM to the demo alone stops every process it started and exits 143", async () => {
    const demo = runDemo(["--duration", "60s", "--rate", "50", "--delay-ms", "30"]);
    await waitFor("the first live line", () => (/^\[\d+s\/60s\]/m.test(demo.output()) ? true : undefined), 30_000, 100);
    demo.child.kill("SIGTERM");
    const { code } = await exitWithin(demo, 20_000);
    assert.equal(code, 143, `${demo.output()}\n${demo.stderr()}`);
    await assertNothingLeft(demo);
  });

  it("refuses bad flags with a message naming the flag, before starting anything", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--rate", "0"], /--rate <n>.*"0" is not a rate from 0\.1 to 2000 requests per second/],
      [["--duration", "5x"], /--duration <duration>.*"5x" is not a duration like 60s, 2m or 500ms/],
      [["--duration", "2h"], /--duration <duration>.*2h is outside 1s\.\.3600s/],
      [["--delay-ms", "1.5"], /--delay-ms <ms>.*"1\.5" is not a whole number of milliseconds from 0 to 30000/],
      [["--bogus"], /unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const demo = runDemo(args);
      const { code } = await exitWithin(demo, 10_000);
      assert.notEqual(code, 0, args.join(" "));
      assert.match(demo.stderr(), message);
      assert.equal(demo.output(), "", "nothing started");
    }
  });
});

describe("local stack: the gateway standing in for Kong (devstack)", function () {
  this.timeout(30_000);
  let stack: LocalStack;
  let broken: Server;

  const CUT_AFTER_MS = 300;
  /** Answers `?mode=hangup` by closing the connection unanswered, `?mode=cut` by cutting the body short. */
  const brokenUpstream = () =>
    createServer((req, res) => {
      if (req.url!.includes("mode=hangup")) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { "content-type": "text/plain", "content-length": "1000" });
      res.write("the first few bytes");
      setTimeout(() => req.socket.destroy(), CUT_AFTER_MS);
    });

  before(async () => {
    broken = brokenUpstream();
    await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
    stack = await startLocalStack({
      withPrometheus: false,
      flushInterval: 0.1,
      routes: [
        { path: "/echo", namespace: "default", name: "echo" },
        { path: "/dead", namespace: "default", name: "dead", upstream: `http://127.0.0.1:${await freePort()}` },
        {
          path: "/broken",
          namespace: "default",
          name: "broken",
          upstream: `http://127.0.0.1:${(broken.address() as { port: number }).port}`,
        },
        {
          path: "/cut",
          namespace: "default",
          name: "cut",
          upstream: `http://127.0.0.1:${(broken.address() as { port: number }).port}`,
        },
      ],
    });
  });
  after(async () => {
    await stack?.stop();
    broken?.close();
    broken?.closeAllConnections();
  });

  async function get(path: string): Promise<{ status: number; body: string; kongUpstreamMs: number | undefined }> {
    const res = await request(`${stack.gatewayUrl}${path}`);
    const body = await res.body.text();
    const h = res.headers["x-kong-upstream-latency"];
    return { status: res.statusCode, body, kongUpstreamMs: h === undefined ? undefined : Number(h) };
  }

  async function exported(kongService: string): Promise<{ count: number; sum: number } | undefined> {
    await stack.drain(10_000);
    return upstreamTotals(await fetchMetrics(stack.exporterMetricsUrl)).get(kongService);
  }

  it("passes statuses and bodies through, and the exporter's totals are exactly the X-Kong-Upstream-Latency values", async () => {
    const answers = await Promise.all([20, 35, 0, 50].map((ms) => get(`/echo/items?delay_ms=${ms}`)));
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 200);
      assert.deepEqual(JSON.parse(a.body), { method: "GET", path: "/items", delay_ms: [20, 35, 0, 50][i] });
      assert.ok(
        a.kongUpstreamMs! >= [20, 35, 0, 50][i] - 1,
        `${a.kongUpstreamMs} ms for delay_ms=${[20, 35, 0, 50][i]}`,
      );
    }
    const refused = await get("/echo?delay_ms=soon");
    assert.equal(refused.status, 400, "the upstream's status");
    assert.match(refused.body, /delay_ms must be an integer/, "the upstream's body");
    const noRoute = await get("/elsewhere");
    assert.equal(noRoute.status, 404);
    assert.deepEqual(JSON.parse(noRoute.body), { message: "no Route matched with those values" });
    assert.equal(noRoute.kongUpstreamMs, undefined, "not proxied: no upstream latency");

    const all = [...answers, refused];
    assert.deepEqual(await exported("default.echo.80"), {
      count: all.length,
      sum: all.reduce((s, a) => s + a.kongUpstreamMs!, 0),
    });
    const stats = await stack.gatewayStats();
    assert.equal(stats.logErrors, 0, stats.lastLogError);
  });

  it("answers 502 when the upstream fails before answering, and records what Kong records then", async () => {
    // Kong's header_filter sets KONG_WAITING_TIME for the 502 it sends, since the request was proxied (kong/init.lua).
    const badGateway = { message: "An invalid response was received from the upstream server" };
    const refused = await get("/dead");
    assert.equal(refused.status, 502);
    assert.deepEqual(JSON.parse(refused.body), badGateway);
    const hungUp = await get("/broken?mode=hangup");
    assert.equal(hungUp.status, 502);
    assert.deepEqual(JSON.parse(hungUp.body), badGateway);
    assert.deepEqual(await exported("default.dead.80"), { count: 1, sum: refused.kongUpstreamMs });
    assert.deepEqual(await exported("default.broken.80"), { count: 1, sum: hungUp.kongUpstreamMs });
  });

  it("cuts the client off when the upstream fails mid-body, and records the latency to the first byte", async () => {
    const res = await request(`${stack.gatewayUrl}/cut?mode=cut`);
    assert.equal(res.statusCode, 200, "the upstream's status was already sent");
    const kongUpstreamMs = Number(res.headers["x-kong-upstream-latency"]);
    await assert.rejects(res.body.text(), "the body is cut short");
    assert.deepEqual(await exported("default.cut.80"), { count: 1, sum: kongUpstreamMs });
    assert.ok(
      kongUpstreamMs >= 0 && kongUpstreamMs < CUT_AFTER_MS,
      `${kongUpstreamMs} ms: to the first byte, not to the cut`,
    );
  });
});
