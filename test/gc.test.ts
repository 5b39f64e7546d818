/**
 * `gc` (shared/lifecycle/gc.ts) on both stores (FsStore and S3Store on a real radosgw): a store
 * with an old head version, an old rows version and its cache, an unused batch input, caches of a
 * gone dataset and a gone backbone, stray exports, a stale lease, expired idempotency records and
 * (FsStore) a write's temporary. `--dry-run` lists exactly what `gc` then removes; what is still
 * referenced, uploads, `_system/` and batch outputs stay; the store is consistent afterwards and
 * the kept head still trains on its cached embeddings. The CLI's `gc --json` contract and the
 * admin route `POST /v1/gc`.
 */
import assert from "node:assert/strict";
import { utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { updateJob } from "../shared/embed/job.ts";
import { keys } from "../shared/layout.ts";
import { collectGarbage } from "../shared/lifecycle/gc.ts";
import { listHeadVersions } from "../shared/lifecycle/list.ts";
import { makeLogger } from "../shared/log.ts";
import type { Platform } from "../shared/platform.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { cli } from "./helpers/cli.ts";
import { tinyCliPlatform, tinyPlatform } from "./helpers/platform.ts";
import { describeOnRadosgw, s3TinyPlatform } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const SHA = "a".repeat(64);
const NOW_GC = { keepVersions: 1, minAgeMs: 0 };

/** Rows version A: 60 rows; B: A's first 30 and 30 new texts, so A's second shard is A's alone. */
const ROWS_A = tinySentimentRows(60, { seed: 2 });
const ROWS_B = [
  ...ROWS_A.slice(0, 30),
  ...tinySentimentRows(60, { seed: 9 })
    .slice(30)
    .map((r) => ({ ...r, text: `${r.text} anew` })),
];

interface Populated {
  versions: string[];
  rowsA: string;
  jobA: string;
  batchJob: string;
  usedInput: string;
  unusedInput: string;
  unusedInputJob: string;
}

async function populate(platform: Platform, dir: string): Promise<Populated> {
  const store = platform.store;
  const train = async (promote: boolean) =>
    (await platform.train({ dataset: "films", head: "films", promote })).version;
  await platform.putManifest("films", "jsonl", toJsonlText(ROWS_A));
  const embeddedA = await platform.embed("films", { shardSize: 30 });
  const v1 = await train(true);
  await store.put(keys.headExport("films", v1, false, SHA), "onnx");
  await platform.putManifest("films", "jsonl", toJsonlText(ROWS_B));
  await platform.embed("films", { shardSize: 30 });
  const versions = [v1, await train(true), await train(true), await train(false)];

  const input = async (name: string, seed: number) => {
    const path = join(dir, name);
    await writeFile(path, toJsonlText(tinySentimentRows(6, { seed }).map(({ id, text }) => ({ id, text }))));
    return platform.uploadBatchInput(path);
  };
  const usedInput = await input("used.jsonl", 4);
  const { job } = await platform.startBatchPrediction({
    head: "films",
    dataset: usedInput,
    source: "manifest",
  });
  assert.equal((await platform.runBatchPrediction(job.job)).status, "succeeded");
  const unusedInput = await input("unused.jsonl", 6);
  const unusedInputJob = (await platform.embed(unusedInput)).job.job;

  // Strays: caches of a dataset and of a backbone that are gone, an export of a version that is
  // gone, a lease left on a committed shard, idempotency records (one expired).
  await store.put(keys.shardVectors("tiny-text", "ghost", 0), "npy");
  await store.put(keys.shardCommit("tiny-text", "ghost", 0), "{}");
  await store.put(keys.shardVectors("gone-backbone", "films", 0), "npy");
  await store.put(keys.headExport("films", "v-gone", true, SHA), "onnx");
  await store.put(keys.shardLease("tiny-text", "films", 2), "{}");
  const record = (expiresAt: number) => JSON.stringify({ status: "COMPLETED", expiresAt, startedAt: "x" });
  await store.put(keys.idempotencyRecord("ingest", "1".repeat(64)), record(1));
  await store.put(keys.idempotencyRecord("ingest", "2".repeat(64)), record(Date.now() + 3_600_000));
  // Never gc's: the customer's system files, uploads, unknown keys.
  for (const key of UNTOUCHABLE) await store.put(key, "keep");
  const rowsA = embeddedA.job.datasetVersion;
  return {
    versions,
    rowsA,
    jobA: embeddedA.job.job,
    batchJob: job.job,
    usedInput,
    unusedInput,
    unusedInputJob,
  };
}

const UNTOUCHABLE = ["_system/webhooks.json", "batch/films/tonight.jsonl", "notes/readme.txt"];

interface Opened {
  platform: Platform;
  store: ObjectStore;
  dir: string;
  env: Record<string, string>;
  cleanup?: () => Promise<void>;
}

const keysOf = (r: { removed: Array<{ key: string }> }) => r.removed.map((e) => e.key);

function gcSuite(name: string, open: () => Promise<Opened>) {
  describe(`gc on ${name}`, () => {
    let ctx: Opened;
    let p: Populated;
    before(async () => {
      ctx = await open();
      p = await populate(ctx.platform, ctx.dir);
    });
    after(() => ctx.cleanup?.());

    test("with the default grace period nothing young is removed", async () => {
      assert.deepEqual(await collectGarbage(ctx.store, { dryRun: true }), { removed: [], bytes: 0 });
    });

    test("--dry-run lists exactly what gc then removes; what is referenced stays", async () => {
      const { store } = ctx;
      const temporary = ctx.dir && "root" in store ? await writeTemporary(store as never) : undefined;
      const dry = await collectGarbage(store, { ...NOW_GC, dryRun: true });
      const planned = keysOf(dry);
      const viaCli = await cli(
        ["gc", "--dry-run", "--json", "--min-age", "0", "--keep-versions", "1"],
        ctx.env,
      );
      assert.equal(viaCli.code, 0, viaCli.stderr);
      assert.deepEqual(JSON.parse(viaCli.stdout), dry, "the CLI plans the same");
      const [v1, v2, v3, v4] = p.versions;
      const must = [
        keys.headFile("films", v1, "head.json"),
        keys.headFile("films", v1, "report.json"),
        keys.headExport("films", v1, false, SHA),
        keys.headExport("films", "v-gone", true, SHA),
        keys.datasetRows("films", p.rowsA),
        keys.job(p.jobA),
        keys.shardCommit("tiny-text", "films", 1),
        keys.shardVectors("tiny-text", "films", 1),
        keys.shardRows("tiny-text", "films", 1),
        keys.shardLease("tiny-text", "films", 2),
        keys.datasetStatus(p.unusedInput),
        keys.job(p.unusedInputJob),
        keys.shardVectors("tiny-text", "ghost", 0),
        keys.shardVectors("gone-backbone", "films", 0),
        keys.idempotencyRecord("ingest", "1".repeat(64)),
        ...(temporary ? [temporary] : []),
      ];
      for (const key of must) assert.ok(planned.includes(key), `${key} planned`);
      assert.ok(planned.some((k) => k.startsWith(keys.cachePrefix("tiny-text", p.unusedInput))));
      const kept = [
        ...[v2, v3, v4].map((v) => keys.headFile("films", v, "head.json")),
        keys.datasetStatus("films"),
        keys.manifest("films", "jsonl"),
        keys.shardCommit("tiny-text", "films", 0), // shared with the current rows
        keys.shardCommit("tiny-text", "films", 2),
        keys.datasetStatus(p.usedInput), // its batch job refers to it
        keys.batchJob(p.batchJob),
        keys.idempotencyRecord("ingest", "2".repeat(64)),
        ...UNTOUCHABLE,
      ];
      for (const key of kept) assert.ok(!planned.includes(key), `${key} kept`);
      assert.ok(!planned.some((k) => k.startsWith(keys.predictionsPrefix(p.batchJob))), "outputs kept");
      assert.equal(
        dry.bytes,
        dry.removed.reduce((s, e) => s + e.bytes, 0),
      );
      assert.ok(dry.removed.every((e) => e.bytes >= 0) && dry.bytes > 0);

      const done = await collectGarbage(store, NOW_GC);
      assert.deepEqual(done, dry, "gc removed exactly what --dry-run listed");
      for (const key of planned.filter((k) => k !== temporary))
        assert.equal(await store.head(key), undefined, key);
      for (const key of kept) assert.ok(await store.head(key), `${key} still there`);
    });

    test("afterwards the store is consistent, the kept head trains on its cache, and gc finds nothing more", async () => {
      const { platform, store } = ctx;
      const report = await platform.doctor({ graceMs: 0 });
      assert.equal(report.ok, true, JSON.stringify(report.checks));
      assert.deepEqual(
        (await listHeadVersions(store, "films")).map((v) => v.version),
        p.versions.slice(1),
      );
      const embedded = await platform.embed("films");
      assert.equal(embedded.result.itemsEmbedded, 0, "the current rows are all cached still");
      const trained = await platform.train({ dataset: "films", head: "films", promote: false });
      assert.ok(trained.version);
      assert.equal((await platform.batchPrediction(p.batchJob)).status, "succeeded");
      const again = await collectGarbage(store, { ...NOW_GC, keepVersions: 5, dryRun: true });
      assert.deepEqual(keysOf(again), []);
    });
  });
}

/** A temporary a killed write left (FsStore only): seen by `temporaries()`, never by `list`. */
async function writeTemporary(store: { root: string }): Promise<string> {
  const key = "cache/tiny-text/films/shard-00007.npy.~tmp-deadbeef";
  await writeFile(join(store.root, ...key.split("/")), "half");
  return key;
}

gcSuite("FsStore", tinyCliPlatform);
describeOnRadosgw("gc on S3Store (radosgw)", (server) => {
  gcSuite("S3Store", () => s3TinyPlatform(server(), "gc"));
});

describe("gc leaves work in flight alone (FsStore)", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  after(() => ctx?.cleanup());

  test("a queued batch job keeps its version; a running embedding job keeps its cache folder, lease and all", async () => {
    ctx = await tinyPlatform();
    const { platform, store } = ctx;
    await platform.putManifest("films", "jsonl", toJsonlText(ROWS_A));
    const { job: embedJob } = await platform.embed("films", { shardSize: 30 });
    const train = async () =>
      (await platform.train({ dataset: "films", head: "films", promote: true })).version;
    const [v1] = [await train(), await train(), await train()];
    await platform.putManifest("fresh", "jsonl", toJsonlText(tinySentimentRows(6, { seed: 4 })));
    const { job } = await platform.startBatchPrediction({ head: "films", dataset: "fresh", version: v1 });
    const lease = keys.shardLease("tiny-text", "films", 0);
    await store.put(lease, "{}");
    await updateJob(store, embedJob.job, () => ({ state: "running" }));
    const planned = async () =>
      keysOf(await collectGarbage(store, { keepVersions: 0, minAgeMs: 0, dryRun: true }));
    const inFlight = await planned();
    assert.ok(!inFlight.includes(keys.headFile("films", v1, "head.json")), "the queued job's version stays");
    assert.ok(
      !inFlight.some((k) => k.startsWith(keys.cachePrefix("tiny-text", "films"))),
      "the running job's folder stays",
    );
    await platform.cancelBatchPrediction(job.job);
    await updateJob(store, embedJob.job, () => ({ state: "succeeded" }));
    const settled = await planned();
    assert.ok(settled.includes(keys.headFile("films", v1, "head.json")));
    assert.ok(settled.includes(lease));
  });
});

