/**
 * Kong external plugin `upstream-latency`, loaded by kong-js-pluginserver from dist/plugin/ (which holds
 * only a loader for this file: the server requires every entry of its plugin directory).
 */
import { UpstreamLatencyHandler } from "./handler";
import { raiseServerBacklog } from "./listen-backlog";
import { KONG_SCHEMA, PLUGIN_NAME } from "./schema";

export const Name = PLUGIN_NAME;
export const Version = "0.1.0";
/** Log-phase only; after Kong's bundled loggers (prometheus is 13), the order does not matter to them. */
export const Priority = 12;
export const Schema = KONG_SCHEMA;
export const Plugin = UpstreamLatencyHandler;

raiseServerBacklog();
