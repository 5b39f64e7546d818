/**
 * The logistic-regression loss, apart from the solver (as scikit-learn keeps `_linear_loss.py` apart
 * from `_logistic.py`): the penalized multinomial objective over standardized inputs z,
 *
 *   J(W, b) = Σ_i w_i · CE(softmax(W z_i + b), y_i) / Σ_i w_i  +  (l2 / 2) · ||W||²,
 *
 * and its gradient, as functions θ ↦ J (writing ∂J/∂θ) for L-BFGS, with θ = [W (k×d row-major), b (k)].
 * One row's softmax cross-entropy and its gradient are defined once (`softmaxCrossEntropyRow`); three
 * engines evaluate J around it:
 *
 *   makeLogRegObjective            plain JS, float64 throughout (also the reference in tests);
 *   makeKernelMultinomialObjective the WebAssembly SIMD kernels (logistic-kernel-wasm.ts) for the two
 *                                  products, float64 sums; makeKernelBinomialObjective is the k = 2
 *                                  case in binomial form (half the parameters and work);
 *   makeOnnxMultinomialObjective   onnxruntime's multi-threaded GEMMs for large multinomial problems.
 */

import { ValidationError } from "../errors.ts";
import { f32, graphSession, runGraph } from "../onnx/ort-graph.ts";
import { GraphBuilder } from "../onnx/writer.ts";
import type { AsyncObjectiveFn, ObjectiveFn } from "./lbfgs.ts";
import { KernelWorkspace } from "./logistic-kernel-wasm.ts";
import { checkMatrixShape } from "./numeric.ts";

export type Matrix = Float32Array | Float64Array;

/** 1 / Σ_i w_i (1 / n without weights), or 0 when the weights sum to 0. */
function inverseWeightTotal(sampleWeight: Float64Array | undefined, n: number): number {
  const wSum = sampleWeight ? sampleWeight.reduce((a, b) => a + b, 0) : n;
  return wSum > 0 ? 1 / wSum : 0;
}

/**
 * Softmax cross-entropy of one row: the logits are L[base..base+k) plus the bias θ[kd..kd+k). Returns
 * w_i · CE and overwrites L[base..base+k) with the row's gradient with respect to its logits,
 * (softmax − onehot(y_i)) · w_i / Σw.
 *
 * CE = log Σ exp(z - zmax) + zmax - z_y is taken from the logit, not log(p_y), so a confidently
 * wrong row costs its true (large) loss instead of underflowing to -log(0).
 */
export function softmaxCrossEntropyRow(
  L: Float64Array,
  base: number,
  k: number,
  theta: Float64Array,
  kd: number,
  yi: number,
  wi: number,
  invW: number,
): number {
  let zmax = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < k; c++) {
    const z = L[base + c] + theta[kd + c];
    L[base + c] = z;
    if (z > zmax) zmax = z;
  }
  const zy = L[base + yi];
  let sumExp = 0;
  for (let c = 0; c < k; c++) {
    const e = Math.exp(L[base + c] - zmax);
    L[base + c] = e;
    sumExp += e;
  }
  const sc = (wi * invW) / sumExp;
  for (let c = 0; c < k; c++) L[base + c] *= sc;
  L[base + yi] -= wi * invW;
  return wi * (Math.log(sumExp) + zmax - zy);
}

// ---- Plain JS ----------------------------------------------------------------------------------------

/** The data and scratch one JS evaluation works on. */
interface JsLossData {
  Z: Matrix;
  d: number;
  k: number;
  y: Int32Array;
  sampleWeight?: Float64Array;
  invW: number;
  /** Logits (bias not yet added), then residuals (p - onehot) · w_i / Σw, for a block of up to 4 rows. */
  L: Float64Array;
}

/**
 * Rows i..i+3: logits into L, each row's loss added to `loss` in row order (the summation order is
 * part of the result), then their residuals times their inputs added to grad. Four rows at a time:
 * each weight (and gradient) element loaded once serves four rows, which roughly halves the time of
 * this memory-bound loop compared with row-at-a-time dot products.
 */