describe("gc's grace period (FsStore)", () => {
  test("with the default --min-age only what was last written over an hour ago goes, a group only when all of it is that old", async () => {
    const ctx = await tinyPlatform();
    try {
      const { store } = ctx;
      const stale = [keys.shardCommit("tiny-text", "ghost", 0), keys.shardVectors("tiny-text", "ghost", 0)];
      const half = [keys.shardCommit("tiny-text", "ghost", 1), keys.shardVectors("tiny-text", "ghost", 1)];
      for (const key of [...stale, ...half]) await store.put(key, "x");
      const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
      for (const key of [...stale, half[0]]) await utimes(join(store.root, key), twoHoursAgo, twoHoursAgo);
      const planned = await collectGarbage(store, { dryRun: true });
      assert.deepEqual(keysOf(planned), [...stale].sort());
      assert.deepEqual(await collectGarbage(store), planned);
      assert.ok(await store.head(half[0]), "its shard file is young, so the whole shard stays");
    } finally {
      await ctx.cleanup();
    }
  });
});

describe("gc's CLI contract and admin route (FsStore)", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
    await populate(ctx.platform, ctx.dir);
  });
  after(() => ctx.cleanup());
  const env = () => ({ HEADSTART_STORE: ctx.store.root });

  test("headstart gc --dry-run --json matches headstart gc --json; bad flags exit 2", async () => {
    const args = ["gc", "--json", "--min-age", "0", "--keep-versions", "1"];
    const dry = await cli([...args, "--dry-run"], env());
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assert.deepEqual(Object.keys(planned).sort(), ["bytes", "removed"]);
    assert.ok(planned.removed.length > 0);
    assert.deepEqual(Object.keys(planned.removed[0]).sort(), ["bytes", "key"]);
    const done = await cli(args, env());
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout), planned);
    assert.equal((await cli(["gc", "--min-age", "soon"], env())).code, 2);
    assert.deepEqual(JSON.parse((await cli([...args, "--dry-run"], env())).stdout).removed, []);
  });

  test("POST /v1/gc answers the same document; dryRun removes nothing", async () => {
    await ctx.store.put(keys.shardVectors("tiny-text", "ghost", 0), "npy");
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const post = (body: object) =>
      app.request("/v1/gc", {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
    const dry = await post({ dryRun: true, minAgeSeconds: 0 });
    assert.equal(dry.status, 200);
    const body = (await dry.json()) as { removed: unknown[] };
    assert.deepEqual(body.removed, [{ key: keys.shardVectors("tiny-text", "ghost", 0), bytes: 3 }]);
    assert.ok(await ctx.store.head(keys.shardVectors("tiny-text", "ghost", 0)));
    assert.deepEqual(await (await post({ minAgeSeconds: 0 })).json(), body);
    assert.equal(await ctx.store.head(keys.shardVectors("tiny-text", "ghost", 0)), undefined);
    assert.equal((await post({ keepVersions: -1 })).status, 400);
  });
});
