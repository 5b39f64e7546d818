/**
 * Checks and conversions every head type needs: input matrices, fit targets, head.json number
 * fields, float32 ⇄ base64, row softmax and unit rows. One version of each, so that the head types
 * reject bad input with the same messages and fields.
 */
import { endianness } from "node:os";
import { ValidationError } from "../errors.ts";
import type { GraphBuilder } from "../onnx/writer.ts";
import type { HeadTask, Target } from "./estimator.ts";

// ---- input matrices ---------------------------------------------------------------------------------

/** Throws unless n and d are valid sizes and X holds n×d values. */
export function checkMatrixShape(X: ArrayLike<number>, n: number, d: number, name = "X"): void {
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError("n must be a non-negative integer", { field: "n" });
  if (!Number.isInteger(d) || d < 1)
    throw new ValidationError("d must be a positive integer", { field: "d" });
  if (X.length !== n * d) {
    throw new ValidationError(`${name} has ${X.length} values, expected n*d = ${n * d}`, { field: name });
  }
}

/** Throws unless n is a non-negative integer and X holds n×d values; one message for either. */
export function checkRowCount(X: ArrayLike<number>, n: number, d: number): void {
  if (!Number.isInteger(n) || n < 0 || X.length !== n * d) {
    throw new ValidationError(`X has ${X.length} values, expected n*d = ${n * d}`, { field: "X" });
  }
}

/**
 * `checkMatrixShape`, then throws at the first non-finite cell, naming it in the message. The error's
 * field is the matrix (`X`), or with `rowField` its row (`X[3]`).
 */
export function checkFiniteMatrix(
  X: ArrayLike<number>,
  n: number,
  d: number,
  opts: { name?: string; rowField?: boolean } = {},
): void {
  const name = opts.name ?? "X";
  checkMatrixShape(X, n, d, name);
  for (let t = 0; t < X.length; t++) {
    if (!Number.isFinite(X[t])) {
      const i = Math.floor(t / d);
      throw new ValidationError(`${name}[${i}, ${t - i * d}] is ${X[t]}; embeddings must be finite`, {
        field: opts.rowField ? `${name}[${i}]` : name,
      });
    }
  }
}

// ---- fit targets ------------------------------------------------------------------------------------

/** Throws a ValidationError (field "task") unless `target` is a `task` target. */
export function expectTask<T extends HeadTask>(
  target: Target,
  task: T,
  type: string,
): asserts target is Extract<Target, { task: T }> {
  if (target.task !== task) {
    throw new ValidationError(`${type} fits ${task} targets`, { field: "task" });
  }
}

/** Throws unless y holds n class indices in 0..k-1 and k ≥ minClasses. */
export function checkClassLabels(y: Int32Array, n: number, k: number, minClasses: number): void {
  if (!Number.isInteger(k) || k < minClasses) {
    throw new ValidationError(`k must be an integer >= ${minClasses}`, { field: "k" });
  }
  if (y.length !== n)
    throw new ValidationError(`y has ${y.length} labels, expected n = ${n}`, { field: "y" });
  for (let i = 0; i < n; i++) {
    const v = y[i];
    if (v < 0 || v >= k)
      throw new ValidationError(`y[${i}] = ${v} is outside 0..${k - 1}`, { field: `y[${i}]` });
  }
}

/**
 * Throws unless sampleWeight holds n finite values >= 0 (and, with `positiveTotal`, a positive sum).
 * Returns the sum, taken in row order.
 */
export function checkSampleWeights(sampleWeight: Float64Array, n: number, positiveTotal: boolean): number {
  if (sampleWeight.length !== n) {
    throw new ValidationError(`sampleWeight has ${sampleWeight.length} values, expected n = ${n}`, {
      field: "sampleWeight",
    });
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const w = sampleWeight[i];
    if (!(w >= 0) || !Number.isFinite(w)) {
      throw new ValidationError(`sampleWeight[${i}] must be finite and >= 0`, {
        field: `sampleWeight[${i}]`,
      });
    }
    total += w;
  }
  if (positiveTotal && !(total > 0))
    throw new ValidationError("sampleWeight sums to zero", { field: "sampleWeight" });
  return total;
}

/**
 * The validated labels and optional sample weights of a multiclass fit. A single class is allowed and
 * the weights may all be zero: heads that cannot fit those check for them themselves.
 */
export function checkMulticlassTarget(
  target: Target,
  n: number,
  type: string,
): { y: Int32Array; k: number; sampleWeight?: Float64Array } {
  expectTask(target, "multiclass", type);
  const { y, k, sampleWeight } = target;
  checkClassLabels(y, n, k, 1);
  if (sampleWeight) checkSampleWeights(sampleWeight, n, false);
  return { y, k, ...(sampleWeight ? { sampleWeight } : {}) };
}

// ---- head.json fields -------------------------------------------------------------------------------

/** A JSON array of exactly `len` finite numbers, as float64. */
export function finiteArray(v: unknown, len: number, field: string): Float64Array {
  if (!Array.isArray(v) || v.length !== len) {
    throw new ValidationError(`${field} must be an array of ${len} numbers`, { field });
  }
  const out = new Float64Array(len);
  for (let i = 0; i < len; i++) {
    const x = v[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw new ValidationError(`${field}[${i}] must be a finite number`, { field });
    }
    out[i] = x;
  }
  return out;
}

/** The finite number o[name]. */
export function finiteNumber(o: Record<string, unknown>, name: string): number {
  const v = o[name];
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new ValidationError(`${name} must be a finite number`, { field: name });
  return v;
}

/** The integer o[name] >= min. */
export function integerAtLeast(o: Record<string, unknown>, name: string, min: number): number {
  const v = o[name];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new ValidationError(`${name} must be an integer >= ${min}`, { field: name });
  }
  return v;
}

