/**
 * Batch predictions on a real S3 store (Ceph radosgw): the job record's create-only and If-Match
 * writes, the parts and the summary, an idempotent rerun, `export-predictions` through the CLI, and
 * the files route's presigned URLs.
 */
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import type { S3Store } from "../shared/aws/s3-store.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
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

  test("GET …/files answers presigned URLs: plain fetch gets each part's bytes", async () => {
    const { job } = await platform.startBatchPrediction({ head: "films", dataset: "fresh", partRows: 5 });
    const done = await platform.runBatchPrediction(job.job);
    const app = createApp(platform, makeLogger("test", "silent"));
    const res = await app.request(`/v1/heads/films/batch-predictions/${job.job}/files`);
    assert.equal(res.status, 200, await res.clone().text());
    const listing = (await res.json()) as {
      files: Array<{ kind: string; key: string; bytes: number; url: string; expiresAt?: string }>;
    };
    assert.deepEqual(
      listing.files.map((f) => f.key),
      [...done.outputs, ...done.errors],
    );
    for (const file of listing.files) {
      assert.match(file.url, /X-Amz-Signature=/);
      assert.ok(Date.parse(file.expiresAt ?? "") > Date.now(), file.expiresAt);
      const got = await fetch(file.url);
      assert.equal(got.status, 200, file.url);
      const name = file.key.split("/").pop();
      assert.equal(got.headers.get("content-disposition"), `attachment; filename="${job.job}-${name}"`);
      const bytes = new Uint8Array(await got.arrayBuffer());
      assert.deepEqual(bytes, (await store.get(file.key))?.body, file.key);
      assert.equal(file.bytes, bytes.byteLength);
    }
    assert.ok(listing.files.some((f) => f.kind === "predictions" && f.bytes > 0));
  });
});
