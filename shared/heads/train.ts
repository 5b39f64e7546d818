/**
 * Training a head on cached embeddings: never runs the backbone. Evaluates on the `test` split
 * when the dataset has one, else by k-fold cross-validation; `type: "auto"` first picks the head
 * type and its regularization by cross-validation on the training rows. Multiclass heads are then
 * calibrated by temperature scaling fitted on out-of-fold predictions. Every training stores an
 * immutable version and (by default) moves the `live` alias to it.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import {
  backboneRecord,
  loadAlignedParts,
  normalizeConcat,
  PART_SEPARATOR,
  parseBackboneRef,
} from "../embed/composite.ts";
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { ConflictError, UnsupportedError, ValidationError } from "../errors.ts";
import { assertName } from "../layout.ts";
import {
  checkTrainingBudget,
  checkTrainMemory,
  estimateTrainBytes,
  type TrainLimits,
  withTrainingBudget,
} from "../learn/budget.ts";
import {
  applyTemperature,
  expectedCalibrationError,
  fitTemperature,
  reliabilityBins,
} from "../learn/calibration.ts";
import type { HeadKind, HeadParams, HeadTask, Target } from "../learn/estimator.ts";
import { argmaxRows, classificationMetrics, logLoss } from "../learn/metrics.ts";
import { findHeadKind, HEAD_KINDS, headKind } from "../learn/registry.ts";
import { kFold, stratifiedKFold } from "../learn/split.ts";
import { TASKS } from "../learn/task.ts";
import { multilabelMetrics, regressionMetrics } from "../learn/task-metrics.ts";
import type { ObjectStore } from "../store/types.ts";
import {
  type CalibrationReport,
  type HeadDocument,
  newVersionId,
  type Report,
  readAlias,
  type Search,
  setAlias,
  writeHeadVersion,
} from "./version.ts";

export { TASKS };

export interface TrainOptions {
  head: string;
  dataset: string;
  /** A head type from the registry, or `auto`; default: the task's default type (logreg, multilabel, ridge). */
  type?: string;
  /** Hyper-parameters of `type` (each type documents its own; unknown names are rejected). */
  params?: Record<string, unknown>;
  /** What is learned; inferred from the labels when absent (see `inferTask`). */
  task?: HeadTask;
  /** Candidate types for `auto` (default: every type of the task). */
  candidates?: string[];
  /** Folds for cross-validation (evaluation without a test split, model selection, calibration). */
  cv?: number;
  seed?: number;
  /** Fit a temperature on out-of-fold probabilities (multiclass heads; default true). */
  calibrate?: boolean;
  /** Move the `live` alias to the new version (default true). */
  promote?: boolean;
  /** A backbone id, or `a+b[+c…]` to train on the parts' normalized vectors side by side. */
  backbone?: string;
  /**
   * Backbones `auto` may choose from (ids or `a+b` sets); each is evaluated with the same folds on
   * the rows every candidate can embed, and the chosen head is trained on those rows.
   */
  backbones?: string[];
}

/** Most backbone candidates one `auto` search evaluates. */
export const MAX_BACKBONE_CANDIDATES = 8;

export interface TrainResult {
  head: string;
  version: string;
  type: string;
  task: HeadTask;
  params: HeadParams;
  metrics: Report["metrics"];
  multilabel?: Report["multilabel"];
  regression?: Report["regression"];
  calibration?: Pick<CalibrationReport, "temperature" | "eceBefore" | "eceAfter">;
  search?: Search;
  evaluation: Report["evaluation"];
  trainSeconds: number;
  counts: Report["counts"];
  promoted: boolean;
  /**
   * Why a version asked to be promoted was not: the `live` alias moved while it trained (another
   * training or a promotion won). The version is stored; promote it explicitly if it should win.
   */
  notPromoted?: { reason: string; live: string | null };
}

