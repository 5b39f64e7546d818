import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import {
  centroidFromJson,
  centroidKind,
  centroidToJson,
  fitCentroid,
  predictCentroid,
} from "../shared/learn/centroid.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { assertClose, blobSampler, onnxHeadOutput } from "./helpers/heads.ts";

function fit(X: number[][], y: number[], scale = 10, k = Math.max(...y) + 1, sampleWeight?: number[]) {
  return fitCentroid(
    Float32Array.from(X.flat()),
    X.length,
    X[0].length,
    {
      task: "multiclass",
      y: Int32Array.from(y),
      k,
      ...(sampleWeight ? { sampleWeight: Float64Array.from(sampleWeight) } : {}),
    },
    { scale },
  );
}

describe("centroid: hand-computed", () => {
  it("centroids are re-normalized means of unit rows; p = softmax(scale · cos)", () => {
    // Class 0: (2,0) and (0,2) → unit (1,0), (0,1) → mean (½,½) → centroid (1/√2, 1/√2). Class 1: (-1,0).
    const model = fit(
      [
        [2, 0],
        [0, 2],
        [-1, 0],
      ],
      [0, 0, 1],
      10,
    );
    const r = Math.SQRT1_2;
    assertClose(model.centroids, [r, r, -1, 0], 1e-7, "centroids");
    assert.deepEqual(model.counts, [2, 1]);
    const p = predictCentroid(model, Float32Array.from([5, 0]), 1);
    // logits 10/√2 and -10 → p1 = 1 / (1 + exp(10/√2 + 10)).
    const p1 = 1 / (1 + Math.exp(10 * r + 10));
    assertClose(p, [1 - p1, p1], 1e-7, "proba");
    // (0,1) is 45° from class 0 and orthogonal to class 1: logits 10/√2 and 0.
    const q = predictCentroid(model, Float32Array.from([0, 1]), 1);
    const q1 = 1 / (1 + Math.exp(10 * r));
    assertClose(q, [1 - q1, q1], 1e-7, "proba (0,1)");
  });

  it("scale sharpens the same ranking", () => {
    const X = [
      [1, 0],
      [0.6, 0.8],
    ];
    const a = predictCentroid(fit(X, [0, 1], 1), Float32Array.from([1, 0.2]), 1);
    const b = predictCentroid(fit(X, [0, 1], 30), Float32Array.from([1, 0.2]), 1);
    assert.ok(a[0] > 0.5 && b[0] > a[0], `${a[0]} < ${b[0]}`);
    // cos to (1,0) and (0.6,0.8) of (1,0.2)/|.|: logit gap = scale · (1 - 0.76) / √1.04.
    const gap = (1 - 0.76) / Math.sqrt(1.04);
    assertClose([a[0], b[0]], [1 / (1 + Math.exp(-gap)), 1 / (1 + Math.exp(-30 * gap))], 1e-7, "gap");
  });

  it("sample weights weight the mean; a duplicate row equals weight 2", () => {
    const dup = fit(
      [
        [1, 0],
        [1, 0],
        [0, 1],
        [0, -1],
      ],
      [0, 0, 0, 1],
    );
    const weighted = fit(
      [
        [1, 0],
        [0, 1],
        [0, -1],
      ],
      [0, 0, 1],
      10,
      2,
      [2, 1, 1],
    );
    // (2·(1,0) + (0,1)) / √5
    assertClose(dup.centroids.subarray(0, 2), [2 / Math.sqrt(5), 1 / Math.sqrt(5)], 1e-7, "dup");
    assertClose(weighted.centroids, dup.centroids, 1e-7, "weighted vs dup");
  });

  it("zero vectors, absent classes and a zero query never give NaN", () => {
    // Class 1's only row is zero and class 2 has no rows: both centroids are zero (logit 0).
    const model = fit(
      [
        [1, 0],
        [0, 0],
      ],
      [0, 1],
      10,
      3,
    );
    assert.deepEqual(Array.from(model.centroids), [1, 0, 0, 0, 0, 0]);
    assert.deepEqual(model.counts, [1, 1, 0]);
    const p = predictCentroid(model, Float32Array.from([0, 0, 1, 0, -1, 0]), 3);
    assert.ok(p.every(Number.isFinite));
    assertClose(p.subarray(0, 3), [1 / 3, 1 / 3, 1 / 3], 1e-12, "zero query → uniform");
    const e = Math.exp(10);
    assertClose(p.subarray(3, 6), [e / (e + 2), 1 / (e + 2), 1 / (e + 2)], 1e-9, "query along class 0");
    assertClose(p.subarray(6, 9), [1 / (1 + 2 * e), e / (1 + 2 * e), e / (1 + 2 * e)], 1e-9, "opposite");
  });

  it("huge scales stay finite (max-subtracted softmax)", () => {
    const model = fit(
      [
        [1, 0],
        [0, 1],
      ],
      [0, 1],
      1e6,
    );
    const p = predictCentroid(model, Float32Array.from([1, 0.5]), 1);
    assert.ok(p.every(Number.isFinite));
    assertClose(p, [1, 0], 1e-12, "saturated");
  });
});

