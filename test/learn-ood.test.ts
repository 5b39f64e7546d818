import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { choleskyInPlace, forwardSolveRows } from "../shared/learn/cholesky.ts";
import {
  auroc,
  fitOodScorer,
  fprAtTpr,
  type OodMethod,
  oodFromJson,
  oodScores,
  oodToJson,
  sampleRows,
  unknownThreshold,
} from "../shared/learn/ood.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

const DIM = 12;

/** n rows around a centre 4 units along axis `axis`, unit Gaussian noise. */
function cloud(n: number, axis: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const x = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < DIM; j++) x[i * DIM + j] = gaussian(rand) + (j === axis ? 4 : 0);
  }
  return x;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Classes A (axis 0) and B (axis 1) to train on; C (axis 2) never seen. */
const train = concat(cloud(200, 0, 1), cloud(200, 1, 2));
const y = Int32Array.from({ length: 400 }, (_, i) => (i < 200 ? 0 : 1));
const heldIn = concat(cloud(100, 0, 3), cloud(100, 1, 4));
const unseen = cloud(100, 2, 5);
const noProba = new Float64Array(0);

describe("learn/ood: distance scorers", () => {
  for (const method of ["mahalanobis", "knn"] as OodMethod[]) {
    it(`${method}: an unseen cluster scores above held-out rows of the trained classes`, () => {
      const s = fitOodScorer(method, train, 400, DIM, y, 2, { seed: 1 });
      const known = oodScores(s, heldIn, 200, noProba, 2);
      const unknown = oodScores(s, unseen, 100, noProba, 2);
      assert.ok(auroc(known, unknown) > 0.95, `AUROC ${auroc(known, unknown)}`);
      assert.ok(fprAtTpr(known, unknown) < 0.1, `FPR ${fprAtTpr(known, unknown)}`);
      const t = unknownThreshold(known, 0.95);
      const kept = known.filter((v) => v <= t).length / known.length;
      assert.ok(kept >= 0.95 && kept < 0.97, `kept ${kept}`);
    });

    it(`${method}: survives its JSON form with the same scores`, () => {
      const s = fitOodScorer(method, train, 400, DIM, y, 2, { seed: 1, maxRefs: 50 });
      const back = oodFromJson(JSON.parse(JSON.stringify(oodToJson(s))));
      const a = oodScores(s, unseen, 100, noProba, 2);
      const b = oodScores(back, unseen, 100, noProba, 2);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-9);
    });
  }

  it("knn keeps a seeded sample of at most maxRefs rows, and k at most that", () => {
    const s = fitOodScorer("knn", train, 400, DIM, y, 2, { seed: 7, maxRefs: 5, k: 10 });
    assert.equal(s.method, "knn");
    if (s.method !== "knn") return;
    assert.equal(s.m, 5);
    assert.equal(s.k, 5);
    assert.deepEqual(sampleRows(400, 5, 7), sampleRows(400, 5, 7));
    assert.notDeepEqual(sampleRows(400, 5, 7), sampleRows(400, 5, 8));
  });

  for (const method of ["knn", "mahalanobis"] as const) {
    it(`${method} scores many rows at once (SIMD kernels, in blocks) as it scores them one by one`, () => {
      // 150 rows: more than two kernel blocks, the last one partial; then a zero row.
      const zero = new Float32Array(DIM);
      const rows = concat(concat(heldIn.subarray(0, 100 * DIM), unseen.subarray(0, 49 * DIM)), zero);
      const s = fitOodScorer(method, train, 400, DIM, y, 2, { seed: 3, k: 7 });
      const together = oodScores(s, rows, 150, noProba, 2);
      for (let i = 0; i < 150; i++) {
        const alone = oodScores(s, rows.subarray(i * DIM, (i + 1) * DIM), 1, noProba, 2)[0];
        const tol = 1e-9 * Math.max(1, Math.abs(alone));
        assert.ok(Math.abs(together[i] - alone) < tol, `row ${i}: ${together[i]} vs ${alone}`);
      }
      if (method === "knn") assert.equal(together[149], 1, "a zero row is at distance 1");
    });
  }

  it("mahalanobis: the fitted factor is that of the shrunk within-class covariance (float64 reference)", () => {
    const s = fitOodScorer("mahalanobis", train, 400, DIM, y, 2, { seed: 1 });
    if (s.method !== "mahalanobis") throw new Error("unreachable");
    const mu = [0, 1].map((c) => {
      const m = new Float64Array(DIM);
      for (let i = 0; i < 400; i++)
        if (y[i] === c) for (let j = 0; j < DIM; j++) m[j] += train[i * DIM + j] / 200;
      return m;
    });
    const cov = new Float64Array(DIM * DIM);
    for (let i = 0; i < 400; i++)
      for (let a = 0; a < DIM; a++)
        for (let b = 0; b < DIM; b++)
          cov[a * DIM + b] += ((train[i * DIM + a] - mu[y[i]][a]) * (train[i * DIM + b] - mu[y[i]][b])) / 400;
    let trace = 0;
    for (let a = 0; a < DIM; a++) trace += cov[a * DIM + a];
    // L·Lᵀ from the stored (packed, float32) factor against (1 − λ)·Σ + λ·(tr Σ / d)·I.
    const L = (i: number, j: number) => (j <= i ? s.chol[(i * (i + 1)) / 2 + j] : 0);
    for (let a = 0; a < DIM; a++) {
      for (let b = 0; b <= a; b++) {
        let llt = 0;
        for (let t = 0; t < DIM; t++) llt += L(a, t) * L(b, t);
        const want = (1 - s.shrinkage) * cov[a * DIM + b] + (a === b ? (s.shrinkage * trace) / DIM : 0);
        assert.ok(
          Math.abs(llt - want) < 1e-5 * Math.max(1, Math.abs(want)),
          `(${a}, ${b}): ${llt} vs ${want}`,
        );
      }
    }
  });

  it("mahalanobis works with fewer rows than dimensions (shrinkage)", () => {
    const s = fitOodScorer("mahalanobis", train.subarray(0, 4 * DIM), 4, DIM, y.subarray(0, 4), 2);
    const scores = oodScores(s, unseen, 100, noProba, 2);
    assert.ok(scores.every(Number.isFinite));
  });

  it("cholesky: L·Lᵀ gives back the matrix", () => {
    const A = Float64Array.from([4, 0, 0, 2, 5, 0, 2, 1, 6]);
    const L = choleskyInPlace(Float64Array.from(A), 3);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let t = 0; t <= j; t++) s += L[i * 3 + t] * L[j * 3 + t];
        assert.ok(Math.abs(s - A[i * 3 + j]) < 1e-12);
      }
    assert.throws(() => choleskyInPlace(Float64Array.from([1, 0, 2, 1]), 2), /positive definite/);
  });
});

