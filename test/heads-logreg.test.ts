import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import { minimizeLbfgs } from "../shared/learn/lbfgs.ts";
import { makeFastLogRegObjective, makeLogRegObjective } from "../shared/learn/logistic-loss.ts";
import {
  fitLogReg,
  fitLogRegAsync,
  type LogRegModel,
  logRegFromJson,
  logRegToJson,
  predictLogReg,
  predictProbaLogReg,
  standardizationStats,
} from "../shared/learn/logreg.ts";
import { fitLogRegFolds } from "../shared/learn/logreg-folds.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { standardizeOnnx } from "../shared/learn/standardize.ts";
import { blobs } from "./helpers/heads.ts";

function accuracy(model: LogRegModel, X: Float32Array, y: Int32Array): number {
  const p = predictLogReg(model, X, y.length);
  let ok = 0;
  for (let i = 0; i < y.length; i++) if (p[i] === y[i]) ok++;
  return ok / y.length;
}

function weightNorm2(m: LogRegModel): number {
  // Norm in the standardized space, where the penalty applies.
  let s = 0;
  for (let c = 0; c < m.k; c++) for (let j = 0; j < m.d; j++) s += (m.weights[c * m.d + j] * m.scale[j]) ** 2;
  return s;
}

describe("logreg objective", () => {
  for (const weighted of [false, true]) {
    it(`matches central finite differences${weighted ? " with sample weights" : ""}`, () => {
      // n = 23 is not a multiple of 4, so both the blocked and the tail path are exercised.
      const n = 23;
      const d = 5;
      const k = 3;
      const rand = mulberry32(7);
      const Z = Float64Array.from({ length: n * d }, () => gaussian(rand));
      const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % k);
      const sw = weighted ? Float64Array.from({ length: n }, () => 0.2 + 2 * rand()) : undefined;
      const fg = makeLogRegObjective(Z, n, d, y, k, 0.3, sw);
      const theta = Float64Array.from({ length: k * d + k }, () => gaussian(rand));
      const grad = new Float64Array(theta.length);
      const f0 = fg(theta, grad);
      assert.ok(Number.isFinite(f0) && f0 > 0);
      const scratch = new Float64Array(theta.length);
      const h = 1e-5;
      for (let t = 0; t < theta.length; t++) {
        const keep = theta[t];
        theta[t] = keep + h;
        const fp = fg(theta, scratch);
        theta[t] = keep - h;
        const fm = fg(theta, scratch);
        theta[t] = keep;
        const fd = (fp - fm) / (2 * h);
        assert.ok(
          Math.abs(fd - grad[t]) <= 1e-7 * Math.max(1, Math.abs(grad[t])),
          `θ[${t}]: fd=${fd} g=${grad[t]}`,
        );
      }
    });
  }

  it("is stable for huge logits (no overflow, true loss of a confident miss)", () => {
    const Z = Float64Array.from([1000, -1000]);
    const y = Int32Array.from([0, 1]);
    const fg = makeLogRegObjective(Z, 2, 1, y, 2, 0);
    // Class 1 gets logit +x, class 0 gets 0: both rows are predicted wrong by a margin of 1000.
    const theta = Float64Array.from([0, 1, 0, 0]);
    const f = fg(theta, new Float64Array(4));
    assert.ok(Math.abs(f - 1000) < 1e-9, `f=${f}`);
  });
});

