import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import { RegressionMetrics } from "../shared/heads/version.ts";
import {
  choleskySolve,
  fitRidge,
  predictRidge,
  type RidgeModel,
  ridgeFromJson,
  ridgeGram,
  ridgeKind,
  ridgeToJson,
} from "../shared/learn/ridge.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { regressionMetrics } from "../shared/learn/task-metrics.ts";
import { assertClose, onnxHeadOutput } from "./helpers/heads.ts";

/** Features with different means and scales; y linear in them plus noise. */
function linearData(n: number, d: number, seed: number, noise = 0.3) {
  const rand = mulberry32(seed);
  const X = new Float32Array(n * d);
  const y = new Float64Array(n);
  const w = Array.from({ length: d }, () => gaussian(rand));
  for (let i = 0; i < n; i++) {
    let s = 0.7;
    for (let j = 0; j < d; j++) {
      const v = (j % 3) - 1 + (1 + (j % 4)) * gaussian(rand);
      X[i * d + j] = v;
      s += w[j] * v;
    }
    y[i] = s + noise * gaussian(rand);
  }
  return { X, y };
}

/** Dense Gaussian elimination with partial pivoting (no symmetry assumed), float64. */
function gaussSolve(A: number[][], b: number[]): number[] {
  const m = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < m; col++) {
    let piv = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(M[r][col]) > Math.abs(M[piv][col])) piv = r;
    [M[col], M[piv]] = [M[piv], M[col]];
    for (let r = col + 1; r < m; r++) {
      const f = M[r][col] / M[col][col];
      for (let c = col; c <= m; c++) M[r][c] -= f * M[col][c];
    }
  }
  const x = new Array<number>(m).fill(0);
  for (let r = m - 1; r >= 0; r--) {
    let s = M[r][m];
    for (let c = r + 1; c < m; c++) s -= M[r][c] * x[c];
    x[r] = s / M[r][r];
  }
  return x;
}

/**
 * The same estimator derived independently in RAW input space: minimize
 * ||y - X w - b||² + α Σ_j scale_j² w_j² (the standardized penalty, rewritten), whose normal equations
 * with an unpenalized intercept are [XᵀX + α S², Xᵀ1; 1ᵀX, n] [w; b] = [Xᵀy; 1ᵀy].
 */
function normalEquations(X: Float32Array, n: number, d: number, y: Float64Array, alpha: number) {
  const scale2 = new Array<number>(d).fill(0);
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += X[i * d + j];
    mean /= n;
    for (let i = 0; i < n; i++) scale2[j] += (X[i * d + j] - mean) ** 2;
    scale2[j] /= n;
  }
  const A = Array.from({ length: d + 1 }, () => new Array<number>(d + 1).fill(0));
  const b = new Array<number>(d + 1).fill(0);
  for (let i = 0; i < n; i++) {
    const row = [...Array.from(X.subarray(i * d, i * d + d)), 1];
    for (let a = 0; a <= d; a++) {
      b[a] += row[a] * y[i];
      for (let c = 0; c <= d; c++) A[a][c] += row[a] * row[c];
    }
  }
  for (let j = 0; j < d; j++) A[j][j] += alpha * scale2[j];
  const x = gaussSolve(A, b);
  return { w: x.slice(0, d), b: x[d] };
}

function stdNorm2(m: RidgeModel): number {
  let s = 0;
  for (let j = 0; j < m.d; j++) s += (m.weights[j] * m.scale[j]) ** 2;
  return s;
}

const isValidation = (field: string, re?: RegExp) => (e: unknown) =>
  e instanceof ValidationError && e.field === field && (re === undefined || re.test(e.message));

