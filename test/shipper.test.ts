import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log } from "../plugin/log";
import { Recorder } from "../plugin/recorder";
import { Shipper } from "../plugin/shipper";
import { service } from "./support/payloads";

const INTERVAL_MS = 100;

/** A sidecar stand-in on loopback: answers `status` (with the ack of the payload's seq) and keeps each request's Authorization. */
async function stubSidecar(status: number): Promise<{ origin: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      seen.push(req.headers.authorization ?? "");
      const seq = (JSON.parse(body) as { seq: number }).seq;
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ status: "applied", seq }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("plugin shipper (plugin/shipper.ts) against a stub sidecar", () => {
  const level = log.level;
  before(() => (log.level = "silent"));
  after(() => (log.level = level));

  // README "How it works", Shipping: exponential backoff up to 30 s.
  it("backs off exponentially from the flush interval, never more than 30 s between attempts", async () => {
    const sidecar = await stubSidecar(503);
    const recorder = new Recorder(10);
    const shipper = new Shipper(recorder, "test/0", { kind: "http", origin: sidecar.origin }, INTERVAL_MS, undefined);
    try {
      recorder.record(service("a", "a"), "upstream", 5);
      await shipper.tick();
      for (let failures = 1; failures <= 14; failures++) {
        // After the k-th failure the next attempt waits a random 50% to 100% of min(30 s, interval x 2^k).
        const backoff = Math.min(30_000, INTERVAL_MS * 2 ** failures);
        await shipper.tick(Date.now() + backoff / 2 - 50);
        assert.equal(sidecar.seen.length, failures, `after failure ${failures}: an attempt before ${backoff / 2} ms`);
        await shipper.tick(Date.now() + backoff);
        assert.equal(sidecar.seen.length, failures + 1, `after failure ${failures}: no attempt by ${backoff} ms`);
      }
    } finally {
      await shipper.close();
      await sidecar.close();
    }
  });

  // README "The plugin", exporter_token_file; chart README "Ingest token".
  it("reads exporter_token_file for every shipment, so a rotated token is sent from the next one", async () => {
    const sidecar = await stubSidecar(200);
    const dir = mkdtempSync(join(tmpdir(), "token-"));
    const file = join(dir, "token");
    const recorder = new Recorder(10);
    const shipper = new Shipper(recorder, "test/0", { kind: "http", origin: sidecar.origin }, INTERVAL_MS, file);
    try {
      writeFileSync(file, "first-token-0123456789\n");
      recorder.record(service("a", "a"), "upstream", 5);
      await shipper.tick();
      writeFileSync(file, "rotated-token-0123456789\n");
      recorder.record(service("a", "a"), "upstream", 6);
      await shipper.tick();
      assert.deepEqual(sidecar.seen, ["Bearer first-token-0123456789", "Bearer rotated-token-0123456789"]);
    } finally {
      await shipper.close();
      await sidecar.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