describe("SIMD kernel objectives", () => {
  // Float32 data (the kernels store Z as float32) with d = 5: rows are padded to 8 inside.
  const n = 23;
  const d = 5;
  function data(k: number, seed: number) {
    const rand = mulberry32(seed);
    const Z = Float32Array.from({ length: n * d }, () => gaussian(rand));
    const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % k);
    const sw = Float64Array.from({ length: n }, () => 0.2 + 2 * rand());
    return { Z, y, sw, rand };
  }

  for (const weighted of [false, true]) {
    it(`multinomial kernel objective equals the JS objective${weighted ? " with sample weights" : ""}`, () => {
      const k = 3;
      const { Z, y, sw, rand } = data(k, 3);
      const opts = weighted ? { sampleWeight: sw } : {};
      const fast = makeFastLogRegObjective(Z, n, d, y, k, 0.3, opts);
      assert.ok(fast, "WebAssembly SIMD is available on Node 20");
      const ref = makeLogRegObjective(Z, n, d, y, k, 0.3, weighted ? sw : undefined);
      const theta = Float64Array.from({ length: k * d + k }, () => gaussian(rand));
      const ga = new Float64Array(theta.length);
      const gb = new Float64Array(theta.length);
      const fa = fast(theta, ga);
      const fb = ref(theta, gb);
      assert.ok(Math.abs(fa - fb) <= 1e-12 * Math.abs(fb), `f ${fa} vs ${fb}`);
      for (let t = 0; t < theta.length; t++) assert.ok(Math.abs(ga[t] - gb[t]) <= 1e-12, `g[${t}]`);
    });

    it(`binomial kernel objective is the multinomial one on antisymmetric parameters${weighted ? " with sample weights" : ""}`, () => {
      const { Z, y, sw, rand } = data(2, 4);
      const opts = { binomial: true, ...(weighted ? { sampleWeight: sw } : {}) };
      const fb = makeFastLogRegObjective(Z, n, d, y, 2, 0.3, opts);
      assert.ok(fb);
      const ref = makeLogRegObjective(Z, n, d, y, 2, 0.3, weighted ? sw : undefined);
      const v = Float64Array.from({ length: d + 1 }, () => gaussian(rand));
      const theta = new Float64Array(2 * d + 2);
      for (let j = 0; j < d; j++) {
        theta[j] = -v[j] / 2;
        theta[d + j] = v[j] / 2;
      }
      theta[2 * d] = -v[d] / 2;
      theta[2 * d + 1] = v[d] / 2;
      const gv = new Float64Array(d + 1);
      const gt = new Float64Array(2 * d + 2);
      const f1 = fb(v, gv);
      const f2 = ref(theta, gt);
      assert.ok(Math.abs(f1 - f2) <= 1e-12 * Math.abs(f2), `f ${f1} vs ${f2}`);
      // ∂J/∂W[1] = ∂Jb/∂v = -∂J/∂W[0], and the same for the bias.
      for (let j = 0; j < d; j++) {
        assert.ok(Math.abs(gv[j] - gt[d + j]) <= 1e-12, `g[${j}]`);
        assert.ok(Math.abs(gv[j] + gt[j]) <= 1e-12, `g[${j}]`);
      }
      assert.ok(Math.abs(gv[d] - gt[2 * d + 1]) <= 1e-12);
      // And its own gradient matches central finite differences.
      const scratch = new Float64Array(d + 1);
      const h = 1e-5;
      for (let t = 0; t <= d; t++) {
        const keep = v[t];
        v[t] = keep + h;
        const fp = fb(v, scratch);
        v[t] = keep - h;
        const fm = fb(v, scratch);
        v[t] = keep;
        const fd = (fp - fm) / (2 * h);
        assert.ok(
          Math.abs(fd - gv[t]) <= 1e-7 * Math.max(1, Math.abs(gv[t])),
          `θ[${t}]: fd=${fd} g=${gv[t]}`,
        );
      }
    });
  }

  it("stays finite for huge logits in the binomial form", () => {
    const Z = Float32Array.from([1000, -1000]);
    const fb = makeFastLogRegObjective(Z, 2, 1, Int32Array.from([0, 1]), 2, 0, { binomial: true });
    assert.ok(fb);
    const g = new Float64Array(2);
    // Both rows wrong by a margin of 1000 (same case as the multinomial stability test).
    const f = fb(Float64Array.from([1, 0]), g);
    assert.ok(Math.abs(f - 1000) < 1e-9, `f=${f}`);
    assert.ok(Number.isFinite(g[0]) && Number.isFinite(g[1]));
  });

  it("k = 2 fits (binomial path) give the multinomial JS fit's probabilities", () => {
    for (const weighted of [false, true]) {
      const nn = 403; // not a multiple of 4
      const dd = 7; // padded to 8 in the kernels
      const { X, y } = blobs(nn, dd, 2, 0.7, 31);
      const rand = mulberry32(32);
      const sw = weighted ? Float64Array.from({ length: nn }, () => 0.5 + rand()) : undefined;
      const m = fitLogReg(X, nn, dd, y, 2, { tol: 1e-9, sampleWeight: sw });
      assert.equal(m.converged, true);
      // Reference: the plain-JS multinomial objective on the same standardized float32 copy.
      const Z = new Float32Array(nn * dd);
      for (let i = 0; i < nn; i++)
        for (let j = 0; j < dd; j++) Z[i * dd + j] = (X[i * dd + j] - m.mean[j]) * (1 / m.scale[j]);
      const total = sw ? sw.reduce((a, b) => a + b, 0) : nn;
      const fg = makeLogRegObjective(Z, nn, dd, y, 2, 1 / total, sw);
      const r = minimizeLbfgs(fg, new Float64Array(2 * dd + 2), { gtol: 1e-9, ftol: 0 });
      assert.ok(Math.abs(r.f - m.loss) <= 1e-12, `loss ${m.loss} vs ${r.f}`);
      const weights = new Float64Array(2 * dd);
      const bias = new Float64Array(2);
      for (let c = 0; c < 2; c++) {
        bias[c] = r.x[2 * dd + c];
        for (let j = 0; j < dd; j++) {
          weights[c * dd + j] = r.x[c * dd + j] / m.scale[j];
          bias[c] -= weights[c * dd + j] * m.mean[j];
        }
      }
      const pa = predictProbaLogReg(m, X, nn);
      const pb = predictProbaLogReg({ d: dd, k: 2, weights, bias }, X, nn);
      for (let t = 0; t < pa.length; t++)
        assert.ok(Math.abs(pa[t] - pb[t]) < 1e-7, `p[${t}] ${pa[t]} vs ${pb[t]}`);
      assert.deepEqual(predictLogReg(m, X, nn), predictLogReg({ d: dd, k: 2, weights, bias }, X, nn));
    }
  });
});

