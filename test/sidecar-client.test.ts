import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type RequestListener, type Server } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExporterTarget } from "../plugin/schema";
import { SidecarClient } from "../plugin/sidecar-client";

const never = new AbortController().signal;

/** A server on loopback TCP or a Unix socket; `connections` counts the connections it accepted. */
async function serve(on: "tcp" | "unix", handler: RequestListener) {
  const server: Server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => sockets.add(s));
  const dir = mkdtempSync(join(tmpdir(), "client-"));
  let target: ExporterTarget;
  if (on === "unix") {
    const socketPath = join(dir, "s.sock");
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    target = { kind: "unix", socketPath };
  } else {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    target = { kind: "http", origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
  }
  return {
    server,
    target,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => (rmSync(dir, { recursive: true }), resolve())));
    },
  };
}

const echo: RequestListener = (req, res) => {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => res.writeHead(201).end(`${req.method} ${req.url} ${String(req.headers["x-test"])} ${body}`));
};

describe("sidecar client (plugin/sidecar-client.ts)", () => {
  for (const on of ["tcp", "unix"] as const) {
    it(`POSTs over ${on} with headers and body, several requests on one kept-alive connection`, async () => {
      const s = await serve(on, echo);
      const client = new SidecarClient(s.target);
      try {
        for (const body of ["one", "twø"])
          assert.deepEqual(await client.post("/v1/ingest", body, { "x-test": "h" }, never), {
            status: 201,
            text: `POST /v1/ingest h ${body}`,
          });
        assert.equal(s.sockets.size, 1);
      } finally {
        client.close();
        await s.close();
      }
    });
  }

  it("opens a new connection when the server closed the idle one", async () => {
    const s = await serve("tcp", echo);
    s.server.keepAliveTimeout = 50;
    const client = new SidecarClient(s.target);
    try {
      await client.post("/", "a", {}, never);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await client.post("/", "b", {}, never)).text, "POST / undefined b");
      assert.equal(s.sockets.size, 2);
    } finally {
      client.close();
      await s.close();
    }
  });

  it("rejects on a refused connection, a missing socket, a timeout, a reset and an oversized answer", async () => {
    const s = await serve("tcp", (req, res) => {
      if (req.url === "/reset") {
        res.writeHead(200, { "content-length": "100" }).write("partial");
        setTimeout(() => req.socket.destroy(), 20);
      } else if (req.url === "/big") res.end("x".repeat(65 * 1024));
    });
    const client = new SidecarClient(s.target, { connectMs: 2_000, responseMs: 300 });
    const refused = new SidecarClient({ kind: "http", origin: "http://127.0.0.1:1" });
    const missing = new SidecarClient({ kind: "unix", socketPath: "/nonexistent/s.sock" });
    try {
      await assert.rejects(refused.post("/", "", {}, never), /ECONNREFUSED/);
      await assert.rejects(missing.post("/", "", {}, never), /ENOENT/);
      const t0 = Date.now();
      await assert.rejects(client.post("/silent", "", {}, never), /no complete response within 300 ms/);
      assert.ok(Date.now() - t0 < 1_000);
      await assert.rejects(client.post("/reset", "", {}, never), /aborted|closed before the end of the response/);
      await assert.rejects(client.post("/big", "", {}, never), /response body over 65536 bytes/);
      // Still usable after all that.
      s.server.removeAllListeners("request");
      s.server.on("request", echo);
      assert.equal((await client.post("/", "ok", {}, never)).status, 201);
    } finally {
      for (const c of [client, refused, missing]) c.close();
      await s.close();
    }
  });

  it("ends a request at once when its signal aborts, and on close()", async () => {
    const s = await serve("unix", () => undefined);
    const client = new SidecarClient(s.target);
    try {
      const stopping = new AbortController();
      const t0 = Date.now();
      setTimeout(() => stopping.abort(), 50);
      await assert.rejects(client.post("/", "", {}, stopping.signal), /request aborted/);
      assert.ok(Date.now() - t0 < 500);
      await assert.rejects(client.post("/", "", {}, stopping.signal), /request aborted/);
      const pending = client.post("/", "", {}, never);
      setTimeout(() => client.close(), 50);
      await assert.rejects(pending);
    } finally {
      client.close();
      await s.close();
    }
  });
});