describe("learn/ood: msp, thresholds and metrics", () => {
  it("msp is 1 − the top probability", () => {
    const s = fitOodScorer("msp", new Float32Array(0), 0, DIM, new Int32Array(0), 2);
    const scores = oodScores(s, new Float32Array(0), 2, Float64Array.from([0.9, 0.1, 0.5, 0.5]), 2);
    assert.deepEqual(
      Array.from(scores, (v) => Math.round(v * 100) / 100),
      [0.1, 0.5],
    );
    assert.deepEqual(oodFromJson(oodToJson(s)), { method: "msp" });
  });

  it("the threshold keeps the asked share of held-out scores", () => {
    const held = Array.from({ length: 100 }, (_, i) => i);
    assert.equal(unknownThreshold(held, 0.95), 94);
    assert.equal(unknownThreshold(held, 0.5), 49);
    assert.throws(() => unknownThreshold(held, 1), /kept rate/);
    assert.throws(() => unknownThreshold([], 0.95), /no held-out/);
  });

  it("auroc: 1 when separated, 0.5 when tied, 0 when reversed; FPR at 95% TPR", () => {
    assert.equal(auroc([1, 2, 3], [4, 5]), 1);
    assert.equal(auroc([1, 1], [1, 1]), 0.5);
    assert.equal(auroc([4, 5], [1, 2]), 0);
    assert.equal(fprAtTpr([1, 2, 3, 4], [0, 5, 6, 7], 0.75), 0.25);
  });

  it("a stored scorer with a bad field fails naming it", () => {
    assert.throws(() => oodFromJson({ type: "ood", version: 1, method: "cosine" }), /method must be one of/);
    assert.throws(
      () => oodFromJson({ type: "ood", version: 1, method: "knn", d: 2, k: 1, m: 1, refs: "AAAAAA==" }),
      /refs holds 1 float32 values, expected 2/,
    );
  });
});

describe("learn/cholesky: blocked through the SIMD kernels", () => {
  // 200 dimensions: above 2·BLOCK, so the blocked path (three column blocks and a partial one).
  const d = 200;
  const rand = mulberry32(17);
  const G = Float64Array.from({ length: d * d }, () => gaussian(rand));
  const A = new Float64Array(d * d); // G·Gᵀ / d + I: symmetric, well conditioned
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let v = i === j ? 1 : 0;
      for (let t = 0; t < d; t++) v += (G[i * d + t] * G[j * d + t]) / d;
      A[i * d + j] = v;
    }

  it("factors to float64 precision: L·Lᵀ = A", () => {
    const L = choleskyInPlace(Float64Array.from(A), d);
    let worst = 0;
    for (let i = 0; i < d; i++)
      for (let j = 0; j <= i; j++) {
        let v = 0;
        for (let t = 0; t <= j; t++) v += L[i * d + t] * L[j * d + t];
        worst = Math.max(worst, Math.abs(v - A[i * d + j]));
      }
    assert.ok(worst < 1e-12, `max |L·Lᵀ − A| = ${worst}`);
  });

  it("solves L·z = x for many rows at once, as one row at a time does", () => {
    const L = choleskyInPlace(Float64Array.from(A), d);
    for (let i = 0; i < d * d; i++) L[i] = Math.fround(L[i]); // the stored factor is float32
    for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) L[i * d + j] = 0;
    const n = 70;
    const X = Float64Array.from({ length: n * d }, () => gaussian(rand));
    const Z = forwardSolveRows(L, d, Float64Array.from(X), n);
    let worst = 0;
    for (let r = 0; r < n; r++)
      for (let i = 0; i < d; i++) {
        let v = 0;
        for (let t = 0; t <= i; t++) v += L[i * d + t] * Z[r * d + t];
        worst = Math.max(worst, Math.abs(v - X[r * d + i]));
      }
    assert.ok(worst < 1e-11, `max |L·z − x| = ${worst}`);
  });

  it("refuses a matrix that is not positive definite, naming the pivot", () => {
    const B = Float64Array.from(A);
    B[150 * d + 150] = -1;
    assert.throws(() => choleskyInPlace(B, d), /not positive definite \(pivot 150\)/);
  });
});
