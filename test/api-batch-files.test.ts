/**
 * A finished batch job's files over HTTP on a filesystem store: the listing (`…/files`) names
 * every part in summary order with a URL of this server, and each URL answers exactly the part's
 * bytes. An unfinished job is a 409, a job of another head a 404, a name that is not one of the
 * job's parts a 400 or 404 (never a file outside the job's parts).
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

interface Listing {
  job: string;
  status: string;
  counts: { total: number; succeeded: number; failed: number };
  files: Array<{ kind: string; part: number; key: string; bytes: number; url: string; expiresAt?: string }>;
}

describe("batch prediction files, filesystem store", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: ReturnType<typeof createApp>;
  let job: string;
  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(40, { seed: 3 })));
    await ctx.platform.embed("films");
    await ctx.platform.train({ dataset: "films", head: "films" });
    // Nine lines, one of them blank (refused at ingest: an error row): two parts of four rows.
    const rows = tinySentimentRows(9, { seed: 11 }).map(({ id, text }) => ({ id, text }));
    rows[6].text = " ";
    const manifest = join(ctx.dir, "tonight.jsonl");
    await writeFile(manifest, toJsonlText(rows));
    const dataset = await ctx.platform.uploadBatchInput(manifest);
    const started = await ctx.platform.startBatchPrediction({
      head: "films",
      dataset,
      source: "manifest",
      partRows: 4,
    });
    job = started.job.job;
    const done = await ctx.platform.runBatchPrediction(job);
    assert.equal(done.status, "succeeded-with-errors", done.error);
  });
  after(async () => {
    await ctx.platform.batchIdle();
    await ctx.cleanup();
  });

  test("a finished job: every part listed in summary order, each URL answers the part's bytes", async () => {
    const res = await app.request(`http://127.0.0.1/v1/heads/films/batch-predictions/${job}/files`);
    assert.equal(res.status, 200, await res.clone().text());
    const listing = (await res.json()) as Listing;
    const record = await ctx.platform.batchPrediction(job);
    assert.equal(listing.job, job);
    assert.equal(listing.status, "succeeded-with-errors");
    assert.deepEqual(listing.counts, { total: 9, succeeded: 8, failed: 1 });
    assert.deepEqual(
      listing.files.map((f) => f.key),
      [...record.outputs, ...record.errors],
    );
    assert.deepEqual(
      listing.files.map((f) => `${f.kind}:${f.part}`),
      ["predictions:0", "predictions:1", "errors:0", "errors:1"],
    );
    const ids: string[] = [];
    const errors: string[] = [];
    for (const file of listing.files) {
      const name = file.key.split("/").pop();
      assert.equal(file.url, `http://127.0.0.1/v1/heads/films/batch-predictions/${job}/files/${name}`);
      assert.equal(file.expiresAt, undefined, "a local URL does not expire");
      const got = await app.request(file.url);
      assert.equal(got.status, 200, file.url);
      assert.equal(got.headers.get("content-type"), "application/x-ndjson");
      assert.equal(got.headers.get("content-disposition"), `attachment; filename="${job}-${name}"`);
      const bytes = new Uint8Array(await got.arrayBuffer());
      const stored = await ctx.store.get(file.key);
      assert.deepEqual(bytes, stored?.body, file.key);
      assert.equal(file.bytes, bytes.byteLength);
      const lines = new TextDecoder().decode(bytes).split("\n").filter(Boolean);
      for (const line of lines) (file.kind === "predictions" ? ids : errors).push(JSON.parse(line).id);
    }
    assert.deepEqual(ids, ["r0", "r1", "r2", "r3", "r4", "r5", "r7", "r8"]);
    assert.deepEqual(errors, ["r6"]);
  });

  test("an unfinished job is a 409; a job of another head or an unknown job a 404", async () => {
    await ctx.platform.putManifest("later", "jsonl", toJsonlText(tinySentimentRows(5, { seed: 2 })));
    const { job: queued } = await ctx.platform.startBatchPrediction({ head: "films", dataset: "later" });
    assert.equal(queued.status, "queued");
    const listing = await app.request(`/v1/heads/films/batch-predictions/${queued.job}/files`);
    assert.equal(listing.status, 409);
    assert.equal(((await listing.json()) as { error: { field: string } }).error.field, "job");
    const part = await app.request(`/v1/heads/films/batch-predictions/${queued.job}/files/part-00000.jsonl`);
    assert.equal(part.status, 409);
    await ctx.platform.cancelBatchPrediction(queued.job);
    assert.equal((await app.request(`/v1/heads/films/batch-predictions/${queued.job}/files`)).status, 409);

    assert.equal((await app.request(`/v1/heads/other/batch-predictions/${job}/files`)).status, 404);
    assert.equal(
      (await app.request(`/v1/heads/other/batch-predictions/${job}/files/part-00000.jsonl`)).status,
      404,
    );
    assert.equal((await app.request("/v1/heads/films/batch-predictions/bp-none/files")).status, 404);
  });

  test("a name that is not one of the job's parts is refused: 400, or 404 for a part it does not have", async () => {
    const base = `/v1/heads/films/batch-predictions/${job}/files`;
    for (const bad of [
      "_summary.json",
      "_job.json",
      "part-0.jsonl",
      "part-00000.json",
      "..%2F_job.json",
      "..%2F..%2F..%2Fapi-keys.json",
      "%2E%2E",
      "part-00000.jsonl%2F..%2F_job.json",
    ]) {
      const res = await app.request(`${base}/${bad}`);
      assert.ok(res.status === 400 || res.status === 404, `${bad}: ${res.status}`);
      const body = (await res.json()) as { error: { message: string } };
      assert.doesNotMatch(body.error.message, /file:|\/tmp\//, "no store path");
    }
    const badShape = await app.request(`${base}/_summary.json`);
    assert.equal(badShape.status, 400);
    assert.equal(((await badShape.json()) as { error: { field: string } }).error.field, "name");
    const missing = await app.request(`${base}/part-00099.jsonl`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { field: string } }).error.field, "name");
  });
});
