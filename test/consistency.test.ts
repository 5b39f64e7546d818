/**
 * What keeps the store consistent under races and crashes: dataset versions switched by
 * compare-and-swap, racing or crashed planners leaving one job and no runnable orphan plan, and
 * content addresses that change whenever anything that decides a vector changes.
 */
import assert from "node:assert/strict";
import { cp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { clearEmbedders, loadEmbedder } from "../shared/backbone/registry.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { listCommits } from "../shared/cache/shards.ts";
import { ingestDataset, readDatasetRows, readDatasetStatus } from "../shared/datasets/ingest.ts";
import type { EmbedJob } from "../shared/embed/job.ts";
import { collectOrphanPlans, planEmbedJob, readShardPlan } from "../shared/embed/plan.ts";
import { ConflictError, PreconditionFailedError } from "../shared/errors.ts";
import { keys, parseKey } from "../shared/layout.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { TINY_VOCAB, tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

/** The store with some methods replaced: a deterministic way to interleave two writers. */
function withOverrides(store: ObjectStore, overrides: Partial<ObjectStore>): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop in overrides) return overrides[prop as keyof ObjectStore];
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Indices of the shard plans under a cache prefix. */
async function planShards(store: ObjectStore, backbone: string, dataset: string): Promise<number[]> {
  const out: number[] = [];
  for (const o of await store.list(keys.cachePrefix(backbone, dataset))) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "shardPlan") out.push(parsed.shard);
  }
  return out;
}

describe("consistency under races and crashes", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
  });
  after(() => ctx.cleanup());

  test("a slow ingest of an older upload never replaces a newer one", async () => {
    const { store, platform } = ctx;
    await platform.putManifest("race", "jsonl", '{"id": "v0", "text": "good"}\n');
    await store.put(keys.manifest("race", "jsonl"), '{"id": "v1", "text": "bad"}\n');
    const manifestKey = keys.manifest("race", "jsonl");
    // Ingest A reads v1; before it commits (while it stores v1's rows), v2 is uploaded and
    // ingested completely.
    const slow = withOverrides(store, {
      putFile: async (key, file) => {
        if (parseKey(key)?.kind === "datasetRows") {
          await store.put(manifestKey, '{"id": "v2", "text": "great"}\n');
          await ingestDataset(store, "race");
        }
        return store.putFile(key, file);
      },
    });
    await assert.rejects(ingestDataset(slow, "race"), ConflictError);
    const rows = await readDatasetRows(store, "race");
    assert.deepEqual(
      rows?.rows.map((r) => r.id),
      ["v2"],
    );
    assert.equal((await readDatasetStatus(store, "race"))?.rows.accepted, 1);
  });

  test("plans of a planning that crashed before its job file are never run, and withdrawn once the job exists", async () => {
    const { store, platform } = ctx;
    await platform.putManifest("crash", "jsonl", toJsonlText(tinySentimentRows(30)));
    const spec = await platform.backbone();
    const crashing = withOverrides(store, {
      put: async (key, body, opts) => {
        if (parseKey(key)?.kind === "job") throw new Error("simulated crash");
        return store.put(key, body, opts);
      },
    });
    await assert.rejects(planEmbedJob(crashing, "crash", spec, { shardSize: 10 }), /simulated crash/);
    assert.deepEqual(await planShards(store, spec.id, "crash"), [0, 1, 2]);
    // No job file yet: nothing proves those plans dead (their planner may still be at work).
    assert.deepEqual(await collectOrphanPlans(store, spec.id, "crash"), []);

    const job = await planEmbedJob(store, "crash", spec, { shardSize: 10 });
    assert.deepEqual(job.shards, [3, 4, 5], "fresh indices: another planner's plans are not taken over");
    for (const shard of [0, 1, 2]) {
      const plan = await readShardPlan(store, spec.id, "crash", shard);
      assert.ok(plan.orphaned, `plan ${shard} withdrawn`);
      assert.deepEqual(plan.items, []);
    }
    for (const shard of job.shards) {
      assert.equal((await readShardPlan(store, spec.id, "crash", shard)).items.length, 10);
    }
    const { result } = await platform.embed("crash", { shardSize: 10 });
    assert.equal(result.itemsEmbedded, 30);
    assert.deepEqual(
      (await listCommits(store, spec.id, "crash")).map((c) => c.shard),
      job.shards,
    );
  });

  test("a planner that loses the race for the job file deletes only its own plans and returns the winner's job", async () => {
    const { store, platform } = ctx;
    await platform.putManifest("plan-race", "jsonl", toJsonlText(tinySentimentRows(25)));
    const spec = await platform.backbone();
    let winner: EmbedJob | undefined;
    // Planner B has written its plans; planner A plans completely before B creates the job file.
    const late = withOverrides(store, {
      put: async (key, body, opts) => {
        if (parseKey(key)?.kind === "job" && !winner) {
          winner = await planEmbedJob(store, "plan-race", spec, { shardSize: 10 });
        }
        return store.put(key, body, opts);
      },
    });
    const lost = await planEmbedJob(late, "plan-race", spec, { shardSize: 10 });
    assert.deepEqual(lost, winner);
    assert.deepEqual(winner?.shards, [3, 4, 5], "A planned after B had taken 0-2");
    assert.deepEqual(await planShards(store, spec.id, "plan-race"), [3, 4, 5], "B's plans are gone");
    assert.equal((await readShardPlan(store, spec.id, "plan-race", 3)).items.length, 10);
  });

  test("a job file written but answered 412 (a retried request) keeps its plans", async () => {
    const { store, platform } = ctx;
    await platform.putManifest("retried", "jsonl", toJsonlText(tinySentimentRows(15)));
    const spec = await platform.backbone();
    const retrying = withOverrides(store, {
      put: async (key, body, opts) => {
        const info = await store.put(key, body, opts);
        if (parseKey(key)?.kind === "job") throw new PreconditionFailedError(key);
        return info;
      },
    });
    const job = await planEmbedJob(retrying, "retried", spec, { shardSize: 10 });
    assert.deepEqual(job.shards, [0, 1]);
    assert.deepEqual(await planShards(store, spec.id, "retried"), [0, 1]);
    const { result } = await platform.embed("retried", { shardSize: 10 });
    assert.equal(result.itemsEmbedded, 15);
  });

  test("composed and decomposed Unicode share one address and one vector", async () => {
    const { platform, store, config } = ctx;
    assert.equal(normalizeText("cafe\u0301  good"), normalizeText("caf\u00e9 good"));
    await platform.putManifest(
      "unicode",
      "jsonl",
      toJsonlText([
        { id: "a", text: "caf\u00e9 good", label: "x" },
        { id: "b", text: "cafe\u0301   good", label: "y" },
      ]),
    );
    const { job } = await platform.embed("unicode");
    assert.equal(job.items.toEmbed, 1);
    const embedder = await loadEmbedder(store, "tiny-text", config);
    const [direct, spaced] = [
      await embedder.embed([{ text: normalizeText("caf\u00e9 good") }]),
      await embedder.embed([{ text: normalizeText("cafe\u0301   good") }]),
    ];
    assert.deepEqual(direct, spaced);
  });

  test("a new vocabulary under the same model changes every address: nothing stale is reused", async () => {
    const { platform, dir } = ctx;
    await platform.putManifest("vocab", "jsonl", toJsonlText(tinySentimentRows(12)));
    const first = await platform.embed("vocab");
    assert.equal(first.result.itemsEmbedded, 12);
    // Same model bytes, vocabulary with two words swapped: other ids → other vectors.
    const moved = join(dir, "backbone-v2");
    await cp(join(dir, "backbone"), moved, { recursive: true });
    const swapped = [...TINY_VOCAB];
    [swapped[0], swapped[6]] = [swapped[6], swapped[0]];
    await writeFile(join(moved, "vocab.txt"), `${swapped.join("\n")}\n`);
    await platform.addBackbone(moved);
    clearEmbedders();
    const second = await platform.embed("vocab");
    assert.notEqual(second.job.job, first.job.job);
    assert.equal(second.result.itemsEmbedded, 12, "every item re-embedded under the new vocabulary");
    assert.equal((await listCommits(ctx.store, "tiny-text", "vocab")).length, 2);
    const trained = await platform.train({ dataset: "vocab", head: "vocab-head", cv: 2 });
    assert.equal(trained.metrics!.n, 12, "training uses only vectors of the current backbone");
  });
});

