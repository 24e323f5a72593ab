import pino from "pino";
import { PLUGIN_NAME } from "./schema";

/**
 * JSON logs on stderr: Kong reads the plugin server's stdout as plugin info during `--dump-all-plugins`,
 * so nothing of ours may ever write there.
 */
export const log = pino(
  { name: PLUGIN_NAME, level: process.env.UPSTREAM_LATENCY_LOG_LEVEL ?? "info" },
  pino.destination({ fd: 2, sync: true }),
);
