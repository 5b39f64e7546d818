/** Which version a caller means: head, head@version, head:alias; promotion and rollback. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { listVersions, parseHeadRef, readAlias } from "../shared/heads/version.ts";
import { makeLogger } from "../shared/log.ts";
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
    v2 = (await ctx.platform.train({ dataset: "films", head: "films", params: { C: 1 } })).version;
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
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
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
      ctx.platform.train({ dataset: "films", head: "race", params: { C: 2 } }),
    ]);
    assert.equal((await listVersions(ctx.store, "race")).length, 2);
    // At most one may lose the race to move `live`; its version is stored all the same.
    assert.ok(results.some((r) => r.status === "fulfilled"));
    for (const r of results)
      if (r.status === "rejected") assert.equal((r.reason as Error).name, "ConflictError");
  });
});

describe("explanations by example", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest(
      "tiny",
      "jsonl",
      toJsonlText([
        { id: "p1", text: "great fun", label: "pos" },
        { id: "p2", text: "wonderful brilliant", label: "pos" },
        { id: "n1", text: "awful boring", label: "neg" },
        { id: "n2", text: "dull worst", label: "neg" },
        { id: "t1", text: "great great great", label: "pos", split: "test" },
        { id: "t2", text: "awful awful", label: "neg", split: "test" },
      ]),
    );
    await ctx.platform.embed("tiny");
    await ctx.platform.train({ dataset: "tiny", head: "tiny" });
  });
  after(() => ctx.cleanup());

  test("returns the k nearest training items by cosine, never test items", async () => {
    const out = await ctx.platform.predict("tiny", { inputs: ["great fun"], neighbors: 3 });
    const [p] = out.predictions;
    assert.equal(p.neighbors?.length, 3);
    assert.equal(p.neighbors?.[0].id, "p1", "an identical training text is the nearest");
    assert.ok(Math.abs((p.neighbors?.[0].similarity ?? 0) - 1) < 1e-5);
    const sims = p.neighbors!.map((n) => n.similarity);
    assert.deepEqual(
      [...sims].sort((a, b) => b - a),
      sims,
      "most similar first",
    );
    assert.ok(!p.neighbors!.some((n) => n.id.startsWith("t")), "test rows are not training items");
    const all = await ctx.platform.predict("tiny", { inputs: ["great fun"], neighbors: 50 });
    assert.equal(all.predictions[0].neighbors?.length, 4, "at most the training set");
  });

  test("works for ready embeddings, and k is validated", async () => {
    const spec = await ctx.platform.backbone();
    const zero = new Array(spec.dim).fill(0);
    const out = await ctx.platform.predict("tiny", { embeddings: [zero], neighbors: 2 });
    assert.deepEqual(
      out.predictions[0].neighbors?.map((n) => n.similarity),
      [0, 0],
      "a zero vector is similar to nothing",
    );
    await assert.rejects(ctx.platform.predict("tiny", { inputs: ["x"], neighbors: 0 }), {
      name: "ValidationError",
    });
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/heads/tiny/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: ["dull"], neighbors: 1 }),
    });
    const body = (await res.json()) as {
      predictions: Array<{ neighbors: Array<{ id: string; label: string }> }>;
    };
    assert.equal(res.status, 200);
    assert.equal(body.predictions[0].neighbors[0].label, "neg");
  });
});
