import { createServer, type Server } from "node:http";
import { request } from "undici";

/**
 * An HTTP proxy in front of the real sidecar that holds every request for `delayMs` (changeable while
 * running): a sidecar that is slow, without changing the sidecar. With no delay, it counts what the plugin ships.
 */
export interface DelayProxy {
  url: string;
  delayMs: number;
  /** Requests received so far. */
  received: number;
  /** Requests answered so far. */
  answered: number;
  /** Request body bytes received so far: the payloads, as the plugin encoded them. */
  bodyBytes: number;
  /** Forwards every held request now, and the following ones without delay. */
  release(): void;
  close(): Promise<void>;
}

export async function startDelayProxy(target: string, delayMs: number): Promise<DelayProxy> {
  const held = new Map<NodeJS.Timeout, () => void>();
  const proxy = {
    url: "",
    delayMs,
    received: 0,
    answered: 0,
    bodyBytes: 0,
    release: () => undefined,
    close: () => Promise.resolve(),
  } as DelayProxy;
  proxy.release = () => {
    proxy.delayMs = 0;
    for (const [timer, forward] of held) {
      clearTimeout(timer);
      forward();
    }
    held.clear();
  };
  const server: Server = createServer((req, res) => {
    proxy.received++;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      proxy.bodyBytes += chunks.reduce((n, c) => n + c.length, 0);
      const forward = () => {
        held.delete(timer);
        request(`${target}${req.url}`, {
          method: req.method as "POST",
          headers: req.headers as Record<string, string>,
          body: Buffer.concat(chunks),
        })
          .then(async (r) => {
            const body = await r.body.text();
            proxy.answered++;
            res
              .writeHead(r.statusCode, { "content-type": String(r.headers["content-type"] ?? "text/plain") })
              .end(body);
          })
          .catch(() => res.writeHead(502).end());
      };
      const timer = setTimeout(forward, proxy.delayMs);
      held.set(timer, forward);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const timer of held.keys()) clearTimeout(timer);
      held.clear();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/**
 * Resolves once every request is answered and none has come for `quietMs` (longer than a flush interval): the
 * plugin has shipped all it held. The plugin sends nothing when it has nothing, so a count cannot tell this.
 */
export async function untilQuiet(proxy: DelayProxy, quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    if (proxy.received !== seen || proxy.answered !== proxy.received) {
      seen = proxy.received;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(
    `the plugin kept shipping for ${timeoutMs} ms (${proxy.received} requests, ${proxy.answered} answered)`,
  );
}
