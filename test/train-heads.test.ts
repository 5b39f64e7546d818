/**
 * Training through the registry: every task, `auto` model selection, calibration and class
 * weights, end to end on the tiny backbone's cache.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { ValidationError } from "../shared/errors.ts";
import { inferTask } from "../shared/heads/problem.ts";
import { validateTrainOptions } from "../shared/heads/train-validate.ts";
import { readHeadVersion } from "../shared/heads/version.ts";
import { HEAD_KINDS } from "../shared/learn/registry.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

describe("inferTask", () => {
  test("lists → multilabel, fractional numbers → regression, anything else → classes", () => {
    assert.equal(inferTask([["a"], "b"]), "multilabel");
    assert.equal(inferTask([0.5, 2, 3]), "regression");
    assert.equal(inferTask([0, 1, 1]), "multiclass");
    assert.equal(inferTask(["pos", 1.5]), "multiclass");
  });
});

describe("validateTrainOptions (checked before a request is handed to the train Lambda)", () => {
  const base = { head: "h", dataset: "d" };
  const field = (opts: object) => {
    try {
      validateTrainOptions({ ...base, ...opts });
      return undefined;
    } catch (e) {
      assert.ok(e instanceof ValidationError, String(e));
      return e.field;
    }
  };
  test("names the field of each mistake and accepts sound requests", () => {
    assert.equal(field({ type: "logreg", params: { C: -1 } }), "params.C");
    assert.equal(field({ type: "logreg", params: { bogus: 1 } }), "params.bogus");
    assert.equal(field({ type: "auto", params: { C: 1 } }), "params");
    assert.equal(field({ type: "knn", candidates: ["logreg"] }), "candidates");
    assert.equal(field({ type: "auto", candidates: ["ridge"], task: "multiclass" }), "candidates");
    assert.equal(field({ type: "ridge", task: "multiclass" }), "type");
    assert.equal(field({ type: "svm" }), "type");
    assert.equal(field({ cv: 1 }), "cv");
    assert.equal(field({ task: "regression", params: { C: 1 } }), "params.C");
    assert.equal(field({ type: "mlp", params: { units: 64 } }), undefined);
    assert.equal(field({ type: "auto", candidates: ["knn", "centroid"] }), undefined);
  });
});

describe("training every task through the registry", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const rows = tinySentimentRows(160, { seed: 5 });
  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("sent", "jsonl", toJsonlText(rows));
    // Imbalanced: one positive row in five kept.
    const skewed = rows.filter((r, i) => r.label === "neg" || i % 10 === 0);
    await ctx.platform.putManifest("skewed", "jsonl", toJsonlText(skewed));
    await ctx.platform.putManifest(
      "tags",
      "jsonl",
      toJsonlText(
        rows.map((r, i) => ({ ...r, label: i % 4 === 0 ? [r.label, "first"] : i === 5 ? [] : [r.label] })),
      ),
    );
    await ctx.platform.putManifest(
      "score-csv",
      "csv",
      `id,text,label\n${rows.map((r) => `${r.id},${r.text},${r.label === "pos" ? 2.5 : -1.5}`).join("\n")}\n`,
    );
    await ctx.platform.putManifest(
      "score",
      "jsonl",
      toJsonlText(rows.map((r, i) => ({ ...r, label: (r.label === "pos" ? 2.5 : -1.5) + (i % 7) * 0.01 }))),
    );
    for (const d of ["sent", "skewed", "tags", "score", "score-csv"]) await ctx.platform.embed(d);
  });
  after(() => ctx.cleanup());

  test("every multiclass type trains, reports and serves calibrated probabilities", async () => {
    const types = Object.keys(HEAD_KINDS).filter((t) => HEAD_KINDS[t].task === "multiclass");
    assert.ok(types.length >= 3, `multiclass types: ${types}`);
    for (const type of types) {
      const r = await ctx.platform.train({ dataset: "sent", head: `h-${type}`, type });
      assert.equal(r.type, type);
      assert.equal(r.task, "multiclass");
      assert.ok(r.metrics!.accuracy > 0.9, `${type}: accuracy ${r.metrics!.accuracy}`);
      // Separable data (no out-of-fold mistakes) must not drive the temperature to its bound, which
      // would turn every served probability into 0 or 1.
      const T = r.calibration!.temperature;
      assert.ok(T > 0.1 && T < 10, `${type}: temperature ${T}`);
      const { head, report } = await readHeadVersion(ctx.store, `h-${type}`, r.version);
      assert.equal(head.calibration?.temperature, r.calibration!.temperature);
      assert.equal(report?.calibration?.reliabilityBefore.length, 15);
      const [p] = (await ctx.platform.predict(`h-${type}`, { inputs: ["great wonderful fun"] })).predictions;
      assert.equal(p.label, "pos", type);
      const sum = Object.values(p.scores!).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-9, `${type}: scores sum to ${sum}`);
    }
  });

  test("auto searches every multiclass type by CV, keeps the best and shows the table", async () => {
    const r = await ctx.platform.train({ dataset: "sent", head: "auto", type: "auto", cv: 3 });
    const search = r.search!;
    assert.equal(search.metric, "macroF1");
    assert.equal(search.folds, 3);
    const searched = new Set(search.candidates.map((c) => c.type));
    for (const [type, kind] of Object.entries(HEAD_KINDS)) {
      if (kind.task === "multiclass") assert.ok(searched.has(type), `auto skipped ${type}`);
    }
    const chosen = search.candidates.filter((c) => c.chosen);
    assert.equal(chosen.length, 1);
    const best = Math.max(...search.candidates.map((c) => c.score));
    assert.equal(chosen[0].score, best);
    assert.equal(r.type, chosen[0].type);
    const { report } = await readHeadVersion(ctx.store, "auto", r.version);
    assert.deepEqual(report?.search, search);
  });

  test("auto can be limited to some candidates and refuses explicit params", async () => {
    const r = await ctx.platform.train({
      dataset: "sent",
      head: "auto2",
      type: "auto",
      candidates: ["centroid"],
      cv: 3,
    });
    assert.equal(r.type, "centroid");
    assert.ok(r.search!.candidates.every((c) => c.type === "centroid"));
    await assert.rejects(
      ctx.platform.train({ dataset: "sent", head: "auto3", type: "auto", params: { C: 1 } }),
      (e: unknown) => e instanceof ValidationError && e.field === "params",
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "sent", head: "auto3", type: "auto", candidates: ["nope"] }),
      (e: unknown) => e instanceof ValidationError && e.field === "candidates",
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "sent", head: "auto3", candidates: ["knn"] }),
      (e: unknown) => e instanceof ValidationError && e.field === "candidates",
    );
  });

  test("balanced class weights raise recall on the rare class", async () => {
    const plain = await ctx.platform.train({ dataset: "skewed", head: "plain", params: { C: 0.01 }, cv: 4 });
    const balanced = await ctx.platform.train({
      dataset: "skewed",
      head: "balanced",
      params: { C: 0.01, classWeight: "balanced" },
      cv: 4,
    });
    const rare = (r: typeof plain) => r.metrics!.perClass.pos.recall;
    assert.ok(rare(balanced) >= rare(plain), `recall ${rare(plain)} → ${rare(balanced)}`);
    assert.equal(balanced.params.classWeight, "balanced");
  });

  test("bad params name the parameter", async () => {
    await assert.rejects(
      ctx.platform.train({ dataset: "sent", head: "bad", params: { C: -1 } }),
      (e: unknown) => e instanceof ValidationError && e.field === "params.C",
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "sent", head: "bad", params: { gamma: 1 } }),
      (e: unknown) => e instanceof ValidationError && /valid: C, classWeight/.test(e.message),
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "sent", head: "bad", type: "ridge" }),
      ValidationError,
    );
  });

  test("multilabel: label lists train a sigmoid head with per-label thresholds", async () => {
    const r = await ctx.platform.train({ dataset: "tags", head: "tags", type: "auto", cv: 3 });
    assert.equal(r.task, "multilabel");
    assert.equal(r.type, "multilabel");
    const ml = r.multilabel!;
    assert.deepEqual(Object.keys(ml.perLabel).sort(), ["first", "neg", "pos"]);
    assert.ok(ml.perLabel.pos.f1 > 0.9, `pos F1 ${ml.perLabel.pos.f1}`);
    const [p] = (await ctx.platform.predict("tags", { inputs: ["great wonderful fun"] })).predictions;
    assert.ok(p.labels!.includes("pos") && !p.labels!.includes("neg"), JSON.stringify(p));
    assert.equal(p.label, undefined);
  });

  test("multilabel: a single tag, present or absent, is a learnable task", async () => {
    await ctx.platform.putManifest(
      "spam",
      "jsonl",
      toJsonlText(rows.map((r) => ({ ...r, label: r.label === "pos" ? ["spam"] : [] }))),
    );
    await ctx.platform.embed("spam");
    const r = await ctx.platform.train({ dataset: "spam", head: "spam", cv: 3 });
    assert.equal(r.type, "multilabel");
    assert.ok(r.multilabel!.perLabel.spam.f1 > 0.9, `F1 ${r.multilabel!.perLabel.spam.f1}`);
    const [yes, no] = (
      await ctx.platform.predict("spam", { inputs: ["great wonderful fun", "awful boring worst"] })
    ).predictions;
    assert.deepEqual([yes.labels, no.labels], [["spam"], []]);
  });

  test("without a type, the task is inferred from the labels and its default type trains", async () => {
    const tags = await ctx.platform.train({ dataset: "tags", head: "tags-default", cv: 3 });
    assert.equal(tags.type, "multilabel");
    const score = await ctx.platform.train({ dataset: "score", head: "score-default", cv: 3 });
    assert.equal(score.type, "ridge");
    assert.equal(score.search, undefined);
  });

  test("regression: fractional labels train ridge and predict values", async () => {
    const r = await ctx.platform.train({ dataset: "score", head: "score", type: "auto", cv: 3 });
    assert.equal(r.task, "regression");
    assert.equal(r.type, "ridge");
    assert.equal(r.search!.metric, "rmse");
    assert.ok(r.regression!.r2 > 0.8, `R² ${r.regression!.r2}`);
    const [pos, neg] = (
      await ctx.platform.predict("score", { inputs: ["great wonderful fun", "awful boring worst"] })
    ).predictions;
    assert.ok(pos.value! > 1 && neg.value! < 0, `${pos.value} ${neg.value}`);
    // CSV cells are strings: a regression task parses the numeric ones.
    const csv = await ctx.platform.train({
      dataset: "score-csv",
      head: "score-csv",
      task: "regression",
      cv: 3,
    });
    assert.equal(csv.type, "ridge");
    assert.ok(csv.regression!.r2 > 0.8, `R² ${csv.regression!.r2}`);
    await assert.rejects(
      ctx.platform.train({ dataset: "sent", head: "score2", task: "regression" }),
      (e: unknown) => e instanceof ValidationError && /numeric labels/.test(e.message),
    );
  });

  test("the API takes type, params and task, and answers 400 naming a bad parameter", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const post = (body: object) =>
      app.request("/v1/heads/api-head/train", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    let res = await post({ dataset: "sent", type: "centroid", params: { scale: 20 } });
    assert.equal(res.status, 200);
    const trained = (await res.json()) as { type: string; params: { scale: number } };
    assert.equal(trained.type, "centroid");
    assert.equal(trained.params.scale, 20);
    res = await post({ dataset: "sent", type: "logreg", params: { C: "lots" } });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(await res.json()), /params\.C/);
    res = await app.request("/v1/heads/api-head/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: ["great wonderful fun"] }),
    });
    assert.equal(res.status, 200);
    const out = (await res.json()) as { predictions: Array<{ label: string }> };
    assert.equal(out.predictions[0].label, "pos");
  });
});