describe("fitLogReg", () => {
  it("separates linearly separable 2D data perfectly", () => {
    const n = 40;
    const X = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const t = i / n;
      y[i] = i % 2;
      X[2 * i] = Math.cos(7 * t) * 2;
      X[2 * i + 1] = y[i] === 1 ? 1 + t : -1 - t;
    }
    const m = fitLogReg(X, n, 2, y, 2, { l2: 1e-4 });
    assert.equal(m.converged, true);
    assert.equal(accuracy(m, X, y), 1);
  });

  it("fits 3-class Gaussian blobs accurately with rows of probabilities summing to 1", () => {
    const { X, y } = blobs(600, 8, 3, 2.5, 11);
    const m = fitLogReg(X, 600, 8, y, 3);
    assert.equal(m.converged, true);
    assert.ok(accuracy(m, X, y) >= 0.95, `accuracy ${accuracy(m, X, y)}`);
    // Different centers (seed 12): rows far from the training data still give normalized rows.
    const other = blobs(300, 8, 3, 6, 12);
    const p = predictProbaLogReg(m, other.X, 300);
    for (let i = 0; i < 300; i++) {
      const s = p[3 * i] + p[3 * i + 1] + p[3 * i + 2];
      assert.ok(Math.abs(s - 1) <= 1e-12, `row ${i} sums to ${s}`);
      for (let c = 0; c < 3; c++) assert.ok(p[3 * i + c] >= 0 && p[3 * i + c] <= 1);
    }
  });

  it("is deterministic", () => {
    const { X, y } = blobs(203, 6, 4, 1.5, 3);
    const a = fitLogReg(X, 203, 6, y, 4);
    const b = fitLogReg(X, 203, 6, y, 4);
    assert.deepEqual(Array.from(a.weights), Array.from(b.weights));
    assert.deepEqual(Array.from(a.bias), Array.from(b.bias));
    assert.equal(a.iterations, b.iterations);
  });

  it("warm-started from a model of overlapping rows, reaches the same optimum in fewer iterations", async () => {
    for (const k of [2, 4]) {
      const { X, y } = blobs(2500, 10, k, 0.9, 21 + k);
      const full = fitLogReg(X, 2500, 10, y, k);
      // A fold: the first 2,000 rows, as cross-validation fits it, cold and from the full model.
      const Xf = X.subarray(0, 2000 * 10);
      const yf = y.subarray(0, 2000);
      for (const engine of ["wasm", "onnx"] as const) {
        const cold = await fitLogRegAsync(Xf, 2000, 10, yf, k, { engine });
        const warm = await fitLogRegAsync(Xf, 2000, 10, yf, k, { engine, init: full });
        assert.equal(warm.converged, true, `${engine} k=${k}`);
        assert.ok(
          warm.iterations < cold.iterations,
          `${engine} k=${k}: ${warm.iterations} vs ${cold.iterations}`,
        );
        assert.ok(Math.abs(warm.loss - cold.loss) < 1e-6 * Math.max(1, cold.loss), `${engine} k=${k} loss`);
        const pc = predictProbaLogReg(cold, X, 2500);
        const pw = predictProbaLogReg(warm, X, 2500);
        let worst = 0;
        for (let t = 0; t < pc.length; t++) worst = Math.max(worst, Math.abs(pc[t] - pw[t]));
        assert.ok(worst < 1e-2, `${engine} k=${k}: max probability difference ${worst}`);
      }
    }
  });

  it("fits cross-validation folds together as each would be fitted alone", async () => {
    const n = 3000;
    const { X, y } = blobs(n, 12, 4, 0.8, 9);
    const foldOf = Int32Array.from({ length: n }, (_, i) => (i * 7) % 3);
    const rows = [0, 1, 2].map((f) =>
      Int32Array.from(Array.from({ length: n }, (_, i) => i).filter((i) => foldOf[i] !== f)),
    );
    // Fold 1 weighs class 0 three times, as balanced class weights or feedback weights would.
    const weights = rows.map((r, f) =>
      f === 1 ? Float64Array.from(r, (i) => (y[i] === 0 ? 3 : 1)) : undefined,
    );
    const full = fitLogReg(X, n, 12, y, 4);
    const joint = await fitLogRegFolds(
      X,
      n,
      12,
      y,
      4,
      rows.map((r, f) => ({
        rows: r,
        l2: 1 / r.length,
        ...(weights[f] ? { sampleWeight: weights[f] } : {}),
      })),
      { init: full },
    );
    rows.forEach((r, f) => {
      const Xf = rowsOf(X, 12, r);
      const sw = weights[f];
      const alone = fitLogReg(
        Xf,
        r.length,
        12,
        Int32Array.from(r, (i) => y[i]),
        4,
        {
          l2: 1 / r.length,
          tol: 1e-7,
          ...(sw ? { sampleWeight: sw } : {}),
        },
      );
      assert.equal(joint[f].converged, true, `fold ${f}`);
      // Held-out rows, scored by the fold's two models: the same probabilities to solver tolerance.
      const held = Array.from({ length: n }, (_, i) => i).filter((i) => foldOf[i] === f);
      const Xh = rowsOf(X, 12, held);
      const pa = predictProbaLogReg(alone, Xh, held.length);
      const pj = predictProbaLogReg(joint[f], Xh, held.length);
      let worst = 0;
      for (let t = 0; t < pa.length; t++) worst = Math.max(worst, Math.abs(pa[t] - pj[t]));
      assert.ok(worst < 2e-2, `fold ${f}: max probability difference ${worst}`);
      // (Not the loss: the joint fit standardizes by all rows, so its L2 term differs by the scale ratio.)
      const [da, dj] = [predictLogReg(alone, Xh, held.length), predictLogReg(joint[f], Xh, held.length)];
      assert.ok(da.filter((c, i) => c === dj[i]).length >= 0.995 * held.length, `fold ${f} decisions`);
    });
  });

  it("refuses a starting model of another shape, naming init", () => {
    const { X, y } = blobs(100, 4, 3, 2, 1);
    const other = fitLogReg(X.subarray(0, 100 * 3), 100, 3, y, 3);
    assert.throws(() => fitLogReg(X, 100, 4, y, 3, { init: other }), /init is 3×3, the fit 3×4/);
  });

  it("handles zero-variance features without NaN and gives them zero weight", () => {
    const n = 50;
    const d = 3;
    const X = new Float32Array(n * d);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      X[i * d] = 0.1; // constant, and not exactly representable: mean(x) may differ from x by an ulp
      X[i * d + 1] = 3 * y[i] + Math.sin(i);
      X[i * d + 2] = 0;
    }
    const m = fitLogReg(X, n, d, y, 2);
    for (const v of [...m.weights, ...m.bias, ...m.scale, m.loss]) assert.ok(Number.isFinite(v));
    assert.equal(m.scale[0], 1);
    assert.equal(m.scale[2], 1);
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(m.weights[c * d]) < 1e-12);
      assert.equal(m.weights[c * d + 2], 0);
    }
    assert.equal(accuracy(m, X, y), 1);
  });

  it("shrinks the weights as l2 grows", () => {
    const { X, y } = blobs(300, 5, 3, 1, 5);
    const norms = [1e-4, 1e-2, 1].map((l2) => weightNorm2(fitLogReg(X, 300, 5, y, 3, { l2 })));
    assert.ok(norms[0] > norms[1] && norms[1] > norms[2], `norms ${norms}`);
    assert.ok(norms[2] < 0.1 * norms[0]);
  });

  it("treats sample weight 2 like a duplicated row", () => {
    const { X, y } = blobs(61, 3, 2, 1, 9);
    const Z = Float64Array.from(X);
    const sw = new Float64Array(60).fill(1);
    sw[0] = 2;
    // Weighted objective on 60 rows vs. unweighted on 60 rows + a copy of row 0 (the 61st row).
    Z.set(Z.subarray(0, 3), 60 * 3);
    const yd = Int32Array.from(y);
    yd[60] = y[0];
    const weighted = makeLogRegObjective(Z.subarray(0, 180), 60, 3, y.subarray(0, 60), 2, 0.05, sw);
    const duplicated = makeLogRegObjective(Z, 61, 3, yd, 2, 0.05);
    const theta = Float64Array.from([0.3, -0.2, 0.5, -0.1, 0.4, 0.2, 0.1, -0.1]);
    const ga = new Float64Array(8);
    const gb = new Float64Array(8);
    assert.ok(Math.abs(weighted(theta, ga) - duplicated(theta, gb)) < 1e-12);
    for (let t = 0; t < 8; t++) assert.ok(Math.abs(ga[t] - gb[t]) < 1e-12, `g[${t}]`);
    const m = fitLogReg(X.subarray(0, 180), 60, 3, y.subarray(0, 60), 2, { sampleWeight: sw });
    assert.equal(m.converged, true);
    assert.throws(
      () =>
        fitLogReg(X.subarray(0, 180), 60, 3, y.subarray(0, 60), 2, { sampleWeight: new Float64Array(60) }),
      ValidationError,
    );
  });

  it("validates its inputs", () => {
    const X = new Float32Array(6);
    assert.throws(() => fitLogReg(X, 3, 2, Int32Array.from([0, 1, 2]), 2), ValidationError);
    assert.throws(() => fitLogReg(X, 3, 3, Int32Array.from([0, 1, 0]), 2), ValidationError);
    assert.throws(() => fitLogReg(X, 3, 2, Int32Array.from([0, 1, 0]), 1), ValidationError);
    assert.throws(() => fitLogReg(X, 3, 2, Int32Array.from([0, 1, 0]), 2, { l2: -1 }), ValidationError);
    const bad = Float32Array.from([0, 1, Number.NaN, 2, 3, 4]);
    assert.throws(() => fitLogReg(bad, 3, 2, Int32Array.from([0, 1, 0]), 2), ValidationError);
  });
});