describe("regression metrics", () => {
  it("matches hand-computed (and scikit-learn 1.2.1) values", () => {
    const yt = Float64Array.from([3, -0.5, 2, 7, 4.2]);
    const yp = Float64Array.from([2.5, 0, 2, 8, 3.9]);
    const m = regressionMetrics(yt, yp);
    assert.doesNotThrow(() => RegressionMetrics.parse(m));
    // Errors 0.5, -0.5, 0, -1, 0.3: SSE 1.59; mean(y) 3.14, SST 30.592.
    assert.ok(Math.abs(m.rmse - Math.sqrt(1.59 / 5)) < 1e-12);
    assert.ok(Math.abs(m.rmse - 0.5639148871948674) < 1e-12);
    assert.ok(Math.abs(m.mae - 0.46) < 1e-12);
    assert.ok(Math.abs(m.r2 - (1 - 1.59 / 30.592)) < 1e-12);
    assert.ok(Math.abs(m.r2 - 0.9480256276150627) < 1e-12);
    assert.equal(m.n, 5);
  });

  it("scores a constant target like sklearn's r2_score (1 if exact, else 0)", () => {
    // 0.1 is not exactly representable: its computed mean can be an ulp off, which must not matter.
    const yt = Float64Array.from([0.1, 0.1, 0.1]);
    assert.equal(regressionMetrics(yt, Float64Array.from(yt)).r2, 1);
    const off = regressionMetrics(yt, Float64Array.from([0.1, 0.2, 0.1]));
    assert.equal(off.r2, 0);
    assert.ok(Math.abs(off.mae - 0.1 / 3) < 1e-12);
    // A prediction worse than the mean is negative, as usual.
    assert.ok(regressionMetrics(Float64Array.from([1, 2, 3]), Float64Array.from([3, 2, 1])).r2 < 0);
  });

  it("rejects empty, mismatched and non-finite inputs", () => {
    assert.throws(() => regressionMetrics(new Float64Array(0), new Float64Array(0)), ValidationError);
    assert.throws(() => regressionMetrics(new Float64Array(2), new Float64Array(3)), isValidation("yPred"));
    assert.throws(
      () => regressionMetrics(Float64Array.from([1, Number.NaN]), new Float64Array(2)),
      isValidation("yTrue", /yTrue\[1\]/),
    );
    assert.throws(
      () => regressionMetrics(new Float64Array(2), Float64Array.from([Number.POSITIVE_INFINITY, 0])),
      isValidation("yPred", /yPred\[0\]/),
    );
  });
});

describe("choleskySolve", () => {
  it("solves a known SPD system and rejects a singular one", () => {
    // A = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], x = [1, -2, 3] → b = A x.
    const A = Float64Array.from([4, 2, 0, 2, 5, 1, 0, 1, 3]);
    const x = choleskySolve(A, Float64Array.from([0, -5, 7]), 3);
    assert.deepEqual(
      Array.from(x, (v) => Math.round(v * 1e12) / 1e12),
      [1, -2, 3],
    );
    assert.throws(
      () => choleskySolve(Float64Array.from([1, 1, 1, 1]), Float64Array.from([1, 1]), 2),
      isValidation("params.alpha", /feature 1/),
    );
  });
});

