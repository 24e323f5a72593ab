import { Command, InvalidArgumentError, Option } from "commander";
import { AddressError, parseAddress, type ListenAddress } from "./address";
import { KONG_BUCKETS } from "./families";
import { LIMITS } from "../wire/payload";

export interface CliOptions {
  metricsAddress: ListenAddress;
  ingestAddress: ListenAddress;
  buckets: number[];
  mappingFile: string | undefined;
  percentileWindow: number;
  maxSeries: number;
  seriesIdleTimeout: number;
  ingestTokenFile: string | undefined;
  requestTimeout: number;
  maxBodyBytes: number;
  logLevel: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function address(text: string): ListenAddress {
  try {
    return parseAddress(text);
  } catch (err) {
    if (err instanceof AddressError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

export function parseBuckets(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  const out: number[] = [];
  for (const p of parts) {
    const n = Number(p);
    if (p === "" || !Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`"${p}" is not a positive number of milliseconds`);
    if (out.length && n <= out[out.length - 1])
      throw new InvalidArgumentError(`boundaries must increase: ${n} follows ${out[out.length - 1]}`);
    out.push(n);
  }
  if (out.length > 100) throw new InvalidArgumentError(`${out.length} boundaries; at most 100`);
  return out;
}

/** "60s", "2m", "90000ms", "1h", within [minMs, maxMs]. */
export function parseDuration(text: string, minMs: number, maxMs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a duration like 60s, 2m or 500ms`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  if (ms < minMs || ms > maxMs) throw new InvalidArgumentError(`${text} is outside ${minMs / 1000}s..${maxMs / 1000}s`);
  return ms;
}

function positiveInteger(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`"${text}" is not a positive integer`);
  return n;
}

/** The command line and its environment equivalents. Commander reports a bad value and exits non-zero. */
export function buildCommand(): Command {
  return new Command("latency-exporter")
    .description(
      "Merges the upstream-latency Kong plugin's deltas and exposes kong_upstream_latency_ms (and friends) for Prometheus.",
    )
    .addOption(
      new Option("--metrics-address <host:port>", "where /metrics, /healthz and /readyz are served")
        .env("LATENCY_EXPORTER_METRICS_ADDRESS")
        .default(address("0.0.0.0:9542"), "0.0.0.0:9542")
        .argParser(address),
    )
    .addOption(
      new Option(
        "--ingest-address <host:port|unix:/path>",
        "where the plugin ships deltas (keep it loopback or a Unix socket)",
      )
        .env("LATENCY_EXPORTER_INGEST_ADDRESS")
        .default(address("127.0.0.1:9543"), "127.0.0.1:9543")
        .argParser(address),
    )
    .addOption(
      new Option("--buckets <ms,ms,...>", "histogram boundaries in ms")
        .env("LATENCY_EXPORTER_BUCKETS")
        .default(KONG_BUCKETS, KONG_BUCKETS.join(","))
        .argParser(parseBuckets),
    )
    .addOption(
      new Option(
        "--mapping-file <path>",
        "static Kong Service -> Kubernetes object mapping (YAML), for services without KIC tags or names",
      ).env("LATENCY_EXPORTER_MAPPING_FILE"),
    )
    .addOption(
      new Option("--percentile-window <duration>", "sliding window of the exported percentiles and /v1/latency")
        .env("LATENCY_EXPORTER_PERCENTILE_WINDOW")
        .default(60_000, "60s")
        // At least 6 s: the window moves in sixths of its length.
        .argParser((t) => parseDuration(t, 6_000, 3_600_000)),
    )
    .addOption(
      new Option("--max-series <n>", "bound on exported series; events of series beyond it are counted, not exported")
        .env("LATENCY_EXPORTER_MAX_SERIES")
        .default(10_000)
        .argParser(positiveInteger),
    )
    .addOption(
      new Option("--series-idle-timeout <duration>", "remove a series not updated for this long")
        .env("LATENCY_EXPORTER_SERIES_IDLE_TIMEOUT")
        .default(15 * 60_000, "15m")
        .argParser((t) => parseDuration(t, 10_000, 7 * 24 * 3_600_000)),
    )
    .addOption(
      new Option(
        "--ingest-token-file <path>",
        "require `Authorization: Bearer <token>` on ingest, with the token read from this file",
      ).env("LATENCY_EXPORTER_INGEST_TOKEN_FILE"),
    )
    .addOption(
      new Option(
        "--request-timeout <duration>",
        "a request (headers and body) must arrive within this; slow clients are cut off",
      )
        .env("LATENCY_EXPORTER_REQUEST_TIMEOUT")
        .default(10_000, "10s")
        .argParser((t) => parseDuration(t, 1_000, 300_000)),
    )
    .addOption(
      new Option("--max-body-bytes <bytes>", "largest ingest payload accepted")
        .env("LATENCY_EXPORTER_MAX_BODY_BYTES")
        .default(LIMITS.bodyBytes)
        .argParser(positiveInteger),
    )
    .addOption(
      new Option("--log-level <level>", "pino log level")
        .env("LATENCY_EXPORTER_LOG_LEVEL")
        .default("info")
        .choices(LOG_LEVELS),
    )
    .showHelpAfterError()
    .allowExcessArguments(false);
}

export function parseOptions(argv: string[]): CliOptions {
  const cmd = buildCommand().parse(argv, { from: "user" });
  return cmd.opts<CliOptions>();
}
