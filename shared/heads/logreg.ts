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
 */
import { ValidationError } from "../errors.ts";
import { minimizeLbfgs } from "./lbfgs.ts";

export interface LogRegOptions {
  /** L2 strength on standardized weights; l2 = 1 / (C · Σw) for sklearn's C. Default 1 / Σw (C = 1). */
  l2?: number;
  /** Maximum L-BFGS iterations. Default 1000 (sklearn uses 100, which often stops early). */
  maxIter?: number;
  /** Gradient infinity-norm tolerance, same meaning as sklearn's `tol`. Default 1e-4. */
  tol?: number;
  /** Non-negative per-row weights, length n. */
  sampleWeight?: Float64Array;
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

type Matrix = Float32Array | Float64Array;

function checkMatrix(X: Matrix, n: number, d: number, what = "X"): void {
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError("n must be a non-negative integer", { field: "n" });
  if (!Number.isInteger(d) || d < 1)
    throw new ValidationError("d must be a positive integer", { field: "d" });
  if (X.length !== n * d) {
    throw new ValidationError(`${what} has ${X.length} values, expected n*d = ${n * d}`, { field: what });
  }
}

/**
 * Per-feature mean and population standard deviation, in float64 with a two-pass variance.
 * Constant features get scale 1 (sklearn's rule): a variance within rounding noise of zero would
 * otherwise blow noise up to unit scale.
 */
export function standardizationStats(
  X: Matrix,
  n: number,
  d: number,
): { mean: Float64Array; scale: Float64Array } {
  checkMatrix(X, n, d);
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
  const eps = 2.220446049250313e-16;
  for (let j = 0; j < d; j++) {
    const v = m2[j] / n;
    const bound = n * eps * v + (n * mean[j] * eps) ** 2;
    if (!Number.isFinite(v)) throw new ValidationError(`feature ${j} has non-finite values`, { field: "X" });
    scale[j] = v <= bound ? 1 : Math.sqrt(v);
  }
  return { mean, scale };
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
): (theta: Float64Array, grad: Float64Array) => number {
  checkMatrix(Z, n, d, "Z");
  const wSum = sampleWeight ? sampleWeight.reduce((a, b) => a + b, 0) : n;
  const invW = wSum > 0 ? 1 / wSum : 0;
  // Logits, then residuals (p - onehot) scaled by w_i / Σw, for a block of up to 4 rows.
  const L = new Float64Array(4 * k);
  const kd = k * d;
  const n4 = n - (n % 4);

  // Softmax + cross-entropy for one row held in L[base..base+k); overwrites it with the residual.
  // CE = log Σ exp(z - zmax) + zmax - z_y is taken from the logit, not log(p_y), so a confidently
  // wrong row costs its true (large) loss instead of underflowing to -log(0).
  const rowLoss = (base: number, yi: number, wi: number): number => {
    let zmax = L[base];
    for (let c = 1; c < k; c++) if (L[base + c] > zmax) zmax = L[base + c];
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
  };

  return (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    // Four rows at a time: each weight (and gradient) element loaded once serves four rows, which
    // roughly halves the time of this memory-bound loop compared with row-at-a-time dot products.
    for (let i = 0; i < n4; i += 4) {
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
        const b = theta[kd + c];
        L[c] = s0 + b;
        L[k + c] = s1 + b;
        L[2 * k + c] = s2 + b;
        L[3 * k + c] = s3 + b;
      }
      if (sampleWeight) {
        loss += rowLoss(0, y[i], sampleWeight[i]);
        loss += rowLoss(k, y[i + 1], sampleWeight[i + 1]);
        loss += rowLoss(2 * k, y[i + 2], sampleWeight[i + 2]);
        loss += rowLoss(3 * k, y[i + 3], sampleWeight[i + 3]);
      } else {
        loss += rowLoss(0, y[i], 1);
        loss += rowLoss(k, y[i + 1], 1);
        loss += rowLoss(2 * k, y[i + 2], 1);
        loss += rowLoss(3 * k, y[i + 3], 1);
      }
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
    }
    for (let i = n4; i < n; i++) {
      const off = i * d;
      for (let c = 0; c < k; c++) {
        const wo = c * d;
        let s = 0;
        for (let j = 0; j < d; j++) s += theta[wo + j] * Z[off + j];
        L[c] = s + theta[kd + c];
      }
      loss += rowLoss(0, y[i], sampleWeight ? sampleWeight[i] : 1);
      for (let c = 0; c < k; c++) {
        const r = L[c];
        const go = c * d;
        for (let j = 0; j < d; j++) grad[go + j] += r * Z[off + j];
        grad[kd + c] += r;
      }
    }
    let pen = 0;
    for (let t = 0; t < kd; t++) {
      const w = theta[t];
      pen += w * w;
      grad[t] += l2 * w;
    }
    return loss * invW + 0.5 * l2 * pen;
  };
}

function validateLabels(y: Int32Array, n: number, k: number): void {
  if (!Number.isInteger(k) || k < 2) throw new ValidationError("k must be an integer >= 2", { field: "k" });
  if (y.length !== n)
    throw new ValidationError(`y has ${y.length} labels, expected n = ${n}`, { field: "y" });
  for (let i = 0; i < n; i++) {
    const v = y[i];
    if (v < 0 || v >= k) throw new ValidationError(`y[${i}] = ${v} is outside 0..${k - 1}`, { field: "y" });
  }
}