describe("agreement with scikit-learn 1.2.1", () => {
  // Fixed dataset, reproduced in Python by:
  //   i = arange(n)[:, None]; j = arange(d)[None, :]; y = arange(n) % k
  //   X = (sin(1.3*i + 0.7*j*j + 0.5)*(j+1) + 0.8*cos(y[:, None]*(j+1.0)) + 3.0).astype(float32).astype(float64)
  // Reference computed once with /usr/bin/python3 (python3-sklearn 1.2.1, Debian 12):
  //   sc = StandardScaler().fit(X); Z = sc.transform(X)
  //   lr = LogisticRegression(C=C', tol=1e-12, max_iter=100000, multi_class=...).fit(Z, y)
  //   W = lr.coef_ / sc.scale_; b = lr.intercept_ - W @ sc.mean_      (rounded to 10 decimals)
  // with C' = C, multinomial for k = 3, and C' = 2C (binomial, the k = 2 equivalence) for k = 2.
  function refData(n: number, d: number, k: number) {
    const X = new Float32Array(n * d);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % k;
      for (let j = 0; j < d; j++) {
        X[i * d + j] = Math.sin(1.3 * i + 0.7 * j * j + 0.5) * (j + 1) + 0.8 * Math.cos(y[i] * (j + 1)) + 3;
      }
    }
    return { X, y };
  }

  it("3 classes, C = 1: same weights and biases in input space", () => {
    const { X, y } = refData(30, 3, 3);
    const m = fitLogReg(X, 30, 3, y, 3, { l2: 1 / (1 * 30), tol: 1e-10 });
    const W = [
      [1.8795258526, 0.0036677688, 0.6124341576],
      [0.0896172232, -0.270323659, -0.2358698347],
      [-1.9691430759, 0.2666558902, -0.3765643229],
    ];
    const b = [-8.3424033294, 1.4231101264, 6.919293203];
    for (let c = 0; c < 3; c++) {
      for (let j = 0; j < 3; j++) {
        assert.ok(Math.abs(m.weights[c * 3 + j] - W[c][j]) < 1e-4, `W[${c}][${j}]=${m.weights[c * 3 + j]}`);
      }
      assert.ok(Math.abs(m.bias[c] - b[c]) < 1e-4, `b[${c}]=${m.bias[c]}`);
    }
    const p = predictProbaLogReg(m, X.subarray(0, 6), 2);
    const pRef = [0.8674290471, 0.0897700303, 0.0428009226, 0.1546926097, 0.6769123348, 0.1683950555];
    for (let t = 0; t < 6; t++) assert.ok(Math.abs(p[t] - pRef[t]) < 1e-5, `p[${t}]=${p[t]}`);
    assert.ok(Math.abs(accuracy(m, X, y) - 0.8333333333333334) < 1e-12);
  });

  it("2 classes, C = 0.5: W[1] - W[0] equals sklearn's binomial coef at C' = 2C", () => {
    const { X, y } = refData(40, 4, 2);
    const m = fitLogReg(X, 40, 4, y, 2, { l2: 1 / (0.5 * 40), tol: 1e-10 });
    const coef = [-1.8408458511, 0.0567598601, -1.0854726042, -0.3610566772];
    for (let j = 0; j < 4; j++) {
      const w = m.weights[4 + j] - m.weights[j];
      assert.ok(Math.abs(w - coef[j]) < 1e-4, `coef[${j}]=${w}`);
      assert.ok(Math.abs(m.weights[4 + j] + m.weights[j]) < 1e-8, "the two rows are antisymmetric");
    }
    assert.ok(Math.abs(m.bias[1] - m.bias[0] - 10.8816807455) < 1e-4, `intercept=${m.bias[1] - m.bias[0]}`);
  });
});

