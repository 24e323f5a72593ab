import { createHash } from "node:crypto";
import { DEFAULT_WORKSPACE_ID, makeRoute, makeService, type KongRoute, type KongService } from "../kong";
import type { DeclarativeConfig, DeclarativePlugin } from "./declarative";

/** The in-process Lua plugin the gateway has built in: bucket, sum and count per Service in a shared dict. */
export const LUA_METRICS_PLUGIN = "lua-metrics";

/** The plugin server Kong would start with pluginserver_<name>_socket: the one plugin it serves and its socket. */
export interface PluginServerRef {
  plugin: string;
  socket: string;
}

export interface ResolveOptions {
  /** Where every Service's traffic goes instead of its url's host: a local upstream, http://127.0.0.1:PORT. */
  upstreamUrl: string;
  pluginServer?: PluginServerRef;
  /** Merged into the external plugin's config everywhere (e.g. the local exporter_url). */
  pluginConfig?: Record<string, unknown>;
}

/** What the gateway's Lua reads (kong_like/config.lua). */
export interface GatewayConfig {
  services: { entity: KongService; target: { host: string; port: number } }[];
  routes: KongRoute[];
  plugins: { id: string; name: string; conf: Record<string, unknown> }[];
  plugin_server: PluginServerRef | null;
}

/** Kong's DB-less ids are derived from the entities' names, so that the same file gives the same ids. */
function idFor(key: string): string {
  const h = createHash("sha1").update(key).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Entities with ids, plugin confs as Kong hands them to a plugin (its fields plus Kong's), and upstream targets. */
export function resolveConfig(config: DeclarativeConfig, options: ResolveOptions): GatewayConfig {
  const upstream = new URL(options.upstreamUrl);
  const target = { host: upstream.hostname, port: Number(upstream.port || 80) };
  const out: GatewayConfig = { services: [], routes: [], plugins: [], plugin_server: options.pluginServer ?? null };

  const addPlugin = (p: DeclarativePlugin, routeId: string | null, serviceId: string | null) => {
    const external = p.name === options.pluginServer?.plugin;
    if (!external && p.name !== LUA_METRICS_PLUGIN) {
      throw new Error(`plugin ${p.name}: neither ${LUA_METRICS_PLUGIN} nor served by the plugin server`);
    }
    const id = idFor(`plugin:${p.name}:${routeId ?? ""}:${serviceId ?? ""}`);
    if (out.plugins.some((q) => q.id === id)) throw new Error(`plugin ${p.name} is configured twice on one entity`);
    out.plugins.push({
      id,
      name: p.name,
      conf: {
        ...p.config,
        ...(external ? options.pluginConfig : {}),
        route_id: routeId,
        service_id: serviceId,
        consumer_id: null,
        plugin_instance_name: null,
        __plugin_id: id,
        __ws_id: DEFAULT_WORKSPACE_ID,
        __key__: `plugins:${p.name}:${routeId ?? ""}:${serviceId ?? ""}:::${DEFAULT_WORKSPACE_ID}`,
      },
    });
  };

  for (const s of config.services) {
    const url = new URL(s.url);
    const entity = makeService({
      id: idFor(`service:${s.name}`),
      name: s.name,
      host: url.hostname,
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
      tags: s.tags,
    });
    entity.protocol = url.protocol.slice(0, -1);
    entity.path = url.pathname;
    out.services.push({ entity, target });
    for (const p of s.plugins) addPlugin(p, null, entity.id);
    for (const r of s.routes) {
      const route = makeRoute(entity, { id: idFor(`route:${r.name}`), name: r.name, paths: r.paths, tags: r.tags });
      route.strip_path = r.strip_path;
      out.routes.push(route);
      for (const p of r.plugins) addPlugin(p, route.id, null);
    }
  }
  for (const p of config.plugins) addPlugin(p, null, null);
  return out;
}
