/**
 * The batch-prediction routes through the real HTTP stack: start (202, idempotent), status until
 * finished, cancel, a job under another head's path (404), bad bodies (400 naming the field).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const post = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("batch predictions over HTTP", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: ReturnType<typeof createApp>;
  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { seed: 3 })));
    await ctx.platform.embed("films");
    await ctx.platform.train({ dataset: "films", head: "films" });
    await ctx.platform.putManifest("fresh", "jsonl", toJsonlText(tinySentimentRows(15, { seed: 9 })));
  });
  after(async () => {
    await ctx.platform.batchIdle();
    await ctx.cleanup();
  });

  test("POST starts a job (202); GET follows it to succeeded; a second POST is the same job", async () => {
    const res = await app.request("/v1/heads/films/batch-predictions", post({ dataset: "fresh" }));
    assert.equal(res.status, 202);
    const started = await read(res);
    assert.match(started.job, /^bp-films-[0-9a-f]{20}$/);
    assert.ok(["queued", "running", "succeeded"].includes(started.status), started.status);
    let job = started;
    for (let i = 0; i < 200 && !["succeeded", "failed"].includes(job.status); i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = await read(await app.request(`/v1/heads/films/batch-predictions/${started.job}`));
    }
    assert.equal(job.status, "succeeded", job.error);
    assert.deepEqual(job.counts, { total: 15, succeeded: 15, failed: 0 });
    assert.deepEqual(job.outputs, [`predictions/${started.job}/part-00000.jsonl`]);
    const again = await read(
      await app.request("/v1/heads/films/batch-predictions", post({ dataset: "fresh" })),
    );
    assert.equal(again.job, started.job);
    assert.equal(again.status, "succeeded");
    assert.equal(again.updatedAt, job.updatedAt, "a finished job is not run again");
    // Cancelling a finished job changes nothing.
    const cancel = await app.request(`/v1/heads/films/batch-predictions/${started.job}/cancel`, post({}));
    assert.equal(cancel.status, 200);
    assert.equal((await read(cancel)).status, "succeeded");
  });

  test("a job is found only under its own head; bad bodies are 400s naming the field", async () => {
    const res = await app.request("/v1/heads/films/batch-predictions", post({ dataset: "films" }));
    const { job } = await read(res);
    assert.equal((await app.request(`/v1/heads/other/batch-predictions/${job}`)).status, 404);
    assert.equal((await app.request("/v1/heads/films/batch-predictions/bp-none")).status, 404);
    const missing = await app.request("/v1/heads/films/batch-predictions", post({}));
    assert.equal(missing.status, 400);
    assert.equal((await read(missing)).error.field, "dataset");
    const both = await app.request(
      "/v1/heads/films/batch-predictions",
      post({ dataset: "fresh", version: "v1", alias: "live" }),
    );
    assert.equal(both.status, 400);
    const unknown = await app.request("/v1/heads/films/batch-predictions", post({ dataset: "nope" }));
    assert.equal(unknown.status, 404);
    const noHead = await app.request("/v1/heads/nohead/batch-predictions", post({ dataset: "fresh" }));
    assert.equal(noHead.status, 404);
  });
});
