/**
 * Training a head on cached embeddings: never runs the backbone. Evaluates on the `test` split
 * when the dataset has one, else by k-fold cross-validation; `type: "auto"` first picks the head
 * type and its regularization by cross-validation on the training rows. Multiclass heads are then
 * calibrated by temperature scaling fitted on out-of-fold predictions. Every training stores an
 * immutable version and (by default) moves the `live` alias to it.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { backboneRecord } from "../embed/composite.ts";
import { ConflictError } from "../errors.ts";
import { checkTrainingBudget, type TrainLimits, withTrainingBudget } from "../learn/budget.ts";
import type { HeadParams, HeadTask } from "../learn/estimator.ts";
import type { ObjectStore } from "../store/types.ts";
import { chooseEstimator, fitChoice } from "./choose-estimator.ts";
import type { Choice } from "./cv-search.ts";
import { type Evaluation, evaluateHead } from "./evaluate.ts";
import { buildTrainingSet, type TrainingSet } from "./problem.ts";
import { joinFeedback, loadFeedback, scoreFeedback, type WithFeedback } from "./train-feedback.ts";
import { type BackboneInput, loadTrainingInputs } from "./train-inputs.ts";
import type { TrainOptions } from "./train-request.ts";
import { PhaseClock, type TrainTimings } from "./train-timings.ts";
import { fitUnknown, type UnknownFit } from "./train-unknown.ts";
import { validateTrainOptions } from "./train-validate.ts";
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
  /** Wall seconds per phase of this training (heads/train-timings.ts). */
  timings: TrainTimings;
  counts: Report["counts"];
  /** `withFeedback`: the feedback rows scored by the previous version and by this one. */
  feedback?: Report["feedback"];
  /** Multiclass: the unknown-input scorer and its threshold. */
  unknown?: Report["unknown"];
  /** `type: "zero-shot"`: the descriptions the head was built from (heads/train-zero-shot.ts). */
  zeroShot?: Report["zeroShot"];
  promoted: boolean;
  /**
   * Why a version asked to be promoted was not: the `live` alias moved while it trained (another
   * training or a promotion won). The version is stored; promote it explicitly if it should win.
   */
  notPromoted?: { reason: string; live: string | null };
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

/** One training, step by step; any step may refuse with its reason, and nothing is stored before the end. */
async function train(
  store: ObjectStore,
  backbone: BackboneSpec | readonly BackboneSpec[],
  opts: TrainOptions,
  backboneCandidates: ReadonlyArray<readonly BackboneSpec[]> | undefined,
  limits: TrainLimits | undefined,
): Promise<TrainResult> {
  const started = performance.now();
  const clock = new PhaseClock();
  // Promotion is conditional on the alias the training started from: a version promoted (or rolled
  // back to) meanwhile is someone's decision that this training must not silently overwrite.
  const previous = (await readAlias(store, opts.head))?.value.version ?? null;
  const inputs = await loadTrainingInputs(store, opts, backbone, backboneCandidates);
  const joined = opts.withFeedback ? await addFeedback(store, opts, inputs) : undefined;
  const set = buildTrainingSet(opts, inputs[0].data);
  clock.lap("load");
  const choice = await chooseEstimator(opts, set, inputs, limits);
  const model = await fitChoice(choice, set);
  clock.lap("fit");
  const evaluation = await evaluateHead(choice, model, set, opts.calibrate ?? true, clock);
  const unknown = await fitUnknown(opts, set, choice, evaluation);
  clock.lap("unknown");
  const trainSeconds = (performance.now() - started) / 1000;
  const trained: Trained = { set, choice, model, evaluation, unknown, trainSeconds };
  const { head, report } = versionDocuments(opts, trained);
  if (joined)
    report.feedback = await scoreFeedback(store, joined, { doc: head, kind: choice.kind, model }, previous);
  clock.lap("report");
  // Last point to stop: past it the version is stored, so a cancelled caller leaves nothing behind.
  checkTrainingBudget();
  await writeHeadVersion(store, head, report);
  const notPromoted =
    (opts.promote ?? true) ? await promoteNew(store, opts.head, report.version, previous) : undefined;
  clock.lap("write");
  return { ...trainResult(opts, trained, report, notPromoted), timings: clock.timings };
}

