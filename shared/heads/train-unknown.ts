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
 * The default, `auto`, picks the scorer per head at training (`learn/ood-select.ts`): a few seen
 * classes take turns standing in for an unseen one, and a distance scorer (`mahalanobis`, `knn`) is
 * kept only if it separated them clearly better than `msp`, which is free to store and to score.
 * Measured with two real classes held out (docs/benchmarks.md), the distance scorers win on
 * glove-100d text and on mobilenet images, but no scorer wins everywhere, so neither is a fixed
 * default. A head can still ask for one scorer with `unknownScorer`.
 */
import { fitOodScorer, type OodMethod, oodScores, oodToJson, unknownThreshold } from "../learn/ood.ts";
import { type ProbaFitter, selectOodMethod } from "../learn/ood-select.ts";
import type { Choice } from "./cv-search.ts";
import type { Evaluation } from "./evaluate.ts";
import type { Problem, TrainingSet } from "./problem.ts";
import type { TrainOptions } from "./train-request.ts";
import type { UnknownDetector, UnknownReport } from "./version.ts";

export const DEFAULT_UNKNOWN_RATE = 0.05;
export const DEFAULT_UNKNOWN_SCORER = "auto";

export interface UnknownFit {
  detector: UnknownDetector;
  report: UnknownReport;
}

/**
 * The detector and its report line, or undefined for heads that are not multiclass. `choice`: the
 * head's type and parameters (refitted when `auto` compares scorers) and the chosen input's rows.
 */
export async function fitUnknown(
  opts: TrainOptions,
  trained: TrainingSet,
  choice: Pick<Choice, "kind" | "params" | "problem">,
  ev: Evaluation,
): Promise<UnknownFit | undefined> {
  if (trained.task !== "multiclass" || !ev.heldOut) return undefined;
  // The chosen backbone's rows: with backbone candidates they are not the first input's.
  const set = { ...trained, problem: choice.problem };
  const requested = opts.unknownScorer ?? DEFAULT_UNKNOWN_SCORER;
  const selection = requested === "auto" ? await selectScorer(set, choice) : undefined;
  const method = selection?.method ?? (requested as OodMethod);
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
      ...(selection ? { selection: selectionReport(selection, problem.labels) } : {}),
    },
  };
}

/** `auto`: the scorer that told stand-in unseen classes apart best, the training rows of fold 0 held out. */
function selectScorer(set: TrainingSet, choice: Pick<Choice, "kind" | "params">) {
  const { problem, trainPos, foldOf, seed } = set;
  const t = problem.target(trainPos);
  if (t.task !== "multiclass") throw new Error("unreachable: multiclass checked by fitUnknown");
  const { kind, params } = choice;
  const fitProba: ProbaFitter = async (X, n, d, y, k) => {
    const model = await kind.fit(X, n, d, { task: "multiclass", y, k }, params, { seed });
    return (Xq, m) => kind.predict(model, Xq, m);
  };
  const rows = {
    X: problem.X(trainPos),
    n: trainPos.length,
    d: problem.data.dim,
    y: t.y,
    k: t.k,
    validation: Uint8Array.from(foldOf, (f) => (f === 0 ? 1 : 0)),
  };
  return selectOodMethod(rows, fitProba, { seed });
}

function selectionReport(
  s: Awaited<ReturnType<typeof selectOodMethod>>,
  labels: readonly string[],
): NonNullable<UnknownReport["selection"]> {
  return {
    reason: s.reason,
    standIns: s.standIns.map((c) => labels[c]),
    ...(s.auroc ? { auroc: s.auroc } : {}),
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
