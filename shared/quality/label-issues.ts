/**
 * Label issues: which labelled rows of a dataset are probably labelled wrong. Every labelled row
 * (training and test split alike) gets out-of-fold class probabilities from the default head type
 * (`logreg`, its regularization picked from its grid by out-of-fold log-loss; the folds stratified
 * by the seed as training's are), and
 * confident learning (`learn/confident-learning.ts`) flags and ranks the suspects and estimates
 * the share of wrong labels. Classification only: a model of the labels is what judges them.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { loadBackboneSetDataset } from "../embed/composite.ts";
import { UnsupportedError, ValidationError } from "../errors.ts";
import { crossValidate } from "../heads/cross-validate.ts";
import { DEFAULT_TYPE, inferTask, Problem } from "../heads/problem.ts";
import { checkTrainingBudget, type TrainLimits, withTrainingBudget } from "../learn/budget.ts";
import { confidentLearning, RANK_BY, type RankBy } from "../learn/confident-learning.ts";
import type { HeadParams, Target } from "../learn/estimator.ts";
import { logLoss } from "../learn/metrics.ts";
import { headKind } from "../learn/registry.ts";
import { stratifiedKFold } from "../learn/split.ts";
import type { ObjectStore } from "../store/types.ts";

export { RANK_BY, type RankBy };

export const DEFAULT_LABEL_ISSUE_FOLDS = 5;
/** Folds beyond this add fits without changing an out-of-fold probability much. */
export const MAX_LABEL_ISSUE_FOLDS = 20;

export interface LabelIssuesOptions {
  /** Cross-validation folds (2..20, at most one per labelled row); default 5. */
  folds?: number;
  rankBy?: RankBy;
  /** Seeds the folds and the fits. */
  seed?: number;
}

export interface LabelIssue {
  id: string;
  /** The row's text, for a text row: what a reviewer reads to judge the label. */
  text?: string;
  /** The row's image, for an image row: its path below `datasets/<dataset>/files/`. */
  image?: string;
  givenLabel: string;
  /** The class the out-of-fold model finds most probable. */
  suggestedLabel: string;
  /** 1 − the label's quality (`rankBy`), in [0, 1]: higher is more suspect. */
  score: number;
}

export interface LabelIssuesResult {
  dataset: string;
  /** The backbone (or `a+b` set) whose cached vectors were read. */
  backbone: string;
  /** The head type whose out-of-fold probabilities judged the labels. */
  type: string;
  /** Its parameters: the `auto` grid's by lowest out-of-fold log-loss. */
  params: HeadParams;
  folds: number;
  rankBy: RankBy;
  /** Labelled rows examined. */
  rows: number;
  classes: string[];
  /** Most suspect first. */
  issues: LabelIssue[];
  /** Off-diagonal mass of confident learning's joint of given and true labels. */
  estimatedNoiseRate: number;
}

/** Out-of-fold confident learning over the dataset's labelled rows, within `limits`. */
export async function findLabelIssues(
  store: ObjectStore,
  dataset: string,
  specs: readonly BackboneSpec[],
  opts: LabelIssuesOptions = {},
  limits?: TrainLimits,
): Promise<LabelIssuesResult> {
  const rankBy = checkOptions(opts);
  const run = async () => {
    const data = await loadBackboneSetDataset(store, dataset, specs);
    const problem = classificationProblem(dataset, data);
    const oof = await outOfFold(problem, opts);
    const y = (problem.target(problem.rows.map((_, p) => p)) as Extract<Target, { task: "multiclass" }>).y;
    const found = confidentLearning(oof.probs, y, problem.labels.length, rankBy);
    return {
      dataset,
      backbone: specs.map((s) => s.id).join("+"),
      type: DEFAULT_TYPE.multiclass,
      params: oof.params,
      folds: oof.folds,
      rankBy,
      rows: y.length,
      classes: problem.labels,
      issues: found.issues.map((i) => ({
        ...rowRef(data.rows[problem.rows[i.row]]),
        givenLabel: problem.labels[i.given],
        suggestedLabel: problem.labels[i.suggested],
        score: i.score,
      })),
      estimatedNoiseRate: found.noiseRate,
    };
  };
  return limits ? withTrainingBudget(limits, run) : run();
}

