/**
 * Multi-label head: one sigmoid per label, i.e. an independent L2 logistic regression per label
 * (scikit-learn's `OneVsRestClassifier(LogisticRegression(C))` on standardized inputs), plus a
 * per-label decision threshold chosen on out-of-fold probabilities.
 *
 * Each label is fitted with `fitLogReg` at k = 2 (its binomial fast path) and folded into one weight
 * vector and bias: v = W[1] - W[0], β = b[1] - b[0]. `fitLogReg`'s multinomial l2 equals the binary
 * C' = 2 / (l2 · n) (see logreg.ts), so l2 = 2 / (C · n) makes `C` mean what it means to sklearn's
 * binary LogisticRegression. (logreg-kind's C is the multinomial one; for two classes the two differ
 * by that factor of 2.)
 *
 * Thresholds: for a rare label a calibrated probability rarely reaches 0.5, and the F1-optimal cut of
 * calibrated probabilities sits near half the attainable F1, so a fixed 0.5 under-predicts. For each
 * label the rows are split into `folds` stratified folds, each fold is predicted by a model fitted on
 * the others, and the threshold in (0, 1) maximizing that label's F1 on those out-of-fold
 * probabilities is kept (ties → the one closest to 0.5, so 0.5 stays unless something is strictly
 * better). This costs `folds` extra fits per label.
 */
import { ValidationError } from "../errors.ts";
import type { HeadKind } from "./estimator.ts";
import { fitLogReg } from "./logreg.ts";
import { isFiniteNumber, modelEnvelope, readModelJson } from "./model-json.ts";
import { affineRows, checkFiniteMatrix, checkRowCount, expectTask } from "./numeric.ts";
import { numberParam, rejectUnknownParams } from "./params.ts";
import { foldIndices, mulberry32, stratifiedKFold } from "./split.ts";

export interface MultilabelParams {
  [key: string]: number;
  /** Inverse L2 strength of each label's binary logistic regression (sklearn's C, standardized inputs). */
  C: number;
  /** Folds for the out-of-fold probabilities the thresholds are chosen on. */
  folds: number;
}

export type ThresholdSource = "oof" | "default";

export interface MultilabelModel {
  d: number;
  k: number;
  /** k×d row-major, input space: logit_c = weights[c] · x + bias[c]. */
  weights: Float64Array;
  bias: Float64Array;
  /** Per label: predict the label when its probability is >= this. */
  thresholds: Float64Array;
  /** "oof": chosen on out-of-fold F1; "default": 0.5, because the label was too rare to fold. */
  thresholdSource: ThresholdSource[];
  /** Labels that were all 0 or all 1 in the training rows and got a constant model. */
  constantLabels: number[];
  /** Human-readable notes about labels that needed special handling (by label index). */
  notes: string[];
  C: number;
  folds: number;
  /** Largest L-BFGS iteration count over the per-label final fits. */
  iterations: number;
  /** Whether every per-label final fit converged. */
  converged: boolean;
}

/** head.json form: the model's fields, its typed arrays as arrays of numbers. */
export type MultilabelJson = { type: "multilabel"; version: 1; space: "input" } & Omit<
  MultilabelModel,
  "weights" | "bias" | "thresholds"
> & { weights: number[]; bias: number[]; thresholds: number[] };

/**
 * Probability given to a label never (always) seen in training: the empirical rate 0 (1) clipped, so
 * the bias stays finite (logit ±13.8) and float32 exports still reproduce it.
 */
export const CONSTANT_LABEL_EPS = 1e-6;

/** sigmoid(z) without overflow: exp is only ever taken of -|z|. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/**
 * The threshold in (0, 1) maximizing F1 of `proba[i] >= t` against `truth` (0/1), ties → closest to
 * 0.5. Candidates are 0.5 and the midpoints between consecutive distinct probabilities (plus half the
 * smallest one, for "predict every row"), so each candidate's F1 is exactly the F1 it would give.
 */
