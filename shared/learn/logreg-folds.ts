/**
 * Cross-validation's logistic-regression fits, all folds at once: each fold runs its own L-BFGS
 * (lbfgs.ts's coroutine), and the folds' evaluations are batched into one onnxruntime run over the
 * shared rows (logistic-loss.ts's `makeOnnxFoldsObjective`). A fold's iterates are those of a fit of its
 * own rows standardized the same way (up to float32 rounding in the products): the folds share
 * work, not steps.
 *
 * Every fold is standardized with the statistics of all the rows (labels unused), not of its own
 * training rows, so one standardized copy serves them all; standardization only preconditions the
 * problem (standardize.ts), and the L2 penalty on standardized weights moves by the ratio of the
 * two scales (≈ 1 at the sizes this runs at). Each fold starts from `init` when given.
 */
import { checkTrainingBudget } from "./budget.ts";
import { type LbfgsResult, lbfgsSteps } from "./lbfgs.ts";
import { makeOnnxFoldsObjective } from "./logistic-loss.ts";
import { finishFit, type LogRegModel, type LogRegOptions, prepareFit, startingPoint } from "./logreg.ts";
import { standardizeOnnx } from "./standardize.ts";

/** One fold: the rows it trains on (indices into X), their weights, and its L2 strength. */
export interface LogRegFold {
  rows: Int32Array;
  /** Per entry of `rows`; default 1 each. */
  sampleWeight?: Float64Array;
  l2: number;
  /** Where this fold's solver starts, in place of the fit's `init`. */
  init?: LogRegModel;
}

/** One model per fold, in order, each fitted on its fold's rows of X (n×d, classes y over k). */
export async function fitLogRegFolds(
  X: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  folds: readonly LogRegFold[],
  opts: Pick<LogRegOptions, "init" | "maxIter" | "tol"> = {},
): Promise<LogRegModel[]> {
  const std = await standardizeOnnx(X, n, d);
  const prepared = prepareFit(X, n, d, y, k, opts, std);
  const weights = folds.map((fold) => foldWeights(fold, n));
  const objective = await makeOnnxFoldsObjective(std.Z, n, d, k, y, weights);
  const steps = folds.map((fold) =>
    lbfgsSteps(startingPoint(prepared, fold.init ?? opts.init), prepared.lbfgsOpts),
  );
  let states = steps.map((s) => s.next());
  while (states.some((s) => !s.done)) {
    checkTrainingBudget();
    const pending = states.map((s) => (s.done ? null : s.value));
    const values = await objective(
      pending.map((r) => r?.x ?? null),
      pending.map((r) => r?.grad ?? null),
    );
    states = states.map((s, f) => (s.done ? s : steps[f].next(values[f])));
  }
  return states.map((s, f) => {
    const res = s.value as LbfgsResult;
    return finishFit({ ...prepared, l2: weights[f].l2 }, res.x, res);
  });
}

function foldWeights({ rows, sampleWeight, l2 }: LogRegFold, n: number) {
  let total = 0;
  for (let t = 0; t < rows.length; t++) total += sampleWeight ? sampleWeight[t] : 1;
  const rowWeight = new Float64Array(n);
  if (total > 0)
    for (let t = 0; t < rows.length; t++) rowWeight[rows[t]] = (sampleWeight ? sampleWeight[t] : 1) / total;
  return { rowWeight, l2 };
}
