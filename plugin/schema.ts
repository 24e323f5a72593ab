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
  const {
    exporter_url = DEFAULTS.exporter_url,
    flush_interval = DEFAULTS.flush_interval,
    latencies = [...DEFAULTS.latencies],
    max_services = DEFAULTS.max_services,
    exporter_token_file,
  } = own;
  checkString("exporter_url", exporter_url, 1);
  checkNumber("flush_interval", flush_interval, "number", 0.1, 60);
  checkLatencies(latencies);
  checkNumber("max_services", max_services, "integer", 1, 100_000);
  if (exporter_token_file !== undefined) {
    checkString("exporter_token_file", exporter_token_file, 0);
    if (!exporter_token_file.startsWith("/"))
      invalid("exporter_token_file", "must be an absolute path", exporter_token_file);
  }
  parseExporterUrl(exporter_url);
  return {
    exporter_url,
    flush_interval,
    latencies,
    max_services,
    ...(exporter_token_file !== undefined && { exporter_token_file }),
  };
}

// The same rules as KONG_SCHEMA, for the plugin server's side: Kong's own validation cannot check the URL's
// form, and a configuration that did not come through Kong (tests, a hand-written declarative file loaded
// by an older Kong) must still be refused with a clear message rather than half-applied.
// Hand-written, in JSON Schema's words: ajv and its compiled schema took 8.3 MiB of the plugin server's RSS.
function invalid(field: string, problem: string, value: unknown): never {
  throw new ConfigError(`${field} ${problem} (got ${JSON.stringify(value)})`);
}

function checkString(field: string, v: unknown, minLength: number): asserts v is string {
  if (typeof v !== "string") invalid(field, "must be string", v);
  const length = [...v].length; // in code points, as JSON Schema counts
  if (length > 4096) invalid(field, "must NOT have more than 4096 characters", v);
  if (length < minLength) invalid(field, `must NOT have fewer than ${minLength} characters`, v);
}

function checkNumber(
  field: string,
  v: unknown,
  type: "number" | "integer",
  min: number,
  max: number,
): asserts v is number {
  if (type === "integer" ? !Number.isInteger(v) : !Number.isFinite(v)) invalid(field, `must be ${type}`, v);
  if ((v as number) > max) invalid(field, `must be <= ${max}`, v);
  if ((v as number) < min) invalid(field, `must be >= ${min}`, v);
}

function checkLatencies(v: unknown): asserts v is LatencyKind[] {
  if (!Array.isArray(v)) invalid("latencies", "must be array", v);
  if (v.length < 1) invalid("latencies", "must NOT have fewer than 1 items", v);
  v.forEach((kind, i) => {
    if (!(LATENCY_KINDS as readonly unknown[]).includes(kind))
      invalid(`latencies.${i}`, `must be one of ${LATENCY_KINDS.join(", ")}`, kind);
  });
  for (let i = v.length; i--;)
    for (let j = i; j--;)
      if (v[i] === v[j])
        invalid("latencies", `must NOT have duplicate items (items ## ${j} and ${i} are identical)`, v);
}
