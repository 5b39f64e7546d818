/**
 * The bucket door for batch predictions on a real S3 store: a manifest uploaded straight to
 * radosgw under `<prefix>/batch/<head>/<name>.jsonl` → radosgw's own bucket notification → the
 * ingest Lambda handler → a finished job whose parts and error files hold every input row exactly
 * once, the corrupt ones (an empty text, a file that is not there, a line that is not JSON) as
 * row-level failures with their reasons. A repeated notification is the same job, changed in
 * nothing, and an upload naming no head is refused beside the upload.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import type { S3Store } from "../shared/aws/s3-store.ts";
import { keys } from "../shared/layout.ts";
import type { Platform } from "../shared/platform.ts";
import { readBatchUploadStatus } from "../shared/predictions/upload-status.ts";
import { decodeUtf8 } from "../shared/store/json.ts";
import { tempDir } from "./helpers/platform.ts";
import {
  type BucketNotifications,
  listenForBucketNotifications,
  type S3Server,
  s3Env,
  s3TestPlatform,
  startS3Server,
} from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const PREFIX = "customer-a";
type IngestHandler = typeof import("../functions/ingest/handler.ts").handler;

describe("the bucket door on radosgw: batch/<head>/<name>.jsonl → notification → ingest → a finished job", {
  timeout: 300_000,
}, () => {
  let dir: string;
  let s3: S3Server;
  let store: S3Store;
  let platform: Platform;
  let notifications: BucketNotifications;
  let ingest: IngestHandler;
  const savedEnv = { ...process.env };

  before(
    async () => {
      dir = await tempDir("headstart-batch-door-");
      s3 = await startS3Server();
      ({ store, platform } = await s3TestPlatform(s3, { dir, prefix: PREFIX, defaultBackbone: "tiny-text" }));
      await writeTinyBackbone(join(dir, "backbone"));
      await platform.addBackbone(join(dir, "backbone"));
      await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { seed: 5 })));
      await platform.embed("films");
      await platform.train({ dataset: "films", head: "films" });
      notifications = await listenForBucketNotifications(s3, store.bucket, PREFIX, "batch/");
      // The Lambda reads its environment at import, as the stack configures it (local runner).
      Object.assign(process.env, s3Env(s3, store.bucket, PREFIX), {
        HEADSTART_DEFAULT_BACKBONE: "tiny-text",
        HEADSTART_MODELS_DIR: join(dir, "lambda-models"),
        HEADSTART_SCRATCH_DIR: join(dir, "lambda-scratch"),
        HEADSTART_LOG_LEVEL: "silent",
      });
      ingest = (await import("../functions/ingest/handler.ts")).handler;
    },
    { timeout: 240_000 },
  );
  after(async () => {
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
    await notifications?.close();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const upload = async (key: string, body: string) => {
    await s3.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: `${PREFIX}/${key}`, Body: body }));
    return notifications.eventFor(`${PREFIX}/${key}`);
  };
  const jsonl = async (key: string) =>
    decodeUtf8((await store.get(key))!.body)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; line?: number; reason?: string; label?: string });

  test("an upload with corrupt rows: every input row once, in the parts or the errors with its reason", async () => {
    const good = tinySentimentRows(8, { seed: 8 }).map(({ id, text }) => ({ id, text }));
    const body = [
      ...good.slice(0, 4).map((r) => JSON.stringify(r)),
      JSON.stringify({ id: "blank", text: "" }),
      JSON.stringify({ id: "ghost", image: "images/ghost.png" }),
      ...good.slice(4).map((r) => JSON.stringify(r)),
      '{"id": "torn", "text": "half a line',
    ].join("\n");
    const event = await upload(keys.batchUpload("films", "tonight", "jsonl"), `${body}\n`);
    assert.equal(event.Records[0].eventSource, "ceph:s3");

    const { results, batches } = await ingest(event);
    assert.deepEqual(results, []);
    assert.equal(batches.length, 1);
    const [done] = batches;
    assert.equal(done.state, "started", done.error);
    assert.equal(done.status, "succeeded-with-errors");
    assert.deepEqual(done.counts, { total: 11, succeeded: 8, failed: 3 });

    const job = await platform.batchPrediction(done.job!);
    const scored = (await Promise.all(job.outputs.map(jsonl))).flat();
    const failed = (await Promise.all(job.errors.map(jsonl))).flat();
    assert.deepEqual(
      scored.map((r) => r.id),
      good.map((r) => r.id),
    );
    assert.ok(scored.every((r) => r.label === "pos" || r.label === "neg"));
    const reasons = new Map(failed.map((e) => [e.id, e.reason]));
    assert.deepEqual([...reasons.keys()].sort(), ["blank", "ghost", "line-11"]);
    assert.match(String(reasons.get("blank")), /text/);
    assert.match(String(reasons.get("ghost")), /ghost\.png/);
    assert.match(String(reasons.get("line-11")), /JSON/i);
    const all = [...scored.map((r) => r.id), ...failed.map((e) => e.id)];
    assert.equal(new Set(all).size, all.length, "no row twice");
    assert.equal(all.length, 11);

    const status = await readBatchUploadStatus(store, { head: "films", name: "tonight", format: "jsonl" });
    assert.deepEqual([status?.state, status?.job, status?.jobStatus], ["started", done.job, done.status]);

    // At least once: the same notification again is the same job, and nothing of it is rewritten.
    const record = await store.head(keys.batchJob(done.job!));
    const summary = await store.head(keys.predictionsSummary(done.job!));
    const again = await ingest(event);
    assert.deepEqual(
      again.batches.map((b) => [b.state, b.job, b.status]),
      [["started", done.job, done.status]],
    );
    assert.equal((await store.head(keys.batchJob(done.job!)))?.etag, record?.etag);
    assert.equal((await store.head(keys.predictionsSummary(done.job!)))?.etag, summary?.etag);
    const jobs = (await store.list("predictions/")).filter((o) => o.key.endsWith("/_job.json"));
    assert.equal(jobs.length, 1);

    // The handler's own status write notifies too (this listener takes all of batch/), and is ignored.
    const own = await notifications.eventFor(
      `${PREFIX}/${keys.batchUploadStatus("films", "tonight", "jsonl")}`,
    );
    assert.deepEqual((await ingest(own)).batches, []);
  });

  test("an upload naming no head is refused beside the upload; nothing is retried or started", async () => {
    const event = await upload(keys.batchUpload("nobody", "tonight", "csv"), "id,text\na,fine words\n");
    const { batches } = await ingest(event);
    assert.deepEqual(
      batches.map((b) => b.state),
      ["refused"],
    );
    assert.match(String(batches[0].error), /nobody/);
    const status = await readBatchUploadStatus(store, { head: "nobody", name: "tonight", format: "csv" });
    assert.deepEqual([status?.state, status?.error], ["refused", batches[0].error]);
    assert.ok(
      !(await store.list("datasets/")).some(
        (o) => o.key.startsWith("datasets/bp-input-") && o.key.endsWith(".csv"),
      ),
    );
  });
});