const DEFAULT_TYPE: Record<HeadTask, string> = {
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
class Problem {
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

type AnyKind = HeadKind<unknown, HeadParams>;

interface Evaluated {
  /** Model outputs for the evaluated positions, n × width. */
  out: Float64Array;
  /** Multilabel: each fold model's own decisions for its held-out rows, n × k. */
  decided?: Uint8Array;
  /** Per-fold scores (CV only). */
  foldScores: number[];
}

/** Multi-label decisions: the kind's own (per-label thresholds), else p ≥ 0.5. */
function decide(kind: AnyKind, model: unknown, out: Float64Array, n: number): Uint8Array {
  if (kind.decide) return kind.decide(model, out, n);
  return Uint8Array.from(out, (p) => (p >= 0.5 ? 1 : 0));
}

function thresholdsOf(kind: AnyKind, model: unknown, k: number): number[] {
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

/** Out-of-fold outputs for `pos` and each fold's score. */
async function crossValidate(
  problem: Problem,
  kind: AnyKind,
  params: HeadParams,
  pos: readonly number[],
  foldOf: Int32Array,
  folds: number,
  seed: number,
): Promise<Evaluated> {
  const d = problem.data.dim;
  const w = problem.width;
  const out = new Float64Array(pos.length * w);
  const decided = problem.task === "multilabel" ? new Uint8Array(pos.length * w) : undefined;
  const foldScores: number[] = [];
  for (let f = 0; f < folds; f++) {
    checkTrainingBudget();
    const inFold: number[] = [];
    const outFold: number[] = [];
    for (let j = 0; j < pos.length; j++) (foldOf[j] === f ? outFold : inFold).push(j);
    const trainPos = inFold.map((j) => pos[j]);
    const testPos = outFold.map((j) => pos[j]);
    const model = await kind.fit(problem.X(trainPos), trainPos.length, d, problem.target(trainPos), params, {
      seed: seed + f,
    });
    const o = await kind.predict(model, problem.X(testPos), testPos.length);
    const dec = decided ? decide(kind, model, o, testPos.length) : undefined;
    for (let t = 0; t < outFold.length; t++) {
      out.set(o.subarray(t * w, (t + 1) * w), outFold[t] * w);
      if (dec) decided!.set(dec.subarray(t * w, (t + 1) * w), outFold[t] * w);
    }
    foldScores.push(score(problem, problem.target(testPos), o, testPos.length, dec));
  }
  return { out, decided, foldScores };
}

/** Out-of-fold probabilities, each fold scaled by a temperature fitted on the other folds. */
function crossFittedTemperature(
  proba: Float64Array,
  y: Int32Array,
  k: number,
  foldOf: Int32Array,
  folds: number,
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

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

/**
 * Everything about a training request that can be checked without its data, so a request handed
 * to the train Lambda fails now (400) rather than later in the background.
 */
export function validateTrainOptions(opts: TrainOptions): void {
  assertName("head", opts.head, "head");
  assertName("dataset", opts.dataset, "dataset");
  const folds = opts.cv ?? 5;
  if (!Number.isInteger(folds) || folds < 2 || folds > 50) {
    throw new ValidationError(`cv must be an integer in 2..50, got ${opts.cv}`, { field: "cv" });
  }
  if (opts.task !== undefined && !TASKS.includes(opts.task)) {
    throw new ValidationError(`task must be one of ${TASKS.join(", ")}, got ${JSON.stringify(opts.task)}`, {
      field: "task",
    });
  }
  const auto = opts.type === "auto";
  if (auto && opts.params && Object.keys(opts.params).length > 0) {
    throw new ValidationError("params cannot be combined with type auto, which searches them", {
      field: "params",
    });
  }
  if (!auto && opts.candidates !== undefined) {
    throw new ValidationError("candidates only apply to type auto", { field: "candidates" });
  }
  if (opts.backbone !== undefined) parseBackboneRef(opts.backbone, "backbone");
  if (opts.backbones !== undefined) {
    if (!auto) throw new ValidationError("backbones only apply to type auto", { field: "backbones" });
    if (opts.backbone !== undefined) {
      throw new ValidationError("send backbone or backbones (auto's candidates), not both", {
        field: "backbones",
      });
    }
    if (
      !Array.isArray(opts.backbones) ||
      opts.backbones.length < 1 ||
      opts.backbones.length > MAX_BACKBONE_CANDIDATES
    ) {
      throw new ValidationError(`backbones must list 1..${MAX_BACKBONE_CANDIDATES} backbone references`, {
        field: "backbones",
      });
    }
    const seen = new Set<string>();
    for (const ref of opts.backbones) {
      // `a+b` and `b+a` are different inputs (the order is the layout), so only exact repeats clash.
      const key = parseBackboneRef(ref, "backbones").join(PART_SEPARATOR);
      if (seen.has(key)) {
        throw new ValidationError(`backbones lists ${key} twice`, { field: "backbones" });
      }
      seen.add(key);
    }
  }
  for (const t of opts.candidates ?? []) {
    const kind = findHeadKind(t);
    if (!kind) {
      throw new ValidationError(
        `unknown candidate ${JSON.stringify(t)}; available: ${Object.keys(HEAD_KINDS).join(", ")}`,
        { field: "candidates" },
      );
    }
    if (opts.task !== undefined && kind.task !== opts.task) {
      throw new ValidationError(`candidate ${t} learns ${kind.task} targets, not ${opts.task}`, {
        field: "candidates",
      });
    }
  }
  if (opts.type !== undefined && !auto) {
    const kind = headKind(opts.type);
    if (opts.task !== undefined && kind.task !== opts.task) {
      throw new ValidationError(`head type ${opts.type} learns ${kind.task} targets, not ${opts.task}`, {
        field: "type",
      });
    }
    // Parameter names, types and ranges; limits that depend on the data are applied at training.
    kind.resolveParams(opts.params ?? {}, Number.MAX_SAFE_INTEGER, 1);
  } else if (!auto && opts.task !== undefined) {
    headKind(DEFAULT_TYPE[opts.task]).resolveParams(opts.params ?? {}, Number.MAX_SAFE_INTEGER, 1);
  }
  // Params with neither type nor task go to the default type of the task the labels imply.
}

/** One input a head may be trained on: a backbone or a set of them, and its training matrix. */
interface BackboneInput {
  specs: readonly BackboneSpec[];
  data: EmbeddedDataset;
}

/**
 * The training matrix of each backbone set, all over the same rows (those every part of every set
 * can embed), so candidates share folds. Each part's cache is read once however many sets use it.
 */
async function loadInputs(
  store: ObjectStore,
  dataset: string,
  sets: ReadonlyArray<readonly BackboneSpec[]>,
): Promise<BackboneInput[]> {
  const union: BackboneSpec[] = [];
  for (const set of sets) for (const s of set) if (!union.some((u) => u.id === s.id)) union.push(s);
  const { base, parts } = await loadAlignedParts(store, dataset, union);
  return sets.map((specs) => {
    const chosen = specs.map((s) => parts[union.findIndex((u) => u.id === s.id)]);
    if (chosen.length === 1) return { specs, data: chosen[0] };
    return {
      specs,
      data: {
        ...base,
        dim: chosen.reduce((t, p) => t + p.dim, 0),
        vectors: normalizeConcat(chosen, base.rows.length),
      },
    };
  });
}

/**
 * `backbone`: one spec, or the parts of an `a+b` set in order. `backboneCandidates`: with
 * `opts.backbones`, the resolved parts of each candidate in the same order.
 */
export async function trainHead(
  store: ObjectStore,
  backbone: BackboneSpec | readonly BackboneSpec[],
  opts: TrainOptions,
  backboneCandidates?: ReadonlyArray<readonly BackboneSpec[]>,
  limits?: TrainLimits,
): Promise<TrainResult> {
  validateTrainOptions(opts);
  const run = () => train(store, backbone, opts, backboneCandidates, limits);
  return limits ? withTrainingBudget(limits, run) : run();
}

async function train(
  store: ObjectStore,
  backbone: BackboneSpec | readonly BackboneSpec[],
  opts: TrainOptions,
  backboneCandidates: ReadonlyArray<readonly BackboneSpec[]> | undefined,
  limits: TrainLimits | undefined,
): Promise<TrainResult> {
  const folds = opts.cv ?? 5;
  const auto = opts.type === "auto";
  const seed = opts.seed ?? 0;
  const started = performance.now();
  // Promotion is conditional on the alias the training started from: a version promoted (or rolled
  // back to) meanwhile is someone's decision that this training must not silently overwrite.
  const previous = (await readAlias(store, opts.head))?.value.version ?? null;
  const searchBackbones = opts.backbones !== undefined;
  if (searchBackbones && backboneCandidates?.length !== opts.backbones!.length) {
    throw new ValidationError("backbones were not resolved for training", { field: "backbones" });
  }
  const inputs = await loadInputs(
    store,
    opts.dataset,
    searchBackbones ? backboneCandidates! : [Array.isArray(backbone) ? backbone : [backbone as BackboneSpec]],
  );
  const datasetBytes = inputs.reduce((t, i) => t + i.data.vectors.byteLength, 0);
  let input = inputs[0];
  let data = input.data;
  let d = data.dim;

  const labelled: number[] = [];
  let unlabeled = 0;
  data.rows.forEach((row, i) => {
    if (row.label === undefined) unlabeled++;
    else labelled.push(i);
  });
  // The task: given, implied by the head type, or inferred from the labels.
  const task =
    opts.task ??
    (opts.type !== undefined && !auto
      ? (headKind(opts.type).task as HeadTask)
      : inferTask(labelled.map((i) => data.rows[i].label!)));
  const requested = opts.type ?? DEFAULT_TYPE[task];
  if (!auto && headKind(requested).task !== task) {
    throw new ValidationError(
      `head type ${requested} learns ${headKind(requested).task} targets, not ${task}`,
      {
        field: "type",
      },
    );
  }
  let problem = new Problem(task, data, labelled);
  // A classifier needs two classes; a multi-label head can learn a single tag (present or not).
  const minLabels = task === "multiclass" ? 2 : task === "multilabel" ? 1 : 0;
  if (problem.labels.length < minLabels) {
    throw new ValidationError(
      `dataset ${opts.dataset} needs at least ${minLabels} distinct label${minLabels > 1 ? "s" : ""} to train a ${task} head, found ${problem.labels.length}`,
      { field: "label" },
    );
  }
  if (labelled.length < 2) {
    throw new ValidationError(
      `dataset ${opts.dataset} has ${labelled.length} labelled rows; at least 2 are needed`,
      {
        field: "label",
      },
    );
  }
  const testPos: number[] = [];
  const trainPos: number[] = [];
  labelled.forEach((i, p) => {
    (data.rows[i].split === "test" ? testPos : trainPos).push(p);
  });
  const hasTest = testPos.length > 0;
  if (hasTest && task !== "regression") {
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
  const trainFolds = Math.min(folds, trainPos.length);
  if (trainFolds < 2) {
    throw new ValidationError(`the training split has ${trainPos.length} rows; at least 2 are needed`, {
      field: "split",
    });
  }
  const foldOf = problem.folds(trainPos, trainFolds, seed);

  // ---- Model selection ----
  let kind: AnyKind;
  let params: HeadParams;
  let oof: Evaluated | undefined; // out-of-fold outputs of the chosen configuration on trainPos
  let search: Search | undefined;
  if (auto) {
    const types = opts.candidates ?? Object.keys(HEAD_KINDS).filter((t) => HEAD_KINDS[t].task === task);
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
    if (kinds.length === 0)
      throw new ValidationError(`no head type learns ${task} targets`, { field: "type" });
    let largest = 0;
    for (const inp of inputs)
      for (const k of kinds)
        for (const p of k.grid(trainPos.length, inp.data.dim))
          largest = Math.max(
            largest,
            estimateTrainBytes(k.type, trainPos.length, inp.data.dim, problem.width, p),
          );
    checkTrainMemory(limits, `auto over ${types.join(", ")}`, datasetBytes, largest);
    const candidates: Search["candidates"] = [];
    let best:
      | {
          kind: AnyKind;
          params: HeadParams;
          score: number;
          oof: Evaluated;
          index: number;
          input: BackboneInput;
          problem: Problem;
        }
      | undefined;
    for (const inp of inputs) {
      // Same rows and labels for every input, so the folds computed above apply to each.
      const prob = inp === inputs[0] ? problem : new Problem(task, inp.data, labelled);
      const di = inp.data.dim;
      const backboneId = inp.specs.map((s) => s.id).join(PART_SEPARATOR);
      for (const k of kinds) {
        for (const p of k.grid(trainPos.length, di)) {
          checkTrainingBudget();
          const t0 = performance.now();
          const cv = await crossValidate(prob, k, p, trainPos, foldOf, trainFolds, seed);
          const s = mean(cv.foldScores);
          candidates.push({
            ...(searchBackbones ? { backbone: backboneId } : {}),
            type: k.type,
            params: p,
            score: task === "regression" ? -s : s,
            std: std(cv.foldScores),
            seconds: (performance.now() - t0) / 1000,
            chosen: false,
          });
          // Strictly better only: ties keep the earlier (simpler) candidate.
          if (!best || s > best.score)
            best = {
              kind: k,
              params: p,
              score: s,
              oof: cv,
              index: candidates.length - 1,
              input: inp,
              problem: prob,
            };
        }
      }
    }
    if (!best) {
      throw new ValidationError(
        `none of ${types.join(", ")} can train on ${trainPos.length} rows × ${d} dims`,
        {
          field: "candidates",
        },
      );
    }
    candidates[best.index].chosen = true;
    ({ kind, params, oof, input, problem } = best);
    data = input.data;
    d = data.dim;
    search = { metric: task === "regression" ? "rmse" : "macroF1", folds: trainFolds, candidates };
  } else {
    kind = headKind(requested) as AnyKind;
    params = kind.resolveParams(opts.params ?? {}, trainPos.length, d);
    checkTrainMemory(
      limits,
      `a ${kind.type} head on ${trainPos.length} rows × ${d} dims`,
      datasetBytes,
      estimateTrainBytes(kind.type, trainPos.length, d, problem.width, params),
    );
  }

  // ---- Evaluation: the test split, or out-of-fold predictions ----
  const evaluation: Report["evaluation"] = hasTest ? "test-split" : "cv";
  const model = await kind.fit(problem.X(trainPos), trainPos.length, d, problem.target(trainPos), params, {
    seed,
  });
  const outOfFold = async () =>
    (oof ??= await crossValidate(problem, kind, params, trainPos, foldOf, trainFolds, seed));
  let evalPos: number[];
  let evalOut: Float64Array;
  let evalDecided: Uint8Array | undefined;
  if (hasTest) {
    evalPos = testPos;
    evalOut = await kind.predict(model, problem.X(testPos), testPos.length);
    if (task === "multilabel") evalDecided = decide(kind, model, evalOut, testPos.length);
  } else {
    // Each row scored by a model that never saw it, multi-label decisions included (an auto-selected
    // head's figure is then its selection score: hold out a test split for an unbiased one).
    const cv = await outOfFold();
    evalPos = trainPos;
    evalOut = cv.out;
    evalDecided = cv.decided;
  }

  // ---- Calibration (multiclass): temperature on out-of-fold probabilities of the training rows ----
  let calibration: CalibrationReport | undefined;
  const evalTarget = problem.target(evalPos);
  if (task === "multiclass" && (opts.calibrate ?? true)) {
    const cv = await outOfFold();
    const k = problem.width;
    const trainY = (problem.target(trainPos) as Extract<Target, { task: "multiclass" }>).y;
    const temperature = fitTemperature(cv.out, trainY, k);
    const y = (evalTarget as Extract<Target, { task: "multiclass" }>).y;
    // Without a test split, each fold is scaled by a temperature fitted on the other folds, so the
    // "after" figures stay out of sample too.
    const after = hasTest
      ? applyTemperature(evalOut, evalPos.length, k, temperature)
      : crossFittedTemperature(cv.out, trainY, k, foldOf, trainFolds);
    calibration = {
      method: "temperature",
      temperature,
      eceBefore: expectedCalibrationError(evalOut, y, k),
      eceAfter: expectedCalibrationError(after, y, k),
      fittedOn: `out-of-fold predictions on ${trainPos.length} training rows (${trainFolds} folds)`,
      reliabilityBefore: reliabilityBins(evalOut, y, k),
      reliabilityAfter: reliabilityBins(after, y, k),
    };
    evalOut = after;
  }

  let metrics: Report["metrics"];
  let multilabel: Report["multilabel"];
  let regression: Report["regression"];
  const nEval = evalPos.length;
  if (evalTarget.task === "multiclass") {
    const yPred = argmaxRows(evalOut, nEval, evalTarget.k);
    metrics = {
      ...classificationMetrics(evalTarget.y, yPred, problem.labels),
      logLoss: logLoss(evalTarget.y, evalOut, evalTarget.k),
    };
  } else if (evalTarget.task === "multilabel") {
    const thresholds = thresholdsOf(kind, model, evalTarget.k);
    multilabel = multilabelMetrics(evalTarget.Y, evalDecided!, nEval, problem.labels, thresholds);
  } else {
    regression = regressionMetrics(evalTarget.y, evalOut);
  }
  const trainSeconds = (performance.now() - started) / 1000;

  const record = backboneRecord(input.specs);
  const version = newVersionId();
  const createdAt = new Date().toISOString();
  const counts = {
    train: trainPos.length,
    test: testPos.length,
    unlabeled,
    unsupported: data.unsupported,
    failed: data.failed.length,
  };
  const storedParams = { ...params, cv: trainFolds, seed };
  const info = kind.info?.(model) ?? {};
  const head: HeadDocument = {
    head: opts.head,
    version,
    type: kind.type,
    task,
    labels: problem.labels,
    backbone: record,
    dataset: { name: opts.dataset, version: data.version },
    params: storedParams,
    model: kind.toJson(model),
    ...(calibration
      ? { calibration: { method: "temperature" as const, temperature: calibration.temperature } }
      : {}),
    createdAt,
  };
  const report: Report = {
    head: opts.head,
    version,
    type: kind.type,
    task,
    dataset: head.dataset,
    backbone: record.id,
    params: storedParams,
    evaluation,
    ...(evaluation === "cv" ? { folds: trainFolds } : {}),
    ...(metrics ? { metrics } : {}),
    ...(multilabel ? { multilabel } : {}),
    ...(regression ? { regression } : {}),
    ...(calibration ? { calibration } : {}),
    ...(search ? { search } : {}),
    counts,
    trainSeconds,
    ...info,
    createdAt,
  };
  // Last point to stop: past it the version is stored, so a cancelled caller leaves nothing behind.
  checkTrainingBudget();
  await writeHeadVersion(store, head, report);
  const notPromoted =
    (opts.promote ?? true) ? await promoteNew(store, opts.head, version, previous) : undefined;
  return {
    head: opts.head,
    version,
    type: kind.type,
    task,
    params,
    metrics,
    ...(multilabel ? { multilabel } : {}),
    ...(regression ? { regression } : {}),
    ...(calibration
      ? {
          calibration: {
            temperature: calibration.temperature,
            eceBefore: calibration.eceBefore,
            eceAfter: calibration.eceAfter,
          },
        }
      : {}),
    ...(search ? { search } : {}),
    evaluation,
    trainSeconds,
    counts,
    promoted: (opts.promote ?? true) && !notPromoted,
    ...(notPromoted ? { notPromoted } : {}),
  };
}

/**
 * Moves `live` to the new version if it still points where it did when training started. If it
 * moved, the stored version stays (training is the expensive part, and it may still be promoted
 * by hand) and the answer says why it is not live, rather than failing a request whose version exists.
 */
async function promoteNew(
  store: ObjectStore,
  head: string,
  version: string,
  previous: string | null,
): Promise<TrainResult["notPromoted"]> {
  try {
    await setAlias(store, head, version, { expectedVersion: previous });
    return undefined;
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    const live = (await readAlias(store, head))?.value.version ?? null;
    return {
      reason: `the live alias moved from ${previous ?? "nothing"} to ${live ?? "nothing"} while this version trained; it is stored but not live`,
      live,
    };
  }
}
