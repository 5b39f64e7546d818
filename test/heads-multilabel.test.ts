import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import { MultilabelMetrics } from "../shared/heads/version.ts";
import {
  bestF1Threshold,
  CONSTANT_LABEL_EPS,
  decideLabels,
  fitMultilabel,
  multilabelFromJson,
  multilabelKind,
  multilabelToJson,
  predictMultilabel,
  sigmoid,
} from "../shared/learn/multilabel.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { multilabelMetrics } from "../shared/learn/task-metrics.ts";
import { assertClose, onnxHeadOutput } from "./helpers/heads.ts";

/**
 * Rows with d standard-normal features (shifted by 1, so the bias has work to do). Label c is drawn
 * as Bernoulli(sigmoid(slopes[c] · x_c + offsets[c])): calibrated, noisier for smaller slopes.
 */
function planted(n: number, d: number, slopes: number[], offsets: number[], seed: number) {
  const rand = mulberry32(seed);
  const k = slopes.length;
  const X = new Float32Array(n * d);
  const Y = new Uint8Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) X[i * d + j] = 1 + gaussian(rand);
    for (let c = 0; c < k; c++) {
      const p = sigmoid(slopes[c] * (X[i * d + c] - 1) + offsets[c]);
      Y[i * k + c] = rand() < p ? 1 : 0;
    }
  }
  return { X, Y };
}

function labelF1(Y: Uint8Array, pred: Uint8Array, n: number, k: number, c: number): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < n; i++) {
    const t = Y[i * k + c];
    const p = pred[i * k + c];
    if (t && p) tp++;
    else if (p) fp++;
    else if (t) fn++;
  }
  return tp + fp + fn > 0 ? (2 * tp) / (2 * tp + fp + fn) : 0;
}

const params = (C = 1, folds = 3) => multilabelKind.resolveParams({ C, folds }, 0, 0);

describe("multilabel metrics", () => {
  // Hand-checked, and equal to scikit-learn 1.2.1 (f1_score / precision_score / recall_score with
  // zero_division=0, hamming_loss, accuracy_score) on the same indicator matrices.
  const Y = Uint8Array.from([1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0]);
  const P = Uint8Array.from([1, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0]);
  const labels = ["a", "b", "c", "d"];

  it("matches hand-computed values", () => {
    const m = multilabelMetrics(Y, P, 6, labels, [0.5, 0.3, 0.7, 0.5]);
    assert.doesNotThrow(() => MultilabelMetrics.parse(m));
    // Rows 1 and 3 are exact out of 6; 5 of 24 decisions are wrong.
    assert.ok(Math.abs(m.subsetAccuracy - 2 / 6) < 1e-12);
    assert.ok(Math.abs(m.hammingLoss - 5 / 24) < 1e-12);
    // Label a: tp 2, fp 1, fn 1; b: tp 2, fp 0, fn 1; c: tp 3, fp 0, fn 1; d: tp 0, fp 1, fn 0.
    assert.ok(Math.abs(m.perLabel.a.precision - 2 / 3) < 1e-12);
    assert.ok(Math.abs(m.perLabel.a.recall - 2 / 3) < 1e-12);
    assert.ok(Math.abs(m.perLabel.b.f1 - 0.8) < 1e-12);
    assert.ok(Math.abs(m.perLabel.c.f1 - 6 / 7) < 1e-12);
    assert.ok(Math.abs(m.perLabel.c.recall - 0.75) < 1e-12);
    assert.deepEqual(m.perLabel.d, { precision: 0, recall: 0, f1: 0, support: 0, threshold: 0.5 });
    assert.equal(m.perLabel.b.support, 3);
    assert.equal(m.perLabel.b.threshold, 0.3);
    // micro: 2·7 / (2·7 + 2 + 3) = 14/19; macro over all four labels, the absent d included (sklearn).
    assert.ok(Math.abs(m.microF1 - 0.7368421052631577) < 1e-12);
    assert.ok(Math.abs(m.macroF1 - 0.580952380952381) < 1e-12);
    assert.equal(m.n, 6);
  });

  it("gives zeros rather than NaN on empty inputs and rejects malformed ones", () => {
    const m = multilabelMetrics(new Uint8Array(0), new Uint8Array(0), 0, ["a"], [0.5]);
    assert.deepEqual([m.subsetAccuracy, m.microF1, m.macroF1, m.hammingLoss], [0, 0, 0, 0]);
    assert.throws(
      () => multilabelMetrics(Y, P.subarray(1), 6, labels, [0.5, 0.5, 0.5, 0.5]),
      (e: unknown) => e instanceof ValidationError && e.field === "pred",
    );
    const bad = Uint8Array.from(Y);
    bad[5] = 2;
    assert.throws(
      () => multilabelMetrics(bad, P, 6, labels, [0.5, 0.5, 0.5, 0.5]),
      (e: unknown) => e instanceof ValidationError && e.field === "Y" && /Y\[1, 1\]/.test(e.message),
    );
    assert.throws(() => multilabelMetrics(Y, P, 6, labels, [0.5]), ValidationError);
    assert.throws(
      () => multilabelMetrics(Y, P, 6, ["a", "a", "b", "c"], [0.5, 0.5, 0.5, 0.5]),
      ValidationError,
    );
  });
});