describe("ridge head", () => {
  const RX = [
    1.764, 5.8, 1.25, 2.5, 1.868, 3.045, 1.473, 2.5, -0.103, 5.821, -0.172, 2.5, 0.761, 5.243, 0.647, 2.5,
    1.494, 4.59, 1.144, 2.5, -2.553, 6.307, -2.16, 2.5, 2.27, 2.091, 1.813, 2.5, 1.533, 7.939, 1.269, 2.5,
    -0.888, 1.038, -0.704, 2.5, 1.23, 7.405, 1.014, 2.5, -1.049, 2.16, -0.903, 2.5, -0.51, 4.124, -0.444, 2.5,
  ];
  const RY = [-1.248, 0.899, -4.092, -2.574, -0.637, -8.025, 1.915, -2.865, -1.94, -3.028, -2.64, -3.326];

  it("matches scikit-learn 1.2.1 StandardScaler + Ridge(alpha) within 1e-6", async () => {
    // Reference computed once with /usr/bin/python3 (python3-sklearn 1.2.1):
    //   X = array(RX, float32).astype(float64).reshape(12, 4); sc = StandardScaler().fit(X)
    //   r = Ridge(alpha=a, solver="cholesky").fit(sc.transform(X), RY)
    //   W = r.coef_ / sc.scale_; b = r.intercept_ - W @ sc.mean_
    // Column 3 is constant, column 2 nearly collinear with column 0.
    const ref: Record<string, { W: number[]; b: number }> = {
      0.1: { W: [0.834850253925, -0.674455417132, 0.780776002494, 0], b: 0.146425251555 },
      1: { W: [0.714702713496, -0.623536667418, 0.853875681925, 0], b: -0.056849137033 },
      10: { W: [0.503433705662, -0.352612232636, 0.617976225843, 0], b: -1.125788792713 },
    };
    const X = Float32Array.from(RX);
    for (const [alpha, r] of Object.entries(ref)) {
      const m = await ridgeKind.fit(
        X,
        12,
        4,
        { task: "regression", y: Float64Array.from(RY) },
        { alpha: Number(alpha) },
        { seed: 1 },
      );
      for (let j = 0; j < 4; j++) {
        assert.ok(
          Math.abs(m.weights[j] - r.W[j]) < 1e-6,
          `alpha ${alpha} W[${j}] ${m.weights[j]} vs ${r.W[j]}`,
        );
      }
      assert.ok(Math.abs(m.bias - r.b) < 1e-6, `alpha ${alpha} b ${m.bias} vs ${r.b}`);
      assert.equal(m.weights[3], 0, "a constant feature gets exactly zero weight");
      assert.equal(m.scale[3], 1);
    }
  });

  it("matches scikit-learn with more features than rows (d = 8 > n = 5)", async () => {
    const X = Float32Array.from([
      1.139, -1.235, 0.402, -0.685, -0.871, -0.579, -0.312, 0.056, -1.165, 0.901, 0.466, -1.536, 1.488, 1.896,
      // biome-ignore lint/suspicious/noApproximativeNumericConstant: 0.707 is a random sample, not √½.
      1.179, -0.18, -1.071, 1.054, -0.403, 1.222, 0.208, 0.977, 0.356, 0.707, 0.011, 1.786, 0.127, 0.402,
      1.883, -1.348, -1.27, 0.969, -1.173, 1.944, -0.414, -0.747, 1.923, 1.481, 1.868, 0.906,
    ]);
    const y = Float64Array.from([-0.861, 1.91, -0.268, 0.802, 0.947]);
    const W = [
      -0.26077915926, 0.247823710578, 0.718936897399, -0.194947198153, 0.379717615254, 0.072391826255,
      -0.029370096367, -0.266580298223,
    ];
    const m = await fitRidge(X, 5, 8, y, 1);
    for (let j = 0; j < 8; j++) assert.ok(Math.abs(m.weights[j] - W[j]) < 1e-6, `W[${j}] ${m.weights[j]}`);
    assert.ok(Math.abs(m.bias - -0.155465066971) < 1e-6, `b ${m.bias}`);
  });

  for (const engine of ["js", "ort"] as const) {
    it(`matches the raw-space normal equations solved independently (${engine} Gram)`, async () => {
      const n = 300;
      const d = 12;
      const { X, y } = linearData(n, d, 5);
      for (const alpha of [0, 0.5, 40]) {
        const m = await fitRidge(X, n, d, y, alpha, { engine });
        const ref = normalEquations(X, n, d, y, alpha);
        for (let j = 0; j < d; j++) {
          assert.ok(
            Math.abs(m.weights[j] - ref.w[j]) <= 1e-9 * Math.max(1, Math.abs(ref.w[j])),
            `alpha ${alpha} w[${j}] ${m.weights[j]} vs ${ref.w[j]}`,
          );
        }
        assert.ok(Math.abs(m.bias - ref.b) <= 1e-9 * Math.max(1, Math.abs(ref.b)), `alpha ${alpha} b`);
      }
    });
  }

  it("computes the same Gram matrix in onnxruntime as in JS, across row chunks", async () => {
    // 20000 rows span three 8192-row chunks, so later chunks are fed at a byte offset.
    const n = 20000;
    const d = 8;
    const { X, y } = linearData(n, d, 6);
    const mean = Float64Array.from({ length: d }, (_, j) => (j % 3) - 1);
    const invScale = Float64Array.from({ length: d }, (_, j) => 1 / (1 + (j % 4)));
    const js = await ridgeGram(X, n, d, mean, invScale, y, "js");
    const ort = await ridgeGram(X, n, d, mean, invScale, y, "ort");
    for (let t = 0; t < d * d; t++) {
      assert.ok(
        Math.abs(js.G[t] - ort.G[t]) <= 1e-10 * Math.abs(js.G[t]) + 1e-8,
        `G[${t}] ${js.G[t]} vs ${ort.G[t]}`,
      );
    }
    for (let j = 0; j < d; j++) {
      assert.ok(Math.abs(js.Zty[j] - ort.Zty[j]) <= 1e-10 * Math.abs(js.Zty[j]) + 1e-8, `Zty[${j}]`);
    }
    // Spot-check one entry against a direct sum.
    let g01 = 0;
    for (let i = 0; i < n; i++)
      g01 += (X[i * d] - mean[0]) * invScale[0] * (X[i * d + 1] - mean[1]) * invScale[1];
    assert.ok(Math.abs(js.G[1] - g01) <= 1e-10 * Math.abs(g01));
    assert.equal(js.G[1], js.G[d]);
  });

  it("shrinks the weights as alpha grows", async () => {
    const { X, y } = linearData(200, 6, 7);
    const norms: number[] = [];
    for (const alpha of [0, 1, 10, 100, 1e4]) norms.push(stdNorm2(await fitRidge(X, 200, 6, y, alpha)));
    for (let t = 1; t < norms.length; t++) assert.ok(norms[t] < norms[t - 1], `norms ${norms}`);
    assert.ok(norms[4] < 0.01 * norms[0], `norms ${norms}`);
  });

  it("gives a constant target zero weights and its value as the bias", async () => {
    const { X } = linearData(50, 4, 8);
    const y = new Float64Array(50).fill(0.1);
    const m = await fitRidge(X, 50, 4, y, 1);
    for (const w of m.weights) assert.ok(Math.abs(w) < 1e-15);
    assert.ok(Math.abs(m.bias - 0.1) < 1e-15);
    const p = predictRidge(m, X, 50);
    assert.ok(regressionMetrics(y, p).rmse < 1e-14);
  });

  it("fits a single row and all-constant features to the mean when alpha > 0", async () => {
    const one = await fitRidge(Float32Array.from([1, 2, 3]), 1, 3, Float64Array.from([4]), 1);
    assert.deepEqual(Array.from(one.weights), [0, 0, 0]);
    assert.equal(one.bias, 4);
    const flat = await fitRidge(
      new Float32Array(20).fill(0.3),
      10,
      2,
      Float64Array.from({ length: 10 }, (_, i) => i),
      1,
    );
    assert.deepEqual(Array.from(flat.weights), [0, 0]);
    assert.ok(Math.abs(flat.bias - 4.5) < 1e-12);
  });

  it("rejects alpha = 0 when the system is singular, with a clear error", async () => {
    const { X, y } = linearData(10, 10, 9);
    await assert.rejects(
      fitRidge(X, 10, 10, y, 0),
      isValidation("params.alpha", /n = 10, d = 10.*alpha > 0/),
    );
    const tall = linearData(30, 3, 10);
    const Xc = Float32Array.from(tall.X);
    for (let i = 0; i < 30; i++) Xc[i * 3 + 1] = 7; // constant feature 1
    await assert.rejects(fitRidge(Xc, 30, 3, tall.y, 0), isValidation("params.alpha", /feature 1/));
    // Exactly collinear (feature 2 = 2 · feature 0, exact in float32).
    const Xl = Float32Array.from(tall.X);
    for (let i = 0; i < 30; i++) Xl[i * 3 + 2] = 2 * Xl[i * 3];
    await assert.rejects(fitRidge(Xl, 30, 3, tall.y, 0), isValidation("params.alpha", /singular/));
    // The same problems are fine with alpha > 0.
    await assert.doesNotReject(fitRidge(Xc, 30, 3, tall.y, 0.1));
    await assert.doesNotReject(fitRidge(Xl, 30, 3, tall.y, 0.1));
  });

  it("rejects NaN/Inf in inputs or targets, naming the field and position", async () => {
    const { X, y } = linearData(5, 3, 12);
    const bad = Float32Array.from(X);
    bad[7] = Number.NaN;
    await assert.rejects(
      ridgeKind.fit(bad, 5, 3, { task: "regression", y }, { alpha: 1 }, { seed: 1 }),
      isValidation("X", /X\[2, 1\] is NaN/),
    );
    bad[7] = Number.NEGATIVE_INFINITY;
    await assert.rejects(fitRidge(bad, 5, 3, y, 1), isValidation("X", /-Infinity/));
    const badY = Float64Array.from(y);
    badY[4] = Number.POSITIVE_INFINITY;
    await assert.rejects(fitRidge(X, 5, 3, badY, 1), isValidation("y", /y\[4\] is Infinity/));
    await assert.rejects(fitRidge(X, 5, 3, y.subarray(1), 1), isValidation("y"));
    await assert.rejects(
      ridgeKind.fit(X, 5, 3, { task: "multilabel", Y: new Uint8Array(5), k: 1 }, { alpha: 1 }, { seed: 1 }),
      (e: unknown) => e instanceof ValidationError && e.field === "task",
    );
  });

  it("exports ONNX that reproduces predict within 1e-5", async () => {
    const d = 7;
    const { X, y } = linearData(400, d, 13);
    const model = await ridgeKind.fit(X, 400, d, { task: "regression", y }, { alpha: 2 }, { seed: 1 });
    const rand = mulberry32(14);
    const m = 30;
    const Q = Float32Array.from({ length: m * d }, () => 2 * gaussian(rand));
    for (let j = 0; j < d; j++) {
      Q[j] = 0; // the bias alone
      Q[d + j] = model.mean[j]; // the training mean predicts mean(y)
      Q[2 * d + j] = j === 3 ? 10 : 0;
    }
    const want = await ridgeKind.predict(model, Q, m);
    const got = await onnxHeadOutput(ridgeKind, model, Q, m, d, 1);
    assertClose(got, want, 1e-5, "onnx vs predict");
    // (up to the float32 rounding of the mean in Q)
    assert.ok(Math.abs(want[1] - model.yMean) < 1e-6, `${want[1]} vs ${model.yMean}`);
  });

  it("round-trips through JSON and rejects malformed payloads", async () => {
    const { X, y } = linearData(60, 5, 15);
    const model = await fitRidge(X, 60, 5, y, 3);
    const text = JSON.stringify(ridgeKind.toJson(model));
    const back = ridgeKind.fromJson(JSON.parse(text));
    assert.deepEqual(ridgeToJson(back), ridgeToJson(model));
    assert.deepEqual(Array.from(predictRidge(back, X, 60)), Array.from(predictRidge(model, X, 60)));
    assert.deepEqual(ridgeToJson(ridgeFromJson(text)), ridgeToJson(model));
    const good = ridgeToJson(model);
    const cases: [unknown, string | undefined][] = [
      [null, undefined],
      [[1], undefined],
      [{ ...good, type: "logreg" }, "type"],
      [{ ...good, version: 2 }, "version"],
      [{ ...good, space: "std" }, "space"],
      [{ ...good, d: 0 }, "d"],
      [{ ...good, weights: good.weights.slice(1) }, "weights"],
      [{ ...good, mean: [...good.mean.slice(1), "0"] }, "mean"],
      [{ ...good, bias: null }, "bias"],
      [{ ...good, alpha: -1 }, "alpha"],
    ];
    for (const [payload, field] of cases) {
      assert.throws(
        () => ridgeFromJson(payload),
        (e: unknown) => e instanceof ValidationError && e.field === field,
        String(field),
      );
    }
  });

  it("resolves params with defaults and rejects unknown or bad ones, naming them", () => {
    assert.deepEqual(ridgeKind.resolveParams({}, 100, 4), { alpha: 1 });
    assert.deepEqual(ridgeKind.resolveParams({ alpha: "0" }, 100, 4), { alpha: 0 });
    assert.throws(() => ridgeKind.resolveParams({ C: 1 }, 100, 4), isValidation("params.C", /valid: alpha/));
    assert.throws(() => ridgeKind.resolveParams({ alpha: -0.1 }, 100, 4), isValidation("params.alpha"));
    assert.throws(() => ridgeKind.resolveParams({ alpha: "big" }, 100, 4), isValidation("params.alpha"));
    const grid = ridgeKind.grid(100, 4);
    assert.deepEqual(
      grid.map((p) => p.alpha),
      [100, 10, 1, 0.1],
    );
    for (const p of grid) assert.deepEqual(ridgeKind.resolveParams(p, 100, 4), p);
    assert.equal(ridgeKind.type, "ridge");
    assert.equal(ridgeKind.task, "regression");
  });
});
