/**
 * Training on a head's corrections (`withFeedback`). The feedback is an ordinary dataset named
 * after the head (`feedbackDatasetName`), written from the head's feedback records and embedded
 * like any dataset by `feedback/materialize.ts`; here its embedded rows join the base dataset's,
 * and the previous and the new version are scored on them for the report.
 */
import { createHash } from "node:crypto";
import type { BackboneSpec } from "../backbone/spec.ts";
import type { DatasetRow } from "../datasets/manifest.ts";
import { loadBackboneSetDataset } from "../embed/composite.ts";
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { ValidationError } from "../errors.ts";
import type { HeadKind, HeadTask } from "../learn/estimator.ts";
import type { ObjectStore } from "../store/types.ts";
import { loadHead, type Prediction, predictVectors } from "./predict.ts";
import type { TrainOptions } from "./train-request.ts";
import type { FeedbackReport, HeadDocument } from "./version.ts";

/**
 * Datasets made from a head's feedback are named `feedback-<head>`; feedback/materialize.ts never
 * overwrites a dataset of that name that holds anything but feedback rows.
 */
export const FEEDBACK_DATASET_PREFIX = "feedback-";

/** `feedback-<head>`, or for a long head name `feedback-<its first 41 characters>-<12 hex of its hash>` (≤ 63). */
export function feedbackDatasetName(head: string): string {
  const name = `${FEEDBACK_DATASET_PREFIX}${head}`;
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(head).digest("hex").slice(0, 12);
  return `${FEEDBACK_DATASET_PREFIX}${head.slice(0, 41)}-${hash}`;
}

/** The base rows joined with the feedback rows, and where the feedback rows are in the result. */
export interface WithFeedback {
  data: EmbeddedDataset;
  feedback: EmbeddedDataset;
  /** Positions in `data.rows` of the rows that carry a feedback label. */
  positions: number[];
}

/** The feedback dataset embedded with the training's backbone(s); refuses what it cannot train on. */
export async function loadFeedback(
  store: ObjectStore,
  opts: TrainOptions,
  specs: readonly BackboneSpec[],
): Promise<EmbeddedDataset> {
  if (opts.backbones !== undefined) {
    throw new ValidationError("withFeedback trains on one backbone (or one a+b set); leave out backbones", {
      field: "withFeedback",
    });
  }
  return loadBackboneSetDataset(store, feedbackDatasetName(opts.head), specs);
}

/**
 * A dataset row whose text a correction names takes the correction's label (and keeps its split);
 * so does an image or audio row whose embedding is the correction's file's, bit for bit (the same
 * bytes; the backbone is deterministic). Every other correction joins the training rows. Feedback
 * rows were deduplicated by input when they were written (the newest label wins).
 */
export function joinFeedback(base: EmbeddedDataset, feedback: EmbeddedDataset): WithFeedback {
  const dim = base.dim;
  const vectorKey = (d: EmbeddedDataset, i: number) =>
    Buffer.from(d.vectors.buffer, d.vectors.byteOffset + i * dim * 4, dim * 4).toString("base64");
  const byText = new Map<string, number>();
  const byFile = new Map<string, number>();
  const isFile = (r: DatasetRow) => r.image !== undefined || r.audio !== undefined;
  feedback.rows.forEach((r, i) => {
    if (r.text !== undefined) byText.set(r.text, i);
    else if (isFile(r)) byFile.set(vectorKey(feedback, i), i);
  });
  const match = (row: DatasetRow, i: number) =>
    row.text !== undefined
      ? byText.get(row.text)
      : isFile(row) && byFile.size > 0
        ? byFile.get(vectorKey(base, i))
        : undefined;
  const rows: DatasetRow[] = [];
  const positions: number[] = [];
  const used = new Set<number>();
  for (const [i, row] of base.rows.entries()) {
    const f = match(row, i);
    if (f !== undefined) {
      used.add(f);
      positions.push(rows.length);
    }
    rows.push(f === undefined ? row : { ...row, label: feedback.rows[f].label });
  }
  const extra = feedback.rows.map((_, i) => i).filter((i) => !used.has(i));
  const vectors = new Float32Array((rows.length + extra.length) * dim);
  vectors.set(base.vectors.subarray(0, base.rows.length * dim));
  extra.forEach((f, j) => {
    positions.push(rows.length);
    vectors.set(feedback.vectors.subarray(f * dim, (f + 1) * dim), (base.rows.length + j) * dim);
    rows.push({ ...feedback.rows[f], id: `feedback:${feedback.rows[f].id}`, split: "train" });
  });
  return { data: { ...base, rows, vectors }, feedback, positions };
}