describe("bestF1Threshold", () => {
  it("picks the F1-maximizing cut between out-of-fold probabilities", () => {
    // Sorted descending: 0.9(1) 0.8(0) 0.4(1) 0.35(1) 0.3(0) 0.1(0); 3 positives.
    // Top 4 → tp 3: F1 = 6/7 beats top 1 (0.5), top 3 (0.8) and 0.5 itself (top 2: 0.4).
    const p = Float64Array.from([0.9, 0.8, 0.4, 0.35, 0.3, 0.1]);
    const y = [1, 0, 1, 1, 0, 0];
    const r = bestF1Threshold(p, y);
    assert.ok(Math.abs(r.threshold - 0.325) < 1e-15, `threshold ${r.threshold}`);
    assert.ok(Math.abs(r.f1 - 6 / 7) < 1e-15);
  });

  it("keeps 0.5 on a tie and otherwise the tied cut closest to 0.5", () => {
    // Every cut between 0.3 and 0.7 gives F1 = 1, 0.5 included.
    assert.equal(bestF1Threshold(Float64Array.from([0.9, 0.7, 0.3, 0.1]), [1, 1, 0, 0]).threshold, 0.5);
    // 2 positives, at the ends: top 1 (2·1/3) and top 4 (2·2/6) tie at F1 2/3, and 0.5 selects
    // top 1 too, so it wins. Shifted down (0.5 selects nothing, F1 0), the tied cuts are 0.25 and
    // 0.025; 0.25 is closer to 0.5.
    const up = bestF1Threshold(Float64Array.from([0.6, 0.45, 0.35, 0.05]), [1, 0, 0, 1]);
    assert.equal(up.threshold, 0.5);
    assert.ok(Math.abs(up.f1 - 2 / 3) < 1e-15);
    const down = bestF1Threshold(Float64Array.from([0.3, 0.2, 0.15, 0.05]), [1, 0, 0, 1]);
    assert.ok(Math.abs(down.threshold - 0.25) < 1e-15, `threshold ${down.threshold}`);
  });

  it("never separates equal probabilities and stays inside (0, 1)", () => {
    const p = Float64Array.from([1, 1, 0.5, 0.5, 0, 0]);
    const y = [1, 0, 1, 0, 1, 0];
    const r = bestF1Threshold(p, y);
    assert.ok(r.threshold > 0 && r.threshold < 1);
    // Whatever it picked, its F1 must be what thresholding actually gives.
    let tp = 0;
    let predicted = 0;
    for (let i = 0; i < 6; i++) {
      if (p[i] >= r.threshold) {
        predicted++;
        tp += y[i];
      }
    }
    assert.ok(Math.abs(r.f1 - (2 * tp) / (3 + predicted)) < 1e-15);
    // Adjacent doubles: the midpoint rounds onto one of them, and must not admit the lower one.
    const a = 0.3;
    const b = a + 2 ** -54;
    assert.ok(b > a);
    const t = bestF1Threshold(Float64Array.from([b, a]), [1, 0]);
    assert.equal(t.f1, 1);
    assert.ok(b >= t.threshold && a < t.threshold);
  });
});

