/**
 * `type: "auto"`: candidate head types, over their parameter grids and over each backbone input
 * (a backbone or a set of them), cross-validated on the training rows with the same folds; the
 * search is kept in the report. One input: every configuration in order, the best mean fold score
 * wins. Several inputs: a screen, then the full grids on the inputs that survive it, best first,
 * within the time budget; a cheaper input wins when it scores within the noise of a costlier one
 * (cv-search.ts).
 */
import { ValidationError } from "../errors.ts";
import { checkTrainMemory, estimateTrainBytes, type TrainLimits } from "../learn/budget.ts";
import type { HeadTask } from "../learn/estimator.ts";
import { findHeadKind, HEAD_KINDS } from "../learn/registry.ts";
import type { AnyKind } from "./cross-validate.ts";
import { type CandidateSet, type Choice, CvSearch, inputId } from "./cv-search.ts";
import { DEFAULT_TYPE, type TrainingSet } from "./problem.ts";
import type { BackboneInput } from "./train-inputs.ts";
import type { TrainOptions } from "./train-request.ts";

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
  const search = new CvSearch(set, {
    nameBackbones: opts.backbones !== undefined,
    budgetSeconds: searchBudget(opts, limits),
  });
  if (inputs.length === 1) {
    for (const kind of kinds)
      await search.run({ input: inputs[0], kind, grid: kind.grid(trainPos.length, inputs[0].data.dim) });
  } else {
    await searchInputs(search, set, inputs, kinds, DEFAULT_TYPE[task]);
  }
  const best = search.choose();
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

/**
 * The search's time budget: `budgetSeconds`, and at most half the training's own, so the final
 * fit, calibration and evaluation always have time left (a search past it keeps what it scored).
 */
function searchBudget(opts: TrainOptions, limits: TrainLimits | undefined): number | undefined {
  const half = limits ? limits.maxSeconds / 2 : undefined;
  if (opts.budgetSeconds === undefined) return half;
  return half === undefined ? opts.budgetSeconds : Math.min(opts.budgetSeconds, half);
}

/** How far below the screen's best an input may score and still have its full grids searched. */
const SCREEN_STDS = 2;

/**
 * Several inputs, cheapest first: (1) a screen scores one configuration on each — the task's
 * default type at its default parameters, or the first candidate — then (2) every candidate's grid
 * on each input, best screen first, leaving out inputs that trail the best screen by more than
 * SCREEN_STDS fold standard deviations (they are listed as skipped, with their screen score).
 */
async function searchInputs(
  search: CvSearch,
  set: TrainingSet,
  inputs: readonly BackboneInput[],
  kinds: readonly AnyKind[],
  defaultType: string,
): Promise<void> {
  const n = set.trainPos.length;
  const preferred = kinds.find((k) => k.type === defaultType) ?? kinds[0];
  for (const input of inputs) {
    // A kind that cannot train on this input (knn past its size limit has no grid) does not screen it.
    const kind = [preferred, ...kinds].find((k) => k.grid(n, input.data.dim).length > 0);
    if (!kind) continue;
    const params = kind.resolveParams({}, n, input.data.dim);
    await search.run({ input, kind, grid: [params] }); // past the budget: listed as skipped
  }
  const screened = inputs
    .filter((i) => search.bestOf(i))
    .sort((a, b) => search.bestOf(b)!.score - search.bestOf(a)!.score);
  if (screened.length === 0) return;
  const top = search.bestOf(screened[0])!;
  const spread = Math.max(...screened.map((i) => stdOf(search.bestOf(i)!.oof.foldScores)));
  for (const input of screened) {
    const screen = search.bestOf(input)!.score;
    if (screen < top.score - SCREEN_STDS * spread) {
      const why = `screened out: scored ${screen.toFixed(4)}, best ${top.score.toFixed(4)} on ${inputId(top.input)}`;
      for (const kind of kinds) search.skip(input, kind, why);
      continue;
    }
    for (const kind of kinds) {
      const grid = kind.grid(n, input.data.dim);
      if (grid.length) await search.run({ input, kind, grid } satisfies CandidateSet);
    }
  }
}

function stdOf(xs: readonly number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((t, x) => t + (x - m) ** 2, 0) / xs.length);
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

/**
 * The best of `configs` by the training set's cross-validation, as the Choice a training fits,
 * with the search kept for the report (`backbone` named per candidate with `nameBackbones`).
 */
export async function selectByCv(
  set: TrainingSet,
  configs: readonly CandidateSet[],
  nameBackbones: boolean,
): Promise<Choice | undefined> {
  const search = new CvSearch(set, { nameBackbones });
  for (const config of configs) await search.run(config);
  return search.choose();
}
