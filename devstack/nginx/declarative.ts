import { parse } from "yaml";

/** The part of Kong's declarative format (kong-config/declarative/*.yaml) the gateway runs. */
export interface DeclarativePlugin {
  name: string;
  config: Record<string, unknown>;
}

export interface DeclarativeRoute {
  name: string;
  paths: string[];
  /** Kong's default is true. */
  strip_path: boolean;
  tags: string[];
  plugins: DeclarativePlugin[];
}

export interface DeclarativeService {
  name: string;
  /** http://host:port/path, as Kong's `url` shorthand. */
  url: string;
  tags: string[];
  routes: DeclarativeRoute[];
  plugins: DeclarativePlugin[];
}

export interface DeclarativeConfig {
  services: DeclarativeService[];
  /** Global plugins. */
  plugins: DeclarativePlugin[];
}

class DeclarativeError extends Error {}

type Node = Record<string, unknown>;

function map(v: unknown, where: string): Node {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new DeclarativeError(`${where}: not a map`);
  return v as Node;
}

function object(v: unknown, where: string, fields: string[]): Node {
  for (const k of Object.keys(map(v, where))) {
    if (!fields.includes(k)) throw new DeclarativeError(`${where}.${k}: not supported (fields: ${fields.join(", ")})`);
  }
  return v as Node;
}

function list(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new DeclarativeError(`${where}: not a list`);
  return v;
}

function text(v: unknown, where: string): string {
  if (typeof v !== "string" || v === "") throw new DeclarativeError(`${where}: must be a non-empty string`);
  return v;
}

function texts(v: unknown, where: string): string[] {
  return list(v, where).map((t, i) => text(t, `${where}[${i}]`));
}

function plugins(v: unknown, where: string): DeclarativePlugin[] {
  return list(v, where).map((p, i) => {
    const at = `${where}[${i}]`;
    const o = object(p, at, ["name", "config"]);
    return { name: text(o.name, `${at}.name`), config: o.config === undefined ? {} : map(o.config, `${at}.config`) };
  });
}

function route(v: unknown, where: string): DeclarativeRoute {
  const o = object(v, where, ["name", "paths", "strip_path", "tags", "plugins"]);
  const paths = texts(o.paths, `${where}.paths`);
  if (paths.length === 0) throw new DeclarativeError(`${where}.paths: at least one path`);
  for (const p of paths) if (!p.startsWith("/")) throw new DeclarativeError(`${where}.paths: "${p}" must start with /`);
  if (o.strip_path !== undefined && typeof o.strip_path !== "boolean")
    throw new DeclarativeError(`${where}.strip_path: must be true or false`);
  return {
    name: text(o.name, `${where}.name`),
    paths,
    strip_path: o.strip_path ?? true,
    tags: texts(o.tags, `${where}.tags`),
    plugins: plugins(o.plugins, `${where}.plugins`),
  };
}

function service(v: unknown, where: string): DeclarativeService {
  const o = object(v, where, ["name", "url", "tags", "routes", "plugins"]);
  const url = text(o.url, `${where}.url`);
  if (!/^https?:\/\/[^/]+/.test(url))
    throw new DeclarativeError(`${where}.url: "${url}" is not http(s)://host[:port][/path]`);
  return {
    name: text(o.name, `${where}.name`),
    url,
    tags: texts(o.tags, `${where}.tags`),
    routes: list(o.routes, `${where}.routes`).map((r, i) => route(r, `${where}.routes[${i}]`)),
    plugins: plugins(o.plugins, `${where}.plugins`),
  };
}

/** Parses a DB-less declarative configuration; anything outside the supported part fails with where it is. */
export function parseDeclarative(yamlText: string, source = "declarative configuration"): DeclarativeConfig {
  try {
    const o = object(parse(yamlText) as unknown, "(top)", ["_format_version", "services", "plugins"]);
    text(o._format_version, "_format_version");
    const config = {
      services: list(o.services, "services").map((s, i) => service(s, `services[${i}]`)),
      plugins: plugins(o.plugins, "plugins"),
    };
    const names = new Set<string>();
    for (const name of config.services.flatMap((s) => [
      `service ${s.name}`,
      ...s.routes.map((r) => `route ${r.name}`),
    ])) {
      if (names.has(name)) throw new DeclarativeError(`${name} is defined twice`);
      names.add(name);
    }
    return config;
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`, { cause: err });
  }
}