describe("multilabel head", () => {
  it("recovers planted labels", async () => {
    const d = 8;
    const slopes = [6, 6, 6, 6];
    const offsets = [0, 1, -1, 0.5];
    const train = planted(1500, d, slopes, offsets, 1);
    const test = planted(2000, d, slopes, offsets, 2);
    const model = await multilabelKind.fit(
      train.X,
      1500,
      d,
      { task: "multilabel", Y: train.Y, k: 4 },
      params(),
      { seed: 3 },
    );
    assert.equal(model.converged, true);
    // Label c is driven by feature c alone: its own weight dominates the others.
    for (let c = 0; c < 4; c++) {
      for (let j = 0; j < d; j++) {
        if (j !== c)
          assert.ok(Math.abs(model.weights[c * d + j]) < 0.1 * model.weights[c * d + c], `w[${c}][${j}]`);
      }
    }
    const proba = await multilabelKind.predict(model, test.X, 2000);
    // The planted probabilities themselves are recovered...
    let mad = 0;
    const oracle = new Uint8Array(2000 * 4);
    for (let i = 0; i < 2000; i++) {
      for (let c = 0; c < 4; c++) {
        const truth = sigmoid(slopes[c] * (test.X[i * d + c] - 1) + offsets[c]);
        mad += Math.abs(proba[i * 4 + c] - truth);
        oracle[i * 4 + c] = truth >= 0.5 ? 1 : 0;
      }
    }
    assert.ok(mad / 8000 < 0.03, `mean |p - p_true| ${mad / 8000}`);
    // ...and the decisions are about as good as the Bayes rule's (label noise caps both near 0.09).
    const m = multilabelMetrics(
      test.Y,
      decideLabels(model, proba, 2000),
      2000,
      ["a", "b", "c", "d"],
      model.thresholds,
    );
    const best = multilabelMetrics(test.Y, oracle, 2000, ["a", "b", "c", "d"], [0.5, 0.5, 0.5, 0.5]);
    assert.ok(m.hammingLoss < best.hammingLoss + 0.015, `hamming ${m.hammingLoss} vs ${best.hammingLoss}`);
    assert.ok(m.microF1 > best.microF1 - 0.015, `microF1 ${m.microF1} vs ${best.microF1}`);
  });

  it("tunes thresholds below 0.5 for an imbalanced label and beats 0.5 on held-out F1", async () => {
    const d = 6;
    // Label 0 balanced and almost noise-free; label 1 rare (~8%) and noisy.
    const slopes = [8, 1.5];
    const offsets = [0, -3];
    const train = planted(3000, d, slopes, offsets, 11);
    const test = planted(20000, d, slopes, offsets, 12);
    let rate = 0;
    for (let i = 0; i < 3000; i++) rate += train.Y[i * 2 + 1];
    rate /= 3000;
    assert.ok(rate > 0.04 && rate < 0.15, `rate ${rate}`);
    const model = fitMultilabel(train.X, 3000, d, train.Y, 2, params(), 5);
    assert.deepEqual(model.thresholdSource, ["oof", "oof"]);
    assert.ok(model.thresholds[1] < 0.4, `rare-label threshold ${model.thresholds[1]}`);
    const proba = predictMultilabel(model, test.X, 20000);
    const tuned = decideLabels(model, proba, 20000);
    const at05 = decideLabels({ k: 2, thresholds: Float64Array.from([0.5, 0.5]) }, proba, 20000);
    const f1Tuned = labelF1(test.Y, tuned, 20000, 2, 1);
    const f1At05 = labelF1(test.Y, at05, 20000, 2, 1);
    assert.ok(f1Tuned > f1At05 + 0.05, `held-out F1 tuned ${f1Tuned} vs 0.5 ${f1At05}`);
    // The easy balanced label barely moves.
    assert.ok(Math.abs(model.thresholds[0] - 0.5) < 0.2, `threshold ${model.thresholds[0]}`);
  });

  it("gives all-0 and all-1 labels a constant model and says so; too-rare labels keep 0.5", () => {
    const n = 60;
    const d = 3;
    const rand = mulberry32(8);
    const X = Float32Array.from({ length: n * d }, () => gaussian(rand));
    const k = 4;
    const Y = new Uint8Array(n * k);
    for (let i = 0; i < n; i++) {
      Y[i * k] = X[i * d] > 0 ? 1 : 0; // ordinary
      Y[i * k + 1] = 0; // never
      Y[i * k + 2] = 1; // always
      Y[i * k + 3] = i === 7 || i === 30 ? 1 : 0; // 2 positives < 3 folds
    }
    const model = fitMultilabel(X, n, d, Y, k, params(), 1);
    assert.deepEqual(model.constantLabels, [1, 2]);
    assert.deepEqual(model.thresholdSource, ["oof", "default", "default", "default"]);
    assert.equal(model.thresholds[3], 0.5);
    assert.equal(model.notes.length, 3);
    assert.match(model.notes[0], /label 1: never present/);
    assert.match(model.notes[1], /label 2: always present/);
    assert.match(model.notes[2], /label 3: 2 positive/);
    for (let j = 0; j < d; j++) {
      assert.equal(model.weights[d + j], 0);
      assert.equal(model.weights[2 * d + j], 0);
    }
    const proba = predictMultilabel(model, X, n);
    const pred = decideLabels(model, proba, n);
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(proba[i * k + 1] - CONSTANT_LABEL_EPS) < 1e-12);
      assert.ok(Math.abs(proba[i * k + 2] - (1 - CONSTANT_LABEL_EPS)) < 1e-12);
      assert.equal(pred[i * k + 1], 0);
      assert.equal(pred[i * k + 2], 1);
    }
    for (const v of [...model.weights, ...model.bias, ...model.thresholds]) assert.ok(Number.isFinite(v));
  });

  it("agrees with scikit-learn 1.2.1 one-vs-rest LogisticRegression(C)", () => {
    // Reference computed once with /usr/bin/python3 (python3-sklearn 1.2.1):
    //   X = array(ML_X, float32).astype(float64).reshape(40, 3); sc = StandardScaler().fit(X)
    //   lr = LogisticRegression(C=C, tol=1e-12, max_iter=100000).fit(sc.transform(X), Y[:, c])
    //   W = lr.coef_[0] / sc.scale_; b = lr.intercept_[0] - W @ sc.mean_
    const X = Float32Array.from([
      2.62, -2.22, -0.26, -0.07, 0.73, -1.15, 2.74, -2.52, 0.16, 0.75, 1.92, -1.03, 0.68, -1.77, 0.57, -0.1,
      -1.34, -0.44, 1.04, 0.17, -0.55, 2.14, 0.8, 0.25, 1.9, -2.37, -0.06, 0.06, -1.54, 0.27, 0.31, -1.79,
      -0.34, 0.15, -2.34, -0.01, -0.12, -0.53, 0.83, 1.74, -1.38, -0.44, 0.25, 2.38, 0.03, 0.36, -0.62, 1.05,
      1.12, 0.23, 0.15, 0.65, -3.29, -0.17, 0.79, 0.17, 0.42, 1.93, -0.43, 0.44, 0.25, 1.51, 0.26, 0.7, -0.02,
      -0.04, 2.13, 2.04, 1.09, -0.4, -3.89, -0.25, 1.16, 0.75, 0.16, -1.02, -1.61, 0.41, 1.23, 0.52, -0.11,
      0.8, -0.63, 0.21, 1.2, -0.76, -0.34, 1.38, -0.76, 0.56, 2.2, -0.63, -0.19, 0.36, -0.15, 0.04, 0.66,
      -0.91, -0.31, 1.7, -1.89, 0.61, 1.4, 0.19, -0.55, 1.17, 0.48, -0.48, 0.73, -0.93, -0.69, 1.32, 0.69,
      -0.43, 1.35, -3.62, -0.02, -0.62, 1.24, 0.2,
    ]);
    const Y = Uint8Array.from([
      1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0,
      0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0,
      0, 0, 0, 0, 0, 0, 1, 1, 0, 1,
    ]);
    const ref = {
      0.3: {
        W: [1.0722702536, -0.3982764934, 0.0124495409, 0.0596705122, -0.0362631493, 2.4567302611],
        b: [-1.3238798447, 0.5862551733],
      },
      1: {
        W: [1.5781827774, -0.5957354639, -0.0282937736, 0.1095594471, -0.0546550937, 3.8007320224],
        b: [-1.8951414512, 0.6780847099],
      },
    };
    for (const [C, r] of Object.entries(ref)) {
      const m = fitMultilabel(X, 40, 3, Y, 2, params(Number(C)), 1);
      // fitLogReg stops at a gradient norm of 1e-4 (sklearn ran to 1e-12): agreement to ~1e-3.
      for (let t = 0; t < 6; t++) {
        assert.ok(Math.abs(m.weights[t] - r.W[t]) < 1e-3, `C=${C} W[${t}] ${m.weights[t]} vs ${r.W[t]}`);
      }
      for (let c = 0; c < 2; c++) {
        assert.ok(Math.abs(m.bias[c] - r.b[c]) < 1e-3, `C=${C} b[${c}] ${m.bias[c]} vs ${r.b[c]}`);
      }
    }
  });

  it("is deterministic given the seed", () => {
    const { X, Y } = planted(400, 4, [2, 1], [0, -2], 21);
    const a = fitMultilabel(X, 400, 4, Y, 2, params(), 9);
    const b = fitMultilabel(X, 400, 4, Y, 2, params(), 9);
    assert.deepEqual(multilabelToJson(a), multilabelToJson(b));
  });

  it("predicts stable sigmoids for huge logits", () => {
    assert.equal(sigmoid(1000), 1);
    assert.equal(sigmoid(-1000), 0);
    assert.ok(Math.abs(sigmoid(-30) - Math.exp(-30)) < 1e-25);
    assert.equal(sigmoid(0), 0.5);
    const model = fitMultilabel(
      Float32Array.from([0, 1, 2, 3]),
      4,
      1,
      Uint8Array.from([0, 0, 1, 1]),
      1,
      params(),
      1,
    );
    const p = predictMultilabel(model, Float32Array.from([1e30, -1e30]), 2);
    assert.deepEqual(Array.from(p), [1, 0]);
  });

  it("rejects NaN/Inf inputs and non-0/1 labels naming the field", async () => {
    const X = Float32Array.from([0, 1, 2, 3, 4, 5]);
    const Y = Uint8Array.from([0, 1, 1]);
    const bad = Float32Array.from(X);
    bad[3] = Number.NaN;
    await assert.rejects(
      multilabelKind.fit(bad, 3, 2, { task: "multilabel", Y, k: 1 }, params(), { seed: 1 }),
      (e: unknown) => e instanceof ValidationError && e.field === "X" && /X\[1, 1\] is NaN/.test(e.message),
    );
    bad[3] = Number.POSITIVE_INFINITY;
    assert.throws(
      () => fitMultilabel(bad, 3, 2, Y, 1, params(), 1),
      (e: unknown) => e instanceof ValidationError && e.field === "X" && /Infinity/.test(e.message),
    );
    assert.throws(
      () => fitMultilabel(X, 3, 2, Uint8Array.from([0, 2, 1]), 1, params(), 1),
      (e: unknown) => e instanceof ValidationError && e.field === "Y" && /Y\[1, 0\] = 2/.test(e.message),
    );
    assert.throws(() => fitMultilabel(X, 3, 2, Uint8Array.from([0, 1]), 1, params(), 1), ValidationError);
    await assert.rejects(
      multilabelKind.fit(X, 3, 2, { task: "regression", y: new Float64Array(3) }, params(), { seed: 1 }),
      (e: unknown) => e instanceof ValidationError && e.field === "task",
    );
  });

  it("exports ONNX that reproduces predict within 1e-5", async () => {
    const d = 5;
    const { X, Y } = planted(300, d, [3, 1, 0.5], [0, -1, 2], 31);
    const model = fitMultilabel(X, 300, d, Y, 3, params(), 2);
    // Random rows, plus edge cases: zeros, far outliers (saturated sigmoids), the training mean.
    const rand = mulberry32(32);
    const m = 40;
    const Q = Float32Array.from({ length: m * d }, () => 1 + 2 * gaussian(rand));
    for (let j = 0; j < d; j++) {
      Q[j] = 0;
      Q[d + j] = 1e4;
      Q[2 * d + j] = -1e4;
      Q[3 * d + j] = 1;
    }
    const want = predictMultilabel(model, Q, m);
    const got = await onnxHeadOutput(multilabelKind, model, Q, m, d, 3);
    assertClose(got, want, 1e-5, "onnx vs predict");
  });

  it("round-trips through JSON and rejects malformed payloads", async () => {
    const { X, Y } = planted(200, 4, [3, 1], [0, -2], 41);
    const model = fitMultilabel(X, 200, 4, Y, 2, params(0.5), 3);
    const text = JSON.stringify(multilabelKind.toJson(model));
    const back = multilabelKind.fromJson(JSON.parse(text));
    assert.deepEqual(multilabelToJson(back), multilabelToJson(model));
    assert.deepEqual(
      Array.from(await multilabelKind.predict(back, X, 200)),
      Array.from(await multilabelKind.predict(model, X, 200)),
    );
    const good = multilabelToJson(model);
    const cases: [unknown, string | undefined][] = [
      [null, undefined],
      [{ ...good, type: "logreg" }, "type"],
      [{ ...good, version: 2 }, "version"],
      [{ ...good, weights: good.weights.slice(1) }, "weights"],
      [{ ...good, bias: [0, "1"] }, "bias"],
      [{ ...good, thresholds: [0.5, 1] }, "thresholds"],
      [{ ...good, thresholdSource: ["oof"] }, "thresholdSource"],
      [{ ...good, constantLabels: [2] }, "constantLabels"],
      [{ ...good, C: 0 }, "C"],
      [{ ...good, folds: 1 }, "folds"],
      [{ ...good, notes: [1] }, "notes"],
    ];
    for (const [payload, field] of cases) {
      assert.throws(
        () => multilabelFromJson(payload),
        (e: unknown) => e instanceof ValidationError && e.field === field,
        JSON.stringify(field),
      );
    }
  });

  it("resolves params with defaults and rejects unknown or bad ones, naming them", () => {
    assert.deepEqual(multilabelKind.resolveParams({}, 100, 4), { C: 1, folds: 3 });
    assert.deepEqual(multilabelKind.resolveParams({ C: "0.5", folds: 5 }, 100, 4), { C: 0.5, folds: 5 });
    assert.throws(
      () => multilabelKind.resolveParams({ alpha: 1 }, 100, 4),
      (e: unknown) =>
        e instanceof ValidationError && e.field === "params.alpha" && /valid: C, folds/.test(e.message),
    );
    for (const [input, field] of [
      [{ C: 0 }, "params.C"],
      [{ C: "x" }, "params.C"],
      [{ folds: 1 }, "params.folds"],
      [{ folds: 2.5 }, "params.folds"],
    ] as const) {
      assert.throws(
        () => multilabelKind.resolveParams(input, 100, 4),
        (e: unknown) => e instanceof ValidationError && e.field === field,
      );
    }
    const grid = multilabelKind.grid(100, 4);
    assert.ok(grid.length >= 2 && grid.length <= 4);
    for (const p of grid) assert.deepEqual(multilabelKind.resolveParams(p, 100, 4), p);
    assert.equal(multilabelKind.type, "multilabel");
    assert.equal(multilabelKind.task, "multilabel");
  });
});
