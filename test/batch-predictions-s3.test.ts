/**
 * Batch predictions on a real S3 store (Ceph radosgw): the job record's create-only and If-Match
 * writes, the parts and the summary, an idempotent rerun, and `export-predictions` through the CLI.
 */
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { S3Store } from "../shared/aws/s3-store.ts";
import { keys } from "../shared/layout.ts";
import type { Platform } from "../shared/platform.ts";
import { cli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";
import { type S3Server, s3Env, s3TestPlatform, startS3Server } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

describe("batch predictions on S3 (radosgw)", () => {
  let dir: string;
  let s3: S3Server;
  let store: S3Store;
  let platform: Platform;
  before(
    async () => {
      dir = await tempDir("headstart-batch-s3-");
      s3 = await startS3Server();
      ({ store, platform } = await s3TestPlatform(s3, { dir, prefix: "bp", defaultBackbone: "tiny-text" }));
      await writeTinyBackbone(join(dir, "backbone"));
      await platform.addBackbone(join(dir, "backbone"));
      await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { seed: 5 })));
      await platform.embed("films");
      await platform.train({ dataset: "films", head: "films" });
      await platform.putManifest("fresh", "jsonl", toJsonlText(tinySentimentRows(12, { seed: 8 })));
    },
    { timeout: 240_000 },
  );
  after(async () => {
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a job runs to its summary; a duplicate start changes nothing; the CLI exports it", async () => {
    const { job } = await platform.startBatchPrediction({ head: "films", dataset: "fresh", partRows: 5 });
    const done = await platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded", done.error);
    assert.deepEqual(done.counts, { total: 12, succeeded: 12, failed: 0 });
    assert.equal(done.outputs.length, 3);
    const summary = await store.head(keys.predictionsSummary(job.job));
    const record = await store.head(keys.batchJob(job.job));
    const again = await platform.startBatchPrediction({ head: "films", dataset: "fresh", partRows: 5 });
    assert.equal(again.created, false);
    assert.equal((await platform.runBatchPrediction(job.job)).updatedAt, done.updatedAt);
    assert.equal((await store.head(keys.predictionsSummary(job.job)))?.etag, summary?.etag);
    assert.equal((await store.head(keys.batchJob(job.job)))?.etag, record?.etag);

    const out = join(dir, "out");
    const env = {
      ...s3Env(s3, store.bucket, "bp"),
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
    };
    const r = await cli(["export-predictions", job.job, "--out", out, "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const ids = (await readFile(join(out, "predictions.jsonl"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l).id);
    assert.deepEqual(
      ids,
      tinySentimentRows(12, { seed: 8 }).map((r) => r.id),
    );
  });
});
