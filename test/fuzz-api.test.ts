/**
 * The API fuzzer (test/helpers/fuzz.ts) in CI: the hostile corpus plus 600 generated requests
 * across every operation of the OpenAPI document, fixed seed. The bench
 * (`npm run bench:reliability`) runs ≥ 10,000 with a random seed; a seed it prints reproduces here
 * with `FUZZ_SEED=<seed> FUZZ_REQUESTS=<n>`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { checkResponse, generate, operationsOf, RequestArbitraries, runRequests } from "./helpers/fuzz.ts";
import { type FuzzFixture, fuzzFixture, hostileCorpus } from "./helpers/fuzz-fixture.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 600);

describe("API fuzzing", () => {
  let fx: FuzzFixture;
  before(async () => {
    fx = await fuzzFixture();
  });
  after(() => fx.cleanup());

  test("the checker itself: 5xx, missing field and bad bodies are findings; router 404s and 409s need no field", () => {
    const err = (status: number, e: object) => checkResponse(status, JSON.stringify({ error: e }), fx.codes);
    assert.equal(checkResponse(500, "{}", fx.codes), "status 500");
    assert.equal(err(400, { code: "invalid_input", message: "x" }), "400 without field");
    assert.equal(err(404, { code: "not_found", message: "head h" }), "404 without field");
    assert.equal(err(404, { code: "not_found", message: "no route for GET /x" }), undefined);
    assert.equal(err(409, { code: "conflict", message: "moved" }), undefined);
    assert.equal(err(400, { code: "made_up", message: "x", field: "a" }), "unknown error code made_up");
    assert.equal(checkResponse(400, "<html>", fx.codes), "error body is not JSON");
    assert.equal(err(400, { code: "invalid_input", message: "x", field: "body" }), undefined);
  });

  test("every operation of the document is generated", () => {
    const ops = operationsOf(fx.doc);
    const arb = new RequestArbitraries(fx.doc, fx.names).all(ops);
    const seen = new Set([...generate(arb, 400, SEED)].map((r) => r.operationId));
    assert.deepEqual([...seen].sort(), ops.map((o) => o.operationId).sort());
  });

  test("names of Object.prototype members (constructor, toString, __proto__) are refused or kept, never a 500", async () => {
    const json = (method: string, path: string, body: unknown) =>
      fx.send({
        operationId: "x",
        method,
        path,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    for (const name of ["constructor", "toString", "__proto__"]) {
      const train = await json("POST", "/v1/heads/proto-type/train", { dataset: "films", type: name });
      assert.equal(train.status, 400, `type ${name}: ${train.text}`);
      assert.equal(JSON.parse(train.text).error.field, "type");
      const auto = await json("POST", "/v1/heads/proto-type/train", {
        dataset: "films",
        type: "auto",
        candidates: [name],
      });
      assert.equal(auto.status, 400, `candidate ${name}: ${auto.text}`);
      assert.match(JSON.parse(auto.text).error.message, new RegExp(`unknown candidate "${name}"`));
    }
    const put = await fx.send({
      operationId: "putManifest",
      method: "PUT",
      path: "/v1/datasets/scratch-proto/manifest?backbone=constructor",
      headers: { "content-type": "application/x-ndjson" },
      body: '{"text": "good"}\n',
    });
    assert.equal(put.status, 404, put.text);
    assert.equal(JSON.parse(put.text).error.field, "backbone");

    // Labels named like them: counted in the status, learned and predicted like any other.
    const rows = Array.from({ length: 24 }, (_, i) => ({
      id: `r${i}`,
      text: i % 2 ? "good great fun" : "bad awful dull",
      label: i % 2 ? "constructor" : "toString",
    }));
    const manifest = await fx.send({
      operationId: "putManifest",
      method: "PUT",
      path: "/v1/datasets/proto-labels/manifest",
      headers: { "content-type": "application/x-ndjson" },
      body: rows.map((r) => JSON.stringify(r)).join("\n"),
    });
    assert.equal(manifest.status, 200, manifest.text);
    assert.deepEqual(JSON.parse(manifest.text).status.labels, { toString: 12, constructor: 12 });
    await fx.platform.local.idle();
    const trained = await json("POST", "/v1/heads/proto-labels/train", { dataset: "proto-labels" });
    assert.equal(trained.status, 200, trained.text);
    assert.deepEqual(Object.keys(JSON.parse(trained.text).metrics.perClass).sort(), [
      "constructor",
      "toString",
    ]);
    const predicted = await json("POST", "/v1/heads/proto-labels/predict", { inputs: ["good great fun"] });
    assert.equal(predicted.status, 200, predicted.text);
    assert.equal(JSON.parse(predicted.text).predictions[0].label, "constructor");
  });

  test(`hostile corpus + ${REQUESTS} generated requests (seed ${SEED}): no 5xx, every 4xx names its field`, async () => {
    const arb = new RequestArbitraries(fx.doc, fx.names).all(operationsOf(fx.doc));
    const requests = [...hostileCorpus(fx.names), ...generate(arb, REQUESTS, SEED)];
    const stats = await runRequests(requests, fx.send, fx.codes);
    assert.equal(stats.requests, requests.length);
    assert.deepEqual(stats.findings, [], JSON.stringify(stats.findings, null, 2));
    // Deep, not just refused: some of each kind of answer.
    assert.ok((stats.byStatus["200"] ?? 0) > REQUESTS / 20, JSON.stringify(stats.byStatus));
  });
});