function addFourRows(
  s: JsLossData,
  theta: Float64Array,
  grad: Float64Array,
  i: number,
  loss: number,
): number {
  const { Z, d, k, y, sampleWeight: sw, invW, L } = s;
  const kd = k * d;
  const o0 = i * d;
  const o1 = o0 + d;
  const o2 = o1 + d;
  const o3 = o2 + d;
  for (let c = 0; c < k; c++) {
    const wo = c * d;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < d; j++) {
      const w = theta[wo + j];
      s0 += w * Z[o0 + j];
      s1 += w * Z[o1 + j];
      s2 += w * Z[o2 + j];
      s3 += w * Z[o3 + j];
    }
    L[c] = s0;
    L[k + c] = s1;
    L[2 * k + c] = s2;
    L[3 * k + c] = s3;
  }
  loss += softmaxCrossEntropyRow(L, 0, k, theta, kd, y[i], sw ? sw[i] : 1, invW);
  loss += softmaxCrossEntropyRow(L, k, k, theta, kd, y[i + 1], sw ? sw[i + 1] : 1, invW);
  loss += softmaxCrossEntropyRow(L, 2 * k, k, theta, kd, y[i + 2], sw ? sw[i + 2] : 1, invW);
  loss += softmaxCrossEntropyRow(L, 3 * k, k, theta, kd, y[i + 3], sw ? sw[i + 3] : 1, invW);
  for (let c = 0; c < k; c++) {
    const r0 = L[c];
    const r1 = L[k + c];
    const r2 = L[2 * k + c];
    const r3 = L[3 * k + c];
    const go = c * d;
    for (let j = 0; j < d; j++) {
      grad[go + j] += r0 * Z[o0 + j] + r1 * Z[o1 + j] + r2 * Z[o2 + j] + r3 * Z[o3 + j];
    }
    grad[kd + c] += r0 + r1 + r2 + r3;
  }
  return loss;
}

/** Row i alone (the n mod 4 rows after the last block of four). */
function lossOneRow(s: JsLossData, theta: Float64Array, grad: Float64Array, i: number): number {
  const { Z, d, k, y, sampleWeight: sw, invW, L } = s;
  const kd = k * d;
  const off = i * d;
  for (let c = 0; c < k; c++) {
    const wo = c * d;
    let sum = 0;
    for (let j = 0; j < d; j++) sum += theta[wo + j] * Z[off + j];
    L[c] = sum;
  }
  const loss = softmaxCrossEntropyRow(L, 0, k, theta, kd, y[i], sw ? sw[i] : 1, invW);
  for (let c = 0; c < k; c++) {
    const r = L[c];
    const go = c * d;
    for (let j = 0; j < d; j++) grad[go + j] += r * Z[off + j];
    grad[kd + c] += r;
  }
  return loss;
}

/** grad[t] += l2 · θ[t] for the kd weights; returns (l2 / 2) · ||W||². */
function addL2Penalty(theta: Float64Array, grad: Float64Array, kd: number, l2: number): number {
  let pen = 0;
  for (let t = 0; t < kd; t++) {
    const w = theta[t];
    pen += w * w;
    grad[t] += l2 * w;
  }
  return 0.5 * l2 * pen;
}

/**
 * The penalized objective J over parameters θ = [W (k×d row-major), b (k)] on already standardized
 * inputs `Z`. Exposed for gradient checks; `fitLogReg` is the normal entry point. The returned
 * function allocates nothing per call.
 */
