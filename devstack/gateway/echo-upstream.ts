import { createServer, type ServerResponse } from "node:http";

/** Longest delay a request may ask for: a bound, so that no request can hold the stack open for long. */
export const MAX_DELAY_MS = 60_000;

export interface EchoUpstreamOptions {
  /**
   * Requests served at once; the others wait in arrival order, as behind a server with that many workers, so that
   * a request's latency includes its wait. Default unbounded.
   */
  concurrency?: number;
}

export interface EchoUpstream {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Stops accepting and answers what was accepted, as a pod does after SIGTERM once out of the endpoints. */
  drain(): Promise<void>;
  /** Stops at once, dropping what is in flight. */
  close(): Promise<void>;
}

/**
 * The upstream the gateway proxies to: answers any path after `delay_ms` (query parameter, integer ms, default 0),
 * so a request sets its own upstream latency. The guide uses a shell command for that; nothing here runs one.
 */
export async function startEchoUpstream(options: EchoUpstreamOptions = {}): Promise<EchoUpstream> {
  const concurrency = options.concurrency ?? Infinity;
  if (!(concurrency >= 1)) throw new Error(`concurrency must be at least 1, got ${concurrency}`);
  const timers = new Set<NodeJS.Timeout>();
  const waiting: Array<() => void> = [];
  let serving = 0;
  let drained: (() => void) | undefined;

  const finish = () => {
    serving--;
    waiting.shift()?.();
    if (serving === 0 && waiting.length === 0) drained?.();
  };
  const serve = (res: ServerResponse, method: string | undefined, path: string, delayMs: number) => {
    serving++;
    const timer = setTimeout(() => {
      timers.delete(timer);
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ method, path, delay_ms: delayMs }));
      finish();
    }, delayMs);
    timers.add(timer);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://upstream");
    const raw = url.searchParams.get("delay_ms") ?? "0";
    const delayMs = Number(raw);
    req.resume();
    if (!/^\d+$/.test(raw) || delayMs > MAX_DELAY_MS) {
      res.writeHead(400, { "content-type": "application/json" }).end(
        JSON.stringify({
          error: `delay_ms must be an integer from 0 to ${MAX_DELAY_MS}, got ${JSON.stringify(raw)}`,
        }),
      );
      return;
    }
    if (serving < concurrency) serve(res, req.method, url.pathname, delayMs);
    else waiting.push(() => serve(res, req.method, url.pathname, delayMs));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const closed = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    async drain() {
      const stopped = closed();
      if (serving + waiting.length > 0) await new Promise<void>((resolve) => (drained = resolve));
      server.closeIdleConnections();
      await stopped;
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      waiting.length = 0;
      const stopped = closed();
      server.closeAllConnections();
      return stopped;
    },
  };
}
