import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runAutoscale } from "../demo/autoscale/run";
import { DEFAULT_SCENARIO } from "../demo/autoscale/scenario";
import { REPO_ROOT } from "../devstack/kong";
import { prometheusOrSkip } from "../devstack/prometheus/prometheus";

const DEMO = join(REPO_ROOT, "dist", "lib", "demo", "autoscale-demo.js");
const ABOVE = "reason: Service metric kong_upstream_latency_ms_60s_average above target";

const REPLICA = join(REPO_ROOT, "dist", "lib", "demo", "autoscale", "replica.js");

/** Processes running this checkout's workload replicas, children of `parent` or of anyone. */
function replicaChildren(parent: number | "any" = process.pid): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return (parent === "any" || ppid === parent) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(REPLICA);
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

describe("autoscaling loop end to end (npm run autoscale-demo, shortened)", function () {
  // Every duration halved: about 2.5 minutes.
  this.timeout(300_000);

  it("reproduces the guide's SuccessfulRescale events 2, 4, 8, 10 under its traffic, then 1 once the traffic stops", async function () {
    prometheusOrSkip(this);
    const replicasSeen: number[] = [];
    const run = await runAutoscale(
      { ...DEFAULT_SCENARIO, timeScale: 0.5 },
      { onSync: () => replicasSeen.push(replicaChildren().length) },
    );
    const rescales = run.events.filter((e) => e.reason === "SuccessfulRescale").map((e) => e.message);
    assert.deepEqual(
      rescales,
      [
        `New size: 2; ${ABOVE}`,
        `New size: 4; ${ABOVE}`,
        `New size: 8; ${ABOVE}`,
        `New size: 10; ${ABOVE}`,
        "New size: 1; reason: All metrics below target",
      ],
      JSON.stringify(run.syncs),
    );
    // The scale-down comes from the adapter's NaN, read as 0, once the window holds no request.
    const down = run.syncs.find((s) => s.before === 10 && s.after === 1)!;
    assert.equal(down.metric, 0);
    assert.ok(down.tMs > run.phases.load[1], "after the traffic stopped");
    // Real replicas followed the HPA: 10 processes at the peak, none left.
    assert.equal(Math.max(...replicasSeen), 10);
    assert.deepEqual(replicaChildren(), []);
    assert.equal(run.clientTotals.failed, 0);
  });

  const PATHS = {
    p99: "windowed p99 rule",
    "native-p99": "fleet p99 rule (native histograms)",
    keda: "KEDA metrics-api path",
  };
  for (const metric of ["p99", "native-p99", "keda"] as const) {
    it(`on the ${PATHS[metric]}, scales up to 10 under the guide's traffic and back to 1 once its window is empty`, async function () {
      prometheusOrSkip(this);
      const run = await runAutoscale({ ...DEFAULT_SCENARIO, metric, timeScale: 0.3 });
      const rescales = run.events.filter((e) => e.reason === "SuccessfulRescale");
      const ups = rescales.filter((e) => e.message.endsWith("above target"));
      assert.ok(ups.length >= 2, JSON.stringify(run.syncs));
      assert.match(ups[ups.length - 1].message, /^New size: 10; reason: /);
      const last = rescales[rescales.length - 1];
      assert.equal(last.message, "New size: 1; reason: All metrics below target", JSON.stringify(run.syncs));
      assert.ok(last.atMs - run.t0 > run.phases.load[1], "after the traffic stopped");
      assert.deepEqual(replicaChildren(), []);
    });
  }

  it("on Ctrl-C stops the traffic, the replicas and every process it started, and exits 130", async function () {
    prometheusOrSkip(this);
    const demo = spawn(
      process.execPath,
      [
        DEMO,
        "--time-scale",
        "0.2",
        "--workload",
        "capacity",
        "--plot",
        join(REPO_ROOT, ".tmp", "autoscale-sigint.html"),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    demo.stdout.on("data", (c: Buffer) => (out += c.toString()));
    demo.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const exited = once(demo, "exit");
    const deadline = Date.now() + 60_000;
    while (!/New size: \d+/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.match(out, /New size: \d+/, "it scaled before the signal");
    assert.ok(replicaChildren(demo.pid).length > 1, out);
    demo.kill("SIGINT");
    const [code] = (await Promise.race([
      exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no exit within 30 s:\n${out}`)), 30_000)),
    ])) as [number | null];
    assert.equal(code, 130, out);
    assert.match(out, /SIGINT: stopping the traffic, the replicas and every process the demo started/);
    assert.deepEqual(replicaChildren("any"), [], "no replica left");
  });

  it("refuses bad flags with a message naming the flag, before starting anything", () => {
    const cases: Array<[string[], RegExp]> = [
      [["--time-scale", "2"], /--time-scale <k>.*"2" is not a number from 0\.1 to 1/],
      [["--metric", "p95"], /--metric.*Allowed choices are average, p99, native-p99, keda/],
      [["--workload", "x"], /--workload.*Allowed choices are guide, capacity/],
      [["--concurrency", "1.5"], /--concurrency <n>.*"1\.5" is not a whole number from 1 to 1000/],
      [["--bogus"], /unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(process.execPath, [DEMO, ...args], { encoding: "utf8", timeout: 10_000 });
      assert.notEqual(r.status, 0, args.join(" "));
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "", "nothing started");
    }
  });

  it("says Prometheus is required when it is not on PATH", () => {
    const r = spawnSync(process.execPath, [DEMO], {
      encoding: "utf8",
      timeout: 10_000,
      env: { ...process.env, PATH: "/nonexistent" },
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /needs the real Prometheus on PATH.*apt-get install -y --no-install-recommends prometheus/);
  });
});
