/**
 * `suggest`: which unlabelled rows to label next, over imported embeddings we place by hand — a
 * labelled pos/neg pair of clusters along axis 0 (spread wide on the other axes) (the head's decision boundary is near x = 0) and
 * unlabelled rows on the boundary (six near-duplicates along axis 1), near it (one along axis 2, one
 * along axis 3) or far on either side of it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { HeadstartError } from "../shared/errors.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import { makeLogger } from "../shared/log.ts";
import { cli } from "./helpers/cli.ts";
import { tinyPlatform } from "./helpers/platform.ts";

const DUPES = ["dup0", "dup1", "dup2", "dup3", "dup4", "dup5"];
const BOUNDARY = [...DUPES, "edge-z", "edge-w"];

function dataset() {
  const rand = mulberry32(3);
  const noise = () => (rand() - 0.5) * 0.2;
  // Wide on the other axes, so the boundary rows' values there are nothing new to the head.
  const wide = () => (rand() - 0.5) * 3;
  const rows: Array<{ id: string; label?: string }> = [];
  const embeddings: number[][] = [];
  const add = (id: string, v: number[], label?: string) => {
    rows.push(label === undefined ? { id } : { id, label });
    embeddings.push(v);
  };
  for (let i = 0; i < 12; i++) {
    add(`pos${i}`, [2 + noise(), wide(), wide(), wide()], "pos");
    add(`neg${i}`, [-2 + noise(), wide(), wide(), wide()], "neg");
  }
  DUPES.forEach((id, i) => {
    add(id, [0.01 * i, 1, 0.001 * i, 0]);
  });
  add("edge-z", [0.5, 0, 1, 0]);
  add("edge-w", [-0.5, 0, 0, 1]);
  for (let i = 0; i < 6; i++) add(`sure${i}`, [i % 2 === 0 ? 3 : -3, noise(), noise(), noise()]);
  return { rows, embeddings };
}

/** Three tight clusters of five, no labels at all. */
function coldDataset() {
  const rows: Array<{ id: string }> = [];
  const embeddings: number[][] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 5; i++) {
      rows.push({ id: `c${c}-${i}` });
      embeddings.push(
        [0, 1, 2].map((j) => (j === c ? 1 : 0) + 0.01 * i * (j === (c + 1) % 3 ? 1 : 0)).concat([0]),
      );
    }
  }
  return { rows, embeddings };
}

const ids = (items: Array<{ id: string }>) => items.map((i) => i.id);
/** Response bodies are checked field by field, so they are read untyped. */
const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

