/**
 * Multinomial logistic regression with an L2 penalty on the weights (not the bias), fitted by L-BFGS
 * on standardized inputs.
 *
 * Objective (in standardized space z = (x - mean) / scale):
 *
 *   J(W, b) = Σ_i w_i · CE(softmax(W z_i + b), y_i) / Σ_i w_i  +  (l2 / 2) · ||W||²
 *
 * Mapping to scikit-learn: `StandardScaler() + LogisticRegression(C=C)` (multinomial, lbfgs) minimizes
 * C · Σ_i w_i · CE_i + ½ ||W||², which has the same minimizer as J with `l2 = 1 / (C · Σ_i w_i)`
 * (`1 / (C · n)` without sample weights). For k = 2 scikit-learn fits a single binomial vector instead;
 * the multinomial fit here at `l2` equals sklearn's binary fit at C' = 2 / (l2 · n) with
 * coef = W[1] - W[0], because the optimum has W[0] = -W[1] and so pays half the binomial penalty.
 *
 * The returned model is folded back into the ORIGINAL input space: `weights` (k×d, row-major) and
 * `bias` apply to raw inputs, so prediction is one matmul plus a softmax and needs no scaler. `mean`
 * and `scale` are kept for provenance and diagnostics only.
 *
 * This file is the estimator (fit driving L-BFGS, predict, JSON); the objective J and its engines are
 * in logistic-loss.ts, the WebAssembly SIMD kernels in logistic-kernel-wasm.ts.
 */

import { ValidationError } from "../errors.ts";
import { type LbfgsResult, minimizeLbfgs, minimizeLbfgsAsync } from "./lbfgs.ts";
import { KernelWorkspace } from "./logistic-kernel-wasm.ts";
import {
  type LogisticProblem,
  type Matrix,
  makeKernelBinomialObjective,
  makeKernelMultinomialObjective,
  makeLogRegObjective,
  makeOnnxMultinomialObjective,
} from "./logistic-loss.ts";
import { argmaxRows } from "./metrics.ts";
import { modelEnvelope, readModelJson } from "./model-json.ts";
import {
  affineRows,
  checkClassLabels,
  checkMatrixShape,
  checkSampleWeights,
  softmaxRowsInPlace,
} from "./numeric.ts";
import { standardizationStats, standardizeInto, standardizeOnnx } from "./standardize.ts";

export { standardizationStats };

export interface LogRegOptions {
  /** L2 strength on standardized weights; l2 = 1 / (C · Σw) for sklearn's C. Default 1 / Σw (C = 1). */
  l2?: number;
  /** Maximum L-BFGS iterations. Default 1000 (sklearn uses 100, which often stops early). */
  maxIter?: number;
  /**
   * Stop when the gradient's infinity norm of the mean objective falls below this. (scikit-learn
   * applies its `tol` to the summed loss, so it is about n times stricter there.) Default 1e-4.
   */
  tol?: number;
  /** Non-negative per-row weights, length n. */
  sampleWeight?: Float64Array;
  /**
   * Where L-BFGS starts: a model fitted on overlapping rows (cross-validation folds start from the
   * model of every training row). The objective is strictly convex, so only the iteration count
   * depends on it, not the optimum it converges to. Default: all-zero weights.
   */
  init?: Pick<LogRegModel, "d" | "k" | "weights" | "bias">;
}

export interface LogRegModel {
  d: number;
  k: number;
  /** Per-feature mean used for standardization during training (provenance only). */
  mean: Float64Array;
  /** Per-feature standard deviation (population), 1 for constant features (provenance only). */
  scale: Float64Array;
  /** k×d row-major, in the original input space: logits = weights · x + bias. */
  weights: Float64Array;
  bias: Float64Array;
  l2: number;
  iterations: number;
  converged: boolean;
  /** Final value of the penalized objective J. */
  loss: number;
}

/** Plain-array form for head.json; every number is a finite double, so JSON round-trips exactly. */
export interface LogRegJson {
  type: "logreg";
  version: 1;
  /** Which space `weights`/`bias` live in; always "input" (raw features) in version 1. */
  space: "input";
  d: number;
  k: number;
  mean: number[];
  scale: number[];
  weights: number[];
  bias: number[];
  l2: number;
  iterations: number;
  converged: boolean;
  loss: number;
}

export interface PreparedFit extends LogisticProblem {
  mean: Float64Array;
  scale: Float64Array;
  invScale: Float64Array;
  lbfgsOpts: { maxIter: number; gtol: number; ftol: number };
}

