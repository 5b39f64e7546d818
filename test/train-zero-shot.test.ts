/**
 * Zero-shot heads (`train --type zero-shot --labels "pos: …"`): built from label descriptions alone on
 * the tiny text backbone, whose word vectors carry sentiment on one axis. Descriptions made of
 * positive words must win positive inputs (and swapping them must swap the answers), through
 * predict, batch predictions, the ONNX export, the report, the CLI and the HTTP API.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { createApp } from "../shared/api/app.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { ValidationError } from "../shared/errors.ts";
import { EMBEDDING_INPUT, PROBABILITIES_OUTPUT } from "../shared/heads/export-onnx.ts";
import { renderReportHtml } from "../shared/heads/report-html.ts";
import { readHeadVersion } from "../shared/heads/version.ts";
import { headKind } from "../shared/learn/registry.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { cli, filmsStore } from "./helpers/cli.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import {
  TINY_DIM,
  tinySentimentRows,
  tinySquare,
  toJsonlText,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";

const LABELS = ["pos: great wonderful love", "neg: awful boring hate"];
const SWAPPED = ["pos: awful boring hate", "neg: great wonderful love"];

describe("centroid heads with a center (what zero-shot heads store)", () => {
  test("inputs and rows are centered before the cosine, and the center survives JSON", async () => {
    const kind = headKind("centroid");
    // Both class rows share a large common direction (axis 1); only axis 0 tells them apart.
    const X = Float32Array.from([0.2, 5, 0, -0.2, 5, 0]);
    const target = { task: "multiclass" as const, y: Int32Array.from([0, 1]), k: 2 };
    const params = kind.resolveParams({}, 2, 3);
    const center = Float32Array.from([0, 0.999, 0]);
    const plain = await kind.fit(X, 2, 3, target, params, { seed: 0 });
    const centered = kind.fromJson(kind.toJson(await kind.fit(X, 2, 3, target, params, { seed: 0, center })));
    const input = Float32Array.from([0.1, 5, 0.3]);
    const pPlain = await kind.predict(plain, input, 1);
    const pCentered = await kind.predict(centered, input, 1);
    // Uncentered, the shared direction makes both cosines nearly equal; centered, class 0 wins clearly.
    assert.ok(pPlain[0] < 0.7, `plain: ${pPlain[0]}`);
    assert.ok(pCentered[0] > 0.9, `centered: ${pCentered[0]}`);
    assert.deepEqual(Array.from(centered.center), Array.from(center));
  });
});

describe("zero-shot heads", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const unlabelled = tinySentimentRows(40, { seed: 3 }).map(({ id, text }) => ({ id, text }));
  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { seed: 2 })));
    await ctx.platform.putManifest("pool", "jsonl", toJsonlText(unlabelled));
    await ctx.platform.putManifest(
      "three",
      "jsonl",
      toJsonlText([...tinySentimentRows(6), { id: "x", text: "the plot", label: "meh" }]),
    );
    for (const d of ["films", "pool", "three"]) await ctx.platform.embed(d);
  });
  after(() => ctx.cleanup());

  test("descriptions near a class's words predict that class; every labelled row is a test row", async () => {
    const r = await ctx.platform.train({ dataset: "films", head: "zs", type: "zero-shot", labels: LABELS });
    assert.equal(r.type, "centroid");
    assert.equal(r.evaluation, "test-split");
    assert.deepEqual(r.counts, { train: 0, test: 60, unlabeled: 0, unsupported: 0, failed: 0 });
    assert.ok(r.metrics!.accuracy > 0.9, `accuracy ${r.metrics!.accuracy}`);
    assert.equal(r.zeroShot!.evaluatedOn, 60);
    assert.equal(r.zeroShot!.centeredOn, 60);
    const { head, report } = await readHeadVersion(ctx.store, "zs", r.version);
    assert.deepEqual(head.labels, ["pos", "neg"]);
    assert.equal(head.unknown, undefined);
    assert.equal(head.calibration, undefined);
    assert.deepEqual(report!.zeroShot!.labels[0], { label: "pos", description: "great wonderful love" });
    const { predictions } = await ctx.platform.predict("zs", {
      inputs: ["brilliant fun movie", "dull worst plot"],
    });
    assert.deepEqual(
      predictions.map((p) => p.label),
      ["pos", "neg"],
    );
    const html = renderReportHtml(report!, head);
    assert.match(html, /Zero-shot/);
    assert.match(html, /great wonderful love/);
    assert.match(html, /zero-shot \(centroid\)/);

    // The descriptions decide: swapped, the same rows come out the other way round.
    const swapped = await ctx.platform.train({
      dataset: "films",
      head: "zs-swapped",
      type: "zero-shot",
      labels: SWAPPED,
    });
    assert.ok(swapped.metrics!.accuracy < 0.1, `swapped accuracy ${swapped.metrics!.accuracy}`);
  });

  test("an unlabelled dataset is enough; batch predictions and the ONNX export agree with predict", async () => {
    const r = await ctx.platform.train({
      dataset: "pool",
      head: "zs-pool",
      type: "zero-shot",
      labels: LABELS,
    });
    assert.equal(r.metrics, undefined);
    assert.deepEqual(r.counts, { train: 0, test: 0, unlabeled: 40, unsupported: 0, failed: 0 });
    const stored = await readHeadVersion(ctx.store, "zs-pool", r.version);
    assert.match(renderReportHtml(stored.report!, stored.head), /no labelled rows, so there are no scores/);
    const texts = unlabelled.map((u) => u.text);
    const online = await ctx.platform.predict("zs-pool", { inputs: texts });

    const { job } = await ctx.platform.startBatchPrediction({ head: "zs-pool", dataset: "pool" });
    const done = await ctx.platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded", done.error);
    const batch = new Map<string, string>();
    for (const key of done.outputs ?? []) {
      const text = new TextDecoder().decode((await ctx.store.get(key))!.body);
      for (const line of text.split("\n").filter(Boolean)) {
        const row = JSON.parse(line);
        batch.set(row.id, row.label);
      }
    }
    assert.equal(batch.size, 40);
    unlabelled.forEach((u, i) => {
      assert.equal(batch.get(u.id), online.predictions[i].label, u.id);
    });

    const exported = await ctx.platform.exportHead("zs-pool");
    const embedder = await (await import("../shared/backbone/registry.ts")).loadEmbedder(
      ctx.store,
      "tiny-text",
      ctx.config,
    );
    const vectors = await embedder.embed(texts.map((t) => ({ text: normalizeText(t) })));
    const session = await InferenceSession.create(exported.bytes);
    const out = await session.run({
      [EMBEDDING_INPUT]: new Tensor("float32", vectors, [texts.length, TINY_DIM]),
    });
    await session.release();
    const proba = out[PROBABILITIES_OUTPUT].data as Float32Array;
    online.predictions.forEach((p, i) => {
      assert.ok(
        Math.abs(proba[i * 2] - p.scores!.pos) < 1e-4,
        `row ${i}: ${proba[i * 2]} vs ${p.scores!.pos}`,
      );
    });
  });

  test("bad requests are refused naming the field, and store nothing", async () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ labels: LABELS }, "labels"],
      [{ type: "zero-shot" }, "labels"],
      [{ type: "zero-shot", labels: ["pos: good", "pos: great"] }, "labels"],
      [{ type: "zero-shot", labels: ["pos: good", ": no name"] }, "labels[1]"],
      [{ type: "zero-shot", labels: LABELS, withFeedback: true }, "withFeedback"],
      [{ type: "zero-shot", labels: LABELS, unknownScorer: "msp" }, "unknownScorer"],
      [{ type: "zero-shot", labels: LABELS, task: "multilabel" }, "task"],
      [{ type: "zero-shot", labels: LABELS, params: { C: 1 } }, "params.C"],
    ];
    for (const [extra, field] of bad) {
      await assert.rejects(
        ctx.platform.train({ dataset: "films", head: "zs-bad", ...extra }),
        (err: unknown) => err instanceof ValidationError && err.field === field,
        JSON.stringify(extra),
      );
    }
    // A dataset label the descriptions do not name: refused with the row, before anything is stored.
    await assert.rejects(
      ctx.platform.train({ dataset: "three", head: "zs-bad", type: "zero-shot", labels: LABELS }),
      (err: unknown) => err instanceof ValidationError && err.field === "labels" && /row x/.test(err.message),
    );
    assert.deepEqual(await ctx.store.list("heads/zs-bad/"), []);
  });

  test("an image backbone is refused: no text tower to embed the descriptions", async () => {
    await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
    await ctx.platform.addBackbone(join(ctx.dir, "image-backbone"));
    const folder = join(ctx.dir, "colours");
    for (const [label, rgb] of Object.entries({ red: [220, 30, 30], blue: [30, 40, 220] } as const)) {
      await mkdir(join(folder, label), { recursive: true });
      for (let i = 0; i < 3; i++)
        await writeFile(join(folder, label, `${i}.png`), await tinySquare([...rgb], i));
    }
    await ctx.platform.upload("colours", folder);
    const request = {
      dataset: "colours",
      head: "zs-image",
      type: "zero-shot",
      backbone: "tiny-image",
      labels: ["red: a red square", "blue: a blue square"],
    };
    const refused = (err: unknown) =>
      err instanceof ValidationError && err.field === "backbone" && /text only/.test(err.message);
    await assert.rejects(ctx.platform.train(request), refused);
    // Handed to a train Lambda, it is refused before the hand-over, not in the background.
    const dispatched: string[] = [];
    const remote = new Platform(ctx.store, ctx.config, {
      trainDispatcher: { name: "recording", dispatch: async (req) => void dispatched.push(req.head) },
    });
    await assert.rejects(remote.requestTraining({ ...request, promote: true }), refused);
    assert.deepEqual(dispatched, []);
    const text = await remote.requestTraining({
      dataset: "films",
      head: "zs-remote",
      type: "zero-shot",
      labels: LABELS,
      promote: true,
    });
    assert.equal(text.accepted, true);
    assert.deepEqual(dispatched, ["zs-remote"]);
  });

  test("POST /v1/heads/{head}/train takes labels; a bad one is a 400 naming it", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const post = (head: string, body: unknown) =>
      app.request(`/v1/heads/${head}/train`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    let res = await post("zs-api", { dataset: "films", type: "zero-shot", labels: LABELS });
    assert.equal(res.status, 200, await res.clone().text());
    const trained: ReturnType<typeof JSON.parse> = await res.json();
    assert.equal(trained.zeroShot.labels.length, 2);
    assert.ok(trained.metrics.accuracy > 0.9);
    res = await app.request("/v1/heads/zs-api/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: ["love it wonderful"] }),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as ReturnType<typeof JSON.parse>).predictions[0].label, "pos");
    for (const [labels, field] of [
      ["pos: good", "labels"],
      [["pos: good"], "labels"],
    ] as const) {
      res = await post("zs-api-bad", { dataset: "films", type: "zero-shot", labels });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as ReturnType<typeof JSON.parse>).error.field, field);
    }
  });
});

describe("zero-shot through the CLI", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    ({ dir, env } = await filmsStore({ rows: 30, seed: 5 }));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("--labels is repeatable; a bad one exits 2 naming it", async () => {
    const args = ["train", "films", "--head", "zs", "--type", "zero-shot"];
    const ok = await cli([...args, "--labels", "pos: great love", "--labels", "neg", "--json"], env);
    assert.equal(ok.code, 0, ok.stderr);
    const r = JSON.parse(ok.stdout);
    assert.deepEqual(r.zeroShot.labels, [
      { label: "pos", description: "great love" },
      { label: "neg", description: "neg" },
    ]);
    const text = await cli([...args, "--labels", "pos: great love", "--labels", "neg: awful hate"], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /zero-shot from descriptions: pos = "great love", neg = "awful hate"/);
    const bad = await cli([...args, "--labels", "pos: great love"], env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /labels/);
  });
});