export function fitLogReg(
  X: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: LogRegOptions = {},
): LogRegModel {
  checkMatrix(X, n, d);
  if (n < 1) throw new ValidationError("cannot fit on zero rows", { field: "n" });
  validateLabels(y, n, k);
  const sw = opts.sampleWeight;
  let total = n;
  if (sw) {
    if (sw.length !== n)
      throw new ValidationError("sampleWeight must have length n", { field: "sampleWeight" });
    total = 0;
    for (let i = 0; i < n; i++) {
      if (!(sw[i] >= 0) || !Number.isFinite(sw[i])) {
        throw new ValidationError(`sampleWeight[${i}] must be finite and >= 0`, { field: "sampleWeight" });
      }
      total += sw[i];
    }
    if (!(total > 0)) throw new ValidationError("sampleWeight sums to zero", { field: "sampleWeight" });
  }
  const l2 = opts.l2 ?? 1 / total;
  if (!(l2 >= 0) || !Number.isFinite(l2))
    throw new ValidationError("l2 must be finite and >= 0", { field: "l2" });
  const maxIter = opts.maxIter ?? 1000;
  const tol = opts.tol ?? 1e-4;

  const { mean, scale } = standardizationStats(X, n, d);
  // Standardized copy in float32: half the memory of float64 for large embedding sets, and the
  // rounding (~1e-7 relative) is far below what the fitted head can resolve. Math runs in float64.
  const Z = new Float32Array(n * d);
  const invScale = new Float64Array(d);
  for (let j = 0; j < d; j++) invScale[j] = 1 / scale[j];
  for (let i = 0; i < n; i++) {
    const off = i * d;
    for (let j = 0; j < d; j++) {
      const v = (X[off + j] - mean[j]) * invScale[j];
      if (!Number.isFinite(v)) throw new ValidationError(`X[${i}, ${j}] is not finite`, { field: "X" });
      Z[off + j] = v;
    }
  }

  const fg = makeLogRegObjective(Z, n, d, y, k, l2, sw);
  const theta0 = new Float64Array(k * d + k);
  // ftol at 64 ulps mirrors sklearn's lbfgs setting, so tol (the gradient norm) is what stops a fit.
  const res = minimizeLbfgs(fg, theta0, { maxIter, gtol: tol, ftol: 64 * 2.220446049250313e-16 });

  // Fold the standardization into the weights: W_orig = W_std / scale, b_orig = b_std - W_orig · mean.
  const weights = new Float64Array(k * d);
  const bias = new Float64Array(k);
  const kd = k * d;
  for (let c = 0; c < k; c++) {
    let shift = 0;
    for (let j = 0; j < d; j++) {
      const w = res.x[c * d + j] * invScale[j];
      weights[c * d + j] = w;
      shift += w * mean[j];
    }
    bias[c] = res.x[kd + c] - shift;
  }
  return {
    d,
    k,
    mean,
    scale,
    weights,
    bias,
    l2,
    iterations: res.iterations,
    converged: res.converged,
    loss: res.f,
  };
}

/** Class probabilities, n×k row-major, via a max-subtracted softmax over weights · x + bias. */
export function predictProbaLogReg(
  model: Pick<LogRegModel, "d" | "k" | "weights" | "bias">,
  X: Matrix,
  n: number,
): Float64Array {
  const { d, k, weights, bias } = model;
  checkMatrix(X, n, d);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const off = i * d;
    const oo = i * k;
    let zmax = Number.NEGATIVE_INFINITY;
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
      const z = s0 + s1 + bias[c];
      out[oo + c] = z;
      if (z > zmax) zmax = z;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(out[oo + c] - zmax);
      out[oo + c] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let c = 0; c < k; c++) out[oo + c] *= inv;
  }
  return out;
}

/** Arg-max class per row (ties go to the lowest class index). */
export function predictLogReg(
  model: Pick<LogRegModel, "d" | "k" | "weights" | "bias">,
  X: Matrix,
  n: number,
): Int32Array {
  const p = predictProbaLogReg(model, X, n);
  const k = model.k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (p[i * k + c] > p[i * k + best]) best = c;
    out[i] = best;
  }
  return out;
}

export function logRegToJson(model: LogRegModel): LogRegJson {
  return {
    type: "logreg",
    version: 1,
    space: "input",
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

function finiteArray(v: unknown, len: number, field: string): Float64Array {
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

/** Parses and validates a head.json logreg payload (an object or its JSON text). */
export function logRegFromJson(input: unknown): LogRegModel {
  const obj = typeof input === "string" ? (JSON.parse(input) as unknown) : input;
  if (typeof obj !== "object" || obj === null) throw new ValidationError("logreg head must be a JSON object");
  const o = obj as Record<string, unknown>;
  if (o.type !== "logreg") throw new ValidationError('type must be "logreg"', { field: "type" });
  if (o.version !== 1)
    throw new ValidationError(`unsupported logreg version ${String(o.version)}`, { field: "version" });
  if (o.space !== "input") throw new ValidationError('space must be "input"', { field: "space" });
  const d = o.d;
  const k = o.k;
  if (typeof d !== "number" || !Number.isInteger(d) || d < 1) {
    throw new ValidationError("d must be a positive integer", { field: "d" });
  }
  if (typeof k !== "number" || !Number.isInteger(k) || k < 2) {
    throw new ValidationError("k must be an integer >= 2", { field: "k" });
  }
  const num = (name: string): number => {
    const v = o[name];
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new ValidationError(`${name} must be a finite number`, { field: name });
    return v;
  };
  return {
    d,
    k,
    mean: finiteArray(o.mean, d, "mean"),
    scale: finiteArray(o.scale, d, "scale"),
    weights: finiteArray(o.weights, k * d, "weights"),
    bias: finiteArray(o.bias, k, "bias"),
    l2: num("l2"),
    iterations: num("iterations"),
    converged: o.converged === true,
    loss: num("loss"),
  };
}
