import { strict as assert } from "node:assert";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { HttpError } from "../sidecar/http-util";
import { createSafeServer, type Handler } from "../sidecar/http-server";
import { rawExchange } from "./support/raw-http";

const ROUTES: Record<string, Handler> = {
  "/refused": () => Promise.reject(new HttpError(422, "test", "the client got it wrong")),
  "/bug": () => Promise.reject(new TypeError("a bug of ours")),
  "/sync-bug": () => {
    throw new TypeError("a bug before any promise");
  },
  "/bug-mid-body": async (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("partial ");
    await new Promise((r) => setImmediate(r));
    throw new TypeError("a bug after the headers");
  },
};

describe("the sidecar's HTTP error boundary", () => {
  const logged: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (line: string) => logged.push(JSON.parse(line)) });
  let server: Server;
  let port: number;
  const get = (path: string) =>
    rawExchange(port, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`), "end", 5_000).then((a) => {
      assert.ok(!a.timedOut, `no answer to ${path}`);
      return a;
    });

  before(async () => {
    server = createSafeServer("test", {}, log, (req, res) => ROUTES[req.url ?? ""](req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => (logged.length = 0));

  it("answers an HttpError with its status and message, and logs nothing", async () => {
    const a = await get("/refused");
    assert.equal(a.status, 422);
    assert.match(a.text, /\{"error":"the client got it wrong"\}$/);
    assert.deepEqual(logged, []);
  });

  it("answers any other error with a 500 and one log line naming the request", async () => {
    const a = await get("/bug");
    assert.equal(a.status, 500);
    assert.match(a.text, /\{"error":"internal error"\}$/);
    assert.equal(logged.length, 1);
    assert.equal(logged[0].level, 50);
    assert.equal(logged[0].target, '"/bug"');
    assert.match(JSON.stringify(logged[0].err), /a bug of ours/);
  });

  it("answers a handler that throws before returning its promise the same way", async () => {
    const a = await get("/sync-bug");
    assert.equal(a.status, 500);
    assert.equal(logged.length, 1);
  });

  it("cuts a response short when the error comes after its headers", async () => {
    const a = await get("/bug-mid-body");
    assert.equal(a.status, 200);
    assert.match(a.text, /partial /);
    assert.doesNotMatch(a.text, /\r\n0\r\n\r\n$/, "the chunked body has no end");
    assert.equal(logged.length, 1);
  });

  it("answers what Node cannot parse with a 400 naming the problem, on the socket", async () => {
    const a = await rawExchange(port, Buffer.from("\x16\x03\x01\x00\x05hello"), "end", 5_000);
    assert.equal(a.status, 400);
    assert.match(a.text, /\{"error":"malformed HTTP request: Invalid method encountered"\}$/);
  });
});