export function prepareFit(
  X: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: LogRegOptions,
  /** Precomputed standardization (the onnxruntime path computes it alongside Z). */
  stats?: Pick<PreparedFit, "mean" | "scale" | "invScale">,
): PreparedFit {
  checkMatrixShape(X, n, d);
  if (n < 1) throw new ValidationError("cannot fit on zero rows", { field: "n" });
  checkClassLabels(y, n, k, 2);
  const sw = opts.sampleWeight;
  const total = sw ? checkSampleWeights(sw, n, true) : n;
  const l2 = opts.l2 ?? 1 / total;
  if (!(l2 >= 0) || !Number.isFinite(l2))
    throw new ValidationError("l2 must be finite and >= 0", { field: "l2" });
  let mean: Float64Array;
  let scale: Float64Array;
  let invScale: Float64Array;
  if (stats) ({ mean, scale, invScale } = stats);
  else {
    ({ mean, scale } = standardizationStats(X, n, d));
    invScale = new Float64Array(d);
    for (let j = 0; j < d; j++) invScale[j] = 1 / scale[j];
  }
  // ftol at 64 ulps mirrors sklearn's lbfgs setting, so tol (the gradient norm) is what stops a fit.
  const lbfgsOpts = {
    maxIter: opts.maxIter ?? 1000,
    gtol: opts.tol ?? 1e-4,
    ftol: 64 * 2.220446049250313e-16,
  };
  return { n, d, k, y, l2, sw, total, mean, scale, invScale, lbfgsOpts };
}

/** Folds the standardization into the weights: W_orig = W_std / scale, b_orig = b_std - W_orig · mean. */
export function finishFit(p: PreparedFit, thetaStd: Float64Array, res: LbfgsResult): LogRegModel {
  const { d, k, mean, scale, invScale } = p;
  const kd = k * d;
  const weights = new Float64Array(kd);
  const bias = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let shift = 0;
    for (let j = 0; j < d; j++) {
      const w = thetaStd[c * d + j] * invScale[j];
      weights[c * d + j] = w;
      shift += w * mean[j];
    }
    bias[c] = thetaStd[kd + c] - shift;
  }
  return {
    d,
    k,
    mean,
    scale,
    weights,
    bias,
    l2: p.l2,
    iterations: res.iterations,
    converged: res.converged,
    loss: res.f,
  };
}

/** Synchronous fit on this thread (WebAssembly SIMD kernels, or plain JS without them). */
export function fitLogReg(
  X: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: LogRegOptions = {},
): LogRegModel {
  const p = prepareFit(X, n, d, y, k, opts);
  const { l2, sw, lbfgsOpts } = p;
  // The standardized copy lives in the SIMD kernels' memory (rows padded to a multiple of 4) when
  // those are available.
  const binomial = k === 2;
  const ws = KernelWorkspace.create(n, d, binomial ? 1 : k);
  const stride = ws ? ws.dp : d;
  const Z = ws ? ws.z : new Float32Array(n * d);
  standardizeInto(X, n, d, p.mean, p.invScale, Z, { stride, precision: "float64" });

  // θ in standardized space, multinomial layout [W (k×d), b (k)].
  if (ws && binomial) {
    const x0 = multinomialToBinomial(startingPoint(p, opts.init), d);
    const res = minimizeLbfgs(makeKernelBinomialObjective(ws, y, l2, sw), x0, lbfgsOpts);
    return finishFit(p, binomialToMultinomial(res.x, d), res);
  }
  const fg = ws ? makeKernelMultinomialObjective(ws, y, l2, sw) : makeLogRegObjective(Z, n, d, y, k, l2, sw);
  const res = minimizeLbfgs(fg, startingPoint(p, opts.init), lbfgsOpts);
  return finishFit(p, res.x, res);
}

/**
 * θ0 in this fit's standardized space, multinomial layout: `init` refolded through this fit's
 * mean and scale (the inverse of finishFit), or zeros.
 */
export function startingPoint(p: PreparedFit, init: LogRegOptions["init"]): Float64Array {
  const { d, k, mean, scale } = p;
  const theta = new Float64Array(k * d + k);
  if (!init) return theta;
  if (init.d !== d || init.k !== k)
    throw new ValidationError(`init is ${init.k}×${init.d}, the fit ${k}×${d}`, { field: "init" });
  for (let c = 0; c < k; c++) {
    let shift = 0;
    for (let j = 0; j < d; j++) {
      const w = init.weights[c * d + j];
      theta[c * d + j] = w * scale[j];
      shift += w * mean[j];
    }
    theta[k * d + c] = init.bias[c] + shift;
  }
  return theta;
}

