import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { MAX_PREDICT_BATCH } from "../shared/api/schemas.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

/** Response bodies are checked field by field, so they are read untyped. */
const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("HTTP API", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: ReturnType<typeof createApp>;
  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
  });
  after(() => ctx.cleanup());

  test("GET /health answers ok and gives away no internal URL or path", async () => {
    const res = await app.request("/health");
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(JSON.parse(text).status, "ok");
    assert.ok(!text.includes(ctx.store.root) && !text.includes(ctx.store.url), text);
  });

  test("a manifest upload or ingest with a backbone that cannot embed stores nothing", async () => {
    const body = toJsonlText(tinySentimentRows(4));
    const put = (query: string) =>
      app.request(`/v1/datasets/refused/manifest?${query}`, {
        method: "PUT",
        headers: { "content-type": "application/x-ndjson" },
        body,
      });
    for (const [query, status] of [
      ["backbone=no-such-model", 404],
      ["backbone=tiny-text%2Btiny-text", 400],
    ] as const) {
      const res = await put(query);
      assert.equal(res.status, status, query);
      assert.equal((await read(res)).error.field, "backbone", query);
      assert.deepEqual(await ctx.store.list("datasets/refused/"), [], `${query}: nothing stored`);
    }
    // The same check before ingesting a manifest already in the bucket: its status stays unwritten.
    await ctx.store.put("datasets/refused/manifest.jsonl", body);
    const res = await app.request("/v1/datasets/refused/ingest?backbone=no-such-model", { method: "POST" });
    assert.equal(res.status, 404);
    assert.equal(await ctx.store.head("datasets/refused/_status.json"), undefined);
  });

  test("upload → ingest → embed → train → predict", async () => {
    const rows = tinySentimentRows(100, { withSplit: true });
    const bad = `${toJsonlText(rows)}{"text": 5}\n{"id": "r1", "text": "dup"}\n`;
    let res = await app.request("/v1/datasets/films/manifest", {
      method: "PUT",
      headers: { "content-type": "application/x-ndjson" },
      body: bad,
    });
    assert.equal(res.status, 200);
    const ingest = await read(res);
    assert.equal(ingest.status.rows.accepted, 100);
    assert.deepEqual(
      ingest.status.rejected.map((r: { line: number; field?: string }) => [r.line, r.field]),
      [
        [101, "text"],
        [102, "id"],
      ],
    );
    assert.ok(ingest.job.job.startsWith("embed-films-"));
    await ctx.platform.local.idle();

    res = await app.request("/v1/datasets/films");
    const info = await read(res);
    assert.equal(info.embedding.job.state, "succeeded");
    assert.equal(info.embedding.cachedItems, 100);

    res = await app.request("/v1/heads/films-sentiment/train", json({ dataset: "films" }));
    assert.equal(res.status, 200);
    const trained = await read(res);
    assert.equal(trained.evaluation, "test-split");
    assert.ok(trained.metrics.accuracy > 0.9);

    res = await app.request("/v1/heads/films-sentiment");
    const head = await read(res);
    assert.equal(head.live, trained.version);
    assert.equal(head.current.model, undefined, "weights are not part of the summary");
    assert.equal(head.report.metrics.accuracy, trained.metrics.accuracy);

    res = await app.request(`/v1/heads/films-sentiment/versions/${trained.version}`);
    assert.equal(res.status, 200);

    res = await app.request(
      "/v1/heads/films-sentiment/predict",
      json({ inputs: ["great wonderful fun", "boring awful"] }),
    );
    assert.equal(res.status, 200);
    const pred = await read(res);
    assert.equal(pred.version, trained.version);
    assert.deepEqual(
      pred.predictions.map((p: { label: string }) => p.label),
      ["pos", "neg"],
    );

    res = await app.request(
      "/v1/heads/films-sentiment/predict",
      json({ embeddings: [[1, 0, 0, 0, 0, 0, 0, 0]] }),
    );
    assert.equal((await read(res)).predictions[0].label, "pos");
  });

  test("PUT /v1/heads/{head}/aliases/live moves the alias by compare-and-swap", async () => {
    const train = await app.request(
      "/v1/heads/films-sentiment/train",
      json({ dataset: "films", promote: false }),
    );
    const { version } = await read(train);
    const live = (await read(await app.request("/v1/heads/films-sentiment"))).live;
    assert.notEqual(live, version);
    const put = (body: unknown) =>
      app.request("/v1/heads/films-sentiment/aliases/live", { ...json(body), method: "PUT" });
    let res = await put({ version, expectedVersion: version });
    assert.equal(res.status, 409);
    assert.equal((await read(res)).error.field, "alias");
    res = await put({ version, expectedVersion: live });
    assert.equal(res.status, 200);
    assert.equal((await read(await app.request("/v1/heads/films-sentiment"))).live, version);
    res = await put({ version: "v-missing" });
    assert.equal(res.status, 404);
  });

  test("errors are JSON with a code and the offending field", async () => {
    const cases: Array<[string, RequestInit | undefined, number, string, string | undefined]> = [
      ["/v1/heads/nope/predict", json({ inputs: ["x"] }), 404, "not_found", "head"],
      ["/v1/heads/films-sentiment/predict", json({}), 400, "invalid_input", "inputs"],
      [
        "/v1/heads/films-sentiment/predict",
        json({ inputs: ["a"], embeddings: [[1]] }),
        400,
        "invalid_input",
        "inputs",
      ],
      ["/v1/heads/films-sentiment/predict", json({ inputs: [""] }), 400, "invalid_input", "inputs[0]"],
      [
        "/v1/heads/films-sentiment/predict",
        json({ inputs: Array(MAX_PREDICT_BATCH + 1).fill("a") }),
        400,
        "invalid_input",
        "inputs",
      ],
      ["/v1/heads/films-sentiment/predict", json({ inputs: ["a"], extra: 1 }), 400, "invalid_input", "extra"],
      [
        "/v1/heads/films-sentiment/predict",
        json({ embeddings: [[1, 2]] }),
        400,
        "invalid_input",
        "embeddings[0]",
      ],
      ["/v1/heads/Films/predict", json({ inputs: ["a"] }), 400, "invalid_input", "head"],
      [
        "/v1/heads/films-sentiment/train",
        json({ dataset: "films", type: "svm" }),
        400,
        "invalid_input",
        "type",
      ],
      ["/v1/heads/films-sentiment/train", json({ dataset: "ghost" }), 404, "not_found", "dataset"],
      ["/v1/datasets/ghost", undefined, 404, "not_found", "dataset"],
      ["/v1/jobs/ghost", undefined, 404, "not_found", "job"],
      ["/v1/nothing-here", undefined, 404, "not_found", undefined],
      [
        "/v1/datasets/films/manifest",
        { method: "PUT", headers: { "content-type": "application/pdf" }, body: "x" },
        400,
        "invalid_input",
        "content-type",
      ],
      [
        "/v1/datasets/empty/manifest",
        { method: "PUT", headers: { "content-type": "text/csv" }, body: "" },
        400,
        "invalid_input",
        undefined,
      ],
      [
        "/v1/heads/films-sentiment/predict",
        { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" },
        400,
        "invalid_input",
        "body",
      ],
      [
        "/v1/heads/films-sentiment/predict",
        { method: "POST", headers: { "content-type": "text/plain" }, body: "hello" },
        415,
        "invalid_input",
        "content-type",
      ],
      [
        "/v1/heads/films-sentiment/predict",
        { method: "POST", headers: { "content-type": "multipart/form-data; boundary=x" }, body: "garbage" },
        400,
        "invalid_input",
        "body",
      ],
      [
        "/v1/datasets/badheader/manifest",
        { method: "PUT", headers: { "content-type": "text/csv" }, body: 'id,"text\n1,a\n' },
        400,
        "invalid_input",
        "line 1",
      ],
      [
        "/v1/datasets/binheader/manifest",
        { method: "PUT", headers: { "content-type": "text/csv" }, body: new Uint8Array([0xff, 0xfe, 0x0a]) },
        400,
        "invalid_input",
        "line 1",
      ],
    ];
    for (const [path, init, status, code, field] of cases) {
      const res = await app.request(path, init);
      const body = await read(res);
      assert.equal(res.status, status, `${path}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, code, path);
      if (field !== undefined) assert.equal(body.error.field, field, `${path}: ${JSON.stringify(body)}`);
      assert.equal(typeof body.error.message, "string");
    }
  });

  test("malformed JSON and oversized bodies are rejected", async () => {
    let res = await app.request("/v1/heads/films-sentiment/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(res.status, 400);
    res = await app.request(
      "/v1/heads/films-sentiment/predict",
      json({ inputs: ["x".repeat(9 * 1024 * 1024)] }),
    );
    assert.equal(res.status, 413);
    assert.equal((await read(res)).error.code, "payload_too_large");
  });

  test("serves an OpenAPI document listing every route", async () => {
    const res = await app.request("/openapi.json");
    assert.equal(res.status, 200);
    const doc = await read(res);
    for (const path of [
      "/v1/datasets/{dataset}/manifest",
      "/v1/datasets/{dataset}/ingest",
      "/v1/datasets/{dataset}",
      "/v1/heads/{head}/train",
      "/v1/heads/{head}/predict",
      "/v1/heads/{head}",
      "/v1/jobs/{job}",
    ]) {
      assert.ok(doc.paths[path], `missing ${path}`);
    }
  });
});
