/**
 * Shared fixtures for the head tests: seeded blob data, an element-wise closeness assertion and a
 * round trip of one kind's `toOnnx` graph through onnxruntime.
 */
import assert from "node:assert/strict";
import { InferenceSession, Tensor } from "onnxruntime-node";
import type { HeadKind } from "../../shared/learn/estimator.ts";
import { gaussian, mulberry32 } from "../../shared/learn/split.ts";
import { encodeModel, GraphBuilder } from "../../shared/onnx/writer.ts";

export interface Blobs {
  X: Float32Array;
  y: Int32Array;
}

/**
 * k Gaussian blobs (unit noise) in d dims around random centres `spread` from the origin; rows cycle
 * classes. Each call of the returned sampler continues the same random stream, so training rows and
 * later held-out rows come from one seed without overlapping.
 */
export function blobSampler(d: number, k: number, spread: number, seed: number): (count: number) => Blobs {
  const rand = mulberry32(seed);
  const centers = Array.from({ length: k }, () => Array.from({ length: d }, () => gaussian(rand) * spread));
  return (count) => {
    const X = new Float32Array(count * d);
    const y = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      y[i] = i % k;
      for (let j = 0; j < d; j++) X[i * d + j] = centers[y[i]][j] + gaussian(rand);
    }
    return { X, y };
  };
}

/** n rows of `blobSampler(d, k, spread, seed)`: the first draw of that stream. */
export function blobs(n: number, d: number, k: number, spread: number, seed: number): Blobs {
  return blobSampler(d, k, spread, seed)(n);
}

/**
 * Same length and |actual[i] − expected[i]| ≤ tol everywhere. The message names the worst element,
 * which says more than the first one over; a NaN anywhere counts as worst and fails.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= worst)) {
      worst = diff;
      at = i;
    }
  }
  assert.ok(
    worst <= tol,
    `${what}: |Δ| ${worst} at [${at}] (${actual[at]} vs ${expected[at]}) exceeds ${tol}`,
  );
}

/**
 * The float32 output of `kind.toOnnx(model)` run in onnxruntime on n rows of X (input "x", [N, d]);
 * asserts the output is [n, width].
 */
export async function onnxHeadOutput<M>(
  kind: Pick<HeadKind<M>, "toOnnx">,
  model: M,
  X: Float32Array,
  n: number,
  d: number,
  width: number,
): Promise<Float32Array> {
  const g = new GraphBuilder("head");
  g.input("x", "float32", ["N", d]);
  const out = kind.toOnnx(model, g, "x");
  g.output(out, "float32", ["N", width]);
  const session = await InferenceSession.create(encodeModel(g));
  try {
    const res = await session.run({ x: new Tensor("float32", X, [n, d]) });
    assert.deepEqual(res[out].dims, [n, width]);
    assert.equal(res[out].type, "float32");
    return res[out].data as Float32Array;
  } finally {
    await session.release();
  }
}
