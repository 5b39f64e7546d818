import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { encodeModel, GraphBuilder } from "../shared/backbone/onnx-writer.ts";
import { ValidationError } from "../shared/errors.ts";
import {
  fitKnn,
  type KnnModel,
  type KnnParams,
  knnFromJson,
  knnKind,
  knnToJson,
  PROBA_SMOOTHING,
  predictKnn,
  VOTE_EPS,
} from "../shared/heads/knn.ts";
import { argmaxRows } from "../shared/heads/metrics.ts";
import { mulberry32 } from "../shared/heads/split.ts";

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** k Gaussian blobs (unit noise) around random centres `spread` from the origin; rows cycle classes. */
function blobs(n: number, d: number, k: number, spread: number, seed: number) {
  const rand = mulberry32(seed);
  const centers = Array.from({ length: k }, () => Array.from({ length: d }, () => gaussian(rand) * spread));
  const sample = (count: number) => {
    const X = new Float32Array(count * d);
    const y = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      y[i] = i % k;
      for (let j = 0; j < d; j++) X[i * d + j] = centers[y[i]][j] + gaussian(rand);
    }
    return { X, y };
  };
  return { train: sample(n), test: (count: number) => sample(count) };
}

function params(p: Partial<KnnParams> = {}): KnnParams {
  return { k: 15, weights: "similarity", classWeight: "none", ...p };
}

function fit(X: number[][], y: number[], p: Partial<KnnParams>, k = Math.max(...y) + 1): KnnModel {
  const d = X[0].length;
  return fitKnn(
    Float32Array.from(X.flat()),
    X.length,
    d,
    { task: "multiclass", y: Int32Array.from(y), k },
    params(p),
  );
}

