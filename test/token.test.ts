import { strict as assert } from "node:assert";
import crypto from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IngestToken } from "../sidecar/token";

// README "Guarantees and limits", A closed ingest: tokens compared in constant time. Timing differences of a
// string comparison are nanoseconds, below what a test can measure; what it can check is that every decision
// is crypto.timingSafeEqual's, on inputs whose length does not depend on the token sent.
describe("the sidecar's ingest token (sidecar/token.ts)", () => {
  const dir = mkdtempSync(join(tmpdir(), "token-"));
  const file = join(dir, "token");
  writeFileSync(file, "s3cret-token-0123456789\n");
  const original = crypto.timingSafeEqual;
  const calls: Array<[number, number]> = [];
  let answer: boolean | undefined;
  before(() => {
    crypto.timingSafeEqual = (a, b) => {
      calls.push([a.byteLength, b.byteLength]);
      return answer ?? original(a, b);
    };
  });
  after(() => {
    crypto.timingSafeEqual = original;
    rmSync(dir, { recursive: true, force: true });
  });

  it("decides with crypto.timingSafeEqual on SHA-256 digests, whatever the length of the token sent", () => {
    const token = IngestToken.fromFile(file);
    assert.equal(token.accepts("Bearer s3cret-token-0123456789"), true);
    assert.equal(token.accepts("Bearer s"), false);
    assert.equal(token.accepts(`Bearer ${"x".repeat(5000)}`), false);
    assert.deepEqual(calls, [
      [32, 32],
      [32, 32],
      [32, 32],
    ]);
    answer = false;
    assert.equal(token.accepts("Bearer s3cret-token-0123456789"), false, "the right token, refused by the comparison");
    answer = undefined;
  });
});
