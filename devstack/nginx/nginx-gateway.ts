import { request } from "undici";
import { freePort } from "../process/plugin-stack";
import type { DeclarativeConfig } from "./declarative";
import { resolveConfig, type ResolveOptions } from "./gateway-config";
import { startNginx, type NginxProcess } from "./nginx-process";

export interface NginxGatewayOptions extends ResolveOptions {
  config: DeclarativeConfig;
  /** nginx worker processes, each with its own plugin instances and connection pool; default 2. */
  workers?: number;
}

/** The gateway's counters (kong_like/stats.lua): what it proxied and what became of each external log event. */
export interface GatewayStatus {
  /** Proxied requests per Kong Service name: what the exporter's `_count` must reach. */
  proxied: Record<string, number>;
  /** Log events whose timer was created. */
  log_events_scheduled?: number;
  /** Log events whose timer nginx refused (lua_max_pending_timers): lost, and Kong logs nothing. */
  log_timers_refused?: number;
  log_events_done?: number;
  /** Log events that ended in an error Kong logs (a failed connect(), an RPC error). */
  log_events_failed?: number;
}

export interface NginxGateway {
  /** The proxy, http://127.0.0.1:PORT. */
  url: string;
  nginx: NginxProcess;
  status(): Promise<GatewayStatus>;
  /** Loads a new configuration in every worker, as Kong's DB-less /config does; returns its version (every plugin's new __seq__). */
  configure(config: DeclarativeConfig): Promise<number>;
  stop(): Promise<void>;
}

/** Starts the Kong-like gateway on nginx + LuaJIT (devstack/nginx/lua), proxying to a local upstream. */
export async function startNginxGateway(options: NginxGatewayOptions): Promise<NginxGateway> {
  const resolve = (config: DeclarativeConfig) => JSON.stringify(resolveConfig(config, options));
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const nginx = await startNginx({
    template: "gateway.conf",
    files: { "config.json": resolve(options.config) },
    vars: {
      WORKERS: String(options.workers ?? 2),
      PROXY_PORT: String(proxyPort),
      ADMIN_PORT: String(adminPort),
    },
    ports: [proxyPort, adminPort],
  }).catch((err: Error) => {
    throw new Error(`starting the nginx gateway: ${err.message}`);
  });
  const admin = `http://127.0.0.1:${adminPort}`;
  const call = async (method: "GET" | "POST", path: string, body?: string) => {
    const res = await request(`${admin}${path}`, { method, body, headersTimeout: 5_000, bodyTimeout: 5_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`gateway admin ${method} ${path}: HTTP ${res.statusCode}: ${text}`);
    return JSON.parse(text) as unknown;
  };
  return {
    url: `http://127.0.0.1:${proxyPort}`,
    nginx,
    status: async () => (await call("GET", "/status")) as GatewayStatus,
    configure: async (config) => ((await call("POST", "/config", resolve(config))) as { version: number }).version,
    stop: () => nginx.stop(),
  };
}