/** `withFeedback`: the head's feedback rows joined to the (one) input's rows, in place. */
async function addFeedback(
  store: ObjectStore,
  opts: TrainOptions,
  inputs: BackboneInput[],
): Promise<WithFeedback> {
  const joined = joinFeedback(inputs[0].data, await loadFeedback(store, opts, inputs[0].specs));
  inputs[0] = { ...inputs[0], data: joined.data };
  return joined;
}

/** What a training produced, before it is stored. */
interface Trained {
  set: TrainingSet;
  choice: Choice;
  model: unknown;
  evaluation: Evaluation;
  /** Multiclass: the unknown-input detector and how its threshold was chosen. */
  unknown?: UnknownFit;
  trainSeconds: number;
}

/** The new version's `head.json` (what predict loads) and its report (how it was made and scored). */
function versionDocuments(opts: TrainOptions, trained: Trained): { head: HeadDocument; report: Report } {
  const { set, choice, model, evaluation: ev, trainSeconds, unknown } = trained;
  const { kind, params, problem, search } = choice;
  const data = choice.input.data;
  const record = backboneRecord(choice.input.specs);
  const version = newVersionId();
  const createdAt = new Date().toISOString();
  const counts = {
    train: set.trainPos.length,
    test: set.testPos.length,
    unlabeled: set.unlabeled,
    unsupported: data.unsupported,
    failed: data.failed.length,
  };
  const storedParams = { ...params, cv: set.folds, seed: set.seed };
  const info = kind.info?.(model) ?? {};
  const head: HeadDocument = {
    head: opts.head,
    version,
    type: kind.type,
    task: set.task,
    labels: problem.labels,
    backbone: record,
    dataset: { name: opts.dataset, version: data.version },
    params: storedParams,
    model: kind.toJson(model),
    ...(ev.calibration
      ? { calibration: { method: "temperature" as const, temperature: ev.calibration.temperature } }
      : {}),
    ...(unknown ? { unknown: unknown.detector } : {}),
    ...(opts.capture && opts.capture !== "none" ? { capture: opts.capture } : {}),
    createdAt,
  };
  const report: Report = {
    head: opts.head,
    version,
    type: kind.type,
    task: set.task,
    dataset: head.dataset,
    backbone: record.id,
    params: storedParams,
    evaluation: ev.evaluation,
    ...(ev.evaluation === "cv" ? { folds: set.folds } : {}),
    ...(ev.metrics ? { metrics: ev.metrics } : {}),
    ...(ev.multilabel ? { multilabel: ev.multilabel } : {}),
    ...(ev.regression ? { regression: ev.regression } : {}),
    ...(ev.calibration ? { calibration: ev.calibration } : {}),
    ...(search ? { search } : {}),
    counts,
    trainSeconds,
    ...(unknown ? { unknown: unknown.report } : {}),
    ...(ev.labelIssues ? { labelIssues: ev.labelIssues } : {}),
    ...info,
    createdAt,
  };
  return { head, report };
}

function trainResult(
  opts: TrainOptions,
  { set, choice, evaluation: ev, trainSeconds }: Trained,
  report: Report,
  notPromoted: TrainResult["notPromoted"],
): Omit<TrainResult, "timings"> {
  const { calibration } = ev;
  return {
    head: opts.head,
    version: report.version,
    type: choice.kind.type,
    task: set.task,
    params: choice.params,
    metrics: ev.metrics,
    ...(ev.multilabel ? { multilabel: ev.multilabel } : {}),
    ...(ev.regression ? { regression: ev.regression } : {}),
    ...(calibration
      ? {
          calibration: {
            temperature: calibration.temperature,
            eceBefore: calibration.eceBefore,
            eceAfter: calibration.eceAfter,
          },
        }
      : {}),
    ...(choice.search ? { search: choice.search } : {}),
    evaluation: ev.evaluation,
    trainSeconds,
    counts: report.counts,
    ...(report.feedback ? { feedback: report.feedback } : {}),
    ...(report.unknown ? { unknown: report.unknown } : {}),
    promoted: (opts.promote ?? true) && !notPromoted,
    ...(notPromoted ? { notPromoted } : {}),
  };
}

/**
 * Moves `live` to the new version if it still points where it did when training started. If it
 * moved, the stored version stays (training is the expensive part, and it may still be promoted
 * by hand) and the answer says why it is not live, rather than failing a request whose version exists.
 */
export async function promoteNew(
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
