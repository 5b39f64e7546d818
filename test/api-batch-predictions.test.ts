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

  test("a manifest already in the store (manifestKey): ingested once, refused lines are error rows", async () => {
    const { store } = ctx;
    const manifest = '{"id":"a","text":"great fun"}\n{"id":"b","text":" "}\n{"id":"c","text":"awful dull"}\n';
    await store.put("batch/films/tonight.jsonl", manifest);
    const res = await app.request(
      "/v1/heads/films/batch-predictions",
      post({ manifestKey: "batch/films/tonight.jsonl" }),
    );
    assert.equal(res.status, 202);
    const started = await read(res);
    assert.equal(started.input.source, "manifest");
    assert.match(started.input.dataset, /^bp-input-[0-9a-f]{20}$/);
    await ctx.platform.batchIdle();
    const job = await read(await app.request(`/v1/heads/films/batch-predictions/${started.job}`));
    assert.equal(job.status, "succeeded-with-errors", job.error);
    assert.deepEqual(job.counts, { total: 3, succeeded: 2, failed: 1 });
    const errors = await store.get(job.errors[0]);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(errors!.body)), {
      id: "b",
      line: 2,
      reason: "text: text must not be blank",
    });
    // The same bytes under another key are the same input, so the same job.
    await store.put("batch/films/copy.jsonl", manifest);
    const again = await read(
      await app.request("/v1/heads/films/batch-predictions", post({ manifestKey: "batch/films/copy.jsonl" })),
    );
    assert.equal(again.job, started.job);

    for (const [body, status, field] of [
      [{ manifestKey: "heads/films/aliases/live.json" }, 400, "manifestKey"],
      [{ manifestKey: "batch/films/none.jsonl" }, 404, "manifestKey"],
      [{ manifestKey: "batch/films/tonight.jsonl", dataset: "fresh" }, 400, "dataset"],
    ] as const) {
      const r = await app.request("/v1/heads/films/batch-predictions", post(body));
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal((await read(r)).error.field, field);
    }
    const before = (await store.list("datasets/")).length;
    const noHead = await app.request(
      "/v1/heads/nohead/batch-predictions",
      post({ manifestKey: "batch/films/tonight.jsonl" }),
    );
    assert.equal(noHead.status, 404);
    await store.put("batch/films/other.jsonl", '{"text":"fun"}\n');
    await app.request("/v1/heads/nohead/batch-predictions", post({ manifestKey: "batch/films/other.jsonl" }));
    assert.equal((await store.list("datasets/")).length, before, "a refused request ingests nothing");
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
