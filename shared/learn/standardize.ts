/**
 * Per-feature standardization for head training. Heads fit on z = (x - mean) / scale and fold the
 * transform back into their weights, so mean and scale only precondition the problem; what matters
 * is that training uses exactly the values the fold-back uses.
 */

import { ValidationError } from "../errors.ts";
import type { InferenceSession } from "../onnx/ort-graph.ts";
import { f32, graphSession } from "../onnx/ort-graph.ts";
import { GraphBuilder } from "../onnx/writer.ts";
import { checkMatrixShape } from "./numeric.ts";

/**
 * Scale from a feature's mean and sum of squared deviations. Constant features get scale 1
 * (scikit-learn's rule): a variance within rounding noise of zero would otherwise blow noise up
 * to unit scale.
 */
export function scaleFromMoments(mean: number, m2: number, n: number): number {
  const eps = 2.220446049250313e-16;
  const v = m2 / n;
  const bound = n * eps * v + (n * mean * eps) ** 2;
  return v <= bound ? 1 : Math.sqrt(v);
}

/**
 * Per-feature mean and population standard deviation, in float64 with a two-pass variance.
 * Constant features get scale 1 (see `scaleFromMoments`).
 */
export function standardizationStats(
  X: Float32Array | Float64Array,
  n: number,
  d: number,
): { mean: Float64Array; scale: Float64Array } {
  checkMatrixShape(X, n, d);
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  if (n === 0) {
    scale.fill(1);
    return { mean, scale };
  }
  for (let i = 0; i < n; i++) {
    const off = i * d;
    for (let j = 0; j < d; j++) mean[j] += X[off + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= n;
  const m2 = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const off = i * d;
    for (let j = 0; j < d; j++) {
      const c = X[off + j] - mean[j];
      m2[j] += c * c;
    }
  }
  for (let j = 0; j < d; j++) {
    if (!Number.isFinite(m2[j]))
      throw new ValidationError(`feature ${j} has non-finite values`, { field: "X" });
    scale[j] = scaleFromMoments(mean[j], m2[j], n);
  }
  return { mean, scale };
}

type Vector = Float32Array | Float64Array;

export interface StandardizeOptions {
  /** Row stride of `out` (default d): the SIMD kernels pad rows to a multiple of 4. */
  stride?: number;
  /**
   * "float32" (default): z = fround(fround(x − mean) · inv), exactly onnxruntime's float32 Sub then
   * Mul (a float64 result of one operation on two float32 values rounds to the correctly rounded
   * float32 result), so a JS copy equals what the graphs compute; mean and inv are float32 values.
   * "float64": z computed in float64 and rounded once when stored, and a non-finite z is rejected
   * (ValidationError naming X[i, j]).
   */
  precision?: "float32" | "float64";
}

/**
 * z = (x − mean) · inv for the n×d rows of X into `out`. Into a float32 `out` this is half the memory
 * of float64, and the rounding (~1e-7 relative) is far below what a fitted head can resolve; math on
 * z runs in float64.
 */
export function standardizeInto(
  X: Vector,
  n: number,
  d: number,
  mean: Vector,
  inv: Vector,
  out: Vector,
  opts: StandardizeOptions = {},
): void {
  const job: StandardizeJob = { X, n, d, mean, inv, out, stride: opts.stride ?? d };
  // Two loops rather than one with a branch per value: the branch costs ~20% on this pass.
  if (opts.precision === "float64") standardizeChecked(job);
  else standardizeLikeOnnx(job);
}

interface StandardizeJob {
  X: Vector;
  n: number;
  d: number;
  mean: Vector;
  inv: Vector;
  out: Vector;
  stride: number;
}

function standardizeLikeOnnx(job: StandardizeJob): void {
  const { X, n, d, mean, inv, out, stride } = job;
  for (let i = 0; i < n; i++) {
    const off = i * d;
    const zo = i * stride;
    for (let j = 0; j < d; j++) out[zo + j] = Math.fround(Math.fround(X[off + j] - mean[j]) * inv[j]);
  }
}

function standardizeChecked(job: StandardizeJob): void {
  const { X, n, d, mean, inv, out, stride } = job;
  for (let i = 0; i < n; i++) {
    const off = i * d;
    const zo = i * stride;
    for (let j = 0; j < d; j++) {
      const v = (X[off + j] - mean[j]) * inv[j];
      if (!Number.isFinite(v)) throw new ValidationError(`X[${i}, ${j}] is not finite`, { field: "X" });
      out[zo + j] = v;
    }
  }
}

/** Rows per onnxruntime call: bounds the float64 intermediates to a few MB. */
const BLOCK_ROWS = 2048;

function buildMomentsGraph(): GraphBuilder {
  const g = new GraphBuilder("column_moments");
  g.input("X", "float32", ["m", "d"]);
  g.input("shift", "float32", ["d"]);
  const [diff] = g.node("Sub", ["X", "shift"]);
  const [wide] = g.node("Cast", [diff], 1, { to: 11 }); // float64: sums over many rows stay exact enough
  const axis0 = g.constant("int64", [0]);
  g.node("ReduceSum", [wide, axis0], ["s1"], { keepdims: 0 });
  const [sq] = g.node("Mul", [wide, wide]);
  g.node("ReduceSum", [sq, axis0], ["s2"], { keepdims: 0 });
  g.output("s1", "float64", ["d"]);
  g.output("s2", "float64", ["d"]);
  return g;
}

function buildStandardizeGraph(): GraphBuilder {
  const g = new GraphBuilder("standardize");
  g.input("X", "float32", ["m", "d"]);
  g.input("mean", "float32", ["d"]);
  g.input("inv", "float32", ["d"]);
  const [centered] = g.node("Sub", ["X", "mean"]);
  g.node("Mul", [centered, "inv"], ["Z"]);
  g.output("Z", "float32", ["m", "d"]);
  return g;
}

function firstNonFinite(X: Float32Array, n: number, d: number, j: number): number {
  for (let i = 0; i < n; i++) if (!Number.isFinite(X[i * d + j])) return i;
  return -1;
}

export interface Standardized {
  /** Exactly the values used to build Z (float32-representable), in float64. */
  mean: Float64Array;
  scale: Float64Array;
  /** 1 / scale rounded to float32: what Z was multiplied by. */
  invScale: Float64Array;
  /** n×d standardized copy. */
  Z: Float32Array;
}

/**
 * Statistics and the standardized copy computed in onnxruntime, block by block (multi-threaded,
 * float64 sums). Non-finite inputs are reported by row and column.
 */
export async function standardizeOnnx(X: Float32Array, n: number, d: number): Promise<Standardized> {
  if (X.length !== n * d) {
    throw new ValidationError(`X has ${X.length} values, expected n*d = ${n * d}`, { field: "X" });
  }
  if (n < 1) throw new ValidationError("cannot standardize zero rows", { field: "n" });
  const moments = await graphSession("heads-column-moments", buildMomentsGraph);
  // Shifting by the first row keeps the float64 variance free of cancellation for offset features.
  const shift = X.slice(0, d);
  const s1 = new Float64Array(d);
  const s2 = new Float64Array(d);
  const shiftTensor = f32(shift, [d]);
  for (let start = 0; start < n; start += BLOCK_ROWS) {
    const m = Math.min(BLOCK_ROWS, n - start);
    const out = await moments.run({
      X: f32(X.subarray(start * d, (start + m) * d), [m, d]),
      shift: shiftTensor,
    });
    const b1 = out.s1.data as Float64Array;
    const b2 = out.s2.data as Float64Array;
    for (let j = 0; j < d; j++) {
      s1[j] += b1[j];
      s2[j] += b2[j];
    }
  }
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  const invScale = new Float64Array(d);
  const mean32 = new Float32Array(d);
  const inv32 = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    if (!Number.isFinite(s1[j]) || !Number.isFinite(s2[j])) {
      const i = firstNonFinite(X, n, d, j);
      throw new ValidationError(
        i >= 0 ? `X[${i}, ${j}] is not finite` : `feature ${j} is too large to standardize in float32`,
        { field: "X" },
      );
    }
    const dm = s1[j] / n;
    mean32[j] = shift[j] + dm;
    mean[j] = mean32[j];
    scale[j] = scaleFromMoments(mean[j], Math.max(0, s2[j] - s1[j] * dm), n);
    inv32[j] = 1 / scale[j];
    invScale[j] = inv32[j];
  }
  const standardize: InferenceSession = await graphSession("heads-standardize", buildStandardizeGraph);
  const Z = new Float32Array(n * d);
  const meanTensor = f32(mean32, [d]);
  const invTensor = f32(inv32, [d]);
  for (let start = 0; start < n; start += BLOCK_ROWS) {
    const m = Math.min(BLOCK_ROWS, n - start);
    // Written straight into Z (a pre-allocated output), so no block is copied or left for the GC.
    await standardize.run(
      { X: f32(X.subarray(start * d, (start + m) * d), [m, d]), mean: meanTensor, inv: invTensor },
      { Z: f32(Z.subarray(start * d, (start + m) * d), [m, d]) },
    );
  }
  return { mean, scale, invScale, Z };
}
