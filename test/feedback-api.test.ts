/**
 * The feedback routes through the real HTTP stack: predict answers prediction ids, a correction is
 * stored (201) and listed, a bad label or an unresolvable online id is a 400 naming the field with
 * nothing stored, train with `withFeedback` changes the corrected prediction, delete (404 after).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const send = (body: unknown, method = "POST") => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("feedback over HTTP", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: ReturnType<typeof createApp>;
  const text = "wonderful love great fun brilliant";
  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { seed: 3 })));
    await ctx.platform.embed("films");
    await ctx.platform.train({ dataset: "films", head: "films", type: "knn", params: { k: 1 } });
  });
  after(() => ctx.cleanup());

  test("predict → correct → list → train withFeedback → the prediction changed → delete", async () => {
    const predicted = await read(await app.request("/v1/heads/films/predict", send({ inputs: [text] })));
    const { predictionId, label } = predicted.predictions[0];
    assert.match(predictionId, /^p-[0-9a-f]{24}$/);
    assert.equal(label, "pos");

    const unresolvable = await app.request("/v1/heads/films/feedback", send({ predictionId, label: "neg" }));
    assert.equal(unresolvable.status, 400);
    assert.equal((await read(unresolvable)).error.field, "predictionId");
    const badLabel = await app.request("/v1/heads/films/feedback", send({ input: text, label: "meh" }));
    assert.equal(badLabel.status, 400);
    assert.equal((await read(badLabel)).error.field, "label");
    const unknown = await app.request("/v1/heads/films/feedback", send({ input: text, label: "neg", x: 1 }));
    assert.equal(unknown.status, 400);
    assert.deepEqual((await read(await app.request("/v1/heads/films/feedback"))).feedback, []);

    const res = await app.request(
      "/v1/heads/films/feedback",
      send({ predictionId, input: text, label: "neg" }),
    );
    assert.equal(res.status, 201);
    const stored = await read(res);
    assert.equal(stored.text, text);
    assert.equal(stored.predictionId, predictionId);
    const listed = (await read(await app.request("/v1/heads/films/feedback"))).feedback;
    assert.deepEqual(
      listed.map((f: { id: string }) => f.id),
      [stored.id],
    );

    const trained = await app.request(
      "/v1/heads/films/train",
      send({ dataset: "films", type: "knn", params: { k: 1 }, withFeedback: true }),
    );
    assert.equal(trained.status, 200, JSON.stringify(await trained.clone().json()));
    const version = (await read(trained)).version;
    const page = await app.request(`/v1/heads/films/versions/${version}/report`);
    assert.match(await page.text(), /Feedback[\s\S]*before[\s\S]*0\.0%[\s\S]*after[\s\S]*100\.0%/);
    const report = await read(await app.request(`/v1/heads/films/versions/${version}/report?format=json`));
    assert.equal(report.feedback.rows, 1);
    assert.equal(report.feedback.before.value, 0);
    assert.equal(report.feedback.after.value, 1);
    const again = await read(await app.request("/v1/heads/films/predict", send({ inputs: [text] })));
    assert.equal(again.predictions[0].label, "neg");

    const del = await app.request(`/v1/heads/films/feedback/${stored.id}`, { method: "DELETE" });
    assert.equal(del.status, 200);
    assert.equal(
      (await app.request(`/v1/heads/films/feedback/${stored.id}`, { method: "DELETE" })).status,
      404,
    );
    assert.equal((await app.request("/v1/heads/films/feedback/nope", { method: "DELETE" })).status, 400);
  });
});
