import { PRODUCT_PLUGIN_DIR } from "../../devstack/process/plugin-stack";
import { startProbedServer, type ProbedServer } from "../../devstack/process/probed-server";

/** The upstream-latency plugin in a real plugin server with the signal probe preloaded (see probed-server.ts). */
export function startProbedPluginStack(): Promise<ProbedServer> {
  return startProbedServer(PRODUCT_PLUGIN_DIR, "upstream-latency");
}
