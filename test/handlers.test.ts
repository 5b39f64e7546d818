/**
 * The Lambda entry points with sample events from events/. Handlers read their environment at
 * import, as in Lambda, so the store is set up before they are imported.
 */
// First: shared/api/responses.ts extends schemas of shared/datasets/status.ts with `.openapi`,
// which zod v4 only offers on schemas made after @hono/zod-openapi is loaded.
import "@hono/zod-openapi";
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from "aws-lambda";
import type { BatchUploadResult } from "../functions/ingest/batch-upload.ts";
import { bucketUploads, decodeEventKey, manifestUploads } from "../shared/aws/s3-events.ts";
import { readDatasetStatus } from "../shared/datasets/ingest.ts";
import { compareSequencers } from "../shared/datasets/sequencer.ts";
import { keys } from "../shared/layout.ts";
import { readBatchUploadStatus } from "../shared/predictions/upload-status.ts";
import { loadEvent } from "./helpers/events.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

type ApiHandler = (e: APIGatewayProxyEventV2, c: Context) => Promise<APIGatewayProxyResultV2>;
const context = { awsRequestId: "test", functionName: "headstart-api" } as Context;

type S3Event = { Records: Array<{ s3: { object: { key: string; sequencer?: string } } }> };
/** The sample AWS upload event of datasets/reviews/manifest.jsonl with the given sequencer. */
function uploadEvent(sequencer: string): S3Event {
  const event = loadEvent<S3Event>("s3-manifest-put");
  event.Records[0].s3.object.sequencer = sequencer;
  return event;
}