export function bestF1Threshold(
  proba: Float64Array,
  truth: ArrayLike<number>,
): { threshold: number; f1: number } {
  const n = proba.length;
  let pos = 0;
  let tp05 = 0;
  let pred05 = 0;
  for (let i = 0; i < n; i++) {
    const t = truth[i] === 1 ? 1 : 0;
    pos += t;
    if (proba[i] >= 0.5) {
      pred05++;
      tp05 += t;
    }
  }
  const f1Of = (tp: number, predicted: number) => (pos + predicted > 0 ? (2 * tp) / (pos + predicted) : 0);
  let best = { threshold: 0.5, f1: f1Of(tp05, pred05) };
  const consider = (threshold: number, f1: number) => {
    if (!(threshold > 0 && threshold < 1)) return;
    if (f1 > best.f1 || (f1 === best.f1 && Math.abs(threshold - 0.5) < Math.abs(best.threshold - 0.5))) {
      best = { threshold, f1 };
    }
  };
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => proba[b] - proba[a]);
  let tp = 0;
  for (let m = 1; m <= n; m++) {
    const hi = proba[order[m - 1]];
    tp += truth[order[m - 1]] === 1 ? 1 : 0;
    const lo = m < n ? proba[order[m]] : 0;
    if (m < n && lo === hi) continue; // no threshold separates equal probabilities
    let t = 0.5 * (hi + lo);
    // Adjacent doubles: the midpoint can round onto `lo`, which would also admit the rows at `lo`.
    if (t <= lo) t = hi;
    consider(t, f1Of(tp, m));
  }
  return best;
}

interface LabelFit {
  weights: Float64Array;
  bias: number;
  iterations: number;
  converged: boolean;
}

/** Binary L2 logistic regression for one label (0/1 in `y`), as one input-space weight vector. */
function fitLabel(X: Float32Array, n: number, d: number, y: Int32Array, C: number): LabelFit {
  let pos = 0;
  for (let i = 0; i < n; i++) pos += y[i];
  if (pos === 0 || pos === n) {
    const p = pos === 0 ? CONSTANT_LABEL_EPS : 1 - CONSTANT_LABEL_EPS;
    return { weights: new Float64Array(d), bias: Math.log(p / (1 - p)), iterations: 0, converged: true };
  }
  const m = fitLogReg(X, n, d, y, 2, { l2: 2 / (C * n) });
  const weights = new Float64Array(d);
  for (let j = 0; j < d; j++) weights[j] = m.weights[d + j] - m.weights[j];
  return { weights, bias: m.bias[1] - m.bias[0], iterations: m.iterations, converged: m.converged };
}

function gatherRows(X: Float32Array, d: number, rows: Int32Array): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let r = 0; r < rows.length; r++) out.set(X.subarray(rows[r] * d, rows[r] * d + d), r * d);
  return out;
}

function validateLabelMatrix(Y: Uint8Array, n: number, k: number): void {
  if (!Number.isInteger(k) || k < 1)
    throw new ValidationError("k must be a positive integer", { field: "k" });
  if (Y.length !== n * k)
    throw new ValidationError(`Y has ${Y.length} values, expected n*k = ${n * k}`, { field: "Y" });
  for (let t = 0; t < Y.length; t++) {
    if (Y[t] !== 0 && Y[t] !== 1) {
      throw new ValidationError(`Y[${Math.floor(t / k)}, ${t % k}] = ${Y[t]} must be 0 or 1`, { field: "Y" });
    }
  }
}

/** One label's final fit and decision threshold, and what the model records about it. */
interface LabelOutcome {
  fit: LabelFit;
  threshold: number;
  source: ThresholdSource;
  /** All 0 or all 1 in the training rows. */
  constant: boolean;
  note?: string;
}

/**
 * Fits label c (0/1 in `y`, `pos` of them 1) on all rows and picks its threshold out of fold; a
 * constant label, or one with fewer minority rows than folds, keeps 0.5 with a note saying why.
 */
function fitLabelAndThreshold(
  X: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  pos: number,
  c: number,
  params: MultilabelParams,
  seed: number,
): LabelOutcome {
  const { C, folds } = params;
  const fit = fitLabel(X, n, d, y, C);
  const fallback = { fit, threshold: 0.5, source: "default" as const };
  if (pos === 0 || pos === n) {
    const note =
      `label ${c}: ${pos === 0 ? "never" : "always"} present in the ${n} training rows; ` +
      `constant probability ${sigmoid(fit.bias)}, threshold 0.5`;
    return { ...fallback, constant: true, note };
  }
  const minority = Math.min(pos, n - pos);
  if (minority < folds) {
    const note = `label ${c}: ${minority} ${pos < n - pos ? "positive" : "negative"} row(s), fewer than ${folds} folds; threshold 0.5`;
    return { ...fallback, constant: false, note };
  }
  const threshold = outOfFoldThreshold(X, n, d, y, C, folds, seed);
  return { fit, threshold, source: "oof", constant: false };
}