/** The binomial θ = [v (d), β] of a multinomial 2-class θ: the difference of its two rows. */
function multinomialToBinomial(theta: Float64Array, d: number): Float64Array {
  const x = new Float64Array(d + 1);
  for (let j = 0; j < d; j++) x[j] = theta[d + j] - theta[j];
  x[d] = theta[2 * d + 1] - theta[2 * d];
  return x;
}

/** θ = [v (d), β] of the binomial form as the multinomial [W = [-v/2, v/2], b = [-β/2, β/2]]. */
function binomialToMultinomial(x: Float64Array, d: number): Float64Array {
  const theta = new Float64Array(2 * d + 2);
  for (let j = 0; j < d; j++) {
    theta[j] = 0 - 0.5 * x[j]; // 0 - …, not -…: a zero weight stays +0
    theta[d + j] = 0.5 * x[j];
  }
  theta[2 * d] = 0 - 0.5 * x[d];
  theta[2 * d + 1] = 0.5 * x[d];
  return theta;
}

/**
 * Problems at least this large (n·d·k multiply-adds per product) go to onnxruntime's multi-threaded
 * GEMM when k > 2; below it, session overhead outweighs the gain (measured by `npm run bench:heads`).
 */
export const ONNX_FIT_MIN_WORK = 2 ** 22;

/**
 * The same fit, choosing the engine: multinomial problems of at least `ONNX_FIT_MIN_WORK` run
 * their two products per evaluation in onnxruntime (float32 products, float64 optimizer state and
 * loss sums); everything else uses `fitLogReg`. `engine` forces one for tests and benchmarks.
 */
export async function fitLogRegAsync(
  X: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: LogRegOptions & { engine?: "auto" | "onnx" | "wasm" } = {},
): Promise<LogRegModel> {
  const engine = opts.engine ?? "auto";
  const useOnnx = engine === "onnx" || (engine === "auto" && k > 2 && n * d * k >= ONNX_FIT_MIN_WORK);
  if (!useOnnx) return fitLogReg(X, n, d, y, k, opts);
  const std = await standardizeOnnx(X instanceof Float32Array ? X : Float32Array.from(X), n, d);
  const p = prepareFit(X, n, d, y, k, opts, std);
  const fg = await makeOnnxMultinomialObjective(std.Z, p);
  const res = await minimizeLbfgsAsync(fg, startingPoint(p, opts.init), p.lbfgsOpts);
  return finishFit(p, res.x, res);
}

/** Class probabilities, n×k row-major, via a max-subtracted softmax over weights · x + bias. */
export function predictProbaLogReg(
  model: Pick<LogRegModel, "d" | "k" | "weights" | "bias">,
  X: Matrix,
  n: number,
): Float64Array {
  const { d, k, weights, bias } = model;
  checkMatrixShape(X, n, d);
  const out = affineRows(weights, bias, X, n, d, k);
  softmaxRowsInPlace(out, n, k);
  return out;
}

/** Arg-max class per row (ties go to the lowest class index). */
export function predictLogReg(
  model: Pick<LogRegModel, "d" | "k" | "weights" | "bias">,
  X: Matrix,
  n: number,
): Int32Array {
  return argmaxRows(predictProbaLogReg(model, X, n), n, model.k);
}

export function logRegToJson(model: LogRegModel): LogRegJson {
  return {
    ...modelEnvelope("logreg", "input"),
    d: model.d,
    k: model.k,
    mean: Array.from(model.mean),
    scale: Array.from(model.scale),
    weights: Array.from(model.weights),
    bias: Array.from(model.bias),
    l2: model.l2,
    iterations: model.iterations,
    converged: model.converged,
    loss: model.loss,
  };
}

/** Parses and validates a head.json logreg payload (an object or its JSON text). */
export function logRegFromJson(input: unknown): LogRegModel {
  const json = readModelJson(input, { type: "logreg", space: "input", allowArray: true });
  const d = json.positiveInt("d");
  const k = json.integerAtLeast("k", 2);
  return {
    d,
    k,
    mean: json.floats("mean", d),
    scale: json.floats("scale", d),
    weights: json.floats("weights", k * d),
    bias: json.floats("bias", k),
    l2: json.finite("l2"),
    iterations: json.finite("iterations"),
    converged: json.flag("converged"),
    loss: json.finite("loss"),
  };
}
