import { PRODUCT_PLUGIN_DIR } from "../../devstack/process/plugin-stack";
import { startProbedServer, type ProbedServer } from "../../devstack/process/probed-server";

/** The size of one histogram's counts (13,312 32-bit slots): what the plugin holds per Service and kind. */
export const HISTOGRAM_COUNTS_BYTES = 53_248;

/** The upstream-latency plugin in a real plugin server with the signal probe preloaded (see probed-server.ts). */
export function startProbedPluginStack(): Promise<ProbedServer> {
  return startProbedServer(PRODUCT_PLUGIN_DIR, "upstream-latency");
}
