/**
 * How good a fitted head is: scored on the `test` split when the dataset has one, else on
 * out-of-fold predictions of the training rows. Multiclass heads are calibrated by a temperature
 * fitted on out-of-fold probabilities, and judged before and after it.
 */
import {
  applyTemperature,
  expectedCalibrationError,
  fitTemperature,
  reliabilityBins,
} from "../learn/calibration.ts";
import { confidentLearning } from "../learn/confident-learning.ts";
import type { Target } from "../learn/estimator.ts";
import { argmaxRows, classificationMetrics, logLoss } from "../learn/metrics.ts";
import { multilabelMetrics, regressionMetrics } from "../learn/task-metrics.ts";
import { type AnyKind, crossValidate, decide, type Evaluated, thresholdsOf } from "./cross-validate.ts";
import type { Choice } from "./cv-search.ts";
import type { Folds, Problem, TrainingSet } from "./problem.ts";
import type { PhaseClock } from "./train-timings.ts";
import type { CalibrationReport, Report } from "./version.ts";

export interface Evaluation {
  evaluation: Report["evaluation"];
  metrics?: Report["metrics"];
  multilabel?: Report["multilabel"];
  regression?: Report["regression"];
  calibration?: CalibrationReport;
  /**
   * Multiclass: the evaluated rows (test split, else every training row out of fold) and their
   * probabilities, calibrated as predict serves them: where the unknown-input threshold is chosen.
   */
  heldOut?: { pos: number[]; proba: Float64Array };
  labelIssues?: Report["labelIssues"];
}

/** The evaluated rows and the head's outputs for them (each from a model that never saw the row). */
interface HeldOut {
  pos: number[];
  out: Float64Array;
  decided?: Uint8Array;
}

type MulticlassTarget = Extract<Target, { task: "multiclass" }>;

/** `model` is `choice` fitted on all training rows; `calibrate`: the request's (default true). */
export async function evaluateHead(
  choice: Pick<Choice, "kind" | "params" | "problem" | "oof">,
  model: unknown,
  set: TrainingSet,
  calibrate: boolean,
  clock?: PhaseClock,
): Promise<Evaluation> {
  const { kind, params, problem } = choice;
  let oof = choice.oof;
  // The folds start from the model of every row: same optimum, far fewer solver iterations.
  const outOfFold = async () => (oof ??= await crossValidate(problem, kind, params, set, { all: model }));
  const hasTest = set.testPos.length > 0;
  const held = hasTest
    ? await onTestSplit(kind, model, problem, set.testPos)
    : await outOfFoldRows(set, outOfFold);
  const target = problem.target(held.pos);
  clock?.lap("evaluate");
  let calibration: CalibrationReport | undefined;
  if (set.task === "multiclass" && calibrate) {
    ({ calibration, after: held.out } = calibrateTemperature(problem, set, held, target, await outOfFold()));
    clock?.lap("calibrate");
  }
  const evaluation: Evaluation = {
    evaluation: hasTest ? "test-split" : "cv",
    ...scores(kind, model, problem, target, held),
    ...(calibration ? { calibration } : {}),
    ...(set.task === "multiclass" ? { heldOut: { pos: held.pos, proba: held.out } } : {}),
    ...(set.task === "multiclass" && oof ? { labelIssues: labelIssues(problem, set, oof.out) } : {}),
  };
  clock?.lap("evaluate");
  return evaluation;
}

/** Confident learning over the training rows' out-of-fold probabilities: how many look mislabelled. */
function labelIssues(problem: Problem, set: TrainingSet, out: Float64Array): Report["labelIssues"] {
  const { y, k } = problem.target(set.trainPos) as MulticlassTarget;
  const found = confidentLearning(out, y, k);
  return { count: found.issues.length, rows: y.length, estimatedNoiseRate: found.noiseRate };
}

