import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import {
  DISTANCE_EPS,
  fitKnn,
  type KnnModel,
  type KnnParams,
  knnFromJson,
  knnKind,
  knnToJson,
  MAX_KNN_VALUES,
  PROBA_SMOOTHING,
  predictKnn,
  VOTE_EPS,
} from "../shared/learn/knn.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { assertClose, blobSampler, onnxHeadOutput } from "./helpers/heads.ts";

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

/** The knn head's exported graph, run in onnxruntime. */
const onnxPredict = (model: KnnModel, X: Float32Array, n: number) =>
  onnxHeadOutput(knnKind, model, X, n, model.d, model.k);

/** The unit vector at `a` degrees. */
const deg = (a: number) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)];

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

    it(`distance votes are row weight / cosine distance (${engine})`, async () => {
      // Class 0 at 60° (distance 1 − cos 60° = 0.5), class 1 at 90° (distance 1) and 120° (1.5):
      // votes 1/0.5 = 2 against 1 + 2/3, where uniform votes would be 1 against 2.
      const X = [60, 90, 120].map(deg);
      const q = Float32Array.from([1, 0]);
      const p = await predictKnn(fit(X, [0, 1, 1], { k: 3, weights: "distance" }), q, 1, { engine });
      assertClose(p, [smooth(6 / 11, 2), smooth(5 / 11, 2)], 1e-6, "distance");
      // Sample weights multiply the vote: 3 · 2 = 6 against 1 + 2/3.
      const weighted = fitKnn(
        Float32Array.from(X.flat()),
        3,
        2,
        {
          task: "multiclass",
          y: Int32Array.from([0, 1, 1]),
          k: 2,
          sampleWeight: Float64Array.from([3, 1, 1]),
        },
        params({ k: 3, weights: "distance" }),
      );
      const pw = await predictKnn(weighted, q, 1, { engine });
      assertClose(pw, [smooth(18 / 23, 2), smooth(5 / 23, 2)], 1e-6, "weighted distance");
    });

    it(`an exact duplicate dominates distance votes without dividing by zero (${engine})`, async () => {
      const model = fit(HAND_X, HAND_Y, { k: 3, weights: "distance" });
      // (1,0) and its multiple (7,0) duplicate a and b (distance 0 → DISTANCE_EPS); c is at distance 1.
      const p = await predictKnn(model, Float32Array.from([1, 0, 7, 0]), 2, { engine });
      const v0 = 2 / DISTANCE_EPS;
      const want = [smooth(v0 / (v0 + 1), 2), smooth(1 / (v0 + 1), 2)];
      assertClose(p, [...want, ...want], 1e-9, "duplicate");
      assert.ok(p[1] > 0 && p[1] < 1e-6, "the far neighbour still gets a tiny share");
    });

    it(`near-duplicate distance votes follow 1 / (1 − cos θ) (${engine})`, async () => {
      // Class 0 at 0°, class 1 at ±90°. A query at angle θ votes 1/(1 − cos θ) for class 0 and
      // 1/(1 − sin θ) + 1/(1 + sin θ) = 2/cos²θ for class 1. θ = 3e-4 gives a distance of 4.5e-8,
      // below DISTANCE_EPS, so class 0 gets 1/DISTANCE_EPS.
      const model = fit([deg(0), deg(90), deg(-90)], [0, 1, 1], { k: 3, weights: "distance" });
      for (const theta of [3e-4, 1e-2, 0.1]) {
        const q = Float32Array.from([Math.cos(theta), Math.sin(theta)]);
        const p = await predictKnn(model, q, 1, { engine });
        const v0 = 1 / Math.max(1 - Math.cos(theta), DISTANCE_EPS);
        const v1 = 2 / Math.cos(theta) ** 2;
        // float32 rounding of the query moves a distance of 5e-5 by ~1e-3 relative, a share of ~1e-4
        // by ~1e-7.
        assertClose(p, [smooth(v0 / (v0 + v1), 2), smooth(v1 / (v0 + v1), 2)], 2e-7, `θ = ${theta}`);
      }
    });

    it(`ties go to the lower training index (${engine})`, async () => {
      const model = fit(HAND_X, HAND_Y, { k: 3, weights: "uniform" });
      // (0,1): c has sim 1; a, b and e all have sim 0, so a and b (indices 0, 1) complete the top 3.
      // Had e (index 3) won the tie, class 1 would get 2 votes of 3 instead.
      const p = await predictKnn(model, Float32Array.from([0, 1]), 1, { engine });
      assertClose(p, [smooth(2 / 3, 2), smooth(1 / 3, 2)], 1e-7, "tie");
    });

    it(`a zero query has similarity 0 to everything (${engine})`, async () => {
      for (const weights of ["uniform", "similarity", "distance"] as const) {
        const model = fit(HAND_X, HAND_Y, { k: 3, weights });
        const p = await predictKnn(model, Float32Array.from([0, 0]), 1, { engine });
        // All tie at 0 → indices 0, 1, 2 → classes 0, 0, 1 with equal votes (all at distance 1).
        assertClose(p, [smooth(2 / 3, 2), smooth(1 / 3, 2)], 1e-7, weights);
      }
    });
  }

  it("a zero training vector is at cosine distance 1 from every query", async () => {
    const X = [
      [0, 0],
      [1, 0],
      [0, 1],
    ];
    const model = fit(X, [1, 0, 1], { k: 3, weights: "distance" });
    // (-1, 0): distances 1 (zero row), 2 (opposite), 1 (orthogonal) → votes 1 + 1 for class 1, 1/2
    // for class 0. A zero query is at distance 1 from all three.
    const q = Float32Array.from([-1, 0, 0, 0]);
    const want = [smooth(0.2, 2), smooth(0.8, 2), smooth(1 / 3, 2), smooth(2 / 3, 2)];
    for (const engine of ["js", "ort"] as const) {
      assertClose(await predictKnn(model, q, 2, { engine }), want, 1e-7, engine);
    }
    assertClose(await onnxPredict(model, q, 2), want, 1e-6, "onnx");
  });

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
    const draw = blobSampler(32, k, 5, 11);
    const n = 2 * k;
    const train = draw(n);
    const held = draw(500);
    for (const input of [{}, { k: 1 }, { k: 3, weights: "uniform" }, { k: 5, weights: "similarity" }]) {
      const p = knnKind.resolveParams(input, n, 32);
      const model = await knnKind.fit(train.X, n, 32, { task: "multiclass", y: train.y, k }, p, { seed: 1 });
      const pred = argmaxRows(await knnKind.predict(model, held.X, 500), 500, k);
      let ok = 0;
      for (let i = 0; i < 500; i++) if (pred[i] === held.y[i]) ok++;
      assert.ok(ok / 500 >= 0.95, `${JSON.stringify(input)}: accuracy ${ok / 500}`);
    }
  });

  it("probabilities are finite, positive and sum to 1", async () => {
    const draw = blobSampler(8, 4, 1, 3);
    const train = draw(200);
    const model = fitKnn(train.X, 200, 8, { task: "multiclass", y: train.y, k: 4 }, params({ k: 9 }));
    const q = draw(50);
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
    const draw = blobSampler(6, 3, 2, 5);
    const train = draw(120);
    const q = draw(40);
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

  for (const weights of ["uniform", "similarity", "distance"] as const) {
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
    for (const weights of ["uniform", "similarity", "distance"] as const) {
      const model = fit(HAND_X, HAND_Y, { k: 3, weights });
      const rows = [
        [0, 0],
        [1e30, 3e29],
        [1e-30, -2e-31],
        [2, 0],
        [0, 5],
        [-1, 0.25],
        [1e30, 0],
        [-3e-30, 0],
      ];
      const Xq = Float32Array.from(rows.flat());
      const got = await onnxPredict(model, Xq, rows.length);
      const want = await predictKnn(model, Xq, rows.length, { engine: "js" });
      assertClose(got, want, 1e-5, `edge rows (${weights})`);
      assert.ok(Array.from(got).every(Number.isFinite), weights);
    }
  });

  it("near-duplicate queries: JS, onnxruntime blocks and toOnnx agree on distance votes", async () => {
    // Queries are training rows nudged by δ · (random direction) with δ from 0 to 0.3, so their nearest
    // distance runs from 0 (clamped to DISTANCE_EPS) through the clamp (~1e-6) up to ~0.05. Forming
    // 1 − sim from float32 similarities would be off by ~1e-7 here, tens of percent of these votes.
    const r = mulberry32(77);
    const dn = 64;
    const nn = 120;
    const base = Float32Array.from({ length: nn * dn }, () => gaussian(r));
    const by = Int32Array.from({ length: nn }, (_, i) => i % 3);
    const model = fitKnn(
      base,
      nn,
      dn,
      { task: "multiclass", y: by, k: 3 },
      params({ k: 5, weights: "distance" }),
    );
    const deltas = [0, 0, 1e-6, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3];
    const mq = deltas.length * 4;
    const Xq = new Float32Array(mq * dn);
    const nearest: number[] = [];
    for (let t = 0; t < mq; t++) {
      const src = (t * 37) % nn;
      nearest.push(by[src]);
      let norm = 0;
      for (let j = 0; j < dn; j++) norm += base[src * dn + j] ** 2;
      // Scale the nudge with the row so δ is an angle; the second exact copy is rescaled by 3.
      const delta = deltas[t % deltas.length] * Math.sqrt(norm);
      const scale = t % deltas.length === 1 ? 3 : 1;
      for (let j = 0; j < dn; j++) Xq[t * dn + j] = scale * base[src * dn + j] + delta * gaussian(r);
    }
    const js = await predictKnn(model, Xq, mq, { engine: "js" });
    assertClose(await predictKnn(model, Xq, mq, { engine: "ort", blockRows: 7 }), js, 1e-12, "blocks vs js");
    assertClose(await onnxPredict(model, Xq, mq), js, 1e-5, "onnx vs js");
    for (let t = 0; t < mq; t++) {
      if (deltas[t % deltas.length] <= 1e-4) {
        // Within the clamp (or close to it) the copied row outvotes four others at distance ≳ 0.5.
        assert.ok(js[t * 3 + nearest[t]] > 0.999, `query ${t}: ${js[t * 3 + nearest[t]]}`);
      }
    }
  });

  it("near-twin training rows of different classes: all paths split the vote alike", async () => {
    // Each twin pair is a row and a copy turned by α (distance ≈ α²/2: 5e-7 to 4.5e-4), labelled
    // differently; queries sit on or near the segment between them, so both votes are large and
    // comparable and the class shares hinge on the ratio of two tiny distances. 1 − float32 sim
    // would move those shares by 1e-4 to 1e-2.
    const r = mulberry32(91);
    const dn = 47; // odd: exercises the unrolled loops' tail
    const alphas = [1e-3, 1e-2, 3e-2];
    const pairs = 12;
    const nn = 2 * pairs + 30;
    const base = Float32Array.from({ length: nn * dn }, () => gaussian(r));
    const by = Int32Array.from({ length: nn }, (_, i) => i % 3);
    const unitNoise = () => {
      const v = Array.from({ length: dn }, () => gaussian(r));
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    };
    for (let p = 0; p < pairs; p++) {
      const a = 2 * p;
      const b = a + 1;
      const norm = Math.hypot(...base.subarray(a * dn, (a + 1) * dn));
      const turn = unitNoise();
      for (let j = 0; j < dn; j++) {
        base[b * dn + j] = base[a * dn + j] + alphas[p % alphas.length] * norm * turn[j];
      }
      by[b] = (by[a] + 1) % 3;
    }
    const model = fitKnn(
      base,
      nn,
      dn,
      { task: "multiclass", y: by, k: 3 },
      params({ k: 4, weights: "distance" }),
    );
    const spots = [0, 0.25, 0.5, 0.8, 1];
    const jitters = [0, 2e-4, 2e-3];
    const mq = pairs * spots.length * jitters.length;
    const Xq = new Float32Array(mq * dn);
    let t = 0;
    for (let p = 0; p < pairs; p++) {
      const a = 2 * p;
      const norm = Math.hypot(...base.subarray(a * dn, (a + 1) * dn));
      for (const s of spots) {
        for (const jitter of jitters) {
          const e = unitNoise();
          for (let j = 0; j < dn; j++) {
            const u = base[a * dn + j];
            Xq[t * dn + j] =
              u + s * (base[(a + 1) * dn + j] - u) + jitter * alphas[p % alphas.length] * norm * e[j];
          }
          t++;
        }
      }
    }
    const js = await predictKnn(model, Xq, mq, { engine: "js" });
    assertClose(await predictKnn(model, Xq, mq, { engine: "ort", blockRows: 16 }), js, 1e-12, "blocks vs js");
    assertClose(await onnxPredict(model, Xq, mq), js, 1e-5, "onnx vs js");
    // The midpoint queries of the widest pairs split the vote between the twins' classes.
    let split = 0;
    for (let q = 0; q < mq; q++) {
      const top = Math.max(js[q * 3], js[q * 3 + 1], js[q * 3 + 2]);
      if (top > 0.2 && top < 0.8) split++;
    }
    assert.ok(split >= pairs, `only ${split} queries split their vote`);
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
      weights: "distance",
      classWeight: "none",
    });
    for (const weights of ["uniform", "similarity", "distance"]) {
      assert.equal(knnKind.resolveParams({ weights }, 100, 4).weights, weights);
    }
    assert.throws(
      () => knnKind.resolveParams({ neighbours: 3 }, 100, 4),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.field === "params.neighbours" &&
        /k, weights, classWeight/.test(e.message),
    );
    for (const bad of [{ k: 0 }, { k: 2.5 }, { k: "x" }, { weights: "cosine" }, { classWeight: "auto" }]) {
      const key = Object.keys(bad)[0];
      assert.throws(
        () => knnKind.resolveParams(bad, 100, 4),
        (e: unknown) => e instanceof ValidationError && e.field === `params.${key}`,
        JSON.stringify(bad),
      );
    }
  });

  it("grid: k bounded by n, all three weightings, valid params", () => {
    const g = knnKind.grid(1000, 8);
    assert.deepEqual(
      g.map((p) => `${p.k}/${p.weights}`),
      [50, 15, 5].flatMap((k) => ["uniform", "similarity", "distance"].map((w) => `${k}/${w}`)),
    );
    const small = knnKind.grid(8, 8);
    assert.deepEqual([...new Set(small.map((p) => p.k))], [8, 5]);
    for (const p of small) assert.deepEqual(knnKind.resolveParams(p, 8, 8), p);
  });

  it("JSON round trip predicts identically", async () => {
    for (const weights of ["uniform", "similarity", "distance"] as const) {
      const m = fit(HAND_X, HAND_Y, { k: 3, weights, classWeight: "balanced" });
      const json = JSON.parse(JSON.stringify(knnKind.toJson(m)));
      assert.equal(json.weights, weights);
      const back = knnKind.fromJson(json);
      assert.deepEqual(back, m);
      const q = Float32Array.from([1, 0.2, -0.3, 1, 0, 0, 1, 0]);
      assert.deepEqual(await knnKind.predict(back, q, 4), await knnKind.predict(m, q, 4), weights);
    }
  });

  it("a stored similarity model keeps similarity votes now that distance is the default", async () => {
    // A head.json written before "distance" existed: version 1, weights "similarity". Unit rows
    // (1,0), (1,0), (0,1), (-1,0) as little-endian float32, classes 0, 0, 1, 1, row weights 1.
    const stored = {
      type: "knn",
      version: 1,
      d: 2,
      k: 2,
      n: 4,
      neighbors: 3,
      weights: "similarity",
      classWeight: "none",
      vectors: "AACAPwAAAAAAAIA/AAAAAAAAAAAAAIA/AACAvwAAAAA=",
      labels: [0, 0, 1, 1],
      rowWeight: "AACAPwAAgD8AAIA/AACAPw==",
    };
    const m = knnFromJson(JSON.stringify(stored));
    assert.equal(m.weights, "similarity");
    // Similarity votes 1+ε, 1+ε, ε (distance votes would give class 1 only 1/(2e6 + 1)).
    const v0 = 2 * (1 + VOTE_EPS);
    const want = [smooth(v0 / (v0 + VOTE_EPS), 2), smooth(VOTE_EPS / (v0 + VOTE_EPS), 2)];
    assertClose(await knnKind.predict(m, Float32Array.from([1, 0]), 1), want, 1e-9, "stored");
    assert.deepEqual(knnToJson(m), stored);
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
      [{ weights: "cosine" }, "weights"],
      [{ weights: undefined }, "weights"],
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

describe("knn size limit", () => {
  it("refuses, naming the type, a training set too large to store in head.json", () => {
    const d = 1000;
    const n = MAX_KNN_VALUES / d + 1;
    // Never allocated: the check runs before the data is read.
    const X = new Float32Array(0);
    assert.throws(
      () =>
        fitKnn(X, n, d, { task: "multiclass", y: new Int32Array(n), k: 2 }, knnKind.resolveParams({}, n, d)),
      (e: unknown) =>
        e instanceof ValidationError && e.field === "type" && /centroid, logreg or mlp/.test(e.message),
    );
  });
});