/** The F1-best threshold on probabilities each predicted by a model fitted on the other folds. */
function outOfFoldThreshold(
  X: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  C: number,
  folds: number,
  seed: number,
): number {
  const foldOf = stratifiedKFold(y, 2, folds, seed);
  const oof = new Float64Array(n);
  for (let f = 0; f < folds; f++) {
    const { train, test } = foldIndices(foldOf, f);
    const yTrain = new Int32Array(train.length);
    for (let r = 0; r < train.length; r++) yTrain[r] = y[train[r]];
    const m = fitLabel(gatherRows(X, d, train), train.length, d, yTrain, C);
    for (const i of test) {
      let s = m.bias;
      const off = i * d;
      for (let j = 0; j < d; j++) s += m.weights[j] * X[off + j];
      oof[i] = sigmoid(s);
    }
  }
  return bestF1Threshold(oof, y).threshold;
}

/** Column c of the n×k label matrix into `y`; returns how many rows have the label. */
function labelColumn(Y: Uint8Array, n: number, k: number, c: number, y: Int32Array): number {
  let pos = 0;
  for (let i = 0; i < n; i++) {
    y[i] = Y[i * k + c];
    pos += y[i];
  }
  return pos;
}

export function fitMultilabel(
  X: Float32Array,
  n: number,
  d: number,
  Y: Uint8Array,
  k: number,
  params: MultilabelParams,
  seed: number,
): MultilabelModel {
  checkFiniteMatrix(X, n, d);
  if (n < 1) throw new ValidationError("cannot fit on zero rows", { field: "n" });
  validateLabelMatrix(Y, n, k);
  const model: MultilabelModel = {
    d,
    k,
    weights: new Float64Array(k * d),
    bias: new Float64Array(k),
    thresholds: new Float64Array(k).fill(0.5),
    thresholdSource: new Array(k).fill("default"),
    constantLabels: [],
    notes: [],
    C: params.C,
    folds: params.folds,
    iterations: 0,
    converged: true,
  };
  // One seed per label drawn up front, so a label's folds do not depend on how the others went.
  const rand = mulberry32(seed);
  const labelSeeds = Array.from({ length: k }, () => Math.floor(rand() * 2 ** 32));
  const y = new Int32Array(n);
  for (let c = 0; c < k; c++) {
    const pos = labelColumn(Y, n, k, c, y);
    const { fit, threshold, source, constant, note } = fitLabelAndThreshold(
      X,
      n,
      d,
      y,
      pos,
      c,
      params,
      labelSeeds[c],
    );
    model.weights.set(fit.weights, c * d);
    model.bias[c] = fit.bias;
    model.iterations = Math.max(model.iterations, fit.iterations);
    model.converged &&= fit.converged;
    model.thresholds[c] = threshold;
    model.thresholdSource[c] = source;
    if (constant) model.constantLabels.push(c);
    if (note) model.notes.push(note);
  }
  return model;
}

/** Per-label probabilities, n×k row-major. */
export function predictMultilabel(
  model: Pick<MultilabelModel, "d" | "k" | "weights" | "bias">,
  X: Float32Array,
  n: number,
): Float64Array {
  const { d, k, weights, bias } = model;
  checkRowCount(X, n, d);
  const out = affineRows(weights, bias, X, n, d, k);
  for (let t = 0; t < out.length; t++) out[t] = sigmoid(out[t]);
  return out;
}

/** 0/1 decisions (n×k) from probabilities (n×k) with the model's per-label thresholds. */
export function decideLabels(
  model: Pick<MultilabelModel, "k" | "thresholds">,
  proba: ArrayLike<number>,
  n: number,
): Uint8Array {
  const { k, thresholds } = model;
  if (proba.length !== n * k) {
    throw new ValidationError(`proba has ${proba.length} values, expected n*k = ${n * k}`, {
      field: "proba",
    });
  }
  const out = new Uint8Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) out[i * k + c] = proba[i * k + c] >= thresholds[c] ? 1 : 0;
  }
  return out;
}

