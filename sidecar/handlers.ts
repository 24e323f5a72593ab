import { INGEST_PATH } from "../wire/payload";
import { ChunkWriter } from "./chunk-writer";
import type { Dedup } from "./dedup";
import { HttpError, quoted, readBody, sendJson, writeChunks } from "./http-util";
import type { Handler } from "./http-server";
import { ingest } from "./ingest";
import { latencyReport, LatencyQueryError } from "./latency-api";
import type { Logger } from "./log";
import { MetricsFormats } from "./metrics-format";
import { parseTarget } from "./request-target";
import type { SelfMetrics } from "./self-metrics";
import type { Store } from "./store";
import type { IngestToken } from "./token";

export interface Context {
  store: Store;
  dedup: Dedup;
  metrics: SelfMetrics;
  log: Logger;
  token: IngestToken | undefined;
  maxBodyBytes: number;
  ready: () => boolean;
}

export function ingestHandler(ctx: Context): Handler {
  return async (req, res) => {
    try {
      const { path } = parseTarget(req.url);
      if (path !== INGEST_PATH)
        throw new HttpError(404, "not_found", `no such path ${quoted(path)}; ingest is POST ${INGEST_PATH}`);
      if (req.method !== "POST") throw new HttpError(405, "method", `${req.method} is not allowed; use POST`);
      if (ctx.token && !ctx.token.accepts(req.headers.authorization)) {
        throw new HttpError(401, "unauthorized", "missing or wrong bearer token (see --ingest-token-file)");
      }
      const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
      if (type !== "application/json")
        throw new HttpError(415, "content_type", `content-type must be application/json, got "${type}"`);
      const body = await readBody(req, ctx.maxBodyBytes);
      sendJson(res, 200, ingest(body, ctx.store, ctx.dedup, ctx.metrics));
    } catch (err) {
      // Counted and logged here, answered by the server's error boundary.
      if (err instanceof HttpError) {
        ctx.metrics.payloads.inc({ result: "rejected" });
        ctx.metrics.rejections.inc({ reason: err.reason });
        ctx.log.warn({ status: err.status, reason: err.reason, error: err.message }, "ingest payload refused");
      }
      throw err;
    }
  };
}

/**
 * Big enough that the cost of each write (a system call, a chunked-encoding frame, and a wait for the socket
 * to drain) is small at 50 MB (1 MiB chunks move it over loopback in a quarter of the time 64 KiB ones take),
 * small enough that the few chunks in flight are all a scrape holds.
 */
const CHUNK_BYTES = 1024 * 1024;

export function metricsHandler(ctx: Context): Handler {
  const formats = new MetricsFormats(ctx.store);
  return async (req, res) => {
    const { path, query } = parseTarget(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 405, { error: `${req.method} is not allowed; use GET` });
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ready = ctx.ready();
      res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ready\n" : "not ready\n");
    } else if (path === "/metrics") {
      const format = formats.for(req.headers.accept);
      res.writeHead(200, { "content-type": format.contentType, vary: "accept" });
      // Node would discard the body of a HEAD: do not render it.
      if (req.method === "HEAD") {
        res.end();
        return;
      }
      const out = new ChunkWriter(CHUNK_BYTES);
      if (!(await writeChunks(res, format.latency(out, Date.now()), (chunk) => out.recycle(chunk)))) return;
      await format.own(out, ctx.metrics.registry);
      for (const chunk of out.finish()) res.write(chunk);
      res.end();
    } else if (path === "/v1/latency") {
      try {
        sendJson(res, 200, latencyReport(ctx.store, query));
      } catch (err) {
        if (!(err instanceof LatencyQueryError)) throw err;
        sendJson(res, 400, { error: err.message });
      }
    } else {
      sendJson(res, 404, { error: `no such path ${quoted(path)}; try /metrics, /v1/latency, /healthz, /readyz` });
    }
  };
}