describe("backbone files are verified before use", () => {
  test("a model file that no longer matches backbone.json is refused", async () => {
    const ctx = await tinyPlatform();
    try {
      const spec = await ctx.platform.backbone();
      const key = keys.backboneAsset(spec.id, spec.model);
      const body = (await ctx.store.get(key))!.body.slice();
      body[body.length - 1] ^= 0xff;
      await ctx.store.put(key, body);
      clearEmbedders();
      await assert.rejects(
        loadEmbedder(ctx.store, spec.id, ctx.config),
        /model\.onnx has sha256 .* backbone\.json says/,
      );
    } finally {
      clearEmbedders();
      await ctx.cleanup();
    }
  });
});

test("normalizeText: the ASCII shortcut answers what the full normalization does", () => {
  const full = (t: string) => t.normalize("NFC").replace(/\s+/g, " ").trim();
  const rand = mulberry32(5);
  const alphabet = [
    "a",
    "b",
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\v",
    "\f",
    ".",
    "é",
    "e\u0301",
    "\u00a0",
    "\u2003",
    "\u001f",
    "x",
  ];
  const cases = ["", " ", "a", "a b", " a", "a ", "a  b", "a\tb", "plain words, punctuation! and 42"];
  for (let i = 0; i < 2000; i++) {
    const n = Math.floor(rand() * 8);
    cases.push(Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]).join(""));
  }
  for (const t of cases) assert.equal(normalizeText(t), full(t), JSON.stringify(t));
});
