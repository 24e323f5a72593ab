import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { pipeline } from "node:stream/promises";
import { Agent, request } from "undici";
import { makeLogContext, type LogContext } from "../kong";
import type { KongEntities } from "./kic-routes";

export interface GatewayRoute extends KongEntities {
  /** Base URL of the upstream, http://host:port, or Kong's balancer over an Upstream's targets: picks one per request. */
  upstream: string | (() => string);
}

export interface GatewayOptions {
  routes: GatewayRoute[];
  /** nginx worker processes; each client connection is served by one of them, as nginx's accept does. */
  workers: number;
  /** Kong's log phase for one finished request, on that worker; rejects when Kong would have logged an error. */
  log(worker: number, ctx: LogContext): Promise<void>;
}

export interface GatewayStats {
  /**
   * Per Kong Service name, proxied requests whose log phase ran without error: what the plugin recorded, so what
   * the exporter's `_count` must reach.
   */
  recorded: Record<string, number>;
  logErrors: number;
  lastLogError: string | undefined;
  pendingLogs: number;
}

export interface Gateway {
  /** http://127.0.0.1:PORT */
  url: string;
  stats(): GatewayStats;
  /** Resolves once every log phase started so far has ended. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

// RFC 9110 7.6.1, and what nginx's proxy module does not pass on either.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function endToEnd(
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const named = String(headers.connection ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase());
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k) && !named.includes(k)) out[k] = v;
  }
  return out;
}

// Kong's own bodies for these statuses (kong/tools/utils.lua, get_default_exit_body).
const NO_ROUTE = JSON.stringify({ message: "no Route matched with those values" });
const BAD_GATEWAY = JSON.stringify({ message: "An invalid response was received from the upstream server" });

/** Kong's timestamps for one request, in epoch ms (ngx.now() has millisecond resolution, so the latencies are integers). */
interface Timing {
  startedAt: number;
  /** KONG_BALANCER_ENDED_AT: the upstream request is about to be sent. */
  balancerEndedAt?: number;
  /** KONG_WAITING_TIME. */
  waitingMs?: number;
}

/**
 * A stand-in for Kong's data plane on loopback: a reverse proxy over the given Routes that measures upstream latency
 * as Kong does and, once the response is sent, runs the log phase (Kong runs an external plugin's log handler in a
 * timer after the request). What Kong does on the proxy path is read from kong/init.lua (Kong.balancer,
 * Kong.header_filter, Kong.log):
 * - KONG_WAITING_TIME is from the end of balancing to the first byte of the response;
 * - once a Route matched, the request counts as proxied (KONG_PROXIED) whatever the upstream does: if it fails
 *   before answering, the 502 Kong sends is the response, so its header_filter sets KONG_WAITING_TIME then; if the
 *   client leaves first, Kong.log sets it at the log phase;
 * - a request no Route matches is answered by Kong (404) and has no KONG_WAITING_TIME.
 * Unlike Kong, a failed connection is not retried (Kong retries up to the Service's `retries`).
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const routes = [...options.routes].sort((a, b) => longestPath(b) - longestPath(a));
  const agent = new Agent();
  const workerOf = new WeakMap<Socket, number>();
  let accepted = 0;
  const pending = new Set<Promise<void>>();
  const stats: GatewayStats = { recorded: {}, logErrors: 0, lastLogError: undefined, pendingLogs: 0 };

  const runLog = (worker: number, name: string | null, proxied: boolean, ctx: LogContext) => {
    const p = options.log(worker, ctx).then(
      () => {
        if (proxied && name !== null) stats.recorded[name] = (stats.recorded[name] ?? 0) + 1;
      },
      (err: unknown) => {
        stats.logErrors++;
        stats.lastLogError = (err as Error).message;
      },
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const t: Timing = { startedAt: Date.now() };
    const worker = workerOf.get(req.socket) ?? 0;
    const url = req.url ?? "/";
    const match = routes.find((r) => r.route.paths!.some((p) => url.startsWith(p)));

    res.once("close", () => {
      const now = Date.now();
      if (match && t.waitingMs === undefined) t.waitingMs = now - t.balancerEndedAt!;
      const proxyLatency = match ? t.balancerEndedAt! - t.startedAt : 0;
      const receiveMs = match ? now - t.balancerEndedAt! - t.waitingMs! : 0;
      // Status 499 is nginx's for a client that left before the response was sent.
      const status = res.headersSent ? res.statusCode : 499;
      const ctx = makeLogContext({
        service: match?.service ?? null,
        route: match?.route ?? null,
        proxyMs: t.waitingMs,
        kongMs: match ? proxyLatency + receiveMs : now - t.startedAt,
        receiveMs,
        requestMs: now - t.startedAt,
        status,
        method: req.method,
        uri: url,
        startedAt: t.startedAt,
        clientIp: req.socket.remoteAddress,
      });
      runLog(worker, match?.service.name ?? null, match !== undefined, ctx);
    });

    if (!match) {
      req.resume();
      res
        .writeHead(404, {
          "content-type": "application/json; charset=utf-8",
          "x-kong-response-latency": String(Date.now() - t.startedAt),
        })
        .end(NO_ROUTE);
      return;
    }
    void proxy(req, res, match, url, t);
  };

  const proxy = async (req: IncomingMessage, res: ServerResponse, match: GatewayRoute, url: string, t: Timing) => {
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    const latencyHeaders = () => ({
      "x-kong-upstream-latency": String(t.waitingMs),
      "x-kong-proxy-latency": String(t.balancerEndedAt! - t.startedAt),
    });
    const prefix = match.route.paths!.find((p) => url.startsWith(p))!;
    const rest = url.slice(prefix.length);
    const upstreamPath = rest.startsWith("/") ? rest : `/${rest}`;
    const hasBody = req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
    t.balancerEndedAt = Date.now();
    let upstream;
    try {
      const target = typeof match.upstream === "string" ? match.upstream : match.upstream();
      upstream = await request(`${target}${upstreamPath}`, {
        method: (req.method ?? "GET") as "GET",
        headers: endToEnd(req.headers),
        body: hasBody ? req : null,
        dispatcher: agent,
        signal: abort.signal,
      });
    } catch {
      t.waitingMs = Date.now() - t.balancerEndedAt;
      if (!res.destroyed)
        res.writeHead(502, { "content-type": "application/json; charset=utf-8", ...latencyHeaders() }).end(BAD_GATEWAY);
      return;
    }
    t.waitingMs = Date.now() - t.balancerEndedAt;
    res.writeHead(upstream.statusCode, { ...endToEnd(upstream.headers), ...latencyHeaders() });
    try {
      await pipeline(upstream.body, res);
    } catch {
      // The headers are gone: like nginx, all that is left is to cut the client's connection.
      res.destroy();
    }
  };

  const server = createServer(handle);
  server.on("connection", (socket: Socket) => workerOf.set(socket, accepted++ % options.workers));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });

  const idle = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stats: () => ({ ...stats, recorded: { ...stats.recorded }, pendingLogs: pending.size }),
    idle,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await idle();
      await agent.destroy();
    },
  };
}

function longestPath(r: GatewayRoute): number {
  return Math.max(...r.route.paths!.map((p) => p.length));
}
