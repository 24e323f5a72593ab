import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log } from "../plugin/log";
import { Recorder } from "../plugin/recorder";
import { Shipper } from "../plugin/shipper";
import type { IngestPayload } from "../wire/payload";
import { service } from "./support/payloads";

const INTERVAL_MS = 100;

interface Seen {
  authorization: string;
  payload: IngestPayload;
}

/** A sidecar stand-in on loopback: answers `status` (with the payload's seq) and keeps every request it got. */
async function stubSidecar(status: number) {
  const stub = { origin: "", status, seen: [] as Seen[], close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const payload = JSON.parse(body) as IngestPayload;
      stub.seen.push({ authorization: req.headers.authorization ?? "", payload });
      const ack = stub.status < 300 ? { status: "applied", seq: payload.seq } : { error: "refused by the stub" };
      res.writeHead(stub.status, { "content-type": "application/json" }).end(JSON.stringify(ack));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stub.origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  stub.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return stub;
}

/** The events of a payload, per service name. */
const counts = (p: IngestPayload) =>
  Object.fromEntries(p.services.map((s) => [s.service.name, s.latencies.upstream!.count]));

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
      shipper.close();
      await sidecar.close();
    }
  });

  // README "Guarantees and limits", No double counting: a retried payload is never merged with newer data.
  it("retries a payload unchanged, same seq, until acknowledged; newer events go in the next one", async () => {
    const sidecar = await stubSidecar(503);
    const recorder = new Recorder(10);
    const shipper = new Shipper(recorder, "test/0", { kind: "http", origin: sidecar.origin }, INTERVAL_MS, undefined);
    try {
      recorder.record(service("a", "a"), "upstream", 5);
      for (let attempt = 0; attempt < 3; attempt++) {
        await shipper.tick(Number.MAX_SAFE_INTEGER);
        recorder.record(service("b", "b"), "upstream", 7);
      }
      sidecar.status = 200;
      await shipper.tick(Number.MAX_SAFE_INTEGER);
      await shipper.tick(Number.MAX_SAFE_INTEGER);
      assert.deepEqual(
        sidecar.seen.map((r) => [r.payload.seq, counts(r.payload)]),
        [...Array.from({ length: 4 }, () => [1, { a: 1 }]), [2, { b: 3 }]],
      );
    } finally {
      shipper.close();
      await sidecar.close();
    }
  });

  // README "Guarantees and limits", Bounded memory means bounded loss: a refused payload is counted as rejected.
  it("drops a payload the sidecar refuses as invalid, and reports its events as rejected in the next one", async () => {
    const sidecar = await stubSidecar(400);
    const recorder = new Recorder(10);
    const shipper = new Shipper(recorder, "test/0", { kind: "http", origin: sidecar.origin }, INTERVAL_MS, undefined);
    try {
      for (const ms of [5, 6, 7]) recorder.record(service("a", "a"), "upstream", ms);
      await shipper.tick();
      sidecar.status = 200;
      recorder.record(service("b", "b"), "upstream", 8);
      await shipper.tick();
      assert.deepEqual(
        sidecar.seen.map((r) => [r.payload.seq, r.payload.dropped, counts(r.payload)]),
        [
          [1, { overflow: 0, rejected: 0 }, { a: 3 }],
          [2, { overflow: 0, rejected: 3 }, { b: 1 }],
        ],
      );
    } finally {
      shipper.close();
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
      assert.deepEqual(
        sidecar.seen.map((r) => r.authorization),
        ["Bearer first-token-0123456789", "Bearer rotated-token-0123456789"],
      );
    } finally {
      shipper.close();
      await sidecar.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