/** The new version (not stored yet) and the one live before it, scored on the feedback rows. */
export async function scoreFeedback(
  store: ObjectStore,
  joined: WithFeedback,
  fresh: { doc: HeadDocument; kind: HeadKind<unknown>; model: unknown },
  previous: string | null,
): Promise<FeedbackReport> {
  const { data, feedback, positions } = joined;
  const dim = data.dim;
  const vectors = new Float32Array(positions.length * dim);
  positions.forEach((p, i) => {
    vectors.set(data.vectors.subarray(p * dim, (p + 1) * dim), i * dim);
  });
  const truth = positions.map((p) => data.rows[p].label);
  const task = fresh.doc.task ?? "multiclass";
  const score = (ps: Prediction[]) => scorePredictions(task, ps, truth);
  const after = await predictVectors({ ...fresh, task }, vectors, positions.length);
  const report: FeedbackReport = {
    dataset: feedback.dataset,
    datasetVersion: feedback.version,
    rows: positions.length,
    metric: task === "regression" ? "rmse" : "accuracy",
    after: { version: fresh.doc.version, value: score(after) },
  };
  if (previous === null) return { ...report, beforeSkipped: "the head had no live version" };
  const old = await loadHead(store, fresh.doc.head, previous);
  const why = incomparable(old.doc, fresh.doc);
  if (why) return { ...report, beforeSkipped: why };
  const before = await predictVectors(old, vectors, positions.length);
  return { ...report, before: { version: previous, value: score(before) } };
}

/** Why the previous version cannot be scored on these vectors, if it cannot. */
function incomparable(old: HeadDocument, fresh: HeadDocument): string | undefined {
  if (old.backbone.id !== fresh.backbone.id || old.backbone.sha256 !== fresh.backbone.sha256) {
    return `version ${old.version} was trained on backbone ${old.backbone.id}, this one on ${fresh.backbone.id}`;
  }
  if ((old.task ?? "multiclass") !== (fresh.task ?? "multiclass")) {
    return `version ${old.version} is a ${old.task ?? "multiclass"} head`;
  }
  return undefined;
}

/** Accuracy (multiclass: the label; multilabel: the exact label set) or, for regression, RMSE. */
export function scorePredictions(task: HeadTask, ps: Prediction[], truth: DatasetRow["label"][]): number {
  return task === "regression" ? rmse(ps, truth) : accuracy(ps, truth);
}

function accuracy(ps: Prediction[], truth: DatasetRow["label"][]): number {
  let right = 0;
  ps.forEach((p, i) => {
    const t = truth[i];
    if (p.labels !== undefined) {
      const want = Array.isArray(t) ? [...t].sort() : [String(t)];
      if (JSON.stringify([...p.labels].sort()) === JSON.stringify(want)) right++;
    } else if (p.label === String(t)) right++;
  });
  return ps.length === 0 ? 0 : right / ps.length;
}

function rmse(ps: Prediction[], truth: DatasetRow["label"][]): number {
  const sq = ps.reduce((s, p, i) => s + ((p.value ?? 0) - Number(truth[i])) ** 2, 0);
  return ps.length === 0 ? 0 : Math.sqrt(sq / ps.length);
}
