/**
 * The lifecycle of batch-prediction jobs and backbones, on both stores (FsStore and S3Store on a
 * real radosgw): `ls jobs` lists both kinds of job; `rm job` deletes a batch job's whole
 * `predictions/<job>/`, refuses a queued one unless forced (which cancels it first); `rm head`
 * and `rm dataset` refuse while a batch job of that head or dataset is queued, naming it; `rm
 * backbone` refuses while a head version was trained with it, naming head@version, and deletes it
 * with its cache and embedding jobs. The CLI's and the API's doors for these, and dataset names
 * reserved for batch inputs.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { ConflictError, ValidationError } from "../shared/errors.ts";
import { keys } from "../shared/layout.ts";
import { deleteBackbone, deleteDataset, deleteHead, deleteJob } from "../shared/lifecycle/delete.ts";
import { listAllJobs, listBackbones, listJobs } from "../shared/lifecycle/list.ts";
import { makeLogger } from "../shared/log.ts";
import type { Platform } from "../shared/platform.ts";
import { readBatchJob } from "../shared/predictions/job.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { cli } from "./helpers/cli.ts";
import { tinyCliPlatform, tinyPlatform } from "./helpers/platform.ts";
import { describeOnRadosgw, s3TinyPlatform } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

interface Opened {
  platform: Platform;
  store: ObjectStore;
  dir: string;
  env: Record<string, string>;
  cleanup: () => Promise<void>;
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => assert.fail("expected a refusal"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConflictError, String(err));
  return err.message;
}

function jobsSuite(name: string, open: () => Promise<Opened>) {
  describe(`batch jobs and backbones' lifecycle on ${name}`, () => {
    let ctx: Opened;
    let version: string;
    let finished: string;
    let queued: string;
    before(async () => {
      ctx = await open();
      const { platform } = ctx;
      await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(40, { seed: 2 })));
      await platform.embed("films");
      version = (await platform.train({ dataset: "films", head: "films" })).version;
      await writeTinyBackbone(join(ctx.dir, "two"), "tiny-two", { salt: "two" });
      await platform.addBackbone(join(ctx.dir, "two"));
      await platform.embed("films", { backbone: "tiny-two" });
      await platform.putManifest("fresh", "jsonl", toJsonlText(tinySentimentRows(6, { seed: 4 })));
      await platform.putManifest("later", "jsonl", toJsonlText(tinySentimentRows(6, { seed: 5 })));
      const first = await platform.startBatchPrediction({ head: "films", dataset: "fresh" });
      finished = first.job.job;
      assert.equal((await platform.runBatchPrediction(finished)).status, "succeeded");
      queued = (await platform.startBatchPrediction({ head: "films", dataset: "later" })).job.job;
    });
    after(() => ctx.cleanup());

    test("ls jobs lists embedding and batch-prediction jobs, each with its kind", async () => {
      const jobs = await listAllJobs(ctx.store);
      const batch = jobs.filter((j) => j.kind === "batch-predict").map((j) => j.job);
      assert.deepEqual(batch.sort(), [finished, queued].sort());
      assert.ok(jobs.some((j) => j.kind === "embed"));
      const r = await cli(["ls", "jobs", "--json"], ctx.env);
      assert.equal(r.code, 0, r.stderr);
      const records = JSON.parse(r.stdout) as Array<{ job: string; kind: string; status?: string }>;
      assert.equal(records.find((j) => j.job === queued)?.status, "queued");
      assert.equal(records.length, jobs.length);
      const table = await cli(["ls", "jobs"], ctx.env);
      assert.match(table.stdout, new RegExp(`${queued} +batch-predict +queued +later by films@${version}`));
    });

    test("rm job deletes a finished batch job's whole predictions/<job>/, the record first", async () => {
      const before = await ctx.store.list(keys.predictionsPrefix(finished));
      assert.ok(before.length >= 3);
      const done = await deleteJob(ctx.store, finished);
      assert.equal(done.removed[0], keys.batchJob(finished));
      assert.deepEqual(done.removed.sort(), before.map((o) => o.key).sort());
      assert.deepEqual(await ctx.store.list(keys.predictionsPrefix(finished)), []);
    });

    test("a queued batch job holds its head and itself: rm head and rm job refuse, naming it", async () => {
      assert.match(
        await refusal(deleteHead(ctx.store, "films")),
        new RegExp(`batch-prediction job ${queued}`),
      );
      assert.match(await refusal(deleteJob(ctx.store, queued)), /is queued/);
      assert.match(
        await refusal(deleteDataset(ctx.store, "later")),
        new RegExp(`${queued} .*scoring dataset later`),
      );
      const r = await cli(["rm", "head", "films", "--json"], ctx.env);
      assert.equal(r.code, 2);
      assert.match(JSON.parse(r.stdout).error.message, new RegExp(queued));
      assert.ok(await ctx.store.head(keys.batchJob(queued)), "nothing deleted");
    });

    test("rm backbone refuses one a head version was trained with, naming head@version; an unused one goes with its cache", async () => {
      assert.match(
        await refusal(deleteBackbone(ctx.store, "tiny-text")),
        new RegExp(`head films@${version}`),
      );
      const app = createApp(ctx.platform, makeLogger("test", "silent"));
      const refused = await app.request("/v1/backbones/tiny-text", { method: "DELETE" });
      assert.equal(refused.status, 409);
      const twoJobs = (await listJobs(ctx.store)).filter((j) => j.backbone === "tiny-two");
      assert.equal(twoJobs.length, 1);
      const r = await cli(["rm", "backbone", "tiny-two", "--json"], ctx.env);
      assert.equal(r.code, 0, r.stderr);
      const done = JSON.parse(r.stdout);
      assert.equal(done.kind, "backbone");
      assert.equal(done.removed[0], keys.backboneSpec("tiny-two"));
      assert.deepEqual(await ctx.store.list(keys.cacheBackbonePrefix("tiny-two")), []);
      assert.equal(await ctx.store.head(keys.job(twoJobs[0].job)), undefined);
      assert.deepEqual(
        (await listBackbones(ctx.store)).map((b) => b.id),
        ["tiny-text"],
      );
      assert.ok(
        (await ctx.store.list(keys.cacheBackbonePrefix("tiny-text"))).length > 0,
        "the other's cache stays",
      );
      assert.equal((await app.request("/v1/backbones/tiny-two", { method: "DELETE" })).status, 404);
    });

    test("with --force, rm head cancels its queued batch job first; DELETE /v1/jobs/{job} then removes it", async () => {
      const r = await cli(["rm", "head", "films", "--force", "--json"], ctx.env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(JSON.parse(r.stdout).overridden[0].description, new RegExp(queued));
      assert.equal((await readBatchJob(ctx.store, queued))?.value.status, "cancelled");
      const app = createApp(ctx.platform, makeLogger("test", "silent"));
      assert.equal((await app.request(`/v1/jobs/${queued}`, { method: "DELETE" })).status, 200);
      assert.deepEqual(await ctx.store.list(keys.predictionsPrefix(queued)), []);
      assert.equal((await app.request(`/v1/jobs/${queued}`, { method: "DELETE" })).status, 404);
      const gone = await app.request("/v1/backbones/tiny-text", { method: "DELETE" });
      assert.equal(gone.status, 200, "no head version uses it any more");
      assert.deepEqual(await listBackbones(ctx.store), []);
    });
  });
}

jobsSuite("FsStore", tinyCliPlatform);
describeOnRadosgw("on S3Store (radosgw)", (server) => {
  jobsSuite("S3Store", () => s3TinyPlatform(server(), "jobs"));
});

describe("dataset names starting bp-input- are the platform's own", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
  });
  after(() => ctx.cleanup());
  const rows = toJsonlText(tinySentimentRows(6, { seed: 3 }));

  test("an upload through the CLI, the API or an import is refused, naming the field; nothing is stored", async () => {
    const file = join(ctx.dir, "rows.jsonl");
    await writeFile(file, rows);
    const r = await cli(["ingest", file, "--dataset", "bp-input-mine", "--json"], {
      HEADSTART_STORE: ctx.store.root,
    });
    assert.equal(r.code, 2, r.stderr);
    const err = JSON.parse(r.stdout).error;
    assert.equal(err.field, "dataset");
    assert.match(err.message, /reserved for batch-prediction inputs/);
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/datasets/bp-input-mine/manifest", {
      method: "PUT",
      body: rows,
      headers: { "content-type": "application/x-ndjson" },
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { field: string } }).error.field, "dataset");
    await assert.rejects(
      ctx.platform.importEmbeddings("bp-input-mine", { backbone: "x", rows: [], embeddings: [] } as never),
      (e: unknown) => e instanceof ValidationError && e.field === "dataset",
    );
    assert.deepEqual(await ctx.store.list("datasets/"), []);
  });

  test("a batch input still becomes such a dataset", async () => {
    const file = join(ctx.dir, "input.jsonl");
    await writeFile(file, rows);
    const dataset = await ctx.platform.uploadBatchInput(file);
    assert.match(dataset, /^bp-input-[0-9a-f]{20}$/);
    assert.ok(await ctx.store.head(keys.datasetStatus(dataset)));
  });
});
