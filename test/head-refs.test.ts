/** Which version a caller means: head, head@version, head:alias; promotion and rollback. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { listVersions, parseHeadRef, readAlias } from "../shared/heads/version.ts";
import { createLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

describe("head references, aliases and rollback", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let v1: string;
  let v2: string;
  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { withSplit: true })));
    await ctx.platform.embed("films");
    v1 = (await ctx.platform.train({ dataset: "films", head: "films" })).version;
    v2 = (await ctx.platform.train({ dataset: "films", head: "films", l2: 1 })).version;
  });
  after(() => ctx.cleanup());

  test("parseHeadRef", () => {
    assert.deepEqual(parseHeadRef("films"), { head: "films" });
    assert.deepEqual(parseHeadRef("films@v1"), { head: "films", version: "v1" });
    assert.deepEqual(parseHeadRef("films:canary"), { head: "films", alias: "canary" });
    for (const bad of ["films@", "films:a:b", "films@v1:live", "Films", "@v1", "films@../x"]) {
      assert.throws(() => parseHeadRef(bad), { name: /ValidationError|InvalidNameError/ }, bad);
    }
  });

  test("predict through head, head@version and head:alias", async () => {
    const { platform } = ctx;
    assert.equal((await platform.predict("films", { inputs: ["great"] })).version, v2, "live is the newest");
    assert.equal((await platform.predict(`films@${v1}`, { inputs: ["great"] })).version, v1);
    await platform.promote("films", v1, null, "canary");
    assert.equal((await platform.predict("films:canary", { inputs: ["great"] })).version, v1);
    assert.equal((await platform.predict("films", { inputs: ["great"], alias: "canary" })).version, v1);
    await assert.rejects(platform.predict("films:nope", { inputs: ["great"] }), { name: "NotFoundError" });
    await assert.rejects(platform.predict(`films@${v1}`, { inputs: ["great"], alias: "canary" }), {
      name: "ValidationError",
    });
  });

  test("rollback returns live to the version before its last move, once", async () => {
    const { platform, store } = ctx;
    assert.equal((await readAlias(store, "films"))?.value.version, v2);
    assert.equal((await readAlias(store, "films"))?.value.previous, v1);
    assert.deepEqual(await platform.rollback("films"), { from: v2, to: v1 });
    assert.equal((await readAlias(store, "films"))?.value.version, v1);
    // Rolling back again returns to v2: the previous pointer is the last move.
    assert.deepEqual(await platform.rollback("films"), { from: v1, to: v2 });
    await assert.rejects(platform.rollback("films", "never-set"), { name: "NotFoundError" });
  });

  test("the API moves any alias and rolls back", async () => {
    const app = createApp(ctx.platform, createLogger("silent"));
    const json = (method: string, body?: unknown) => ({
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    let res = await app.request("/v1/heads/films/aliases/canary", json("PUT", { version: v2 }));
    assert.equal(res.status, 200);
    res = await app.request("/v1/heads/films/predict", json("POST", { inputs: ["fun"], alias: "canary" }));
    assert.equal(((await res.json()) as { version: string }).version, v2);
    res = await app.request("/v1/heads/films/aliases/canary/rollback", json("POST"));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { head: "films", alias: "canary", from: v2, to: v1 });
    res = await app.request(
      "/v1/heads/films/predict",
      json("POST", { inputs: ["fun"], version: v1, alias: "canary" }),
    );
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { field: string } }).error.field, "alias");
    res = await app.request("/v1/heads/films/aliases/fresh/rollback", json("POST"));
    assert.equal(res.status, 404);
  });

  test("two concurrent trainings of one head both keep their versions", async () => {
    const results = await Promise.allSettled([
      ctx.platform.train({ dataset: "films", head: "race" }),
      ctx.platform.train({ dataset: "films", head: "race", l2: 0.5 }),
    ]);
    assert.equal((await listVersions(ctx.store, "race")).length, 2);
    // At most one may lose the race to move `live`; its version is stored all the same.
    assert.ok(results.some((r) => r.status === "fulfilled"));
    for (const r of results)
      if (r.status === "rejected") assert.equal((r.reason as Error).name, "ConflictError");
  });
});