describe("centroid: few-shot learning", () => {
  for (const shots of [1, 2]) {
    it(`${shots} example(s) per class on separable blobs give high accuracy`, async () => {
      const k = 6;
      const d = 32;
      const draw = blobSampler(d, k, 5, 17);
      const train = draw(shots * k);
      const test = draw(600);
      const p = centroidKind.resolveParams({}, shots * k, d);
      const model = await centroidKind.fit(train.X, shots * k, d, { task: "multiclass", y: train.y, k }, p, {
        seed: 1,
      });
      const pred = argmaxRows(await centroidKind.predict(model, test.X, 600), 600, k);
      let ok = 0;
      for (let i = 0; i < 600; i++) if (pred[i] === test.y[i]) ok++;
      assert.ok(ok / 600 >= 0.95, `accuracy ${ok / 600}`);
    });
  }

  it("is deterministic", () => {
    const draw = blobSampler(8, 3, 2, 4);
    const t = draw(30);
    const fitOnce = () => fitCentroid(t.X, 30, 8, { task: "multiclass", y: t.y, k: 3 }, { scale: 10 });
    assert.deepEqual(centroidToJson(fitOnce()), centroidToJson(fitOnce()));
  });
});

describe("centroid: export, validation, JSON", () => {
  it("toOnnx equals predict within 1e-5 on random and edge rows", async () => {
    const rand = mulberry32(9);
    const d = 24;
    const k = 5;
    const n = 80;
    const X = Float32Array.from({ length: n * d }, () => gaussian(rand));
    const y = Int32Array.from({ length: n }, (_, i) => i % k);
    for (const scale of [1, 10, 30]) {
      const model = fitCentroid(X, n, d, { task: "multiclass", y, k }, { scale });
      const Q = Float32Array.from({ length: 100 * d }, () => gaussian(rand));
      Q.fill(0, 0, d); // zero row
      for (let j = 0; j < d; j++) {
        Q[d + j] = Q[d + j] * 1e30; // would overflow a float32 sum of squares
        Q[2 * d + j] = Q[2 * d + j] * 1e-30; // would underflow it
        Q[3 * d + j] = X[j]; // a training row
      }
      const got = await onnxHeadOutput(centroidKind, model, Q, 100, model.d, model.k);
      assertClose(got, predictCentroid(model, Q, 100), 1e-5, `scale ${scale}`);
    }
  });

  it("rejects NaN / infinite inputs and bad labels naming the field", () => {
    const model = fit(
      [
        [1, 0],
        [0, 1],
      ],
      [0, 1],
    );
    assert.throws(
      () => predictCentroid(model, Float32Array.from([1, 0, Number.NaN, 0]), 2),
      (e: unknown) => e instanceof ValidationError && e.field === "X[1]",
    );
    assert.throws(
      () => fit([[1, Number.NEGATIVE_INFINITY]], [0]),
      (e: unknown) => e instanceof ValidationError && e.field === "X[0]",
    );
    assert.throws(
      () => fit([[1, 0]], [3], 10, 2),
      (e: unknown) => e instanceof ValidationError && e.field === "y[0]",
    );
  });

  it("params: default, unknown keys, bad scale; grid of valid params", () => {
    assert.deepEqual(centroidKind.resolveParams({}, 10, 4), { scale: 10 });
    assert.throws(
      () => centroidKind.resolveParams({ temperature: 1 }, 10, 4),
      (e: unknown) =>
        e instanceof ValidationError && e.field === "params.temperature" && /valid: scale/.test(e.message),
    );
    for (const scale of [0, -1, "x", Number.NaN]) {
      assert.throws(
        () => centroidKind.resolveParams({ scale }, 10, 4),
        (e: unknown) => e instanceof ValidationError && e.field === "params.scale",
        String(scale),
      );
    }
    const grid = centroidKind.grid(10, 4);
    assert.deepEqual(grid, [{ scale: 10 }]);
    for (const p of grid) assert.deepEqual(centroidKind.resolveParams(p, 10, 4), p);
  });

  it("JSON round trip predicts identically", async () => {
    const draw = blobSampler(6, 3, 2, 2);
    const t = draw(12);
    const model = fitCentroid(t.X, 12, 6, { task: "multiclass", y: t.y, k: 3 }, { scale: 7.5 });
    const back = centroidKind.fromJson(JSON.parse(JSON.stringify(centroidKind.toJson(model))));
    assert.deepEqual(back, model);
    const q = draw(5).X;
    assert.deepEqual(await centroidKind.predict(back, q, 5), await centroidKind.predict(model, q, 5));
  });

  it("fromJson rejects malformed payloads naming the field", () => {
    const good = centroidToJson(
      fit(
        [
          [1, 0],
          [0, 1],
        ],
        [0, 1],
      ),
    );
    const nan = Buffer.from(new Float32Array([1, 0, Number.NaN, 1]).buffer).toString("base64");
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ type: "knn" }, "type"],
      [{ version: 0 }, "version"],
      [{ k: 1.5 }, "k"],
      [{ scale: 0 }, "scale"],
      [{ scale: "10" }, "scale"],
      [{ centroids: "not base64!" }, "centroids"],
      [{ centroids: good.centroids.slice(0, 8) }, "centroids"],
      [{ centroids: nan }, "centroids"],
      [{ centroids: Buffer.from(new Float32Array([2, 0, 0, 1]).buffer).toString("base64") }, "centroids"],
      [{ counts: [1] }, "counts"],
      [{ counts: [1, -1] }, "counts"],
    ];
    for (const [patch, field] of cases) {
      assert.throws(
        () => centroidFromJson({ ...good, ...patch }),
        (e: unknown) => e instanceof ValidationError && e.field === field,
        JSON.stringify(patch),
      );
    }
  });
});
