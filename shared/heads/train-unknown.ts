/**
 * The unknown-input detector of a multiclass version: a scorer fitted on the training vectors
 * (`learn/ood.ts`) and a threshold chosen on held-out in-distribution rows, never on unknown ones.
 *
 * Held-out rows: the `test` split when the dataset has one; else, for `msp`, every training row's
 * out-of-fold probability (calibrated fold by fold, as the evaluation uses them), and for the
 * distance scorers the first cross-validation fold, scored by a scorer fitted on the other folds.
 * The stored scorer is then fitted on every training row, so its distances run slightly smaller than
 * the threshold's: it flags a little fewer than `rate`, never more.
 *
 * The default scorer is `msp`: it costs nothing to store or to score (batch scoring keeps its
 * speed), and a choice made at training could only lean on held-out rows that hold no unknown items.
 * Measured with two classes held out (docs/benchmarks.md), `mahalanobis` and `knn` separate unknown
 * items better on both glove-100d text and mobilenet images, at the price of d²/2 (mahalanobis) or
 * 2,000·d (knn) work per row and head.json blocks of megabytes for 1,280-d vectors: a head asks for
 * them with `unknownScorer`.
 */
import { fitOodScorer, type OodMethod, oodScores, oodToJson, unknownThreshold } from "../learn/ood.ts";
import type { Evaluation } from "./evaluate.ts";
import type { Problem, TrainingSet } from "./problem.ts";
import type { TrainOptions } from "./train-request.ts";
import type { UnknownDetector, UnknownReport } from "./version.ts";

export const DEFAULT_UNKNOWN_RATE = 0.05;
export const DEFAULT_UNKNOWN_SCORER: OodMethod = "msp";

export interface UnknownFit {
  detector: UnknownDetector;
  report: UnknownReport;
}

/** The detector and its report line, or undefined for heads that are not multiclass. */
export function fitUnknown(opts: TrainOptions, set: TrainingSet, ev: Evaluation): UnknownFit | undefined {
  if (set.task !== "multiclass" || !ev.heldOut) return undefined;
  const method = opts.unknownScorer ?? DEFAULT_UNKNOWN_SCORER;
  const rate = opts.unknownRate ?? DEFAULT_UNKNOWN_RATE;
  const { problem, trainPos, seed } = set;
  const held = method === "msp" ? mspHeldOut(set, ev.heldOut) : distanceHeldOut(method, set);
  const threshold = unknownThreshold(held.scores, 1 - rate);
  const scorer = oodToJson(fit(method, problem, trainPos, seed));
  return {
    detector: { method, threshold, rate, scorer },
    report: {
      method,
      threshold,
      rate,
      fittedOn: held.fittedOn,
      heldOut: held.scores.length,
      bytes: JSON.stringify(scorer).length,
    },
  };
}

interface HeldScores {
  scores: Float64Array;
  fittedOn: string;
}

function fit(method: OodMethod, problem: Problem, pos: readonly number[], seed: number) {
  const t = problem.target(pos);
  const y = t.task === "multiclass" ? t.y : new Int32Array(pos.length);
  return fitOodScorer(method, problem.X(pos), pos.length, problem.data.dim, y, problem.width, { seed });
}

function mspHeldOut(set: TrainingSet, heldOut: NonNullable<Evaluation["heldOut"]>): HeldScores {
  const k = set.problem.width;
  const n = heldOut.pos.length;
  const scorer = { method: "msp" as const };
  const scores = oodScores(scorer, new Float32Array(0), n, heldOut.proba, k);
  const fittedOn =
    set.testPos.length > 0
      ? `the test split's ${n} rows`
      : `out-of-fold probabilities of the ${n} training rows (${set.folds} folds)`;
  return { scores, fittedOn };
}

/** The test split scored by a scorer of every training row, else fold 0 by one of the other folds. */
function distanceHeldOut(method: OodMethod, set: TrainingSet): HeldScores {
  const { problem, trainPos, testPos, foldOf, seed } = set;
  if (testPos.length > 0) {
    const scorer = fit(method, problem, trainPos, seed);
    const scores = oodScores(scorer, problem.X(testPos), testPos.length, new Float64Array(0), problem.width);
    return { scores, fittedOn: `the test split's ${testPos.length} rows` };
  }
  const rest = trainPos.filter((_, i) => foldOf[i] !== 0);
  const slice = trainPos.filter((_, i) => foldOf[i] === 0);
  const scorer = fit(method, problem, rest, seed);
  const scores = oodScores(scorer, problem.X(slice), slice.length, new Float64Array(0), problem.width);
  return {
    scores,
    fittedOn: `the first of ${set.folds} folds (${slice.length} training rows), scored by a scorer of the other folds`,
  };
}
