/**
 * Batch predictions over a dataset's rows (shared/predictions/): missing embeddings made by the
 * embedding job, scores equal to online predict, every input id exactly once across predictions
 * and errors (a corrupt image included), bounded parts in input order, idempotent starts, cancel.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { readJob } from "../shared/embed/job.ts";
import { embedJobId } from "../shared/embed/plan.ts";
import { keys, parseKey } from "../shared/layout.ts";
import { STALE_MS, updateBatchJob } from "../shared/predictions/job.ts";
import { readSummary } from "../shared/predictions/output.ts";
import { decodeUtf8 } from "../shared/store/json.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import {
  tinySentimentRows,
  toJsonlText,
  writeTinyBackbone,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";

async function jsonl(store: ObjectStore, key: string): Promise<Record<string, unknown>[]> {
  const obj = await store.get(key);
  assert.ok(obj, `${key} exists`);
  return decodeUtf8(obj.body)
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe("batch predictions", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const fresh = tinySentimentRows(23, { seed: 11 }).map((r) => ({ ...r, id: `n${r.id}` }));

  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(80, { seed: 2 })));
    await ctx.platform.embed("films");
    await ctx.platform.train({ dataset: "films", head: "films" });
    // Never embedded: the batch job has to embed it.
    await ctx.platform.putManifest("fresh", "jsonl", toJsonlText(fresh));
  });
  after(() => ctx.cleanup());

  test("scores a dataset that was never embedded, part by part, exactly as online predict does", async () => {
    const { platform, store } = ctx;
    const { job, created } = await platform.startBatchPrediction({
      head: "films",
      dataset: "fresh",
      partRows: 10,
    });
    assert.equal(created, true);
    assert.equal(job.status, "queued");
    const done = await platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded", done.error);
    assert.deepEqual(done.counts, { total: 23, succeeded: 23, failed: 0 });
    assert.deepEqual(
      done.outputs,
      [0, 1, 2].map((i) => `predictions/${job.job}/part-0000${i}.jsonl`),
    );
    assert.deepEqual(
      done.errors,
      [0, 1, 2].map((i) => `predictions/${job.job}/errors-0000${i}.jsonl`),
    );
    const datasetVersion = done.input.datasetVersion;
    const spec = await platform.backbone("tiny-text");
    assert.equal(
      (await readJob(store, embedJobId(store.url, "fresh", spec, datasetVersion)))?.value.state,
      "succeeded",
    );

    const lines = (await Promise.all(done.outputs.map((k) => jsonl(store, k)))).flat();
    assert.deepEqual(
      lines.map((l) => l.id),
      fresh.map((r) => r.id),
      "input order, every row once",
    );
    const online = await platform.predict("films", { inputs: fresh.map((r) => r.text) });
    lines.forEach((l, i) => {
      assert.equal(l.version, online.version);
      assert.equal(l.label, online.predictions[i].label);
      for (const [c, p] of Object.entries(online.predictions[i].scores!)) {
        assert.ok(Math.abs((l.scores as Record<string, number>)[c] - p) < 1e-6, `${l.id} ${c}`);
      }
    });
    const summary = await readSummary(store, job.job);
    assert.deepEqual(summary?.counts, done.counts);
    assert.ok(summary!.timings.totalSeconds >= summary!.timings.embedSeconds);
    assert.deepEqual(done.progress, { phase: "done", rowsDone: 23, rowsTotal: 23 });
  });

  test("a duplicate start is the same job; rerunning a finished job changes nothing", async () => {
    const { platform, store } = ctx;
    const first = await platform.startBatchPrediction({ head: "films", dataset: "fresh", partRows: 10 });
    assert.equal(first.created, false);
    const before = await store.head(keys.predictionsSummary(first.job.job));
    const record = await store.head(keys.batchJob(first.job.job));
    const again = await platform.runBatchPrediction(first.job.job);
    assert.equal(again.status, "succeeded");
    assert.equal((await store.head(keys.predictionsSummary(first.job.job)))?.etag, before?.etag);
    assert.equal((await store.head(keys.batchJob(first.job.job)))?.etag, record?.etag);
    // Another head version or other input content is another job.
    const other = await platform.startBatchPrediction({ head: "films", dataset: "films" });
    assert.notEqual(other.job.job, first.job.job);
    await platform.cancelBatchPrediction(other.job.job);
  });

  test("cancel: a cancelled job is not run and writes no summary", async () => {
    const { platform, store } = ctx;
    await platform.putManifest("later", "jsonl", toJsonlText(fresh.slice(0, 5)));
    const { job } = await platform.startBatchPrediction({ head: "films", dataset: "later" });
    const cancelled = await platform.cancelBatchPrediction(job.job);
    assert.equal(cancelled.status, "cancelled");
    assert.equal((await platform.runBatchPrediction(job.job)).status, "cancelled");
    assert.equal(await store.head(keys.predictionsSummary(job.job)), undefined);
    await assert.rejects(platform.batchPrediction("bp-nothing"), /not found|batch job/);
  });

  test("a running job whose process stopped beating is taken over; a beating one is not", async () => {
    const { platform, store } = ctx;
    await platform.putManifest("crashed", "jsonl", toJsonlText(fresh.slice(0, 7)));
    const { job } = await platform.startBatchPrediction({ head: "films", dataset: "crashed" });
    const beatAt = (ms: number) => new Date(Date.now() - ms).toISOString();
    // As a killed run leaves it: running, its last heartbeat long ago.
    const fake = {
      status: "running" as const,
      startedAt: beatAt(3_600_000),
      heartbeatAt: beatAt(STALE_MS + 1_000),
    };
    await updateBatchJob(store, job.job, () => ({ ...fake, heartbeatAt: beatAt(1_000) }));
    assert.equal((await platform.runBatchPrediction(job.job)).status, "running", "a live run is left alone");
    await updateBatchJob(store, job.job, () => fake);
    const done = await platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded", done.error);
    assert.deepEqual(done.counts, { total: 7, succeeded: 7, failed: 0 });
    assert.notEqual(done.startedAt, fake.startedAt);
  });

  test("a head over two backbones embeds what each part misses", async () => {
    const { platform, store, dir } = ctx;
    await writeTinyBackbone(join(dir, "backbone-b"), "tiny-b", { salt: "b" });
    await platform.addBackbone(join(dir, "backbone-b"));
    await platform.embed("films", { backbone: "tiny-b" });
    await platform.train({ dataset: "films", head: "both", backbone: "tiny-text+tiny-b" });
    const { job } = await platform.startBatchPrediction({ head: "both", dataset: "fresh" });
    const done = await platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded", done.error);
    const lines = await jsonl(store, done.outputs[0]);
    const online = await platform.predict("both", { inputs: fresh.map((r) => r.text) });
    assert.deepEqual(
      lines.map((l) => l.label),
      online.predictions.map((p) => p.label),
    );
  });
});

describe("batch predictions over images with a corrupt one", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
    await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
    await ctx.platform.addBackbone(join(ctx.dir, "image-backbone"));
    const folder = join(ctx.dir, "colours");
    for (const [label, rgb] of Object.entries({ red: [220, 30, 30], blue: [30, 40, 220] })) {
      await mkdir(join(folder, label), { recursive: true });
      for (let i = 0; i < 6; i++) {
        const px = Buffer.alloc(8 * 8 * 3).map((_, k) => Math.min(255, rgb[k % 3] + ((i * 7 + k) % 20)));
        const png = await sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
          .png()
          .toBuffer();
        await writeFile(join(folder, label, `${i}.png`), png);
      }
    }
    const good = await readFile(join(folder, "red", "0.png"));
    await writeFile(join(folder, "red", "broken.png"), good.subarray(0, Math.floor(good.length * 0.6)));
    await ctx.platform.upload("colours", folder);
    await ctx.platform.embed("colours", { backbone: "tiny-image" });
    await ctx.platform.train({ dataset: "colours", head: "colours", backbone: "tiny-image" });
  });
  after(() => ctx.cleanup());

  test("the corrupt image is an error row with its reason; every id exactly once; the job succeeds", async () => {
    const { platform, store } = ctx;
    const { job } = await platform.startBatchPrediction({ head: "colours", dataset: "colours", partRows: 5 });
    const done = await platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded-with-errors", done.error);
    assert.deepEqual(done.counts, { total: 13, succeeded: 12, failed: 1 });
    const predicted = (await Promise.all(done.outputs.map((k) => jsonl(store, k)))).flat();
    const errors = (await Promise.all(done.errors.map((k) => jsonl(store, k)))).flat();
    assert.equal(errors.length, 1);
    assert.equal(errors[0].id, "red/broken.png");
    assert.equal(typeof errors[0].line, "number");
    assert.match(String(errors[0].reason), /corrupt/);
    const ids = [...predicted, ...errors].map((l) => l.id).sort();
    assert.equal(new Set(ids).size, 13);
    // The same folder as a batch input: a dataset named after its content, scored the same way.
    const input = await platform.uploadBatchInput(join(ctx.dir, "colours"));
    assert.match(input, /^bp-input-[0-9a-f]{20}$/);
    assert.equal(await platform.uploadBatchInput(join(ctx.dir, "colours")), input);
    const fromFolder = await platform.startBatchPrediction({
      head: "colours",
      dataset: input,
      source: "manifest",
    });
    const folderDone = await platform.runBatchPrediction(fromFolder.job.job);
    assert.deepEqual(folderDone.counts, done.counts);
    assert.notEqual(fromFolder.job.job, job.job);
    const status = await platform.datasetInfo("colours", "tiny-image");
    assert.equal(status.status.rows.accepted, 13);
    for (const l of predicted) assert.equal(l.label, String(l.id).split("/")[0]);
  });
});

test("the output's keys parse back to their job and part", () => {
  const job = "bp-films-0123456789abcdef0123";
  assert.deepEqual(parseKey(keys.predictionsPart(job, 3)), { kind: "predictionsPart", job, part: 3 });
  assert.deepEqual(parseKey(keys.predictionsErrors(job, 0)), { kind: "predictionsErrors", job, part: 0 });
  assert.deepEqual(parseKey(keys.predictionsSummary(job)), { kind: "predictionsSummary", job });
  assert.deepEqual(parseKey(keys.batchJob(job)), { kind: "batchJob", job });
  assert.throws(() => keys.batchJob("../x"));
});
