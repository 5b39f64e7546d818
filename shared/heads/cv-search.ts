/**
 * The cross-validated search behind `auto` and the small-data parameter choice: configurations are
 * scored on the training set's folds one after another, each remembered by its input (a backbone
 * or a set of them), within an optional time budget. Choosing among inputs prefers the cheaper one
 * unless a costlier input wins by more than the noise of the folds (see `choose`).
 */
import { backboneSetCost, PART_SEPARATOR } from "../embed/composite.ts";
import { checkTrainingBudget } from "../learn/budget.ts";
import type { HeadParams } from "../learn/estimator.ts";
import { type AnyKind, crossValidate, type Evaluated } from "./cross-validate.ts";
import { Problem, type TrainingSet } from "./problem.ts";
import type { BackboneInput } from "./train-inputs.ts";
import type { Search } from "./version.ts";

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

/** A scored configuration: higher `score` is better (macro-F1, or −RMSE). */
interface Scored extends Choice {
  oof: Evaluated;
  score: number;
  /** Its place in the search's candidates. */
  index: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: readonly number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

/** The id of an input as the search table names it: `a` or `a+b`. */
export const inputId = (input: BackboneInput) => input.specs.map((s) => s.id).join(PART_SEPARATOR);

const inputCost = (input: BackboneInput) => backboneSetCost(input.specs);

/**
 * Whether `cheap` is as good as `best` within the folds' noise: the mean of their per-fold
 * differences is at most one standard error of those differences (the folds are the same rows, so
 * the comparison is paired; Breiman's one-standard-error rule).
 */
export function withinOneSe(best: readonly number[], cheap: readonly number[]): boolean {
  const d = best.map((b, f) => b - cheap[f]);
  const m = mean(d);
  if (d.length < 2) return m <= 0;
  const sd = Math.sqrt(d.reduce((t, x) => t + (x - m) ** 2, 0) / (d.length - 1));
  return m <= sd / Math.sqrt(d.length);
}

export class CvSearch {
  readonly candidates: Search["candidates"] = [];
  readonly skipped: NonNullable<Search["skipped"]> = [];
  private readonly bestByInput = new Map<BackboneInput, Scored>();
  private readonly problems = new Map<BackboneInput, Problem>();
  private readonly started = performance.now();
  private stopped = false;

  constructor(
    private readonly set: TrainingSet,
    private readonly opts: { nameBackbones: boolean; budgetSeconds?: number },
  ) {}

  /** Seconds since the search started. */
  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** Past its budget, once at least one candidate has a score (a search always has a choice). */
  get overBudget(): boolean {
    const budget = this.opts.budgetSeconds;
    this.stopped ||= budget !== undefined && this.candidates.length > 0 && this.seconds > budget;
    return this.stopped;
  }

  /** The best-scoring configuration tried on `input`, if any. */
  bestOf(input: BackboneInput): Scored | undefined {
    return this.bestByInput.get(input);
  }

  /** Records configurations not tried, with why (shown in the report). */
  skip(input: BackboneInput, kind: AnyKind, reason: string): void {
    this.skipped.push({ ...this.named(input), type: kind.type, reason });
  }

  /** Scores each configuration of `config` in order; false when the budget stopped it. */
  async run({ input, kind, grid, path }: CandidateSet): Promise<boolean> {
    const problem = this.problemOf(input);
    // Along a grid each fold starts from its own model at the previous values (a regularization
    // path, as glmnet and LogisticRegressionCV walk it): the same optimum in fewer solver steps.
    let previous: Evaluated | undefined;
    for (const params of grid) {
      if (this.overBudget) {
        this.skip(input, kind, `budget of ${this.opts.budgetSeconds} s spent`);
        return false;
      }
      if (this.tried(input, kind, params)) continue;
      checkTrainingBudget();
      const t0 = performance.now();
      const oof = await crossValidate(problem, kind, params, this.set, { perFold: previous?.models });
      const score = mean(oof.foldScores);
      this.candidates.push({
        ...this.named(input),
        type: kind.type,
        params,
        score: this.set.task === "regression" ? -score : score,
        std: std(oof.foldScores),
        seconds: (performance.now() - t0) / 1000,
        chosen: false,
      });
      const best = this.bestByInput.get(input);
      // Strictly better only: ties keep the earlier (simpler) candidate.
      if (!best || score > best.score) {
        this.bestByInput.set(input, {
          kind,
          params,
          score,
          oof,
          index: this.candidates.length - 1,
          input,
          problem,
        });
      }
      if (path && previous && score < mean(previous.foldScores)) break;
      previous = oof;
    }
    return true;
  }

  /**
   * The configuration a training fits: the best score overall, unless a cheaper input's best is
   * within one standard error of it (then the cheapest such input's best), as the Choice with the
   * search kept for the report.
   */
  choose(): Choice | undefined {
    const scored = [...this.bestByInput.values()];
    if (scored.length === 0) return undefined;
    const best = scored.reduce((a, b) =>
      b.score > a.score || (b.score === a.score && b.index < a.index) ? b : a,
    );
    const cheaper = scored
      .filter((s) => inputCost(s.input) < inputCost(best.input))
      .sort((a, b) => inputCost(a.input) - inputCost(b.input));
    const chosen = cheaper.find((s) => withinOneSe(best.oof.foldScores, s.oof.foldScores)) ?? best;
    this.candidates[chosen.index].chosen = true;
    const { kind, params, oof, input, problem } = chosen;
    const search: Search = {
      metric: this.set.task === "regression" ? "rmse" : "macroF1",
      folds: this.set.folds,
      candidates: this.candidates,
      ...(this.skipped.length ? { skipped: this.skipped } : {}),
      ...(this.opts.budgetSeconds !== undefined ? { budgetSeconds: this.opts.budgetSeconds } : {}),
      seconds: this.seconds,
      ...(chosen !== best ? { chosenBy: this.cheaperReason(chosen, best) } : {}),
    };
    return { kind, params, oof, input, problem, search };
  }

  private cheaperReason(chosen: Scored, best: Scored): string {
    const fmt = (s: Scored) => this.candidates[s.index].score.toFixed(4);
    return (
      `${inputId(chosen.input)} (${fmt(chosen)}, ${chosen.input.data.dim} dims) is within one standard error ` +
      `of the paired fold differences from the best, ${inputId(best.input)} (${fmt(best)}, ${best.input.data.dim} dims), ` +
      "and cheaper to serve"
    );
  }

  private named(input: BackboneInput): { backbone?: string } {
    return this.opts.nameBackbones ? { backbone: inputId(input) } : {};
  }

  /** Whether this exact configuration has a score already (a screen's candidate met again in a grid). */
  private tried(input: BackboneInput, kind: AnyKind, params: HeadParams): boolean {
    const key = JSON.stringify(params);
    const id = this.opts.nameBackbones ? inputId(input) : undefined;
    return this.candidates.some(
      (c) => c.backbone === id && c.type === kind.type && JSON.stringify(c.params) === key,
    );
  }

  private problemOf(input: BackboneInput): Problem {
    let problem = this.problems.get(input);
    if (!problem) {
      // Same rows and labels for every input, so the training set's folds apply to each.
      problem =
        input.data === this.set.problem.data
          ? this.set.problem
          : new Problem(this.set.task, input.data, this.set.labelled);
      this.problems.set(input, problem);
    }
    return problem;
  }
}
