/**
 * What a training learns and from which rows: the task, the labels as targets, the split into
 * training and test rows, and the folds over the training rows. Checked here, before any model
 * is fitted, so a dataset that cannot be learned fails with the reason.
 */
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { UnsupportedError, ValidationError } from "../errors.ts";
import type { HeadTask, Target } from "../learn/estimator.ts";
import { headKind } from "../learn/registry.ts";
import { kFold, stratifiedKFold } from "../learn/split.ts";
import type { TrainOptions } from "./train-request.ts";

/** The head type a task trains when the request names none. */
export const DEFAULT_TYPE: Record<HeadTask, string> = {
  multiclass: "logreg",
  multilabel: "multilabel",
  regression: "ridge",
};

/**
 * Arrays of labels → multilabel; labels that are all numbers with at least one non-integer →
 * regression; anything else is classes (integer codes such as 0/1 stay classes: pass
 * `task: "regression"` to regress on integers).
 */
export function inferTask(labels: ReadonlyArray<string | number | string[]>): HeadTask {
  if (labels.some((l) => Array.isArray(l))) return "multilabel";
  if (
    labels.length > 0 &&
    labels.every((l) => typeof l === "number") &&
    labels.some((l) => !Number.isInteger(l))
  ) {
    return "regression";
  }
  return "multiclass";
}

function subset(vectors: Float32Array, dim: number, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * dim);
  for (let i = 0; i < idx.length; i++) out.set(vectors.subarray(idx[i] * dim, (idx[i] + 1) * dim), i * dim);
  return out;
}

/** A regression target: numbers as they are, numeric strings (CSV cells) parsed; NaN otherwise. */
function numericLabel(l: number | string): number {
  if (typeof l === "number") return l;
  return l.trim() === "" ? Number.NaN : Number(l);
}

/** The labelled rows of a dataset as a learning problem of one task. */
export class Problem {
  readonly labels: string[];
  /** Output columns per row: classes / labels, or 1 for regression. */
  readonly width: number;
  private readonly classOf: Map<string, number>;

  constructor(
    readonly task: HeadTask,
    readonly data: EmbeddedDataset,
    /** Indices into data.rows of the labelled rows. */
    readonly rows: readonly number[],
  ) {
    const raw = rows.map((i) => data.rows[i].label!);
    if (task === "regression") {
      raw.forEach((l, t) => {
        if (typeof l !== "number" && !(typeof l === "string" && Number.isFinite(numericLabel(l)))) {
          const row = data.rows[rows[t]];
          throw new ValidationError(
            `row ${row.id} (line ${row.line}) has label ${JSON.stringify(l)}; a regression head needs numeric labels`,
            { field: `line ${row.line}` },
          );
        }
      });
      this.labels = ["value"];
    } else if (task === "multilabel") {
      this.labels = [...new Set(raw.flatMap((l) => (Array.isArray(l) ? l : [String(l)])))].sort();
    } else {
      raw.forEach((l, t) => {
        if (Array.isArray(l)) {
          const row = data.rows[rows[t]];
          throw new UnsupportedError(
            `row ${row.id} (line ${row.line}) has a multi-label list; train with task multilabel`,
            { field: `line ${row.line}` },
          );
        }
      });
      this.labels = [...new Set(raw.map((l) => String(l)))].sort();
    }
    this.classOf = new Map(this.labels.map((l, i) => [l, i]));
    this.width = task === "regression" ? 1 : this.labels.length;
  }

  /** Positions into `rows` → their embedding matrix. */
  X(pos: ArrayLike<number>): Float32Array {
    return subset(
      this.data.vectors,
      this.data.dim,
      Array.from(pos, (p) => this.rows[p]),
    );
  }

  target(pos: ArrayLike<number>): Target {
    const label = (p: number) => this.data.rows[this.rows[p]].label!;
    if (this.task === "regression")
      return { task: "regression", y: Float64Array.from(pos, (p) => label(p) as number) };
    const k = this.labels.length;
    if (this.task === "multilabel") {
      const Y = new Uint8Array(pos.length * k);
      for (let t = 0; t < pos.length; t++) {
        const l = label(pos[t]);
        for (const name of Array.isArray(l) ? l : [String(l)]) Y[t * k + this.classOf.get(name)!] = 1;
      }
      return { task: "multilabel", Y, k };
    }
    return { task: "multiclass", y: Int32Array.from(pos, (p) => this.classOf.get(String(label(p)))!), k };
  }

  /** Fold of each position, stratified by class for multiclass problems. */
  folds(pos: ArrayLike<number>, folds: number, seed: number): Int32Array {
    try {
      if (this.task !== "multiclass") return kFold(pos.length, folds, seed);
      const t = this.target(pos) as Extract<Target, { task: "multiclass" }>;
      return stratifiedKFold(t.y, t.k, folds, seed);
    } catch (err) {
      // Name the option the caller set, not the helper's parameter.
      if (err instanceof ValidationError)
        throw new ValidationError(`cv=${folds}: ${err.message}`, { field: "cv" });
      throw err;
    }
  }
}

