/**
 * Cross-validation on the training rows: each row scored by a model fitted on the other folds.
 * Model selection (`auto`) compares configurations by it, and a dataset without a test split is
 * evaluated and calibrated with it.
 */
import { checkTrainingBudget } from "../learn/budget.ts";
import type { FitContext, HeadKind, HeadParams, Target } from "../learn/estimator.ts";
import { argmaxRows, classificationMetrics } from "../learn/metrics.ts";
import { multilabelMetrics, regressionMetrics } from "../learn/task-metrics.ts";
import type { Folds, Problem } from "./problem.ts";

export type AnyKind = HeadKind<unknown, HeadParams>;

export interface Evaluated {
  /** Model outputs for the evaluated positions, n × width. */
  out: Float64Array;
  /** Multilabel: each fold model's own decisions for its held-out rows, n × k. */
  decided?: Uint8Array;
  /** Per-fold scores (CV only). */
  foldScores: number[];
  /** Each fold's model, in fold order: where the folds of a neighbouring configuration may start. */
  models: unknown[];
}

/** Multi-label decisions: the kind's own (per-label thresholds), else p ≥ 0.5. */
export function decide(kind: AnyKind, model: unknown, out: Float64Array, n: number): Uint8Array {
  if (kind.decide) return kind.decide(model, out, n);
  return Uint8Array.from(out, (p) => (p >= 0.5 ? 1 : 0));
}

export function thresholdsOf(kind: AnyKind, model: unknown, k: number): number[] {
  return kind.thresholds?.(model) ?? new Array<number>(k).fill(0.5);
}

/** Higher is better for every score here: macro-F1, or −RMSE for regression. */
function score(problem: Problem, target: Target, out: Float64Array, n: number, decided?: Uint8Array): number {
  if (target.task === "regression") return -regressionMetrics(target.y, out).rmse;
  if (target.task === "multilabel") {
    return multilabelMetrics(target.Y, decided!, n, problem.labels, new Array(target.k).fill(0.5)).macroF1;
  }
  return classificationMetrics(target.y, argmaxRows(out, n, target.k), problem.labels).macroF1;
}

/** Out-of-fold outputs for the training rows and each fold's score. */
export async function crossValidate(
  problem: Problem,
  kind: AnyKind,
  params: HeadParams,
  { trainPos: pos, foldOf, folds, seed }: Folds,
  /**
   * Where each fold's solver may start: the same kind and params fitted on every training row
   * (`all`), or each fold's own model at a neighbouring configuration (`perFold`, in fold order).
   */
  warmStart: { all?: unknown; perFold?: readonly unknown[] } = {},
): Promise<Evaluated> {
  const d = problem.data.dim;
  const w = problem.width;
  const out = new Float64Array(pos.length * w);
  const decided = problem.task === "multilabel" ? new Uint8Array(pos.length * w) : undefined;
  const foldScores: number[] = [];
  const ctx = (f: number) => {
    const start = warmStart.perFold?.[f] ?? warmStart.all;
    return { seed: seed + f, ...(start === undefined ? {} : { warmStart: start }) };
  };
  const joint = await fitFoldsTogether(
    problem,
    kind,
    params,
    { trainPos: pos, foldOf, folds },
    {
      ...ctx(0),
      ...(warmStart.perFold ? { foldWarmStarts: warmStart.perFold } : {}),
    },
  );
  const models: unknown[] = [];
  for (let f = 0; f < folds; f++) {
    checkTrainingBudget();
    const inFold: number[] = [];
    const outFold: number[] = [];
    for (let j = 0; j < pos.length; j++) (foldOf[j] === f ? outFold : inFold).push(j);
    const trainPos = inFold.map((j) => pos[j]);
    const testPos = outFold.map((j) => pos[j]);
    const model =
      joint?.[f] ??
      (await kind.fit(problem.X(trainPos), trainPos.length, d, problem.target(trainPos), params, ctx(f)));
    models.push(model);
    const o = await kind.predict(model, problem.X(testPos), testPos.length);
    const dec = decided ? decide(kind, model, o, testPos.length) : undefined;
    for (let t = 0; t < outFold.length; t++) {
      out.set(o.subarray(t * w, (t + 1) * w), outFold[t] * w);
      if (dec) decided!.set(dec.subarray(t * w, (t + 1) * w), outFold[t] * w);
    }
    foldScores.push(score(problem, problem.target(testPos), o, testPos.length, dec));
  }
  return { out, decided, foldScores, models };
}

/** Every fold's model from one shared fit (`kind.fitFolds`), or undefined to fit them one by one. */
async function fitFoldsTogether(
  problem: Problem,
  kind: AnyKind,
  params: HeadParams,
  { trainPos: pos, foldOf, folds }: Pick<Folds, "trainPos" | "foldOf" | "folds">,
  ctx: FitContext,
): Promise<unknown[] | undefined> {
  if (!kind.fitFolds) return undefined;
  const rows = Array.from({ length: folds }, (_, f) => {
    const inFold: number[] = [];
    for (let j = 0; j < pos.length; j++) if (foldOf[j] !== f) inFold.push(j);
    return Int32Array.from(inFold);
  });
  return kind.fitFolds(problem.X(pos), pos.length, problem.data.dim, problem.target(pos), params, rows, ctx);
}
