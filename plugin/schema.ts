import Ajv from "ajv";
import { LATENCY_KINDS, type LatencyKind } from "../wire/payload";

export const PLUGIN_NAME = "upstream-latency";

export const DEFAULTS = {
  exporter_url: "http://127.0.0.1:9543",
  flush_interval: 1,
  latencies: ["upstream"] as LatencyKind[],
  max_services: 10_000,
};

/**
 * The configuration in Kong's schema language, as `--dump-all-plugins` reports it: Kong validates
 * configurations against it (types, defaults, ranges) before they reach the plugin server.
 */
export const KONG_SCHEMA = [
  {
    exporter_url: {
      type: "string",
      required: true,
      default: DEFAULTS.exporter_url,
      description: "Where the latency-exporter sidecar listens for ingest: http://HOST:PORT or unix:/path/to.sock.",
    },
  },
  {
    flush_interval: {
      type: "number",
      required: true,
      default: DEFAULTS.flush_interval,
      between: [0.1, 60],
      description: "Seconds between two shipments of latency deltas to the sidecar.",
    },
  },
  {
    latencies: {
      type: "array",
      required: true,
      default: DEFAULTS.latencies,
      len_min: 1,
      elements: { type: "string", one_of: [...LATENCY_KINDS] },
      description: "Kong latencies to record: upstream (latencies.proxy), request, kong.",
    },
  },
  {
    exporter_token_file: {
      type: "string",
      required: false,
      description:
        "A file holding the sidecar's ingest token (sent as a bearer token); needed when its ingest is not on loopback.",
    },
  },
  {
    max_services: {
      type: "integer",
      required: true,
      default: DEFAULTS.max_services,
      between: [1, 100000],
      description:
        "Bound on distinct Kong Services held until the sidecar acknowledges them (over a whole outage while it is away); events beyond it are counted as dropped.",
    },
  },
];

export interface PluginConfig {
  exporter_url: string;
  exporter_token_file?: string;
  flush_interval: number;
  latencies: LatencyKind[];
  max_services: number;
}

/** Where to ship: an HTTP origin, or a Unix socket. */
export type ExporterTarget = { kind: "http"; origin: string } | { kind: "unix"; socketPath: string };

// The same rules as KONG_SCHEMA, for the plugin server's side: Kong's own validation cannot check the URL's
// form, and a configuration that did not come through Kong (tests, a hand-written declarative file loaded
// by an older Kong) must still be refused with a clear message rather than half-applied.
const ajv = new Ajv({ allErrors: false, useDefaults: true, strict: true });
const check = ajv.compile<PluginConfig>({
  type: "object",
  properties: {
    exporter_url: { type: "string", minLength: 1, maxLength: 4096, default: DEFAULTS.exporter_url },
    flush_interval: { type: "number", minimum: 0.1, maximum: 60, default: DEFAULTS.flush_interval },
    latencies: {
      type: "array",
      minItems: 1,
      uniqueItems: true,
      items: { enum: [...LATENCY_KINDS] },
      default: DEFAULTS.latencies,
    },
    max_services: { type: "integer", minimum: 1, maximum: 100000, default: DEFAULTS.max_services },
    exporter_token_file: { type: "string", pattern: "^/", maxLength: 4096 },
  },
});

/** The plugin's own fields, as declared to Kong; everything else in Kong's configuration is Kong's. */
const OWN_FIELDS = KONG_SCHEMA.map((field) => Object.keys(field)[0]);

export class ConfigError extends Error {
  constructor(message: string) {
    super(`${PLUGIN_NAME}: invalid configuration: ${message}`);
  }
}

export function parseExporterUrl(url: string): ExporterTarget {
  if (url.startsWith("unix:")) {
    const socketPath = url.slice("unix:".length);
    if (!socketPath.startsWith("/"))
      throw new ConfigError(`exporter_url "${url}": a Unix socket path must be absolute (unix:/path/to.sock)`);
    return { kind: "unix", socketPath };
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`exporter_url "${url}" is not a URL: expected http://HOST:PORT or unix:/path/to.sock`);
  }
  if (u.protocol !== "http:") throw new ConfigError(`exporter_url "${url}": scheme must be http or unix`);
  if (u.username || u.password) throw new ConfigError(`exporter_url "${url}": credentials do not belong in the URL`);
  if ((u.pathname !== "/" && u.pathname !== "") || u.search || u.hash) {
    throw new ConfigError(`exporter_url "${url}": give only scheme, host and port (the ingest path is fixed)`);
  }
  return { kind: "http", origin: u.origin };
}

/**
 * Validates the configuration Kong sends (its own fields plus Kong's: route_id, service_id, __seq__, ...,
 * which are left alone) and fills in defaults. Throws ConfigError naming the field and the problem.
 */
export function parseConfig(raw: unknown): PluginConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new ConfigError("configuration must be an object");
  const own: Record<string, unknown> = {};
  for (const k of OWN_FIELDS) {
    const v = (raw as Record<string, unknown>)[k];
    // Kong sends null for a field left unset in some configurations (cjson.null); the default applies.
    if (v !== undefined && v !== null) own[k] = v;
  }
  if (!check(own)) {
    const e = check.errors![0];
    const field = e.instancePath.replace(/^\//, "").replace(/\//g, ".") || "config";
    const detail =
      e.keyword === "enum"
        ? `must be one of ${LATENCY_KINDS.join(", ")}`
        : e.keyword === "pattern"
          ? "must be an absolute path"
          : e.message;
    throw new ConfigError(`${field} ${detail} (got ${JSON.stringify(valueAt(own, e.instancePath))})`);
  }
  parseExporterUrl(own.exporter_url);
  return own;
}

function valueAt(obj: unknown, pointer: string): unknown {
  return pointer
    .split("/")
    .slice(1)
    .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}