/** The smoothed vote share the head reports for a raw share s among k classes. */
const smooth = (s: number, k: number) => (1 - PROBA_SMOOTHING) * s + PROBA_SMOOTHING / k;

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]} (tol ${tol})`);
  }
}

async function onnxPredict(model: KnnModel, X: Float32Array, n: number): Promise<Float32Array> {
  const g = new GraphBuilder("head");
  g.input("x", "float32", ["N", model.d]);
  const out = knnKind.toOnnx(model, g, "x");
  g.output(out, "float32", ["N", model.k]);
  const s = await InferenceSession.create(encodeModel(g));
  const res = await s.run({ x: new Tensor("float32", X, [n, model.d]) });
  return res[out].data as Float32Array;
}

// a, b point the same way (b longer), c is orthogonal, e opposite: sims to (1,0) are 1, 1, 0, -1.
const HAND_X = [
  [1, 0],
  [2, 0],
  [0, 1],
  [-1, 0],
];
const HAND_Y = [0, 0, 1, 1];

describe("knn: hand-computed probabilities", () => {
  for (const engine of ["js", "ort"] as const) {
    it(`uniform and similarity votes (${engine})`, async () => {
      const q = Float32Array.from([1, 0]);
      const uni = await predictKnn(fit(HAND_X, HAND_Y, { k: 3, weights: "uniform" }), q, 1, { engine });
      // Neighbours a, b (class 0) and c (class 1): 2 votes to 1.
      assertClose(uni, [smooth(2 / 3, 2), smooth(1 / 3, 2)], 1e-7, "uniform");
      const sim = await predictKnn(fit(HAND_X, HAND_Y, { k: 3, weights: "similarity" }), q, 1, { engine });
      // Votes 1+ε, 1+ε for class 0 and 0+ε for class 1 (ε = VOTE_EPS).
      const v0 = 2 * (1 + VOTE_EPS);
      const v1 = VOTE_EPS;
      assertClose(sim, [smooth(v0 / (v0 + v1), 2), smooth(v1 / (v0 + v1), 2)], 1e-7, "similarity");
      assert.ok(sim[1] > 0 && sim[1] < 1e-5, "the orthogonal neighbour's vote is tiny but not zero");
    });

    it(`ties go to the lower training index (${engine})`, async () => {
      const model = fit(HAND_X, HAND_Y, { k: 3, weights: "uniform" });
      // (0,1): c has sim 1; a, b and e all have sim 0, so a and b (indices 0, 1) complete the top 3.
      // Had e (index 3) won the tie, class 1 would get 2 votes of 3 instead.
      const p = await predictKnn(model, Float32Array.from([0, 1]), 1, { engine });
      assertClose(p, [smooth(2 / 3, 2), smooth(1 / 3, 2)], 1e-7, "tie");
    });

    it(`a zero query has similarity 0 to everything (${engine})`, async () => {
      for (const weights of ["uniform", "similarity"] as const) {
        const model = fit(HAND_X, HAND_Y, { k: 3, weights });
        const p = await predictKnn(model, Float32Array.from([0, 0]), 1, { engine });
        // All tie at 0 → indices 0, 1, 2 → classes 0, 0, 1 with equal votes.
        assertClose(p, [smooth(2 / 3, 2), smooth(1 / 3, 2)], 1e-7, weights);
      }
    });
  }

  it("k larger than n is clipped to n (every row votes)", async () => {
    const model = fit(HAND_X, HAND_Y, { k: 100, weights: "uniform" });
    assert.equal(model.neighbors, 4);
    const p = await predictKnn(model, Float32Array.from([1, 0, 0, 1]), 2);
    assertClose(p, [0.5, 0.5, 0.5, 0.5], 1e-12, "all four vote");
    assert.equal(knnKind.resolveParams({ k: 100 }, 4, 2).k, 4);
    assert.equal(knnKind.resolveParams({}, 1000, 2).k, 15);
  });

  it("a zero training vector stays zero (similarity 0, no NaN)", async () => {
    const model = fit(
      [
        [0, 0],
        [1, 0],
        [0, 1],
      ],
      [1, 0, 1],
      { k: 2, weights: "uniform" },
    );
    assert.deepEqual(Array.from(model.vectors.subarray(0, 2)), [0, 0]);
    // (-1, 0): sims 0 (row 0), -1 (row 1), 0 (row 2) → rows 0 and 2, both class 1.
    const p = await predictKnn(model, Float32Array.from([-1, 0]), 1);
    assertClose(p, [smooth(0, 2), smooth(1, 2)], 1e-12, "zero row");
    assert.ok(p.every(Number.isFinite));
  });

  it("duplicate training points with different labels: the earlier row wins k = 1", async () => {
    for (const engine of ["js", "ort"] as const) {
      const a = fit(
        [
          [1, 0],
          [1, 0],
          [0, 1],
        ],
        [1, 0, 0],
        { k: 1 },
      );
      const b = fit(
        [
          [1, 0],
          [1, 0],
          [0, 1],
        ],
        [0, 1, 0],
        { k: 1 },
      );
      const q = Float32Array.from([3, 0]);
      assert.equal(argmaxRows(await predictKnn(a, q, 1, { engine }), 1, 2)[0], 1, engine);
      assert.equal(argmaxRows(await predictKnn(b, q, 1, { engine }), 1, 2)[0], 0, engine);
    }
  });

  it("balanced class weights turn a 2-to-1 majority of the big class around", async () => {
    // Unit vectors at angles (degrees): class 0 at 0, 10, 80, 90; class 1 at 45. The query at 42°
    // has neighbours 45° (class 1), 10° and 80° (class 0) for k = 3.
    const deg = (a: number) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)];
    const X = [deg(0), deg(10), deg(80), deg(90), deg(45)];
    const y = [0, 0, 0, 0, 1];
    const q = Float32Array.from(deg(42));
    const none = await predictKnn(fit(X, y, { k: 3, weights: "uniform" }), q, 1);
    assertClose(none, [smooth(2 / 3, 2), smooth(1 / 3, 2)], 1e-7, "none");
    // balanced: w0 = 5 / (2·4) = 0.625, w1 = 5 / (2·1) = 2.5 → votes 1.25 vs 2.5.
    const bal = await predictKnn(fit(X, y, { k: 3, weights: "uniform", classWeight: "balanced" }), q, 1);
    assertClose(bal, [smooth(1 / 3, 2), smooth(2 / 3, 2)], 1e-7, "balanced");
  });

  it("sample weights scale votes and zero-weight rows are dropped", async () => {
    const X = Float32Array.from(HAND_X.flat());
    const sampleWeight = Float64Array.from([3, 0, 1, 1]);
    const model = fitKnn(
      X,
      4,
      2,
      { task: "multiclass", y: Int32Array.from(HAND_Y), k: 2, sampleWeight },
      params({ k: 2, weights: "uniform" }),
    );
    assert.equal(model.n, 3);
    // (1,0): rows a (weight 3, class 0) and c (weight 1, class 1; b was dropped).
    const p = await predictKnn(model, Float32Array.from([1, 0]), 1);
    assertClose(p, [smooth(3 / 4, 2), smooth(1 / 4, 2)], 1e-7, "weighted");
  });
});

describe("knn: learning", () => {
  it("2 examples per class on separable blobs give high accuracy", async () => {
    const k = 5;
    const { train, test } = blobs(2 * k, 32, k, 5, 11);
    const n = 2 * k;
    const held = test(500);
    for (const input of [{}, { k: 1 }, { k: 3, weights: "uniform" }]) {
      const p = knnKind.resolveParams(input, n, 32);
      const model = await knnKind.fit(train.X, n, 32, { task: "multiclass", y: train.y, k }, p, { seed: 1 });
      const pred = argmaxRows(await knnKind.predict(model, held.X, 500), 500, k);
      let ok = 0;
      for (let i = 0; i < 500; i++) if (pred[i] === held.y[i]) ok++;
      assert.ok(ok / 500 >= 0.95, `${JSON.stringify(input)}: accuracy ${ok / 500}`);
    }
  });

  it("probabilities are finite, positive and sum to 1", async () => {
    const { train, test } = blobs(200, 8, 4, 1, 3);
    const model = fitKnn(train.X, 200, 8, { task: "multiclass", y: train.y, k: 4 }, params({ k: 9 }));
    const q = test(50);
    const p = await predictKnn(model, q.X, 50);
    for (let i = 0; i < 50; i++) {
      let s = 0;
      for (let c = 0; c < 4; c++) {
        assert.ok(p[i * 4 + c] > 0 && Number.isFinite(p[i * 4 + c]));
        s += p[i * 4 + c];
      }
      assert.ok(Math.abs(s - 1) < 1e-12, `row ${i} sums to ${s}`);
    }
  });

  it("fit and predict are deterministic", async () => {
    const { train, test } = blobs(120, 6, 3, 2, 5);
    const q = test(40);
    const a = fitKnn(train.X, 120, 6, { task: "multiclass", y: train.y, k: 3 }, params());
    const b = fitKnn(train.X, 120, 6, { task: "multiclass", y: train.y, k: 3 }, params());
    assert.deepEqual(knnToJson(a), knnToJson(b));
    assert.deepEqual(await predictKnn(a, q.X, 40), await predictKnn(b, q.X, 40));
  });
});

describe("knn: engines and export", () => {
  const n = 300;
  const d = 16;
  const k = 4;
  const rand = mulberry32(21);
  const X = Float32Array.from({ length: n * d }, () => gaussian(rand));
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % k);
  const m = 200;
  const Q = Float32Array.from({ length: m * d }, () => gaussian(rand));

  for (const weights of ["uniform", "similarity"] as const) {
    it(`onnxruntime blocks equal the JS path (${weights})`, async () => {
      const model = fitKnn(
        X,
        n,
        d,
        { task: "multiclass", y, k },
        params({ k: 7, weights, classWeight: "balanced" }),
      );
      const js = await predictKnn(model, Q, m, { engine: "js" });
      // 37 does not divide 200, so the last block is short.
      const ort = await predictKnn(model, Q, m, { engine: "ort", blockRows: 37 });
      assertClose(ort, js, 1e-5, "block vs js");
      const one = await predictKnn(model, Q, m, { engine: "ort", blockRows: 1000 });
      assertClose(one, ort, 1e-12, "one block vs many");
    });

    it(`toOnnx equals predict within 1e-5 (${weights})`, async () => {
      const model = fitKnn(
        X,
        n,
        d,
        { task: "multiclass", y, k },
        params({ k: 7, weights, classWeight: "balanced" }),
      );
      const got = await onnxPredict(model, Q, m);
      assertClose(got, await predictKnn(model, Q, m, { engine: "js" }), 1e-5, "onnx vs predict");
    });
  }

  it("toOnnx handles zero, huge, tiny and training-duplicate rows like predict", async () => {
    const model = fit(HAND_X, HAND_Y, { k: 3, weights: "similarity" });
    const rows = [
      [0, 0],
      [1e30, 3e29],
      [1e-30, -2e-31],
      [2, 0],
      [0, 5],
      [-1, 0.25],
    ];
    const Xq = Float32Array.from(rows.flat());
    const got = await onnxPredict(model, Xq, rows.length);
    const want = await predictKnn(model, Xq, rows.length, { engine: "js" });
    assertClose(got, want, 1e-5, "edge rows");
    assert.ok(Array.from(got).every(Number.isFinite));
  });

  it("auto engine on a problem above the JS threshold matches JS", async () => {
    const r = mulberry32(8);
    const bigN = 2000;
    const big = Float32Array.from({ length: bigN * d }, () => gaussian(r));
    const by = Int32Array.from({ length: bigN }, (_, i) => i % k);
    const model = fitKnn(big, bigN, d, { task: "multiclass", y: by, k }, params({ k: 15 }));
    const Qb = Float32Array.from({ length: 600 * d }, () => gaussian(r));
    const auto = await predictKnn(model, Qb, 600);
    assertClose(auto, await predictKnn(model, Qb, 600, { engine: "js" }), 1e-5, "auto vs js");
  });
});

describe("knn: validation and JSON", () => {
  const model = fit(HAND_X, HAND_Y, { k: 3, weights: "similarity", classWeight: "balanced" });

  it("rejects NaN / infinite inputs naming the row", async () => {
    const bad = Float32Array.from([1, 0, Number.NaN, 1]);
    assert.throws(
      () => fitKnn(bad, 2, 2, { task: "multiclass", y: Int32Array.from([0, 1]), k: 2 }, params()),
      (e: unknown) => e instanceof ValidationError && e.field === "X[1]",
    );
    await assert.rejects(
      predictKnn(model, Float32Array.from([0, Number.POSITIVE_INFINITY]), 1),
      (e: unknown) => e instanceof ValidationError && e.field === "X[0]",
    );
    await assert.rejects(predictKnn(model, Float32Array.from([1, 0, 0]), 2), ValidationError);
  });

  it("rejects labels outside 0..k-1 and bad sample weights", () => {
    const X = Float32Array.from([1, 0, 0, 1]);
    assert.throws(
      () => fitKnn(X, 2, 2, { task: "multiclass", y: Int32Array.from([0, 2]), k: 2 }, params()),
      (e: unknown) => e instanceof ValidationError && e.field === "y[1]",
    );
    const sampleWeight = Float64Array.from([1, -1]);
    assert.throws(
      () => fitKnn(X, 2, 2, { task: "multiclass", y: Int32Array.from([0, 1]), k: 2, sampleWeight }, params()),
      (e: unknown) => e instanceof ValidationError && e.field === "sampleWeight[1]",
    );
  });

  it("params: defaults, unknown keys and bad values", () => {
    assert.deepEqual(knnKind.resolveParams({}, 100, 4), {
      k: 15,
      weights: "similarity",
      classWeight: "none",
    });
    assert.throws(
      () => knnKind.resolveParams({ neighbours: 3 }, 100, 4),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.field === "params.neighbours" &&
        /k, weights, classWeight/.test(e.message),
    );
    for (const bad of [{ k: 0 }, { k: 2.5 }, { k: "x" }, { weights: "distance" }, { classWeight: "auto" }]) {
      const key = Object.keys(bad)[0];
      assert.throws(
        () => knnKind.resolveParams(bad, 100, 4),
        (e: unknown) => e instanceof ValidationError && e.field === `params.${key}`,
        JSON.stringify(bad),
      );
    }
  });

  it("grid: k bounded by n, both weightings, valid params", () => {
    const g = knnKind.grid(1000, 8);
    assert.deepEqual(
      g.map((p) => `${p.k}/${p.weights}`),
      ["50/uniform", "50/similarity", "15/uniform", "15/similarity", "5/uniform", "5/similarity"],
    );
    const small = knnKind.grid(8, 8);
    assert.deepEqual([...new Set(small.map((p) => p.k))], [8, 5]);
    for (const p of small) assert.deepEqual(knnKind.resolveParams(p, 8, 8), p);
  });

  it("JSON round trip predicts identically", async () => {
    const json = JSON.parse(JSON.stringify(knnKind.toJson(model)));
    const back = knnKind.fromJson(json);
    assert.deepEqual(back, model);
    const q = Float32Array.from([1, 0.2, -0.3, 1, 0, 0]);
    assert.deepEqual(await knnKind.predict(back, q, 3), await knnKind.predict(model, q, 3));
  });

  it("fromJson rejects malformed payloads naming the field", () => {
    const good = knnToJson(model);
    const nanVectors = new Float32Array(model.vectors);
    nanVectors[3] = Number.NaN;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ type: "logreg" }, "type"],
      [{ version: 2 }, "version"],
      [{ d: 0 }, "d"],
      [{ neighbors: 5 }, "neighbors"],
      [{ weights: "distance" }, "weights"],
      [{ classWeight: "auto" }, "classWeight"],
      [{ vectors: "@@@@" }, "vectors"],
      [{ vectors: 42 }, "vectors"],
      [{ vectors: good.vectors.slice(0, -8) }, "vectors"],
      [{ vectors: Buffer.from(nanVectors.buffer).toString("base64") }, "vectors"],
      [{ vectors: Buffer.from(new Float32Array(8).fill(0.9).buffer).toString("base64") }, "vectors"],
      [{ labels: [0, 0, 1] }, "labels"],
      [{ labels: [0, 0, 1, 2] }, "labels"],
      [{ rowWeight: Buffer.from(new Float32Array([1, 1, 0, 1]).buffer).toString("base64") }, "rowWeight"],
      [{ rowWeight: "AAAA" }, "rowWeight"],
    ];
    for (const [patch, field] of cases) {
      assert.throws(
        () => knnFromJson({ ...good, ...patch }),
        (e: unknown) => e instanceof ValidationError && e.field === field,
        JSON.stringify(patch),
      );
    }
  });
});