describe("logreg JSON", () => {
  it("round-trips through JSON text and predicts identically", () => {
    const { X, y } = blobs(120, 4, 3, 2, 21);
    const m = fitLogReg(X, 120, 4, y, 3);
    const text = JSON.stringify(logRegToJson(m));
    const back = logRegFromJson(JSON.parse(text));
    assert.deepEqual(Array.from(back.weights), Array.from(m.weights));
    assert.deepEqual(Array.from(back.bias), Array.from(m.bias));
    assert.deepEqual(Array.from(back.mean), Array.from(m.mean));
    assert.equal(back.converged, m.converged);
    assert.deepEqual(Array.from(predictProbaLogReg(back, X, 120)), Array.from(predictProbaLogReg(m, X, 120)));
    assert.deepEqual(logRegToJson(logRegFromJson(text)), logRegToJson(m));
  });

  it("rejects malformed payloads", () => {
    const good = logRegToJson(
      fitLogReg(Float32Array.from([0, 1, 2, 3]), 4, 1, Int32Array.from([0, 0, 1, 1]), 2),
    );
    assert.doesNotThrow(() => logRegFromJson(good));
    const cases: unknown[] = [
      null,
      { ...good, type: "mlp" },
      { ...good, version: 2 },
      { ...good, weights: good.weights.slice(1) },
      { ...good, bias: [0, "1"] },
      { ...good, k: 1 },
      { ...good, loss: null },
    ];
    for (const c of cases) assert.throws(() => logRegFromJson(c), ValidationError, JSON.stringify(c));
  });
});

