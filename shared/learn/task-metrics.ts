/**
 * Metrics for the multi-label and regression tasks (multiclass lives in metrics.ts), with
 * scikit-learn's conventions so reports can be checked against it:
 *
 * - multi-label: precision / recall / F1 with `zero_division=0`; macro-F1 averages over ALL k labels,
 *   as sklearn does for indicator matrices (so a label absent from both truth and predictions counts
 *   as F1 = 0 there, unlike the multiclass macro-F1, which only averages labels that occur); micro-F1
 *   pools the counts of every label.
 * - regression: r2 follows `r2_score(force_finite=True)` (sklearn's default): with a constant target
 *   it is 1 when the predictions are exact and 0 otherwise, never NaN or -Inf.
 */
import { ValidationError } from "../errors.ts";
import type { ClassMetrics } from "./metrics.ts";

export interface MultilabelMetrics {
  /** Rows whose whole label set was predicted exactly. */
  subsetAccuracy: number;
  microF1: number;
  macroF1: number;
  /** Fraction of (row, label) decisions that were wrong. */
  hammingLoss: number;
  perLabel: Record<string, ClassMetrics & { threshold: number }>;
  n: number;
}

export interface RegressionMetrics {
  rmse: number;
  mae: number;
  r2: number;
  n: number;
}

function ratio(num: number, den: number): number {
  return den > 0 ? num / den : 0;
}

function checkIndicator(M: Uint8Array, n: number, k: number, field: string): void {
  if (M.length !== n * k) {
    throw new ValidationError(`${field} has ${M.length} values, expected n*k = ${n * k}`, { field });
  }
  for (let t = 0; t < M.length; t++) {
    if (M[t] > 1) {
      throw new ValidationError(`${field}[${Math.floor(t / k)}, ${t % k}] = ${M[t]} must be 0 or 1`, {
        field,
      });
    }
  }
}

/** `Y` (truth) and `pred` are n×k row-major 0/1 matrices; thresholds are reported per label as used. */
export function multilabelMetrics(
  Y: Uint8Array,
  pred: Uint8Array,
  n: number,
  labels: string[],
  thresholds: ArrayLike<number>,
): MultilabelMetrics {
  const k = labels.length;
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError("n must be a non-negative integer", { field: "n" });
  if (k < 1) throw new ValidationError("labels must not be empty", { field: "labels" });
  if (new Set(labels).size !== k) throw new ValidationError("labels must be unique", { field: "labels" });
  if (thresholds.length !== k) {
    throw new ValidationError(`thresholds has ${thresholds.length} values, expected ${k}`, {
      field: "thresholds",
    });
  }
  checkIndicator(Y, n, k, "Y");
  checkIndicator(pred, n, k, "pred");
  const tp = new Float64Array(k);
  const fp = new Float64Array(k);
  const fn = new Float64Array(k);
  let exact = 0;
  let wrong = 0;
  for (let i = 0; i < n; i++) {
    let rowWrong = 0;
    for (let c = 0; c < k; c++) {
      const t = Y[i * k + c];
      const p = pred[i * k + c];
      if (t === 1 && p === 1) tp[c]++;
      else if (p === 1) fp[c]++;
      else if (t === 1) fn[c]++;
      if (t !== p) rowWrong++;
    }
    if (rowWrong === 0) exact++;
    wrong += rowWrong;
  }
  const perLabel: MultilabelMetrics["perLabel"] = Object.create(null);
  let f1Sum = 0;
  let tpAll = 0;
  let fpAll = 0;
  let fnAll = 0;
  for (let c = 0; c < k; c++) {
    // F1 from counts (2tp / (2tp + fp + fn)) avoids the 0/0 of the harmonic-mean form.
    const f1 = ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]);
    perLabel[labels[c]] = {
      precision: ratio(tp[c], tp[c] + fp[c]),
      recall: ratio(tp[c], tp[c] + fn[c]),
      f1,
      support: tp[c] + fn[c],
      threshold: thresholds[c],
    };
    f1Sum += f1;
    tpAll += tp[c];
    fpAll += fp[c];
    fnAll += fn[c];
  }
  return {
    subsetAccuracy: ratio(exact, n),
    microF1: ratio(2 * tpAll, 2 * tpAll + fpAll + fnAll),
    macroF1: f1Sum / k,
    hammingLoss: ratio(wrong, n * k),
    perLabel,
    n,
  };
}

export function regressionMetrics(yTrue: Float64Array, yPred: Float64Array): RegressionMetrics {
  const n = yTrue.length;
  if (yPred.length !== n) {
    throw new ValidationError(`yPred has ${yPred.length} values, yTrue has ${n}`, { field: "yPred" });
  }
  if (n === 0) throw new ValidationError("no rows to score", { field: "yTrue" });
  let mean = 0;
  let constant = true;
  for (let i = 0; i < n; i++) {
    if (yTrue[i] !== yTrue[0]) constant = false;
    if (!Number.isFinite(yTrue[i]))
      throw new ValidationError(`yTrue[${i}] is ${yTrue[i]}`, { field: "yTrue" });
    if (!Number.isFinite(yPred[i]))
      throw new ValidationError(`yPred[${i}] is ${yPred[i]}`, { field: "yPred" });
    mean += yTrue[i];
  }
  mean /= n;
  let ssRes = 0;
  let ssTot = 0;
  let absSum = 0;
  for (let i = 0; i < n; i++) {
    const e = yTrue[i] - yPred[i];
    ssRes += e * e;
    absSum += Math.abs(e);
    const c = yTrue[i] - mean;
    ssTot += c * c;
  }
  // A constant target is detected exactly: its computed mean can be an ulp off, which would turn
  // ssTot into rounding noise and r2 into a huge negative number.
  let r2: number;
  if (!constant && ssTot > 0) r2 = 1 - ssRes / ssTot;
  else r2 = ssRes === 0 ? 1 : 0;
  return { rmse: Math.sqrt(ssRes / n), mae: absSum / n, r2, n };
}
