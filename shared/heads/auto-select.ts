/**
 * `type: "auto"`: every candidate head type, over its parameter grid and (with `backbones`) over
 * each backbone candidate, is cross-validated on the training rows with the same folds; the best
 * mean fold score wins, and the search is kept in the report.
 */
import { PART_SEPARATOR } from "../embed/composite.ts";
import { ValidationError } from "../errors.ts";
import {
  checkTrainingBudget,
  checkTrainMemory,
  estimateTrainBytes,
  type TrainLimits,
} from "../learn/budget.ts";
import type { HeadParams, HeadTask } from "../learn/estimator.ts";
import { findHeadKind, HEAD_KINDS } from "../learn/registry.ts";
import { type AnyKind, crossValidate, type Evaluated } from "./cross-validate.ts";
import { Problem, type TrainingSet } from "./problem.ts";
import type { BackboneInput } from "./train-inputs.ts";
import type { TrainOptions } from "./train-request.ts";
import type { Search } from "./version.ts";

/** The estimator a training fits: a head type with its parameters, on one input. */
export interface Choice {
  kind: AnyKind;
  params: HeadParams;
  input: BackboneInput;
  /** The training set's problem on `input`. */
  problem: Problem;
  /** Out-of-fold outputs of this configuration on the training rows, when selection computed them. */
  oof?: Evaluated;
  search?: Search;
}

interface Best extends Choice {
  oof: Evaluated;
  score: number;
  /** Its place in the search's candidates. */
  index: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

/** The best candidate by cross-validation, within the memory budget of the largest one. */
export async function autoSelect(
  opts: TrainOptions,
  set: TrainingSet,
  inputs: readonly BackboneInput[],
  datasetBytes: number,
  limits: TrainLimits | undefined,
): Promise<Choice> {
  const { task, trainPos } = set;
  const types = opts.candidates ?? Object.keys(HEAD_KINDS).filter((t) => HEAD_KINDS[t].task === task);
  const kinds = candidateKinds(types, task);
  checkTrainMemory(
    limits,
    `auto over ${types.join(", ")}`,
    datasetBytes,
    largestCandidate(kinds, inputs, set),
  );
  const configs = inputs.flatMap((input) =>
    kinds.map((kind) => ({ input, kind, grid: kind.grid(trainPos.length, input.data.dim) })),
  );
  const best = await selectByCv(set, configs, opts.backbones !== undefined);
  if (!best) {
    throw new ValidationError(
      `none of ${types.join(", ")} can train on ${trainPos.length} rows × ${inputs[0].data.dim} dims`,
      {
        field: "candidates",
      },
    );
  }
  return best;
}

function candidateKinds(types: readonly string[], task: HeadTask): AnyKind[] {
  const kinds = types.map((t) => {
    if (!findHeadKind(t)) {
      throw new ValidationError(
        `unknown candidate ${JSON.stringify(t)}; available: ${Object.keys(HEAD_KINDS).join(", ")}`,
        { field: "candidates" },
      );
    }
    return HEAD_KINDS[t] as AnyKind;
  });
  for (const k of kinds) {
    if (k.task !== task) {
      throw new ValidationError(`candidate ${k.type} learns ${k.task} targets, not ${task}`, {
        field: "candidates",
      });
    }
  }
  if (kinds.length === 0) throw new ValidationError(`no head type learns ${task} targets`, { field: "type" });
  return kinds;
}

/** Estimated training memory of the most demanding configuration the search would fit. */
function largestCandidate(kinds: readonly AnyKind[], inputs: readonly BackboneInput[], set: TrainingSet) {
  const n = set.trainPos.length;
  let largest = 0;
  for (const inp of inputs)
    for (const k of kinds)
      for (const p of k.grid(n, inp.data.dim))
        largest = Math.max(largest, estimateTrainBytes(k.type, n, inp.data.dim, set.problem.width, p));
  return largest;
}

/** Candidate configurations on one input: a head type and the parameter sets to try. */
export interface CandidateSet {
  input: BackboneInput;
  kind: AnyKind;
  grid: readonly HeadParams[];
  /**
   * The grid walks one parameter in order (a regularization path): stop at the first candidate
   * that scores below the one before it, as the score is taken to have one peak along it.
   */
  path?: boolean;
}

/**
 * The best of `configs` by the training set's cross-validation, as the Choice a training fits,
 * with the search kept for the report (`backbone` named per candidate with `nameBackbones`).
 */
export async function selectByCv(
  set: TrainingSet,
  configs: readonly CandidateSet[],
  nameBackbones: boolean,
): Promise<Choice | undefined> {
  const candidates: Search["candidates"] = [];
  let best: Best | undefined;
  for (const { input, kind, grid, path } of configs) {
    // Same rows and labels for every input, so the training set's folds apply to each.
    const problem =
      input.data === set.problem.data ? set.problem : new Problem(set.task, input.data, set.labelled);
    const backboneId = input.specs.map((s) => s.id).join(PART_SEPARATOR);
    // Along a grid each fold starts from its own model at the previous values (a regularization
    // path, as glmnet and LogisticRegressionCV walk it): the same optimum in fewer solver steps.
    let previous: Evaluated | undefined;
    for (const params of grid) {
      checkTrainingBudget();
      const t0 = performance.now();
      const oof = await crossValidate(problem, kind, params, set, { perFold: previous?.models });
      const score = mean(oof.foldScores);
      candidates.push({
        ...(nameBackbones ? { backbone: backboneId } : {}),
        type: kind.type,
        params,
        score: set.task === "regression" ? -score : score,
        std: std(oof.foldScores),
        seconds: (performance.now() - t0) / 1000,
        chosen: false,
      });
      // Strictly better only: ties keep the earlier (simpler) candidate.
      if (!best || score > best.score)
        best = { kind, params, score, oof, index: candidates.length - 1, input, problem };
      if (path && previous && score < mean(previous.foldScores)) break;
      previous = oof;
    }
  }
  if (!best) return undefined;
  candidates[best.index].chosen = true;
  const { kind, params, oof, input, problem } = best;
  const metric = set.task === "regression" ? "rmse" : "macroF1";
  return { kind, params, oof, input, problem, search: { metric, folds: set.folds, candidates } };
}
