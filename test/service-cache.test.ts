import { strict as assert } from "node:assert";
import { ServiceCache } from "../plugin/service-cache";
import { service } from "./support/payloads";

// README "How it works", Recording: the Service is looked up once per instance and cached for 10 s.
describe("the plugin's Service cache (plugin/service-cache.ts)", () => {
  it("keeps a looked-up Service for 10 s, then asks for a new lookup", () => {
    const cache = new ServiceCache();
    const echo = service("1", "default.echo.80");
    assert.equal(cache.get(0), undefined);
    cache.set(echo, 1_000);
    assert.equal(cache.get(1_000), echo);
    assert.equal(cache.get(10_999), echo);
    assert.equal(cache.get(11_000), undefined);
    const renamed = service("1", "default.echo2.80");
    cache.set(renamed, 11_000);
    assert.equal(cache.get(20_999), renamed);
  });
});
