import { strict as assert } from "node:assert";
import { fixturePluginDir } from "../devstack/kong";
import {
  configureRouteFleet,
  driveRouteFleet,
  EVENTS_PER_SERVICE,
  type FleetTraffic,
  type RouteFleet,
} from "../devstack/kong/route-fleet";
import { startDelayProxy, untilQuiet, type DelayProxy } from "../devstack/process/delay-proxy";
import { startExporter, type ExporterProcess } from "../devstack/process/exporter-process";
import { exporterTotals, type ExporterTotals } from "../devstack/process/exporter-totals";
import { freePort, startPluginStack } from "../devstack/process/plugin-stack";
import { startProbedServer, type ProbedServer } from "../devstack/process/probed-server";
import { rssBytes } from "../devstack/process/proc-stats";
import { exporterArgs, type Stack } from "./support/plugin-events";
import { startProbedPluginStack } from "./support/plugin-memory";

const SERVICES = 10_000;
const EVENTS = SERVICES * EVENTS_PER_SERVICE;
const MB = 2 ** 20;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

/** The plugin server's memory held for the fleet (instances and recorded services), per service, in bytes. */
async function heldPerService(probed: ProbedServer, config: Record<string, unknown>): Promise<number> {
  const before = await probed.memory();
  const traffic = await driveRouteFleet(probed.kong, configureRouteFleet(probed.kong, SERVICES, config), {
    deadlineMs: 30_000,
  });
  assert.equal(traffic.events, EVENTS, "every event ran within the deadline");
  return ((await probed.memory()) - before) / SERVICES;
}

// The bounds at 10,000 active services, each behind its own route-scoped instance, default config.
describe("the plugin at 10,000 route-scoped services (real plugin server and sidecar)", function () {
  this.timeout(120_000);

  describe("default configuration, shipping every second", () => {
    let exp: ExporterProcess;
    let proxy: DelayProxy;
    let stack: Stack;
    let fleet: RouteFleet;
    let traffic: FleetTraffic;
    let totals: ExporterTotals;
    let rss: number;

    before(async () => {
      exp = await startExporter(exporterArgs(0));
      proxy = await startDelayProxy(exp.ingestUrl, 0);
      stack = await startPluginStack();
      fleet = configureRouteFleet(stack.kong, SERVICES, { exporter_url: proxy.url });
      traffic = await driveRouteFleet(stack.kong, fleet, { deadlineMs: 60_000 });
      await untilQuiet(proxy, 1_500, 30_000);
      rss = rssBytes(stack.server.pid!);
      totals = await exporterTotals(exp.metricsUrl);
    });

    after(async () => {
      await stack?.close();
      await proxy?.close();
      await exp?.stop();
    });

    it("drops nothing: every event counted, every service a series, nothing reported dropped", () => {
      assert.equal(traffic.events, EVENTS, "every event ran within the deadline");
      const missing = fleet.services.filter((s) => !totals.kongServices.has(s.name!));
      assert.deepEqual(
        { counted: totals.count, dropped: totals.dropped, servicesMissing: missing.length },
        { counted: EVENTS, dropped: { overflow: 0, rejected: 0 }, servicesMissing: 0 },
        `the sidecar counted ${totals.count} of ${EVENTS} events; ${missing.length} of ${SERVICES} services have no series`,
      );
    });

    // The 150 MB target is checked in bench/ on the median of runs: one run's RSS varies by about 20 MB with V8's
    // heap sizing (the floor plugin's too). This bound still fails at a few KB per service (dense histograms: 800 MB).
    it("keeps the plugin server's RSS within 180 MB", () => {
      assert.ok(rss <= 180 * MB, `plugin-server RSS ${(rss / MB).toFixed(1)} MB after ${SERVICES} services`);
    });
  });

  describe("memory held while the services are recorded and not yet shipped", () => {
    it("is at most 2,000 bytes per service above the same server before the events", async () => {
      // The floor plugin's instances alone, for scale: any plugin pays for them.
      const floor = await startProbedServer(fixturePluginDir("floor"), "floor");
      let floorEach: number;
      try {
        floorEach = await heldPerService(floor, {});
      } finally {
        await floor.close();
      }
      // A flush interval of 60 s holds all 10,000 services for the measurement; nothing listens at the URL.
      const ours = await startProbedPluginStack();
      let each: number;
      try {
        each = await heldPerService(ours, {
          exporter_url: `http://127.0.0.1:${await freePort()}`,
          flush_interval: 60,
        });
      } finally {
        await ours.close();
      }
      console.log(
        `      held per service: upstream-latency ${kib(each)}, the floor plugin's instance alone ${kib(floorEach)}`,
      );
      assert.ok(
        each <= 2_000,
        `the plugin holds ${each.toFixed(0)} bytes per service (floor: ${floorEach.toFixed(0)})`,
      );
    });
  });
});