describe("suggest", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;

  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.importEmbeddings("pool", { backbone: "ext-al", ...dataset() });
    await ctx.platform.importEmbeddings("cold", { backbone: "ext-cold", ...coldDataset() });
    await ctx.platform.train({ dataset: "pool", head: "al", backbone: "ext-al", type: "logreg" });
  });
  after(() => ctx.cleanup());

  test("margin puts the rows on the decision boundary first, the sure ones last", async () => {
    const r = await ctx.platform.suggest("pool", { head: "al", strategy: "margin", k: 14 });
    assert.equal(r.strategy, "margin");
    assert.equal(r.coldStart, false);
    assert.equal(r.labelled, 24);
    assert.equal(r.unlabelled, 14);
    assert.equal(r.head, "al");
    assert.deepEqual(ids(r.items.slice(0, 8)).sort(), [...BOUNDARY].sort());
    assert.ok(ids(r.items.slice(8)).every((id) => id.startsWith("sure")));
    for (let i = 1; i < r.items.length; i++) assert.ok(r.items[i - 1].score >= r.items[i].score);
    assert.ok(r.items[0].score > 0.8 && r.items[13].score < 0.2, JSON.stringify(r.items));
    assert.match(r.items[0].reason, /^margin: (pos|neg) 0\.\d+ vs (pos|neg) 0\.\d+$/);
    // Nothing labelled is ever suggested.
    assert.ok(ids(r.items).every((id) => !/^(pos|neg)\d/.test(id)));
  });

  test("entropy ranks the same boundary rows first", async () => {
    const r = await ctx.platform.suggest("pool", { head: "al", strategy: "entropy", k: 8 });
    assert.deepEqual(ids(r.items).sort(), [...BOUNDARY].sort());
    assert.match(r.items[0].reason, /^entropy: /);
  });

  test("coreset picks spread-out rows, not near-duplicates", async () => {
    const r = await ctx.platform.suggest("pool", { head: "al", strategy: "coreset", k: 3 });
    assert.equal(r.strategy, "coreset");
    const picked = ids(r.items);
    assert.equal(picked.filter((id) => DUPES.includes(id)).length, 1, picked.join(","));
    assert.ok(picked.includes("edge-z") && picked.includes("edge-w"), picked.join(","));
    assert.ok(
      r.items.every((i) => i.score > 0.5),
      JSON.stringify(r.items),
    );
  });

  test("hybrid (the default): uncertain rows, no near-duplicates in the batch", async () => {
    // k = 2 of 14 unlabelled rows: the pool is their more uncertain half (7 rows), the six
    // near-duplicates and one edge row.
    const margin = await ctx.platform.suggest("pool", { head: "al", strategy: "margin", k: 2 });
    // Pure margin takes two near-duplicates here; the hybrid must reach past them.
    assert.deepEqual(
      ids(margin.items).filter((id) => DUPES.includes(id)).length,
      2,
      JSON.stringify(margin.items),
    );
    const r = await ctx.platform.suggest("pool", { head: "al", k: 2 });
    assert.equal(r.strategy, "hybrid");
    const picked = ids(r.items);
    assert.ok(
      picked.every((id) => BOUNDARY.includes(id)),
      JSON.stringify(r.items),
    );
    assert.equal(picked.filter((id) => DUPES.includes(id)).length, 1, picked.join(","));
    assert.ok(picked.includes("edge-z") || picked.includes("edge-w"), picked.join(","));
    assert.match(
      r.items[0].reason,
      /^margin: .*; the most typical of 6 similar rows among the 7 most uncertain$/,
    );
  });

  test("hybrid from 100 labelled rows on: a committee of bootstrap heads scores the margin", async () => {
    const rand = mulberry32(11);
    const noise = () => (rand() - 0.5) * 0.2;
    const rows: Array<{ id: string; label?: string }> = [];
    const embeddings: number[][] = [];
    for (let i = 0; i < 60; i++) {
      rows.push({ id: `p${i}`, label: "pos" }, { id: `n${i}`, label: "neg" });
      embeddings.push([2 + noise(), noise(), noise()], [-2 + noise(), noise(), noise()]);
    }
    const open = ["mid0", "mid1", "mid2", "far-pos", "far-neg", "far-pos2"];
    embeddings.push([0, 0.5, 0], [0.1, -0.5, 0], [-0.1, 0, 0.5], [3, 0, 0], [-3, 0, 0], [3, 0.1, 0]);
    rows.push(...open.map((id) => ({ id })));
    await ctx.platform.importEmbeddings("many", { backbone: "ext-many", rows, embeddings });
    await ctx.platform.train({ dataset: "many", head: "many", backbone: "ext-many", type: "logreg" });
    const r = await ctx.platform.suggest("many", { head: "many", k: 3 });
    assert.equal(r.labelled, 120);
    assert.deepEqual(ids(r.items).sort(), ["mid0", "mid1", "mid2"]);
    assert.match(
      r.items[0].reason,
      /^margin of 10 bootstrap heads: (pos|neg) 0\.\d{3} vs (pos|neg) 0\.\d{3}; the most typical of 1 similar row among the 3 most uncertain$/,
    );
  });

  test("cold start with nothing labelled: typical seeds, the middle row of each cluster", async () => {
    const r = await ctx.platform.suggest("cold", { k: 3 });
    assert.equal(r.coldStart, true);
    assert.equal(r.strategy, "hybrid");
    assert.equal(r.backbone, "ext-cold");
    assert.equal(r.labelled, 0);
    // Each cluster is five rows in a line: its medoid is the middle one.
    assert.deepEqual(ids(r.items).sort(), ["c0-2", "c1-2", "c2-2"]);
    for (const item of r.items) {
      assert.match(
        item.reason,
        /^seed: the most typical of 5 similar rows \(k-means of 15 unlabelled rows into 3 groups\)$/,
      );
      assert.equal(item.score, 0.333333);
    }
  });

  test("cold start by k-center: asked for, or once rows are labelled", async () => {
    const spread = await ctx.platform.suggest("cold", { k: 3, strategy: "coreset" });
    assert.equal(spread.strategy, "coreset");
    assert.deepEqual(new Set(ids(spread.items).map((id) => id.slice(0, 2))), new Set(["c0", "c1", "c2"]));
    assert.match(spread.items[0].reason, /^seed: the unlabelled row nearest the mean/);
    assert.equal(spread.items[0].score, 2);
    // Without a head, labelled rows still repel: the default picks the three off-axis rows.
    const seeded = await ctx.platform.suggest("pool", { k: 3 });
    assert.equal(seeded.coldStart, true);
    assert.equal(seeded.strategy, "coreset");
    assert.equal(ids(seeded.items).filter((id) => DUPES.includes(id)).length, 1);
  });

  test("k larger than the pool answers every unlabelled row once", async () => {
    const r = await ctx.platform.suggest("pool", { head: "al", k: 1000 });
    assert.equal(r.items.length, 14);
    assert.equal(new Set(ids(r.items)).size, 14);
  });

  test("bad requests are refused naming the field", async () => {
    const refused = async (req: object, field: string, message: RegExp, dataset = "pool") => {
      await assert.rejects(ctx.platform.suggest(dataset, req), (err: unknown) => {
        assert.ok(err instanceof HeadstartError);
        assert.equal(err.field, field);
        assert.match(err.message, message);
        return true;
      });
    };
    await refused({ head: "al", strategy: "random" }, "strategy", /margin, entropy, coreset, hybrid/);
    await refused({ strategy: "margin" }, "head", /needs a head/);
    await refused({ head: "al", k: 0 }, "k", /1\.\.1000/);
    await refused({ head: "al", k: 2.5 }, "k", /integer/);
    await refused({ head: "al", backbone: "ext-al" }, "backbone", /not both/);
    await refused({ head: "nope" }, "head", /nope/);
    await refused({}, "dataset", /missing/, "missing");
    // The head reads its own backbone's cache: a dataset embedded with another one is told how to fix it.
    await refused({ head: "al" }, "dataset", /no embeddings from ext-al yet; import them/, "cold");
  });

  test("the CLI: `headstart suggest … --json` prints the items; an unknown strategy exits 2", async () => {
    const env = { HEADSTART_STORE: ctx.store.root };
    const ok = await cli(["--json", "suggest", "pool", "--head", "al", "--k", "3"], env);
    assert.equal(ok.code, 0, ok.stderr);
    const r = JSON.parse(ok.stdout);
    assert.equal(r.strategy, "hybrid");
    assert.equal(r.items.length, 3);
    for (const item of r.items) assert.deepEqual(Object.keys(item), ["id", "score", "reason"]);
    const human = await cli(["suggest", "cold", "--k", "2"], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^2 of 15 unlabelled rows of cold by hybrid \(no head/);
    const bad = await cli(["suggest", "pool", "--head", "al", "--strategy", "random"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /margin, entropy, coreset, hybrid/);
  });

  test("POST /v1/datasets/{dataset}/suggest answers the same ranking; bad bodies are 400 naming the field", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const post = (dataset: string, body?: object) =>
      app.request(`/v1/datasets/${dataset}/suggest`, {
        method: "POST",
        ...(body ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
      });
    const res = await post("pool", { head: "al", strategy: "margin", k: 8 });
    assert.equal(res.status, 200);
    const r = await read(res);
    assert.deepEqual(ids(r.items).sort(), [...BOUNDARY].sort());
    const direct = await ctx.platform.suggest("pool", { head: "al", strategy: "margin", k: 8 });
    assert.deepEqual(r.items, direct.items);
    const cold = await post("cold");
    assert.equal(cold.status, 200);
    const seed = await read(cold);
    assert.equal(seed.coldStart, true);
    assert.equal(seed.items.length, 15);
    for (const [body, field] of [
      [{ head: "al", strategy: "random" }, "strategy"],
      [{ head: "al", k: 0 }, "k"],
      [{ head: "al", extra: 1 }, "extra"],
    ] as const) {
      const bad = await post("pool", body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      const err = await read(bad);
      assert.equal(err.error.field, field, JSON.stringify(err));
    }
    assert.equal((await post("missing", {})).status, 404);
    assert.equal((await post("pool", { head: "nope" })).status, 404);
  });

  test("multi-label heads rank by their least decided label; regression heads allow coreset only", async () => {
    const rand = mulberry32(5);
    const rows: Array<{ id: string; label?: string[] | number }> = [];
    const embeddings: number[][] = [];
    for (let i = 0; i < 40; i++) {
      const a = i % 2 === 0;
      const b = i % 3 === 0;
      rows.push({ id: `t${i}`, label: [...(a ? ["a"] : []), ...(b ? ["b"] : [])] });
      embeddings.push([a ? 2 : -2, b ? 2 : -2, rand() - 0.5, rand() - 0.5]);
    }
    rows.push({ id: "open-sure" }, { id: "open-b-unsure" });
    embeddings.push([3, 3, 0, 0], [3, 0, 0, 0]);
    await ctx.platform.importEmbeddings("tags", { backbone: "ext-tags", rows, embeddings });
    await ctx.platform.train({ dataset: "tags", head: "tags", backbone: "ext-tags" });
    const r = await ctx.platform.suggest("tags", { head: "tags", strategy: "margin", k: 2 });
    assert.deepEqual(ids(r.items), ["open-b-unsure", "open-sure"]);
    assert.match(r.items[0].reason, /^margin: label b at 0\.\d{3}$/);
    // The hybrid ranks by a multi-label head's own probabilities too.
    const hybrid = await ctx.platform.suggest("tags", { head: "tags", k: 2 });
    assert.match(hybrid.items[0].reason, /^margin: label b at 0\.\d{3}; /);

    const numbers = rows.map((row, i) =>
      row.label === undefined ? { id: row.id } : { id: row.id, label: i + 0.5 },
    );
    await ctx.platform.importEmbeddings("scores", { backbone: "ext-tags", rows: numbers, embeddings });
    await ctx.platform.train({ dataset: "scores", head: "scores", backbone: "ext-tags" });
    await assert.rejects(ctx.platform.suggest("scores", { head: "scores" }), /regression head.*coreset/);
    const spread = await ctx.platform.suggest("scores", { head: "scores", strategy: "coreset" });
    assert.equal(spread.items.length, 2);
  });
});
