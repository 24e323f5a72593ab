import { PLUGIN_NAME } from "../../plugin/schema";
import { kicEntities, type RouteSpec } from "../gateway/kic-routes";
import type { GatewayStats } from "../gateway/node-gateway";
import { waitFor } from "../process/wait";
import type { DeclarativeConfig } from "./declarative";
import { startNginxGateway, type GatewayStatus, type NginxGateway } from "./nginx-gateway";

export interface NginxStackGatewayOptions {
  routes: RouteSpec[];
  /** Every Service's upstream: the stack's echo upstream. */
  upstreamUrl: string;
  /** The plugin server's socket. */
  socket: string;
  /** upstream-latency's config, enabled globally (as kong-config's KongClusterPlugin); undefined for no plugin. */
  pluginConfig: Record<string, unknown> | undefined;
  workers: number;
}

export interface NginxStackGateway {
  url: string;
  stats(): Promise<GatewayStats>;
  /** Resolves once every log event scheduled so far has ended; rejects past `timeoutMs`. */
  idle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The local stack's routes as a declarative configuration: Kong Ingress Controller's Services and Routes. */
function declarative(options: NginxStackGatewayOptions): DeclarativeConfig {
  const services = options.routes.map((spec) => {
    if (spec.upstream !== undefined)
      throw new Error(`route ${spec.path}: the nginx gateway sends every Service to the stack's echo upstream`);
    const { service, route } = kicEntities(spec);
    return {
      name: service.name!,
      url: `http://${service.host}:${service.port}`,
      tags: service.tags ?? [],
      routes: [{ name: route.name!, paths: route.paths!, strip_path: true, tags: route.tags ?? [], plugins: [] }],
      plugins: [],
    };
  });
  const plugins = options.pluginConfig ? [{ name: PLUGIN_NAME, config: options.pluginConfig }] : [];
  return { services, plugins };
}

function pending(s: GatewayStatus): number {
  return (s.log_events_scheduled ?? 0) - (s.log_events_done ?? 0) - (s.log_events_failed ?? 0);
}

/** The nginx gateway (devstack/nginx) behind the local stack's interface to its gateway. */
export async function startNginxStackGateway(options: NginxStackGatewayOptions): Promise<NginxStackGateway> {
  const gateway: NginxGateway = await startNginxGateway({
    config: declarative(options),
    upstreamUrl: options.upstreamUrl,
    pluginServer: { plugin: PLUGIN_NAME, socket: options.socket },
    workers: options.workers,
  });
  const lastError = () =>
    gateway.nginx
      .errorLog()
      .split("\n")
      .filter((l) => /\[(error|crit|alert)\]/.test(l))
      .pop();
  return {
    url: gateway.url,
    async stats() {
      const s = await gateway.status();
      return {
        recorded: s.proxied,
        logErrors: (s.log_events_failed ?? 0) + (s.log_timers_refused ?? 0),
        lastLogError: lastError(),
        pendingLogs: pending(s),
      };
    },
    async idle(timeoutMs = 30_000) {
      await waitFor(
        "every log event to end",
        async () => (pending(await gateway.status()) === 0 ? true : undefined),
        timeoutMs,
      );
    },
    stop: () => gateway.stop(),
  };
}