export function makeLogRegObjective(
  Z: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  l2: number,
  sampleWeight?: Float64Array,
): ObjectiveFn {
  checkMatrixShape(Z, n, d, "Z");
  const invW = inverseWeightTotal(sampleWeight, n);
  const s: JsLossData = { Z, d, k, y, sampleWeight, invW, L: new Float64Array(4 * k) };
  const n4 = n - (n % 4);
  return (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n4; i += 4) loss = addFourRows(s, theta, grad, i, loss);
    for (let i = n4; i < n; i++) loss += lossOneRow(s, theta, grad, i);
    const penalty = addL2Penalty(theta, grad, k * d, l2);
    return loss * invW + penalty;
  };
}

// ---- WebAssembly SIMD kernels ------------------------------------------------------------------------

/**
 * Same objective and parameter layout as `makeLogRegObjective`, on the standardized data already in
 * `ws` (kk = k), computed with the SIMD kernels.
 */
export function makeKernelMultinomialObjective(
  ws: KernelWorkspace,
  y: Int32Array,
  l2: number,
  sampleWeight?: Float64Array,
): ObjectiveFn {
  const { n, d, dp, kk: k } = ws;
  const kd = k * d;
  const invW = inverseWeightTotal(sampleWeight, n);
  const { w: W, r: R, g: G } = ws;
  return (theta: Float64Array, grad: Float64Array): number => {
    for (let c = 0; c < k; c++) W.set(theta.subarray(c * d, c * d + d), c * dp);
    ws.forward();
    let loss = 0;
    for (let c = 0; c < k; c++) grad[kd + c] = 0;
    for (let i = 0; i < n; i++) {
      const base = i * k;
      loss += softmaxCrossEntropyRow(R, base, k, theta, kd, y[i], sampleWeight ? sampleWeight[i] : 1, invW);
      for (let c = 0; c < k; c++) grad[kd + c] += R[base + c];
    }
    ws.backward();
    let pen = 0;
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) {
        const t = c * d + j;
        const w = theta[t];
        pen += w * w;
        grad[t] = G[c * dp + j] + l2 * w;
      }
    }
    return loss * invW + 0.5 * l2 * pen;
  };
}

/**
 * The k = 2 objective in binomial form over θ = [v (d), β]: the multinomial J restricted to
 * W = [-v/2, v/2], b = [-β/2, β/2], i.e.
 *
 *   Jb(v, β) = Σ_i w_i · (softplus(s_i) - y_i s_i) / Σ_i w_i + (l2 / 4) · ||v||²,   s_i = v · z_i + β.
 *
 * The multinomial optimum is antisymmetric (the penalty splits a difference evenly), so it is
 * W = [-v°/2, v°/2] for the minimizer v° of Jb, with the same objective value; at such points
 * ∂J/∂W[1] = ∂Jb/∂v and ∂J/∂b[1] = ∂Jb/∂β, so the gradient tolerance means the same in both forms.
 * Half the parameters and half the work per evaluation of the multinomial form.
 */
export function makeKernelBinomialObjective(
  ws: KernelWorkspace,
  y: Int32Array,
  l2: number,
  sampleWeight?: Float64Array,
): ObjectiveFn {
  const { n, d } = ws;
  const invW = inverseWeightTotal(sampleWeight, n);
  const { w: W, r: R, g: G } = ws;
  const half = 0.5 * l2;
  return (theta: Float64Array, grad: Float64Array): number => {
    W.set(theta.subarray(0, d));
    ws.forward();
    const beta = theta[d];
    let loss = 0;
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const s = R[i] + beta;
      const yi = y[i];
      const wi = sampleWeight ? sampleWeight[i] : 1;
      // softplus(s) - y·s and σ(s) - y without overflow: e = exp(-|s|) ≤ 1.
      const e = Math.exp(-Math.abs(s));
      let l: number;
      let p: number;
      if (s > 0) {
        l = s + Math.log1p(e);
        p = 1 / (1 + e);
      } else {
        l = Math.log1p(e);
        p = e / (1 + e);
      }
      if (yi === 1) l -= s;
      loss += wi * l;
      const res = (p - yi) * wi * invW;
      R[i] = res;
      gb += res;
    }
    ws.backward();
    let pen = 0;
    for (let j = 0; j < d; j++) {
      const v = theta[j];
      pen += v * v;
      grad[j] = G[j] + half * v;
    }
    grad[d] = gb;
    return loss * invW + 0.25 * l2 * pen;
  };
}