/** The folds the training rows are cross-validated with (evaluation, selection, calibration). */
export interface Folds {
  /** Positions (into the problem's rows) of the training rows. */
  trainPos: number[];
  /** Number of folds: the request's `cv`, at most one per training row. */
  folds: number;
  /** The fold of each training row, by its index in `trainPos`. */
  foldOf: Int32Array;
  seed: number;
}

/**
 * The rows a training learns from and is judged on. With several backbone candidates the rows,
 * labels and folds are the same for each (their inputs cover the same rows); `problem` is built
 * on the first input.
 */
export interface TrainingSet extends Folds {
  task: HeadTask;
  problem: Problem;
  /** Indices into data.rows of the labelled rows. */
  labelled: number[];
  unlabeled: number;
  /** Positions of the `test` split's rows; empty when the dataset has none (then: cross-validation). */
  testPos: number[];
}

/** The task, labels, split and folds of a training on `data`, or the reason it cannot learn. */
export function buildTrainingSet(opts: TrainOptions, data: EmbeddedDataset): TrainingSet {
  const labelled: number[] = [];
  let unlabeled = 0;
  data.rows.forEach((row, i) => {
    if (row.label === undefined) unlabeled++;
    else labelled.push(i);
  });
  const task = resolveTask(opts, data, labelled);
  const problem = new Problem(task, data, labelled);
  // A classifier needs two classes; a multi-label head can learn a single tag (present or not).
  const minLabels = task === "multiclass" ? 2 : task === "multilabel" ? 1 : 0;
  checkLabelled(opts.dataset, problem, minLabels);
  const testPos: number[] = [];
  const trainPos: number[] = [];
  labelled.forEach((i, p) => {
    (data.rows[i].split === "test" ? testPos : trainPos).push(p);
  });
  if (testPos.length > 0 && task !== "regression") checkTrainingSplit(problem, trainPos, minLabels);
  const folds = Math.min(opts.cv ?? 5, trainPos.length);
  if (folds < 2) {
    throw new ValidationError(`the training split has ${trainPos.length} rows; at least 2 are needed`, {
      field: "split",
    });
  }
  const seed = opts.seed ?? 0;
  const foldOf = problem.folds(trainPos, folds, seed);
  return { task, problem, labelled, unlabeled, trainPos, testPos, folds, foldOf, seed };
}

/** The head type a request trains: the one it names, else its task's default (not for `auto`). */
export function requestedType(opts: TrainOptions, task: HeadTask): string {
  return opts.type ?? DEFAULT_TYPE[task];
}

/** The task: given, implied by the head type, or inferred from the labels. */
function resolveTask(opts: TrainOptions, data: EmbeddedDataset, labelled: readonly number[]): HeadTask {
  const auto = opts.type === "auto";
  const task =
    opts.task ??
    (opts.type !== undefined && !auto
      ? (headKind(opts.type).task as HeadTask)
      : inferTask(labelled.map((i) => data.rows[i].label!)));
  const requested = requestedType(opts, task);
  if (!auto && headKind(requested).task !== task) {
    throw new ValidationError(
      `head type ${requested} learns ${headKind(requested).task} targets, not ${task}`,
      {
        field: "type",
      },
    );
  }
  return task;
}

function checkLabelled(dataset: string, problem: Problem, minLabels: number): void {
  if (problem.labels.length < minLabels) {
    throw new ValidationError(
      `dataset ${dataset} needs at least ${minLabels} distinct label${minLabels > 1 ? "s" : ""} to train a ${problem.task} head, found ${problem.labels.length}`,
      { field: "label" },
    );
  }
  if (problem.rows.length < 2) {
    throw new ValidationError(
      `dataset ${dataset} has ${problem.rows.length} labelled rows; at least 2 are needed`,
      {
        field: "label",
      },
    );
  }
}

/** With a test split, the training rows alone must still hold enough distinct labels. */
function checkTrainingSplit(problem: Problem, trainPos: readonly number[], minLabels: number): void {
  const t = problem.target(trainPos);
  // Labels that actually occur among the training rows (a multi-label column may be all zeros there).
  const distinct =
    t.task === "multiclass"
      ? new Set(t.y).size
      : t.task === "multilabel"
        ? problem.labels.filter((_, c) => t.Y.some((v, i) => v === 1 && i % t.k === c)).length
        : 0;
  if (distinct < minLabels) {
    throw new ValidationError(`the training split needs at least ${minLabels} distinct labels`, {
      field: "split",
    });
  }
}
