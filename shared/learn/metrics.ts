/**
 * Classification metrics with scikit-learn's conventions: precision/recall/F1 of a class that is never
 * predicted (or never present) are 0 rather than NaN (`zero_division=0`), and the confusion matrix has
 * true labels on rows and predicted labels on columns.
 */
import { ValidationError } from "../errors.ts";

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Number of rows whose true label is this class. */
  support: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  /**
   * Unweighted mean F1 over the classes that occur in yTrue or yPred (sklearn's default label set), so
   * a label that appears in neither does not drag the average down.
   */
  macroF1: number;
  perClass: Record<string, ClassMetrics>;
  /** confusion[t][p] = rows with true class t predicted as p; indices follow `labels`. */
  confusion: number[][];
  n: number;
}

function ratio(num: number, den: number): number {
  return den > 0 ? num / den : 0;
}

export function classificationMetrics(
  yTrue: Int32Array,
  yPred: Int32Array,
  labels: string[],
): ClassificationMetrics {
  const k = labels.length;
  const n = yTrue.length;
  if (yPred.length !== n) {
    throw new ValidationError(`yPred has ${yPred.length} entries, yTrue has ${n}`, { field: "yPred" });
  }
  if (k < 1) throw new ValidationError("labels must not be empty", { field: "labels" });
  if (new Set(labels).size !== k) throw new ValidationError("labels must be unique", { field: "labels" });
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i];
    const p = yPred[i];
    if (t < 0 || t >= k)
      throw new ValidationError(`yTrue[${i}] = ${t} is outside 0..${k - 1}`, { field: "yTrue" });
    if (p < 0 || p >= k)
      throw new ValidationError(`yPred[${i}] = ${p} is outside 0..${k - 1}`, { field: "yPred" });
    confusion[t][p]++;
    if (t === p) correct++;
  }

  const perClass: Record<string, ClassMetrics> = Object.create(null);
  let f1Sum = 0;
  let present = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < k; j++) {
      support += confusion[c][j];
      predicted += confusion[j][c];
    }
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    // F1 from counts (2tp / (2tp + fp + fn)) avoids the 0/0 of the harmonic-mean form.
    const f1 = ratio(2 * tp, support + predicted);
    perClass[labels[c]] = { precision, recall, f1, support };
    if (support > 0 || predicted > 0) {
      f1Sum += f1;
      present++;
    }
  }
  return { accuracy: ratio(correct, n), macroF1: ratio(f1Sum, present), perClass, confusion, n };
}

/** Probabilities are clipped to [eps, 1] before the log so one confident miss costs -log(eps), not ∞. */
export const LOG_LOSS_EPS = 1e-15;

/** Mean negative log-likelihood of the true class; `proba` is n×k row-major. */
export function logLoss(yTrue: Int32Array, proba: Float64Array | Float32Array, k: number): number {
  const n = yTrue.length;
  if (!Number.isInteger(k) || k < 1)
    throw new ValidationError("k must be a positive integer", { field: "k" });
  if (proba.length !== n * k) {
    throw new ValidationError(`proba has ${proba.length} values, expected n*k = ${n * k}`, {
      field: "proba",
    });
  }
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i];
    if (t < 0 || t >= k)
      throw new ValidationError(`yTrue[${i}] = ${t} is outside 0..${k - 1}`, { field: "yTrue" });
    const p = proba[i * k + t];
    const clipped = Math.min(1, Math.max(p, LOG_LOSS_EPS));
    sum -= Math.log(clipped);
  }
  return sum / n;
}

/** Arg-max class per row of an n×k probability matrix (ties go to the lowest class index). */
export function argmaxRows(proba: Float64Array | Float32Array, n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (proba[i * k + c] > proba[i * k + best]) best = c;
    out[i] = best;
  }
  return out;
}