function assertLittleEndian(): void {
  if (endianness() !== "LE") throw new ValidationError("float32 base64 fields need a little-endian host");
}

/**
 * Base64 of the little-endian float32 bytes: exact, and about a third of the size of decimal text.
 * The one encoding head.json files are written with.
 */
export function float32ToBase64(a: Float32Array): string {
  assertLittleEndian();
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
}

/** Standard padded base64; Buffer would silently skip any other character, so strings are checked first. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * `length` finite float32 values from a head.json field: a `float32ToBase64` string or, as older
 * mlp heads allowed, a plain array of numbers (rounded to float32, so values beyond its range fail).
 */
export function float32FromJson(v: unknown, length: number, field: string): Float32Array {
  let out: Float32Array;
  if (typeof v === "string") {
    if (!BASE64.test(v)) throw new ValidationError(`${field} is not valid base64`, { field });
    assertLittleEndian();
    const bytes = Buffer.from(v, "base64");
    if (bytes.length !== length * 4) {
      throw new ValidationError(`${field} holds ${bytes.length / 4} float32 values, expected ${length}`, {
        field,
      });
    }
    // Copy: Buffer slices from the pool need not be 4-byte aligned for a Float32Array view.
    out = new Float32Array(length);
    new Uint8Array(out.buffer).set(bytes);
  } else if (Array.isArray(v)) {
    if (v.length !== length) throw new ValidationError(`${field} must hold ${length} numbers`, { field });
    out = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      if (typeof v[i] !== "number") throw new ValidationError(`${field}[${i}] must be a number`, { field });
      out[i] = v[i];
    }
  } else {
    throw new ValidationError(`${field} must be a base64 string or an array of numbers`, { field });
  }
  for (let i = 0; i < length; i++) {
    if (!Number.isFinite(out[i])) throw new ValidationError(`${field}[${i}] is not finite`, { field });
  }
  return out;
}

// ---- softmax ----------------------------------------------------------------------------------------

/** Row-wise max-subtracted softmax of n×k logits, in place (float64). */
export function softmaxRowsInPlace(L: Float64Array, n: number, k: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let zmax = L[o];
    for (let c = 1; c < k; c++) if (L[o + c] > zmax) zmax = L[o + c];
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(L[o + c] - zmax);
      L[o + c] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let c = 0; c < k; c++) L[o + c] *= inv;
  }
}

// ---- unit rows (cosine heads) -----------------------------------------------------------------------

/**
 * The d values at src[srcOff..] scaled to unit L2 norm, written as float32 at out[outOff..]. The norm
 * is taken in float64, where squares of float32 values can neither overflow nor underflow; a zero row
 * stays zero.
 */
export function normalizeRow(
  src: Float32Array,
  srcOff: number,
  d: number,
  out: Float32Array,
  outOff: number,
): void {
  let ss = 0;
  for (let j = 0; j < d; j++) ss += src[srcOff + j] * src[srcOff + j];
  const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  for (let j = 0; j < d; j++) out[outOff + j] = src[srcOff + j] * inv;
}

/**
 * ONNX nodes for the same normalization: x is first divided by its row's max |x| so the float32
 * sum of squares can neither overflow nor underflow, then by the L2 norm. Each divisor is floored at
 * the smallest normal float32, which leaves a zero row zero instead of NaN. (Rows made only of
 * denormals may be flushed to zero by the runtime; predict in JS would still normalize them.)
 */
export function onnxNormalizeRows(g: GraphBuilder, input: string, prefix: string): string {
  const tiny = g.constant("float32", [1.1754943508222875e-38], []);
  const [abs] = g.node("Abs", [input], 1);
  const [maxAbs] = g.node("ReduceMax", [abs], 1, { axes: [1], keepdims: 1 });
  const [d1] = g.node("Max", [maxAbs, tiny], 1);
  const [scaled] = g.node("Div", [input, d1], 1);
  const [ss] = g.node("ReduceSumSquare", [scaled], 1, { axes: [1], keepdims: 1 });
  const [norm] = g.node("Sqrt", [ss], 1);
  const [d2] = g.node("Max", [norm, tiny], 1);
  const [unit] = g.node("Div", [scaled, d2], [g.fresh(`${prefix}_unit`)]);
  return unit;
}

/** Rows must be unit length (or zero): predict and the ONNX graphs of the cosine heads rely on it. */
export function checkUnitRows(v: Float32Array, n: number, d: number, field: string): void {
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += v[i * d + j] * v[i * d + j];
    if (ss !== 0 && Math.abs(Math.sqrt(ss) - 1) > 1e-3) {
      throw new ValidationError(`${field} row ${i} is not unit length (norm ${Math.sqrt(ss)})`, { field });
    }
  }
}

/**
 * out[i·k + c] = W[c] · X[i] + b[c] for a k×d row-major W: every linear head's logits. Two partial
 * sums per dot product let the CPU overlap the multiply-adds (the summation order is part of the
 * result: heads and their tests rely on it staying fixed).
 */
export function affineRows(
  weights: ArrayLike<number>,
  bias: ArrayLike<number>,
  X: ArrayLike<number>,
  n: number,
  d: number,
  k: number,
): Float64Array {
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const off = i * d;
    for (let c = 0; c < k; c++) {
      const wo = c * d;
      let s0 = 0;
      let s1 = 0;
      let j = 0;
      for (; j + 1 < d; j += 2) {
        s0 += weights[wo + j] * X[off + j];
        s1 += weights[wo + j + 1] * X[off + j + 1];
      }
      if (j < d) s0 += weights[wo + j] * X[off + j];
      out[i * k + c] = s0 + s1 + bias[c];
    }
  }
  return out;
}
