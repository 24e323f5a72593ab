import { randomUUID } from "node:crypto";
import { Recorder } from "./recorder";
import { Shipper } from "./shipper";
import { parseExporterUrl, type PluginConfig } from "./schema";
import { log } from "./log";

/**
 * Kong starts one instance per nginx worker and a new one on every configuration change, and gives
 * instances no close hook; so histograms and shippers live here, at module level, one pipeline per
 * exporter URL, shared by every instance of this plugin-server process.
 */
export interface Pipeline {
  recorder: Recorder;
  shipper: Shipper;
}

/** Identifies this process to the sidecar: a restarted plugin server is a new source with a fresh seq. */
export const PROCESS_ID = randomUUID();

const pipelines = new Map<string, Pipeline>();

/** How long a stopping plugin server keeps trying to deliver what it recorded. */
const SHUTDOWN_DRAIN_MS = 3_000;
let shutdownHooked = false;

/**
 * kong-js-pluginserver has no shutdown hook and exits at once on SIGTERM, losing up to a flush interval of
 * latencies (more while the sidecar was away). Once there is something to lose, ship it first, within a
 * bound, then exit. A second signal during the drain finds no listener and ends the process at once.
 */
function hookShutdown(): void {
  if (shutdownHooked) return;
  shutdownHooked = true;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      const deadline = Date.now() + SHUTDOWN_DRAIN_MS;
      Promise.all([...pipelines.values()].map((p) => p.shipper.drain(deadline)))
        .then(
          (done) => {
            if (done.some((ok) => !ok))
              log.warn({ signal }, "stopping with latency deltas the sidecar did not acknowledge");
          },
          (err: unknown) => log.error({ err, signal }, "shipping on shutdown failed"),
        )
        .finally(() => process.exit(0));
    });
  }
}

export function pipelineFor(config: PluginConfig): Pipeline {
  const key = `${config.exporter_url} ${config.exporter_token_file ?? ""}`;
  let p = pipelines.get(key);
  if (!p) {
    const recorder = new Recorder(config.max_services);
    const source = `${PROCESS_ID}/${pipelines.size}`;
    const target = parseExporterUrl(config.exporter_url);
    const shipper = new Shipper(recorder, source, target, config.flush_interval * 1000, config.exporter_token_file);
    p = { recorder, shipper };
    pipelines.set(key, p);
    shipper.start();
    hookShutdown();
  }
  // The newest configuration sets the bounds, as it replaces the older instances.
  p.recorder.maxServices = config.max_services;
  p.shipper.setInterval(config.flush_interval * 1000);
  return p;
}