async function onTestSplit(
  kind: AnyKind,
  model: unknown,
  problem: Problem,
  testPos: number[],
): Promise<HeldOut> {
  const out = await kind.predict(model, problem.X(testPos), testPos.length);
  const decided = problem.task === "multilabel" ? decide(kind, model, out, testPos.length) : undefined;
  return { pos: testPos, out, decided };
}

/**
 * Each row scored by a model that never saw it, multi-label decisions included (an auto-selected
 * head's figure is then its selection score: hold out a test split for an unbiased one).
 */
async function outOfFoldRows(set: TrainingSet, outOfFold: () => Promise<Evaluated>): Promise<HeldOut> {
  const cv = await outOfFold();
  return { pos: set.trainPos, out: cv.out, decided: cv.decided };
}

/** Temperature scaling fitted on the out-of-fold probabilities of the training rows. */
function calibrateTemperature(
  problem: Problem,
  set: TrainingSet,
  held: HeldOut,
  target: Target,
  cv: Evaluated,
): { calibration: CalibrationReport; after: Float64Array } {
  const k = problem.width;
  const trainY = (problem.target(set.trainPos) as MulticlassTarget).y;
  const temperature = fitTemperature(cv.out, trainY, k);
  const y = (target as MulticlassTarget).y;
  // Without a test split, each fold is scaled by a temperature fitted on the other folds, so the
  // "after" figures stay out of sample too.
  const after =
    set.testPos.length > 0
      ? applyTemperature(held.out, held.pos.length, k, temperature)
      : crossFittedTemperature(cv.out, trainY, k, set);
  const calibration: CalibrationReport = {
    method: "temperature",
    temperature,
    eceBefore: expectedCalibrationError(held.out, y, k),
    eceAfter: expectedCalibrationError(after, y, k),
    fittedOn: `out-of-fold predictions on ${set.trainPos.length} training rows (${set.folds} folds)`,
    reliabilityBefore: reliabilityBins(held.out, y, k),
    reliabilityAfter: reliabilityBins(after, y, k),
  };
  return { calibration, after };
}

/** Out-of-fold probabilities, each fold scaled by a temperature fitted on the other folds. */
function crossFittedTemperature(
  proba: Float64Array,
  y: Int32Array,
  k: number,
  { foldOf, folds }: Folds,
): Float64Array {
  const out = new Float64Array(proba.length);
  for (let f = 0; f < folds; f++) {
    const rest: number[] = [];
    const held: number[] = [];
    for (let i = 0; i < y.length; i++) (foldOf[i] === f ? held : rest).push(i);
    const rows = (idx: number[], src: Float64Array) => {
      const m = new Float64Array(idx.length * k);
      idx.forEach((i, t) => {
        m.set(src.subarray(i * k, (i + 1) * k), t * k);
      });
      return m;
    };
    const T = fitTemperature(
      rows(rest, proba),
      Int32Array.from(rest, (i) => y[i]),
      k,
    );
    const scaled = applyTemperature(rows(held, proba), held.length, k, T);
    held.forEach((i, t) => {
      out.set(scaled.subarray(t * k, (t + 1) * k), i * k);
    });
  }
  return out;
}

/** The task's figures: class metrics with log-loss, per-label metrics, or regression errors. */
function scores(
  kind: AnyKind,
  model: unknown,
  problem: Problem,
  target: Target,
  held: HeldOut,
): Pick<Evaluation, "metrics" | "multilabel" | "regression"> {
  const n = held.pos.length;
  if (target.task === "multiclass") {
    const yPred = argmaxRows(held.out, n, target.k);
    return {
      metrics: {
        ...classificationMetrics(target.y, yPred, problem.labels),
        logLoss: logLoss(target.y, held.out, target.k),
      },
    };
  }
  if (target.task === "multilabel") {
    const thresholds = thresholdsOf(kind, model, target.k);
    return { multilabel: multilabelMetrics(target.Y, held.decided!, n, problem.labels, thresholds) };
  }
  return { regression: regressionMetrics(target.y, held.out) };
}