describe("onnxruntime engine", () => {
  it("standardizes like the float64 reference, flagging constant features and non-finite cells", async () => {
    const { X } = blobs(20000, 7, 3, 2, 11);
    for (let i = 0; i < 20000; i++) {
      X[i * 7 + 2] = 1e4 + 0.5 * X[i * 7 + 2]; // a large offset: cancellation would show here
      X[i * 7 + 5] = 0.1; // constant
    }
    const ref = standardizationStats(X, 20000, 7);
    const got = await standardizeOnnx(X, 20000, 7);
    for (let j = 0; j < 7; j++) {
      assert.ok(
        Math.abs(got.mean[j] - ref.mean[j]) <= 1e-6 * Math.max(1, Math.abs(ref.mean[j])),
        `mean ${j}`,
      );
      assert.ok(
        Math.abs(got.scale[j] / ref.scale[j] - 1) < 1e-6,
        `scale ${j}: ${got.scale[j]} vs ${ref.scale[j]}`,
      );
    }
    assert.equal(got.scale[5], 1);
    const z = got.Z[3 * 7 + 2];
    const expected = (X[3 * 7 + 2] - got.mean[2]) * got.invScale[2];
    assert.ok(Math.abs(z - expected) < 1e-5);
    X[123 * 7 + 4] = Number.NaN;
    await assert.rejects(standardizeOnnx(X, 20000, 7), /X\[123, 4\] is not finite/);
  });

  it("fits the same multinomial model as the float64 engines (class weights included)", async () => {
    const { X, y } = blobs(3000, 12, 4, 0.8, 5);
    const sampleWeight = Float64Array.from(y, (c) => (c === 0 ? 3 : 1));
    for (const opts of [{ l2: 1 / 3000 }, { l2: 1e-2, sampleWeight }]) {
      const ref = fitLogReg(X, 3000, 12, y, 4, { ...opts, tol: 1e-7 });
      // Default tolerance: float32 gradients cannot certify 1e-7, and need not.
      const got = await fitLogRegAsync(X, 3000, 12, y, 4, { ...opts, engine: "onnx" });
      assert.equal(got.converged, true);
      const pr = predictProbaLogReg(ref, X, 3000);
      const pg = predictProbaLogReg(got, X, 3000);
      let worst = 0;
      for (let t = 0; t < pr.length; t++) worst = Math.max(worst, Math.abs(pr[t] - pg[t]));
      // Stopping at the default gradient tolerance leaves the objective within ~1e-6 of the optimum;
      // the probabilities then differ by well under a percent, and the decisions agree.
      assert.ok(worst < 2e-2, `max probability difference ${worst}`);
      assert.ok(got.loss - ref.loss < 1e-5 * Math.max(1, ref.loss), `${got.loss} vs ${ref.loss}`);
      const ar = predictLogReg(ref, X, 3000);
      const ag = predictLogReg(got, X, 3000);
      let same = 0;
      for (let i = 0; i < 3000; i++) if (ar[i] === ag[i]) same++;
      assert.ok(same >= 0.995 * 3000, `${same} of 3000 decisions agree`);
    }
  });

  it("auto keeps small and binary problems on the float64 path", async () => {
    const { X, y } = blobs(200, 5, 2, 1, 1);
    const a = await fitLogRegAsync(X, 200, 5, y, 2);
    const b = fitLogReg(X, 200, 5, y, 2);
    assert.deepEqual(Array.from(a.weights), Array.from(b.weights));
  });
});

function rowsOf(X: Float32Array, d: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let t = 0; t < rows.length; t++) out.set(X.subarray(rows[t] * d, rows[t] * d + d), t * d);
  return out;
}
