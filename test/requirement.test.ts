import { strict as assert } from "node:assert";
import { inCi, requirement } from "../devstack/requirement";

// README "Development": a missing dependency is pending outside CI and a failure under any truthy CI.
describe("a test's missing dependency (devstack/requirement.ts)", () => {
  const saved = process.env.CI;
  afterEach(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });

  /** What requirement() does with a missing dependency: "skipped", or the error it throws. */
  function outcome(ci: string | undefined): string {
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
    // Mocha's skip() throws to end the test; so does this one.
    const ctx = {
      skip: () => {
        throw new Error("skipped");
      },
    } as unknown as Mocha.Context;
    const warn = console.warn;
    console.warn = () => undefined;
    try {
      requirement(ctx, "promtool is not on PATH", "apt-get install prometheus");
      return "went on";
    } catch (err) {
      return (err as Error).message;
    } finally {
      console.warn = warn;
    }
  }

  it("is pending when CI is unset, empty, 0 or false", () => {
    for (const ci of [undefined, "", "0", "false", "FALSE"]) {
      assert.equal(outcome(ci), "skipped", `CI=${ci}`);
      assert.equal(inCi(), false);
    }
  });

  it("fails naming the fix under any other CI value", () => {
    for (const ci of ["true", "1", "yes", "woodpecker"]) {
      assert.equal(outcome(ci), `promtool is not on PATH, and CI=${ci} requires it: apt-get install prometheus`);
      assert.equal(inCi(), true);
    }
  });

  it("does nothing when nothing is missing", () => {
    process.env.CI = "true";
    assert.doesNotThrow(() => requirement({} as Mocha.Context, undefined, "n/a"));
  });
});
