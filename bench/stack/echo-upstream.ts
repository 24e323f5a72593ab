import { createServer } from "node:http";

/** Longest delay a request may ask for: a bound, so that no request can hold the stack open for long. */
export const MAX_DELAY_MS = 60_000;

export interface EchoUpstream {
  /** http://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

/**
 * The upstream the gateway proxies to: answers any path after `delay_ms` (query parameter, integer ms, default 0),
 * so a request sets its own upstream latency. The guide uses a shell command for that; nothing here runs one.
 */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://upstream");
    const raw = url.searchParams.get("delay_ms") ?? "0";
    const delayMs = Number(raw);
    req.resume();
    if (!/^\d+$/.test(raw) || delayMs > MAX_DELAY_MS) {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: `delay_ms must be an integer from 0 to ${MAX_DELAY_MS}, got ${JSON.stringify(raw)}` }));
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ method: req.method, path: url.pathname, delay_ms: delayMs }));
    }, delayMs);
    timers.add(timer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