/** A row's id, and its text or image path when it has one. */
const rowRef = (row: { id: string; text?: string; image?: string }) =>
  row.text !== undefined
    ? { id: row.id, text: row.text }
    : row.image !== undefined
      ? { id: row.id, image: row.image }
      : { id: row.id };

function checkOptions(opts: LabelIssuesOptions): RankBy {
  const folds = opts.folds ?? DEFAULT_LABEL_ISSUE_FOLDS;
  if (!Number.isInteger(folds) || folds < 2 || folds > MAX_LABEL_ISSUE_FOLDS) {
    throw new ValidationError(`folds must be an integer from 2 to ${MAX_LABEL_ISSUE_FOLDS}, got ${folds}`, {
      field: "folds",
    });
  }
  const rankBy = opts.rankBy ?? "self-confidence";
  if (!RANK_BY.includes(rankBy)) {
    throw new ValidationError(`rankBy must be one of ${RANK_BY.join(", ")}, got ${JSON.stringify(rankBy)}`, {
      field: "rankBy",
    });
  }
  return rankBy;
}

/** The labelled rows as a multiclass problem; regression and multi-label datasets are refused. */
export function classificationProblem(
  dataset: string,
  data: Awaited<ReturnType<typeof loadBackboneSetDataset>>,
): Problem {
  const labelled: number[] = [];
  data.rows.forEach((row, i) => {
    if (row.label !== undefined) labelled.push(i);
  });
  const task = inferTask(labelled.map((i) => data.rows[i].label!));
  if (task !== "multiclass") {
    const what = task === "multilabel" ? "lists of labels (multi-label)" : "non-integer numbers (regression)";
    throw new UnsupportedError(
      `dataset ${dataset}'s labels are ${what}: label issues are found for single class labels only`,
      { field: "label" },
    );
  }
  const problem = new Problem("multiclass", data, labelled);
  if (problem.labels.length < 2) {
    throw new ValidationError(
      `dataset ${dataset} needs at least 2 distinct labels to judge them, found ${problem.labels.length}`,
      { field: "label" },
    );
  }
  return problem;
}

/**
 * Each labelled row's class probabilities from the default head fitted on the other folds. Its
 * regularization is chosen from the type's `auto` grid by out-of-fold log-loss on the same folds:
 * a head that fits the wrong labels (weak regularization on few rows) vouches for them, which
 * hides exactly the rows this looks for.
 */
export async function outOfFold(
  problem: Problem,
  opts: LabelIssuesOptions,
): Promise<{ probs: Float64Array; folds: number; params: HeadParams }> {
  const pos = problem.rows.map((_, p) => p);
  const folds = Math.min(opts.folds ?? DEFAULT_LABEL_ISSUE_FOLDS, pos.length);
  const seed = opts.seed ?? 0;
  const t = problem.target(pos) as Extract<Target, { task: "multiclass" }>;
  const foldOf = stratifiedKFold(t.y, t.k, folds, seed);
  const kind = headKind(DEFAULT_TYPE.multiclass);
  let best: { probs: Float64Array; loss: number; params: HeadParams } | undefined;
  for (const params of kind.grid(pos.length, problem.data.dim)) {
    checkTrainingBudget();
    const { out } = await crossValidate(problem, kind, params, { trainPos: pos, foldOf, folds, seed });
    const loss = logLoss(t.y, out, t.k);
    if (!best || loss < best.loss) best = { probs: out, loss, params };
  }
  return { probs: best!.probs, folds, params: best!.params };
}