describe("Lambda handlers", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let api: ApiHandler;
  let ingest: (e: unknown) => Promise<{
    results: Array<{ dataset: string; state: string; accepted: number; error?: string }>;
    batches: BatchUploadResult[];
  }>;

  before(async () => {
    ctx = await tinyPlatform();
    process.env.HEADSTART_STORE = ctx.store.root;
    process.env.HEADSTART_DEFAULT_BACKBONE = "tiny-text";
    process.env.HEADSTART_MODELS_DIR = join(ctx.dir, "models");
    process.env.HEADSTART_LOG_LEVEL = "silent";
    api = (await import("../functions/api/handler.ts")).handler as unknown as ApiHandler;
    ingest = (await import("../functions/ingest/handler.ts")).handler;
  });
  after(() => ctx.cleanup());

  test("ingest handler: an AWS upload event ingests the manifest and embeds it", async () => {
    await ctx.store.put(
      keys.manifest("reviews", "jsonl"),
      toJsonlText(tinySentimentRows(40, { withSplit: true })),
    );
    const { results } = await ingest(loadEvent("s3-manifest-put"));
    assert.equal(results.length, 1);
    assert.equal(results[0].dataset, "reviews");
    assert.equal(results[0].accepted, 40);
    await ctx.platform.local.idle();
    const { platform } = ctx;
    const info = await platform.datasetInfo("reviews");
    assert.equal(info.embedding.cachedItems, 40);
  });

  test("ingest handler: a Ceph event (raw keys) and a wholly invalid CSV are reported, not thrown", async () => {
    await ctx.store.put(keys.manifest("reviews", "csv"), "text,label\n,pos\n");
    await ctx.store.delete(keys.manifest("reviews", "jsonl"));
    const { results } = await ingest(loadEvent("s3-manifest-put-ceph"));
    assert.equal(results[0].state, "rejected");
    assert.match(String(results[0].error), /none of the 1 rows is valid/);
    const status = await readDatasetStatus(ctx.store, "reviews");
    assert.equal(status?.state, "rejected");
    assert.equal(status?.rejected[0].line, 2);
    // The previous good rows stay in use.
    assert.equal((await ctx.platform.datasetInfo("reviews")).embedding.cachedItems, 40);
  });

  test("ingest handler ignores non-manifest objects and malformed events fail loudly", async () => {
    const event = loadEvent<{ Records: Array<{ s3: { object: { key: string } } }> }>("s3-manifest-put");
    event.Records[0].s3.object.key = "datasets/reviews/files/cat.png";
    assert.deepEqual((await ingest(event)).results, []);
    await assert.rejects(ingest({ hello: "world" }), /not an S3 event/);
  });

  test("repeated S3 events: the same record twice in one event, the same event twice", async () => {
    await ctx.store.delete(keys.manifest("reviews", "csv"));
    await ctx.store.put(
      keys.manifest("reviews", "jsonl"),
      toJsonlText(tinySentimentRows(24, { withSplit: true })),
    );
    const event = uploadEvent("0055AED6DCD9028200");
    event.Records.push(structuredClone(event.Records[0]));
    const { results } = await ingest(event);
    assert.deepEqual(
      results.map((r) => [r.state, r.accepted]),
      [
        ["ingested", 24],
        ["stale", 0],
      ],
    );
    const status = await ctx.store.head(keys.datasetStatus("reviews"));
    const again = await ingest(uploadEvent("0055AED6DCD9028200"));
    assert.deepEqual(
      again.results.map((r) => r.state),
      ["stale"],
    );
    assert.equal((await ctx.store.head(keys.datasetStatus("reviews")))?.etag, status?.etag, "nothing redone");
    await ctx.platform.local.idle();
  });

  test("two concurrent deliveries of one event: one ingests, the other does not", async () => {
    await ctx.store.put(
      keys.manifest("reviews", "jsonl"),
      toJsonlText(tinySentimentRows(26, { withSplit: true })),
    );
    const event = uploadEvent("0055AED6DCD9028300");
    const settled = await Promise.allSettled([ingest(event), ingest(structuredClone(event))]);
    const ingested = settled.filter(
      (s) => s.status === "fulfilled" && s.value.results[0].state === "ingested",
    );
    assert.equal(ingested.length, 1);
    const other = settled.find((s) => !ingested.includes(s));
    // Refused while the first runs (Lambda retries it later), or skipped once it is recorded.
    if (other?.status === "rejected") assert.match(String(other.reason), /already in progress/);
    else assert.equal(other?.status === "fulfilled" && other.value.results[0].state, "stale");
    const retried = await ingest(event);
    assert.equal(retried.results[0].state, "stale");
    assert.equal((await readDatasetStatus(ctx.store, "reviews"))?.rows.accepted, 26);
    await ctx.platform.local.idle();
  });

  test("an older upload's event arriving after a newer one's is skipped: the newer version stays", async () => {
    await ctx.store.put(
      keys.manifest("reviews", "jsonl"),
      toJsonlText(tinySentimentRows(28, { withSplit: true })),
    );
    const newer = await ingest(uploadEvent("0055AED6DCD9029000"));
    assert.equal(newer.results[0].state, "ingested");
    const current = await readDatasetStatus(ctx.store, "reviews");
    // Sequencers of different lengths compare after left-padding: 0x…8F00 < 0x0…9000.
    const late = await ingest(uploadEvent("55AED6DCD9028F00"));
    assert.deepEqual(
      late.results.map((r) => r.state),
      ["stale"],
    );
    const after = await readDatasetStatus(ctx.store, "reviews");
    assert.equal(after?.version, current?.version);
    assert.equal(after?.ingestedAt, current?.ingestedAt);
    await ctx.platform.local.idle();
  });

  test("a new upload whose event carries a lower sequencer is still ingested, never skipped", async () => {
    // A store whose sequencers do not order as AWS's (radosgw's, at times) must not cost an upload.
    await ctx.store.put(
      keys.manifest("reviews", "jsonl"),
      toJsonlText(tinySentimentRows(30, { withSplit: true })),
    );
    const late = await ingest(uploadEvent("0055AED6DCD9020000"));
    assert.deepEqual(
      late.results.map((r) => r.state),
      ["ingested"],
    );
    assert.equal((await readDatasetStatus(ctx.store, "reviews"))?.rows.accepted, 30);
    await ctx.platform.local.idle();
  });

  test("sequencers: hex, compared after left-padding; a malformed one is refused by name", () => {
    assert.equal(compareSequencers("0A", "A"), 0);
    assert.equal(compareSequencers("00FF", "100"), -1);
    assert.equal(compareSequencers("0055AED6DCD90281E5", "55AED6DCD90281E4"), 1);
    assert.throws(
      () => manifestUploads(uploadEvent("not-hex")),
      (err: Error & { field?: string }) => err.field === "Records[0].s3.object.sequencer",
    );
  });

  test("event keys: AWS URL-encodes, Ceph does not", () => {
    assert.equal(decodeEventKey("datasets/my+data/a%2Bb.csv", "aws:s3"), "datasets/my data/a+b.csv");
    assert.equal(decodeEventKey("datasets/d/a+b.csv", "ceph:s3"), "datasets/d/a+b.csv");
    const aws = loadEvent<{ Records: Array<{ s3: { object: { key: string } } }> }>("s3-manifest-put");
    aws.Records[0].s3.object.key = "customer%2Fa/datasets/reviews/manifest.jsonl";
    assert.deepEqual(
      manifestUploads(aws, "customer/a").map((u) => u.key),
      ["datasets/reviews/manifest.jsonl"],
    );
  });

  test("bucket uploads: batch inputs beside manifests, keys decoded once; our own status files ignored", () => {
    const aws = loadEvent<S3Event>("s3-manifest-put");
    const record = aws.Records[0];
    const uploaded = [
      "datasets/reviews/manifest.jsonl",
      "batch/films/to+night.jsonl", // AWS's encoding of a space: no name
      "batch/films/late.show%5F2.csv",
      "batch/films/_status/tonight.jsonl.json",
      "batch/Films/x.jsonl",
      "batch/films/notes.txt",
    ];
    aws.Records = uploaded.map((key) => ({
      ...structuredClone(record),
      s3: { ...record.s3, object: { ...record.s3.object, key: `c%2Fa/${key}` } },
    }));
    const found = bucketUploads(aws, "c/a");
    assert.deepEqual(
      found.map((u) => [u.kind, u.key]),
      [
        ["manifest", "datasets/reviews/manifest.jsonl"],
        ["unusable-batch", "batch/films/to night.jsonl"],
        ["batch", "batch/films/late.show_2.csv"],
        ["unusable-batch", "batch/Films/x.jsonl"],
      ],
    );
    const batch = found[2];
    assert.ok(batch.kind === "batch");
    assert.deepEqual([batch.head, batch.name, batch.format], ["films", "late.show_2", "csv"]);
    const ceph = loadEvent<S3Event>("s3-manifest-put-ceph");
    ceph.Records[0].s3.object.key = "batch/films/to+night.jsonl";
    assert.deepEqual(
      bucketUploads(ceph).map((u) => u.kind),
      ["unusable-batch"],
    );
    ceph.Records[0].s3.object.key = "batch/films/tonight.v2.jsonl";
    assert.deepEqual(
      bucketUploads(ceph).map((u) => (u.kind === "batch" ? [u.head, u.name, u.format, u.sequencer] : u.kind)),
      [["films", "tonight.v2", "jsonl", "7B5F8A65A8E6F321"]],
    );
  });

  test("bucket door: batch/<head>/<name>.jsonl is scored by the head; a repeated event is the same job", async () => {
    await ctx.platform.putManifest("films-train", "jsonl", toJsonlText(tinySentimentRows(40, { seed: 3 })));
    await ctx.platform.embed("films-train");
    await ctx.platform.train({ dataset: "films-train", head: "films" });
    const rows = tinySentimentRows(6, { seed: 9 }).map(({ id, text }) => ({ id, text }));
    await ctx.store.put(
      keys.batchUpload("films", "tonight", "jsonl"),
      toJsonlText([...rows, { id: "blank", text: "" }]),
    );
    const event = (sequencer: string) => {
      const e = loadEvent<S3Event>("s3-manifest-put-ceph");
      e.Records[0].s3.object.key = "batch/films/tonight.jsonl";
      e.Records[0].s3.object.sequencer = sequencer;
      return e;
    };
    const [first] = (await ingest(event("00A1"))).batches;
    assert.equal(first.state, "started", first.error);
    assert.equal(first.status, "succeeded-with-errors");
    assert.deepEqual(first.counts, { total: 7, succeeded: 6, failed: 1 });
    const upload = { head: "films", name: "tonight", format: "jsonl" } as const;
    assert.equal((await readBatchUploadStatus(ctx.store, upload))?.job, first.job);
    const record = await ctx.store.head(keys.batchJob(first.job!));

    // The same event again (replayed), and another delivery of the same bytes: one job, unchanged.
    for (const again of [event("00A1"), event("00A2")]) {
      const [r] = (await ingest(again)).batches;
      assert.deepEqual([r.state, r.job, r.status], ["started", first.job, "succeeded-with-errors"]);
    }
    assert.equal((await ctx.store.head(keys.batchJob(first.job!)))?.etag, record?.etag, "nothing redone");
    const jobs = (await ctx.store.list("predictions/")).filter((o) => o.key.endsWith("/_job.json"));
    assert.equal(jobs.length, 1);
  });

  test("bucket door: an unknown head or an unreadable manifest is refused and reported, not thrown", async () => {
    const event = (key: string) => {
      const e = loadEvent<S3Event>("s3-manifest-put");
      e.Records[0].s3.object.key = key;
      return e;
    };
    await ctx.store.put(keys.batchUpload("nohead", "x", "jsonl"), toJsonlText([{ id: "a", text: "fine" }]));
    const [unknown] = (await ingest(event("batch/nohead/x.jsonl"))).batches;
    assert.equal(unknown.state, "refused");
    assert.match(String(unknown.error), /nohead/);
    const status = await readBatchUploadStatus(ctx.store, { head: "nohead", name: "x", format: "jsonl" });
    assert.deepEqual([status?.state, status?.error], ["refused", unknown.error]);

    await ctx.store.put(keys.batchUpload("films", "empty", "csv"), "id,text\na,\n");
    const [empty] = (await ingest(event("batch/films/empty.csv"))).batches;
    assert.equal(empty.state, "refused");
    assert.match(String(empty.error), /none of the 1 rows is valid/);
    const [bad] = (await ingest(event("batch/films/a/b.jsonl"))).batches;
    assert.deepEqual([bad.state, bad.job], ["refused", undefined]);
  });

  test("API handler: API Gateway HTTP API v2 events through the real Hono app", async () => {
    const health = await api(loadEvent<APIGatewayProxyEventV2>("api-health"), context);
    assert.equal(typeof health, "object");
    const h = health as { statusCode: number; body: string };
    assert.equal(h.statusCode, 200);
    assert.equal(JSON.parse(h.body).status, "ok");

    await ctx.platform.train({ dataset: "reviews", head: "sentiment" });
    const res = (await api(loadEvent<APIGatewayProxyEventV2>("api-predict"), context)) as {
      statusCode: number;
      body: string;
    };
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      JSON.parse(res.body).predictions.map((p: { label: string }) => p.label),
      ["pos", "neg"],
    );

    // A version that keeps its inputs: they are stored before the handler returns (Lambda freezes after).
    await ctx.platform.train({ dataset: "reviews", head: "sentiment", capture: "all" });
    const kept = (await api(loadEvent<APIGatewayProxyEventV2>("api-predict"), context)) as { body: string };
    const ids = JSON.parse(kept.body).predictions.map((p: { predictionId: string }) => p.predictionId);
    for (const id of ids) assert.ok(await ctx.store.head(keys.headCapture("sentiment", id)), `capture ${id}`);

    const bad = loadEvent<APIGatewayProxyEventV2>("api-predict");
    bad.body = JSON.stringify({ inputs: [] });
    const err = (await api(bad, context)) as { statusCode: number; body: string };
    assert.equal(err.statusCode, 400);
    assert.equal(JSON.parse(err.body).error.field, "inputs");
  });
});
