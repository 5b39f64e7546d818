import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { maskedMeanModel, sifDirection, sifWeights } from "../shared/backbone/glove.ts";
import { ValidationError } from "../shared/errors.ts";
import { assertClose } from "./helpers/heads.ts";

const TOL = 1e-5;
const DIM = 3;
// Five words; word 4 is all-negative so a max that let padding (zeros) in would be caught.
const MATRIX = Float32Array.from([1, 2, 3, -1, 0, 4, 0.5, -2, 1, 2, 2, -3, -5, -6, -7]);

/** Runs a pooling model on id lists padded with id 0 (mask 0). */
async function pool(model: Uint8Array, lists: number[][]): Promise<{ data: Float32Array; dim: number }> {
  const s = await InferenceSession.create(model);
  const seq = Math.max(1, ...lists.map((l) => l.length));
  const ids = new BigInt64Array(lists.length * seq);
  const mask = new BigInt64Array(lists.length * seq);
  lists.forEach((l, b) => {
    l.forEach((id, p) => {
      ids[b * seq + p] = BigInt(id);
      mask[b * seq + p] = 1n;
    });
  });
  const out = await s.run({
    input_ids: new Tensor("int64", ids, [lists.length, seq]),
    attention_mask: new Tensor("int64", mask, [lists.length, seq]),
  });
  const y = out.embeddings as Tensor;
  return { data: y.data as Float32Array, dim: y.dims[1] as number };
}

const row = (id: number) => Array.from(MATRIX.subarray(id * DIM, (id + 1) * DIM));

describe("word-vector pooling variants", () => {
  test("mean-max: mean ⊕ per-dimension max of the real tokens; an empty text is zeros", async () => {
    const model = maskedMeanModel({ matrix: MATRIX, vocabSize: 5, dim: DIM, pooling: "mean-max" });
    const { data, dim } = await pool(model, [[4], [1, 2, 4], []]);
    assert.equal(dim, 2 * DIM);
    // A single all-negative token: padding positions (zeros) must not win the max.
    assertClose(Array.from(data.subarray(0, 6)), [...row(4), ...row(4)], TOL, "pooled");
    const mean = [0, 1, 2].map((k) => (row(1)[k]! + row(2)[k]! + row(4)[k]!) / 3);
    const max = [0, 1, 2].map((k) => Math.max(row(1)[k]!, row(2)[k]!, row(4)[k]!));
    assertClose(Array.from(data.subarray(6, 12)), [...mean, ...max], TOL, "pooled");
    assertClose(Array.from(data.subarray(12, 18)), [0, 0, 0, 0, 0, 0], 0, "empty text");
  });

  test("sif: weighted mean minus its projection on the removed direction", async () => {
    const w = Float32Array.from([0.1, 0.5, 1, 0.25, 2]);
    const u = Float32Array.from([0.6, 0, 0.8]);
    const model = maskedMeanModel({
      matrix: MATRIX,
      vocabSize: 5,
      dim: DIM,
      pooling: "sif",
      tokenWeights: w,
      removeDirection: u,
    });
    const { data } = await pool(model, [[1, 3], []]);
    const m = [0, 1, 2].map((k) => (w[1]! * row(1)[k]! + w[3]! * row(3)[k]!) / 2);
    const dot = m[0]! * u[0]! + m[1]! * u[1]! + m[2]! * u[2]!;
    const expected = m.map((v, k) => v - dot * u[k]!);
    assertClose(Array.from(data.subarray(0, 3)), expected, TOL, "pooled");
    const along = expected[0]! * u[0]! + expected[1]! * u[1]! + expected[2]! * u[2]!;
    assert.ok(Math.abs(along) < 1e-6, "nothing is left along the removed direction");
    assertClose(Array.from(data.subarray(3, 6)), [0, 0, 0], 0, "empty text");
  });

  test("sif needs its weights and direction; unknown poolings are refused", () => {
    assert.throws(
      () => maskedMeanModel({ matrix: MATRIX, vocabSize: 5, dim: DIM, pooling: "sif" }),
      ValidationError,
    );
  });

  test("sifWeights damp frequent (low-rank) words and approach 1 for rare ones", () => {
    const w = sifWeights(100_000);
    assert.ok(w[0]! < 0.05, `the most frequent word weighs ${w[0]}`);
    for (let r = 1; r < w.length; r += 997) assert.ok(w[r]! >= w[r - 1]!, "non-decreasing with rank");
    assert.ok(w[w.length - 1]! > 0.99);
  });

  test("sifDirection is the unit top eigenvector of the frequency-weighted second moment", () => {
    // Every word lies along ±(1, 2, 2)/3 plus a small orthogonal part: that axis must come out.
    const n = 50;
    const m = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const a = (i % 2 ? -1 : 1) * (1 + i / n);
      const e = 0.05 * Math.sin(i);
      m.set([a / 3 + 2 * e, (2 * a) / 3 - e, (2 * a) / 3], i * 3);
    }
    const u = sifDirection(m, n, 3, new Float32Array(n).fill(1));
    const norm = Math.hypot(u[0]!, u[1]!, u[2]!);
    assert.ok(Math.abs(norm - 1) < 1e-6);
    const cos = Math.abs((u[0]! + 2 * u[1]! + 2 * u[2]!) / 3);
    assert.ok(cos > 0.999, `cosine with the dominant axis ${cos}`);
  });
});
