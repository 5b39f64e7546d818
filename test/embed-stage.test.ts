import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import { decodeNpy } from "../shared/cache/npy.ts";
import { listCommits, loadCache } from "../shared/cache/shards.ts";
import { readJob } from "../shared/embed/job.ts";
import { embedJobId } from "../shared/embed/plan.ts";
import { runEmbedShards } from "../shared/embed/run.ts";
import { keys } from "../shared/layout.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { TINY_DIM, tinySentimentRows, tinyVector, toJsonlText } from "./helpers/tiny-backbone.ts";

describe("batch embedding stage", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
  });
  after(() => ctx.cleanup());

  test("embeds every item once into committed shards whose vectors match the backbone", async () => {
    const { platform, store } = ctx;
    const rows = tinySentimentRows(50);
    await platform.putManifest("reviews", "jsonl", toJsonlText(rows));
    const { job, result } = await platform.embed("reviews", { shardSize: 16 });
    assert.equal(job.state, "succeeded");
    assert.deepEqual(job.shards, [0, 1, 2, 3]);
    assert.equal(result.itemsEmbedded, 50);
    assert.equal(result.shardsCommitted, 4);

    const commits = await listCommits(store, "tiny-text", "reviews");
    assert.deepEqual(
      commits.map((c) => c.count),
      [16, 16, 16, 2],
    );
    const npy = await store.get(keys.shardVectors("tiny-text", "reviews", 0));
    const { rows: n, cols, data } = decodeNpy(npy!.body);
    assert.equal(n, 16);
    assert.equal(cols, TINY_DIM);
    // Row 0 is "w1 w2 w3 w4 w5 #0": "#0" is unknown, so the vector is the mean of the five words.
    const words = rows[0].text.split(" ").slice(0, 5);
    for (let j = 0; j < TINY_DIM; j++) {
      const expected = words.reduce((s, w) => s + tinyVector(w)[j], 0) / words.length;
      assert.ok(Math.abs(data[j] - expected) < 1e-5, `dim ${j}: ${data[j]} vs ${expected}`);
    }
  });

  test("a re-upload with new rows and new labels embeds only the new items", async () => {
    const { platform, store } = ctx;
    const before = await listCommits(store, "tiny-text", "reviews");
    const rows = tinySentimentRows(60).map((r, i) =>
      i < 10 ? { ...r, label: r.label === "pos" ? "neg" : "pos" } : r,
    );
    await platform.putManifest("reviews", "jsonl", toJsonlText(rows));
    const { job, result } = await platform.embed("reviews", { shardSize: 16 });
    assert.equal(job.items.cached, 50);
    assert.equal(job.items.toEmbed, 10);
    assert.equal(result.itemsEmbedded, 10);
    assert.deepEqual(job.shards, [4]);
    const afterCommits = await listCommits(store, "tiny-text", "reviews");
    assert.deepEqual(afterCommits.slice(0, before.length), before, "committed shards are untouched");
  });

  test("running the same dataset version again is a no-op", async () => {
    const { job, result } = await ctx.platform.embed("reviews", { shardSize: 16 });
    assert.equal(result.itemsEmbedded, 0);
    assert.equal(result.shardsSkipped, job.shards.length);
  });

  test("duplicate texts (even with other whitespace) share one cache item", async () => {
    const { platform, store } = ctx;
    await platform.putManifest(
      "dups",
      "jsonl",
      toJsonlText([
        { id: "a", text: "good movie", label: "pos" },
        { id: "b", text: "  good   movie ", label: "pos" },
        { id: "c", text: "bad movie", label: "neg" },
      ]),
    );
    const { job } = await platform.embed("dups");
    assert.equal(job.items.toEmbed, 2);
    assert.equal(job.items.cached, 1);
    const cache = await loadCache(store, "tiny-text", "dups");
    assert.equal(cache.vectors.size, 2);
  });

  test("an aborted run leaves only committed shards visible and a re-run resumes without re-embedding them", async () => {
    const { platform, store } = ctx;
    await platform.putManifest("resume", "jsonl", toJsonlText(tinySentimentRows(40, { seed: 7 })));
    const job = await platform.planEmbed("resume", { shardSize: 10 });
    const controller = new AbortController();
    let committed = 0;
    const embedder = await loadEmbedder(store, "tiny-text", ctx.config);
    await assert.rejects(
      runEmbedShards(store, job, embedder, {
        onProgress: (e) => {
          if (e.type === "shard" && ++committed === 2) controller.abort();
        },
        signal: controller.signal,
      }),
      { name: "AbortError" },
    );
    const partial = await listCommits(store, "tiny-text", "resume");
    assert.deepEqual(
      partial.map((c) => c.shard),
      job.shards.slice(0, 2),
    );
    const { result } = await platform.embed("resume", { shardSize: 10 });
    assert.equal(result.shardsSkipped, 2);
    assert.equal(result.itemsEmbedded, 20);
    const all = await listCommits(store, "tiny-text", "resume");
    assert.deepEqual(all.slice(0, 2), partial, "the first two commits were not rewritten");
    assert.equal((await readJob(store, job.job))?.value.state, "succeeded");
  });

  test("a corrupted shard is detected instead of served", async () => {
    const { store } = ctx;
    const key = keys.shardVectors("tiny-text", "dups", 0);
    const obj = await store.get(key);
    const body = obj!.body.slice();
    body[body.length - 1] ^= 0xff;
    await store.put(key, body);
    await assert.rejects(loadCache(store, "tiny-text", "dups"), /does not match its commit marker/);
  });
});

describe("shard sizing", () => {
  test("minShards spreads a small dataset over as many shards as instances", async () => {
    const ctx = await tinyPlatform();
    try {
      await ctx.platform.putManifest("spread", "jsonl", toJsonlText(tinySentimentRows(10)));
      const job = await ctx.platform.planEmbed("spread", { minShards: 4 });
      assert.equal(job.shards.length, 4);
      const big = await ctx.platform.planEmbed("spread-big", { minShards: 2 }).catch((e) => e);
      assert.equal(big.name, "NotFoundError");
      await ctx.platform.putManifest("capped", "jsonl", toJsonlText(tinySentimentRows(30)));
      const capped = await ctx.platform.planEmbed("capped", { minShards: 2, shardSize: 10 });
      assert.equal(capped.shards.length, 3, "shardSize still caps a shard");
    } finally {
      await ctx.cleanup();
    }
  });
});

describe("job ids", () => {
  test("are valid SageMaker names with room for retries, prefixed by the customer when there is one", async () => {
    const ctx = await tinyPlatform();
    try {
      const spec = await ctx.platform.backbone();
      const version = "ab".repeat(32);
      const long = "d".repeat(63);
      for (const customer of [undefined, "acme", "c".repeat(32)]) {
        const id = embedJobId("s3://bucket/prefix", long, spec, version, customer);
        assert.ok(id.length <= 59, `${id} leaves room for -r99`);
        assert.match(id, /^[a-z0-9](-*[a-z0-9])*$/);
        assert.ok(id.startsWith(customer ? `embed-${customer}-` : "embed-"), id);
      }
      assert.notEqual(
        embedJobId("s3://a", "reviews", spec, version, "acme"),
        embedJobId("s3://b", "reviews", spec, version, "acme"),
        "another store, another job",
      );
    } finally {
      await ctx.cleanup();
    }
  });
});
