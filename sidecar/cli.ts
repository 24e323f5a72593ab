#!/usr/bin/env node
import { createLogger } from "./log";
import { startExporter } from "./exporter";
import { loadMappingFile } from "./mapping-file";
import { parseOptions } from "./options";
import { IngestToken } from "./token";

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const log = createLogger(opts.logLevel);
  let mapping;
  let token;
  try {
    mapping = opts.mappingFile ? loadMappingFile(opts.mappingFile) : undefined;
    token = opts.ingestTokenFile ? IngestToken.fromFile(opts.ingestTokenFile) : undefined;
  } catch (err) {
    process.stderr.write(`latency-exporter: ${(err as Error).message}\n`);
    process.exit(2);
  }
  let exporter;
  try {
    exporter = await startExporter({
      ...opts,
      percentileWindowMs: opts.percentileWindow,
      seriesIdleMs: opts.seriesIdleTimeout,
      requestTimeoutMs: opts.requestTimeout,
      mapping,
      token,
      log,
    });
  } catch (err) {
    process.stderr.write(`latency-exporter: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const stop = (signal: string) => {
    log.info({ signal }, "shutting down");
    exporter.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`latency-exporter: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
