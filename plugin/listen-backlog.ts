import * as net from "node:net";
import { basename } from "node:path";
import { log } from "./log";

/** Overrides the backlog; 511 gives kong-js-pluginserver's stock behaviour (Node's default). */
export const BACKLOG_ENV = "UPSTREAM_LATENCY_LISTEN_BACKLOG";
/** Asked of the kernel, which caps it at net.core.somaxconn (4096 by default since Linux 5.4). */
export const DEFAULT_BACKLOG = 65_535;

type Listen = (this: net.Server, ...args: unknown[]) => net.Server;

export function backlogFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[BACKLOG_ENV];
  if (raw === undefined || raw === "") return DEFAULT_BACKLOG;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= 1 && n <= DEFAULT_BACKLOG) return n;
  log.error({ [BACKLOG_ENV]: raw }, `not an integer from 1 to ${DEFAULT_BACKLOG}; using ${DEFAULT_BACKLOG}`);
  return DEFAULT_BACKLOG;
}

/**
 * kong-js-pluginserver listens with Node's default backlog (511); Kong drops an event whose connect() finds the
 * queue full. The server loads plugins before it listens, so its one listen(path) is hooked, once.
 */
export function raiseServerBacklog(backlog = backlogFromEnv(), main = require.main?.filename ?? ""): boolean {
  if (basename(main) !== "kong-js-pluginserver") return false;
  const server = net.Server.prototype as unknown as { listen: Listen };
  const original = server.listen;
  server.listen = function (this: net.Server, ...args: unknown[]): net.Server {
    server.listen = original;
    const [path] = args;
    if (args.length === 1 && typeof path === "string") return original.call(this, { path, backlog });
    return original.apply(this, args);
  };
  return true;
}
