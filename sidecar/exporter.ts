import type { Server } from "node:http";
import { lstatSync, unlinkSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { formatAddress, isLoopback, type ListenAddress } from "./address";
import { Dedup } from "./dedup";
import { ingestHandler, metricsHandler, type Context } from "./handlers";
import { createSafeServer } from "./http-server";
import type { Logger } from "./log";
import type { StaticMapping } from "./mapping-file";
import { SelfMetrics } from "./self-metrics";
import { Store } from "./store";
import type { IngestToken } from "./token";

export interface ExporterOptions {
  metricsAddress: ListenAddress;
  ingestAddress: ListenAddress;
  buckets: number[];
  mapping: StaticMapping | undefined;
  /** Length of the sliding window for percentiles. */
  percentileWindowMs: number;
  maxSeries: number;
  seriesIdleMs: number;
  /** Required for an ingest address other than loopback or a Unix socket. */
  token: IngestToken | undefined;
  /** Slow or stalled clients are cut off rather than allowed to hold buffers. */
  requestTimeoutMs: number;
  maxBodyBytes: number;
  log: Logger;
}

export interface RunningExporter {
  /** Bound addresses (a TCP port 0 is resolved to the real one). */
  metricsAddress: ListenAddress;
  ingestAddress: ListenAddress;
  store: Store;
  close(): Promise<void>;
}

export async function startExporter(opts: ExporterOptions): Promise<RunningExporter> {
  if (!isLoopback(opts.ingestAddress) && !opts.token) {
    throw new Error(
      `refusing to listen for ingest on ${formatAddress(opts.ingestAddress)} without --ingest-token-file: ` +
        "anyone on the network could write latencies; use loopback or a Unix socket, or set a token",
    );
  }
  const store = new Store({
    boundaries: opts.buckets,
    mapping: opts.mapping,
    windowMs: opts.percentileWindowMs,
    maxSeries: opts.maxSeries,
    idleMs: opts.seriesIdleMs,
  });
  const dedup = new Dedup();
  const metrics = new SelfMetrics(
    () => store.seriesCount(),
    () => dedup.sources,
  );
  let listening = 0;
  const ctx: Context = {
    store,
    dedup,
    metrics,
    log: opts.log,
    token: opts.token,
    maxBodyBytes: opts.maxBodyBytes,
    ready: () => listening === 2,
  };
  const sweeper = setInterval(
    () => {
      const removed = store.sweep();
      if (removed) metrics.seriesRemoved.inc(removed);
    },
    Math.min(30_000, opts.seriesIdleMs / 4),
  );
  sweeper.unref();

  // Node checks timeouts every connectionsCheckingInterval (30 s by default): check often enough that
  // the timeout means what it says.
  const serverOptions = {
    requestTimeout: opts.requestTimeoutMs,
    headersTimeout: opts.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1_000, opts.requestTimeoutMs / 2),
  };
  const ingestServer = createSafeServer("ingest", serverOptions, opts.log, ingestHandler(ctx));
  const metricsServer = createSafeServer("metrics", serverOptions, opts.log, metricsHandler(ctx));
  const ingestAddress = await listen(ingestServer, opts.ingestAddress);
  listening++;
  let metricsAddress: ListenAddress;
  try {
    metricsAddress = await listen(metricsServer, opts.metricsAddress);
  } catch (err) {
    clearInterval(sweeper);
    await closeServer(ingestServer);
    throw err;
  }
  listening++;
  opts.log.info(
    { ingest: formatAddress(ingestAddress), metrics: formatAddress(metricsAddress) },
    "latency-exporter listening",
  );
  return {
    metricsAddress,
    ingestAddress,
    store,
    async close() {
      listening = 0;
      clearInterval(sweeper);
      await Promise.all([closeServer(ingestServer), closeServer(metricsServer)]);
    },
  };
}

function listen(server: Server, addr: ListenAddress): Promise<ListenAddress> {
  if (addr.kind === "unix") removeStaleSocket(addr.path);
  return new Promise((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`cannot listen on ${formatAddress(addr)}: ${err.message}`)));
    const done = () => {
      if (addr.kind === "unix") return resolve(addr);
      const a = server.address() as AddressInfo;
      resolve({ kind: "tcp", host: addr.host, port: a.port });
    };
    if (addr.kind === "unix") server.listen(addr.path, done);
    else server.listen(addr.port, addr.host, done);
  });
}

/** A socket file left by a killed process would make listen fail; anything else at the path is kept. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Absent: nothing to remove.
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