/**
 * The fit objective on standardized `Z` through the SIMD kernels: multinomial over θ = [W (k×d), b (k)]
 * (same as `makeLogRegObjective`), or for k = 2 with `binomial` the binomial form over θ = [v (d), β]
 * described at `makeKernelBinomialObjective`. Null when WebAssembly SIMD is unavailable. For tests.
 */
export function makeFastLogRegObjective(
  Z: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  l2: number,
  opts: { binomial?: boolean; sampleWeight?: Float64Array } = {},
): ObjectiveFn | null {
  checkMatrixShape(Z, n, d, "Z");
  const binomial = opts.binomial === true;
  if (binomial && k !== 2) throw new ValidationError("the binomial form needs k = 2", { field: "k" });
  const ws = KernelWorkspace.create(n, d, binomial ? 1 : k);
  if (!ws) return null;
  for (let i = 0; i < n; i++) ws.z.set(Z.subarray(i * d, i * d + d), i * ws.dp);
  return binomial
    ? makeKernelBinomialObjective(ws, y, l2, opts.sampleWeight)
    : makeKernelMultinomialObjective(ws, y, l2, opts.sampleWeight);
}

// ---- onnxruntime -------------------------------------------------------------------------------------

/** What the onnxruntime objective needs besides Z: the problem's shape, labels and weighting. */
export interface LogisticProblem {
  n: number;
  d: number;
  k: number;
  y: Int32Array;
  l2: number;
  sw?: Float64Array;
  /** Σ_i w_i (n without weights). */
  total: number;
}

/** The multinomial objective with its two products in onnxruntime: the folds graph below with one fold. */
export async function makeOnnxMultinomialObjective(
  Z: Float32Array,
  p: LogisticProblem,
): Promise<AsyncObjectiveFn> {
  const { n, d, k, y, l2, sw, total } = p;
  const rowWeight = new Float64Array(n);
  for (let i = 0; i < n; i++) rowWeight[i] = (sw ? sw[i] : 1) / total;
  const folds = await makeOnnxFoldsObjective(Z, n, d, k, y, [{ rowWeight, l2 }]);
  return async (theta, grad) => (await folds([theta], [grad]))[0];
}

/**
 * The multinomial objectives of F cross-validation folds over the same standardized rows, evaluated
 * together: one pair of products over Z (n×d) with F·k columns instead of F pairs with k. The
 * products read Z once either way, so F folds cost little more than two fits (measured: 32,000×384,
 * k = 10, an evaluation for five folds at once ≈ 1.9× one fold's).
 *
 * Yw (n×F·k) holds, in fold f's block, w_i / Σ_{i∈f} w_i at row i's class for the fold's training
 * rows and 0 for its held-out rows, which therefore add nothing to its loss or gradient:
 *   rowloss[i, f] = Σ_c Yw[i, f, c] · log softmax(Z W_f + b_f)_c
 *   R[i, f, ·] = softmax(Z W_f + b_f) · Σ_c Yw[i, f, c] − Yw[i, f, ·];  gW = Zᵀ R,  gb = Σ_i R_i
 */
