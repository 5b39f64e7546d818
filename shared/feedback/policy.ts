/**
 * The retrain policy (`headstart feedback … --retrain`, as Nyckel does it): a version trained with
 * the feedback replaces the live one only if it scores at least as well on held-out rows — the
 * test split of the head's dataset, less the rows a correction relabelled — so a batch of odd
 * corrections cannot silently make the head worse.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { loadBackboneSetDataset } from "../embed/composite.ts";
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { loadHead, predictVectors } from "../heads/predict.ts";
import { feedbackDatasetName, scorePredictions } from "../heads/train-feedback.ts";
import type { TrainOptions } from "../heads/train-request.ts";
import type { HeadDocument } from "../heads/version.ts";
import type { ObjectStore } from "../store/types.ts";
import { listFeedback } from "./records.ts";

export interface HeldOutComparison {
  metric: "accuracy" | "rmse";
  rows: number;
  live: { version: string; value: number };
  candidate: { version: string; value: number };
  /** Whether the candidate is at least as good (accuracy ≥, RMSE ≤). */
  atLeastAsGood: boolean;
}

/** The training that repeats the live version's settings, with the feedback and without promoting. */
export function retrainRequest(live: HeadDocument): TrainOptions {
  const { cv, seed, ...params } = live.params as Record<string, unknown>;
  return {
    head: live.head,
    dataset: live.dataset.name,
    type: live.type,
    task: live.task,
    params,
    ...(typeof cv === "number" ? { cv } : {}),
    ...(typeof seed === "number" ? { seed } : {}),
    backbone: live.backbone.id,
    ...(live.capture ? { capture: live.capture } : {}),
    calibrate: live.calibration !== undefined,
    withFeedback: true,
    promote: false,
  };
}

/**
 * Whether row `i` of `data` is an input some correction names: by its text, or for an image or
 * audio row by its embedding, bit for bit, being a file correction's (as `joinFeedback` matches
 * them; the feedback dataset was embedded with the same backbones by the training just made).
 */
async function correctedRows(
  store: ObjectStore,
  head: string,
  data: EmbeddedDataset,
  specs: readonly BackboneSpec[],
): Promise<(i: number) => boolean> {
  const records = await listFeedback(store, head);
  const texts = new Set(records.flatMap((f) => (f.text !== undefined ? [f.text] : [])));
  const key = (d: EmbeddedDataset, i: number) =>
    Buffer.from(d.vectors.buffer, d.vectors.byteOffset + i * d.dim * 4, d.dim * 4).toString("base64");
  const files = new Set<string>();
  if (records.some((f) => f.text === undefined)) {
    const fb = await loadBackboneSetDataset(store, feedbackDatasetName(head), specs);
    fb.rows.forEach((r, i) => {
      if (r.text === undefined) files.add(key(fb, i));
    });
  }
  return (i) => {
    const r = data.rows[i];
    return r.text !== undefined ? texts.has(r.text) : files.size > 0 && files.has(key(data, i));
  };
}

/**
 * Both versions on the dataset's current test rows that no correction relabelled; undefined when
 * there are none (the dataset has no test split).
 */
export async function compareOnHeldOut(
  store: ObjectStore,
  live: HeadDocument,
  candidate: string,
  specs: readonly BackboneSpec[],
): Promise<HeldOutComparison | undefined> {
  const data = await loadBackboneSetDataset(store, live.dataset.name, specs);
  const corrected = await correctedRows(store, live.head, data, specs);
  const held = data.rows.flatMap((r, i) =>
    r.split === "test" && r.label !== undefined && !corrected(i) ? [i] : [],
  );
  if (held.length === 0) return undefined;
  const vectors = new Float32Array(held.length * data.dim);
  held.forEach((p, i) => {
    vectors.set(data.vectors.subarray(p * data.dim, (p + 1) * data.dim), i * data.dim);
  });
  const truth = held.map((p) => data.rows[p].label);
  const task = live.task ?? "multiclass";
  const score = async (version: string) => {
    const head = await loadHead(store, live.head, version);
    const ps = await predictVectors(head, vectors, held.length);
    return scorePredictions(task, ps, truth);
  };
  const [a, b] = [await score(live.version), await score(candidate)];
  return {
    metric: task === "regression" ? "rmse" : "accuracy",
    rows: held.length,
    live: { version: live.version, value: a },
    candidate: { version: candidate, value: b },
    atLeastAsGood: task === "regression" ? b <= a : b >= a,
  };
}
