import { strict as assert } from "node:assert";
import { startExporter } from "../devstack/process/exporter-process";
import { startPluginStack } from "../devstack/process/plugin-stack";
import { addPlugin, countReaches, exporterArgs, kicService, send } from "./support/plugin-events";

describe("a stopping plugin server (real plugin server and sidecar processes)", function () {
  this.timeout(60_000);
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it("SIGTERM: ships its last deltas before exiting 0; the sidecar exits cleanly", async () => {
    const exp = await startExporter(exporterArgs(0));
    const stack = await startPluginStack();
    cleanup.push(
      () => stack.close(),
      () => exp.stop(),
    );
    // A flush interval of a minute: only the shutdown drain can deliver these in time.
    const id = addPlugin(stack, { exporter_url: exp.ingestUrl, flush_interval: 60 });
    await send(stack, id, kicService("term"), 70);
    const status = await stack.server.stop("SIGTERM", 10_000);
    assert.deepEqual(status, { code: 0, signal: null });
    await countReaches(exp, "default.term.80", 70, 5_000);
    assert.equal(await exp.stop("SIGTERM"), 0);
  });
});