function buildFoldsGradGraph(folds: number, k: number): GraphBuilder {
  const g = new GraphBuilder("logreg_folds_grad");
  g.input("Z", "float32", ["n", "d"]);
  g.input("Yw", "float32", ["n", folds * k]);
  g.input("W", "float32", ["d", folds * k]);
  g.input("b", "float32", [folds * k]);
  const blocks = g.constant("int64", [0, folds, k]);
  const flat = g.constant("int64", [0, folds * k]);
  const [logits] = g.node("Gemm", ["Z", "W", "b"]);
  const [logits3] = g.node("Reshape", [logits, blocks]);
  const [logp] = g.node("LogSoftmax", [logits3], 1, { axis: 2 });
  const [yw3] = g.node("Reshape", ["Yw", blocks]);
  const axis2 = g.constant("int64", [2]);
  const [yl] = g.node("Mul", [yw3, logp]);
  g.node("ReduceSum", [yl, axis2], ["rowloss"], { keepdims: 0 });
  const [p] = g.node("Exp", [logp]);
  const [rowWeight] = g.node("ReduceSum", [yw3, axis2], 1, { keepdims: 1 });
  const [pw] = g.node("Mul", [p, rowWeight]);
  const [r3] = g.node("Sub", [pw, yw3]);
  const [r] = g.node("Reshape", [r3, flat]);
  g.node("Gemm", ["Z", r], ["gW"], { transA: 1 });
  const axis0 = g.constant("int64", [0]);
  g.node("ReduceSum", [r, axis0], ["gb"], { keepdims: 0 });
  g.output("rowloss", "float32", ["n", folds]);
  g.output("gW", "float32", ["d", folds * k]);
  g.output("gb", "float32", [folds * k]);
  return g;
}

/** One fold of `makeOnnxFoldsObjective`: its training rows' weights and its L2 strength. */
export interface FoldWeights {
  /** Length n: w_i / Σ w over the fold's training rows, 0 for the rows it holds out. */
  rowWeight: Float64Array;
  l2: number;
}

/**
 * Evaluates every fold whose θ is given (θ = [W (k×d), b (k)] as in `makeOnnxMultinomialObjective`)
 * in one onnxruntime run, writing each one's gradient into its `grads` entry; answers each fold's
 * objective (NaN for the folds skipped).
 */
export type FoldsObjectiveFn = (
  thetas: ReadonlyArray<Float64Array | null>,
  grads: ReadonlyArray<Float64Array | null>,
) => Promise<number[]>;

export async function makeOnnxFoldsObjective(
  Z: Float32Array,
  n: number,
  d: number,
  k: number,
  y: Int32Array,
  folds: readonly FoldWeights[],
): Promise<FoldsObjectiveFn> {
  const F = folds.length;
  const width = F * k;
  const session = await graphSession(`logreg-folds-grad:${F}x${k}`, () => buildFoldsGradGraph(F, k));
  const Yw = new Float32Array(n * width);
  folds.forEach(({ rowWeight }, f) => {
    for (let i = 0; i < n; i++) Yw[i * width + f * k + y[i]] = rowWeight[i];
  });
  const zTensor = f32(Z, [n, d]);
  const yTensor = f32(Yw, [n, width]);
  const W = new Float32Array(d * width);
  const b = new Float32Array(width);
  const kd = k * d;
  return async (thetas, grads) => {
    thetas.forEach((theta, f) => {
      if (!theta) return;
      for (let c = 0; c < k; c++) {
        for (let j = 0; j < d; j++) W[j * width + f * k + c] = theta[c * d + j];
        b[f * k + c] = theta[kd + c];
      }
    });
    const out = await runGraph(session, {
      Z: zTensor,
      Yw: yTensor,
      W: f32(W, [d, width]),
      b: f32(b, [width]),
    });
    return thetas.map((theta, f) => {
      const grad = grads[f];
      if (!theta || !grad) return Number.NaN;
      let loss = 0;
      for (let i = 0; i < n; i++) loss -= out.rowloss[i * F + f];
      let penalty = 0;
      const { l2 } = folds[f];
      for (let c = 0; c < k; c++) {
        for (let j = 0; j < d; j++) {
          const w = theta[c * d + j];
          penalty += w * w;
          grad[c * d + j] = out.gW[j * width + f * k + c] + l2 * w;
        }
        grad[kd + c] = out.gb[f * k + c];
      }
      return loss + 0.5 * l2 * penalty;
    });
  };
}
