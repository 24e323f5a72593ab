import { randomUUID } from "node:crypto";
import { Recorder } from "./recorder";
import { Shipper } from "./shipper";
import { parseExporterUrl, type PluginConfig } from "./schema";

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

export function pipelineFor(config: PluginConfig): Pipeline {
  let p = pipelines.get(config.exporter_url);
  if (!p) {
    const recorder = new Recorder(config.max_services);
    const source = `${PROCESS_ID}/${pipelines.size}`;
    const shipper = new Shipper(recorder, source, parseExporterUrl(config.exporter_url), config.flush_interval * 1000);
    p = { recorder, shipper };
    pipelines.set(config.exporter_url, p);
    shipper.start();
  }
  // The newest configuration sets the bounds, as it replaces the older instances.
  p.recorder.maxServices = config.max_services;
  p.shipper.setInterval(config.flush_interval * 1000);
  return p;
}

export function allPipelines(): Pipeline[] {
  return [...pipelines.values()];
}
