/**
 * Numerics that don't break, checked across every registered head type: whatever a kind is given,
 * it returns a clear ValidationError or a model whose outputs are finite (never NaN weights).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import type { HeadKind, Target } from "../shared/learn/estimator.ts";
import { HEAD_KINDS } from "../shared/learn/registry.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

/** Two or three separable blobs; the target in the form the kind's task takes. */
function problem(task: HeadKind["task"], n: number, d: number, seed: number, scale = 1, offset = 0) {
  const rand = mulberry32(seed);
  const k = 3;
  const X = new Float32Array(n * d);
  const cls = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    cls[i] = i % k;
    for (let j = 0; j < d; j++) X[i * d + j] = offset + scale * ((j % k === cls[i] ? 3 : 0) + gaussian(rand));
  }
  let target: Target;
  if (task === "regression") target = { task, y: Float64Array.from(cls, (c) => c * 1.5 + 0.25) };
  else if (task === "multilabel") {
    const Y = new Uint8Array(n * k);
    for (let i = 0; i < n; i++) {
      Y[i * k + cls[i]] = 1;
      if (cls[i] === 0) Y[i * k + 1] = 1;
    }
    target = { task, Y, k };
  } else target = { task, y: cls, k };
  return { X, target, cls };
}

function width(target: Target): number {
  return target.task === "regression" ? 1 : target.k;
}

async function fitAndPredict(kind: HeadKind, X: Float32Array, n: number, d: number, target: Target) {
  const params = kind.resolveParams({}, n, d);
  const model = await kind.fit(X, n, d, target, params, { seed: 1 });
  const json = kind.toJson(model);
  const text = JSON.stringify(json);
  assert.doesNotMatch(text, /null|NaN|Infinity/, `${kind.type}: stored model has non-finite numbers`);
  const out = await kind.predict(kind.fromJson(JSON.parse(text)), X, n);
  assert.equal(out.length, n * width(target));
  for (let t = 0; t < out.length; t++)
    assert.ok(Number.isFinite(out[t]), `${kind.type}: output[${t}] = ${out[t]}`);
  return out;
}

function accuracy(out: Float64Array, target: Target, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    if (target.task === "regression")
      ok += Math.abs(out[i] - target.y[i]) < 1 ? 1 : 0; // classes sit 1.5 apart
    else if (target.task === "multilabel") {
      let all = true;
      for (let c = 0; c < target.k; c++)
        all &&= out[i * target.k + c] >= 0.5 === (target.Y[i * target.k + c] === 1);
      ok += all ? 1 : 0;
    } else {
      let best = 0;
      for (let c = 1; c < target.k; c++) if (out[i * target.k + c] > out[i * target.k + best]) best = c;
      ok += best === target.y[i] ? 1 : 0;
    }
  }
  return ok / n;
}

for (const [type, kind] of Object.entries(HEAD_KINDS)) {
  describe(`${type}: numerics`, () => {
    const n = 60;
    const d = 6;

    it("learns separable data", async () => {
      const { X, target } = problem(kind.task, n, d, 1);
      const out = await fitAndPredict(kind, X, n, d, target);
      assert.ok(accuracy(out, target, n) >= 0.9, `${type}: accuracy ${accuracy(out, target, n)}`);
    });

    it("survives zero vectors, duplicate points and constant features", async () => {
      const { X, target } = problem(kind.task, n, d, 2);
      for (let j = 0; j < d; j++) X[0 * d + j] = 0; // a zero vector
      for (let i = 0; i < n; i++) X[i * d + 5] = 0.7; // a constant feature
      X.copyWithin(10 * d, 14 * d, 15 * d); // rows 10 and 14 identical (and of different classes)
      await fitAndPredict(kind, X, n, d, target);
    });

    it("stays sane at huge feature scales and offsets", async () => {
      const { X, target } = problem(kind.task, n, d, 3, 1e6, 1e7);
      const out = await fitAndPredict(kind, X, n, d, target);
      assert.ok(
        accuracy(out, target, n) >= 0.8,
        `${type}: accuracy ${accuracy(out, target, n)} at scale 1e6`,
      );
    });

    it("rejects NaN and Inf inputs with a ValidationError", async () => {
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
        const { X, target } = problem(kind.task, n, d, 4);
        X[7 * d + 2] = bad;
        await assert.rejects(
          (async () => kind.fit(X, n, d, target, kind.resolveParams({}, n, d), { seed: 1 }))(),
          ValidationError,
          `${type} accepted ${bad}`,
        );
      }
    });

    it("is deterministic given the seed", async () => {
      const { X, target } = problem(kind.task, n, d, 5);
      const params = kind.resolveParams({}, n, d);
      const a = kind.toJson(await kind.fit(X, n, d, target, params, { seed: 9 }));
      const b = kind.toJson(await kind.fit(X, n, d, target, params, { seed: 9 }));
      assert.deepEqual(a, b);
    });
  });
}