export function multilabelToJson(model: MultilabelModel): MultilabelJson {
  return {
    ...modelEnvelope("multilabel", "input"),
    d: model.d,
    k: model.k,
    weights: Array.from(model.weights),
    bias: Array.from(model.bias),
    thresholds: Array.from(model.thresholds),
    thresholdSource: [...model.thresholdSource],
    constantLabels: [...model.constantLabels],
    notes: [...model.notes],
    C: model.C,
    folds: model.folds,
    iterations: model.iterations,
    converged: model.converged,
  };
}

/** Parses and validates a head.json multilabel payload (an object or its JSON text). */
export function multilabelFromJson(input: unknown): MultilabelModel {
  const json = readModelJson(input, { type: "multilabel", space: "input" });
  const d = json.integerAtLeast("d", 1);
  const k = json.integerAtLeast("k", 1);
  const thresholds = json.floats("thresholds", k);
  for (let c = 0; c < k; c++) {
    if (!(thresholds[c] > 0 && thresholds[c] < 1)) {
      throw new ValidationError(`thresholds[${c}] must be in (0, 1)`, { field: "thresholds" });
    }
  }
  const thresholdSource = json.check(
    "thresholdSource",
    (v): v is ThresholdSource[] =>
      Array.isArray(v) && v.length === k && v.every((s) => s === "oof" || s === "default"),
    `thresholdSource must be ${k} of "oof" | "default"`,
  );
  const constantLabels = json.check(
    "constantLabels",
    (v): v is number[] =>
      Array.isArray(v) && v.every((c) => typeof c === "number" && Number.isInteger(c) && c >= 0 && c < k),
    `constantLabels must be label indices in 0..${k - 1}`,
  );
  const notes = json.check(
    "notes",
    (v): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string"),
    "notes must be an array of strings",
  );
  const C = json.check("C", (v): v is number => isFiniteNumber(v) && v > 0, "C must be a positive number");
  return {
    d,
    k,
    weights: json.floats("weights", k * d),
    bias: json.floats("bias", k),
    thresholds,
    thresholdSource,
    constantLabels,
    notes,
    C,
    folds: json.integerAtLeast("folds", 2),
    iterations: json.integerAtLeast("iterations", 0),
    converged: json.flag("converged"),
  };
}

const PARAMS = ["C", "folds"] as const;

export const multilabelKind: HeadKind<MultilabelModel, MultilabelParams> = {
  type: "multilabel",
  task: "multilabel",
  description:
    "one L2 logistic regression per label (sigmoids, C), per-label thresholds tuned for F1 out of fold",
  resolveParams(input) {
    rejectUnknownParams("multilabel", input, PARAMS);
    return {
      C: numberParam(input, "C", 1, { exclusiveMin: 0 }),
      folds: numberParam(input, "folds", 3, { min: 2, max: 20, integer: true }),
    };
  },
  grid() {
    return [0.1, 1, 10].map((C) => ({ C, folds: 3 }));
  },
  async fit(X, n, d, target, params, ctx) {
    expectTask(target, "multilabel", "multilabel");
    return fitMultilabel(X, n, d, target.Y, target.k, params, ctx.seed);
  },
  async predict(model, X, n) {
    return predictMultilabel(model, X, n);
  },
  toJson: (model) => multilabelToJson(model) as unknown as Record<string, unknown>,
  fromJson: multilabelFromJson,
  toOnnx(model, g, input) {
    const w = g.initializer(g.fresh("multilabel_w"), "float32", [model.k, model.d], model.weights);
    const b = g.initializer(g.fresh("multilabel_b"), "float32", [model.k], model.bias);
    const [logits] = g.node("Gemm", [input, w, b], 1, { transB: 1 });
    const [proba] = g.node("Sigmoid", [logits], 1);
    return proba;
  },
  info: (model) => ({ iterations: model.iterations, converged: model.converged }),
  decide: decideLabels,
  thresholds: (model) => Array.from(model.thresholds),
};
