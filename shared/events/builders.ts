/**
 * The platform's events made from the records that say something happened: an embedding job's
 * final state, a stored version, an alias move. Each names its occurrence by what is unique about
 * it (see `makeEvent`), so emitting one twice is one event. Structural inputs: this folder imports
 * none of the owners of those records.
 */
import { makeEvent, type WebhookEvent } from "./types.ts";

/** The fields of `embed/job.ts`'s `EmbedJob` an event carries. */
export interface EndedJob {
  job: string;
  dataset: string;
  datasetVersion: string;
  backbone: string;
  items: { toEmbed: number; cached: number; unsupported: number };
  state: string;
  error?: string;
  finishedAt?: string;
}

/** `dataset.embedded` or `dataset.failed` for a job in a final state; undefined otherwise. */
export function embedJobEvent(job: EndedJob): WebhookEvent | undefined {
  const data = {
    dataset: job.dataset,
    datasetVersion: job.datasetVersion,
    backbone: job.backbone,
    job: job.job,
    items: { toEmbed: job.items.toEmbed, cached: job.items.cached, unsupported: job.items.unsupported },
    ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
  };
  // A job succeeds once (never undone); it may fail once per attempt, each its own event.
  if (job.state === "succeeded") return makeEvent("dataset.embedded", [job.job], data);
  if (job.state === "failed") {
    const error = job.error ?? "no reason recorded";
    return makeEvent("dataset.failed", [job.job, job.finishedAt ?? error], { ...data, error });
  }
  return undefined;
}

export function headTrainedEvent(v: {
  head: string;
  version: string;
  dataset: string;
  type: string;
  task: string;
  promoted: boolean;
}): WebhookEvent {
  return makeEvent("head.trained", [v.head, v.version], { ...v });
}

/** One move of an alias, as its history records it (`heads/version.ts`'s `AliasMove`). */
export function headPromotedEvent(
  head: string,
  alias: string,
  move: { version: string; from?: string; at: string; by: "promote" | "rollback" },
): WebhookEvent {
  return makeEvent("head.promoted", [head, alias, move.version, move.at], {
    head,
    alias,
    version: move.version,
    previous: move.from ?? null,
    by: move.by,
    at: move.at,
  });
}

/** The fields of `predictions/job.ts`'s `BatchJob` an event carries. */
export interface EndedBatch {
  job: string;
  head: string;
  version: string;
  status: string;
  counts?: { total: number; succeeded: number; failed: number };
  outputs: string[];
  errors: string[];
  error?: string;
  finishedAt?: string;
}

/**
 * `batch.succeeded` (also `succeeded-with-errors`: rows that failed are in its error parts) or
 * `batch.failed` for a batch job that ended; undefined while it runs or once cancelled.
 */
export function batchJobEvent(job: EndedBatch): WebhookEvent | undefined {
  const base = { job: job.job, head: job.head, version: job.version, status: job.status };
  const identity = [job.job, job.status, job.finishedAt ?? ""];
  if (job.status === "succeeded" || job.status === "succeeded-with-errors") {
    return makeEvent("batch.succeeded", identity, {
      ...base,
      ...(job.counts ? { counts: job.counts } : {}),
      outputs: job.outputs,
      errors: job.errors,
      ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
    });
  }
  if (job.status === "failed")
    return makeEvent("batch.failed", identity, { ...base, error: job.error ?? "no reason recorded" });
  return undefined;
}

/** The fields of `quality/drift.ts`'s `DriftResult` an event carries. */
export interface DriftFinding {
  drift: boolean;
  score: number;
  pValue: number;
  method: string;
  alpha: number;
  n: { reference: number; current: number };
  reference: { kind: string; name: string };
  current: { kind: string; name: string };
  labelShift?: { distance: number };
  head?: { head: string; version: string };
}

/**
 * `drift.detected` for a check about a head (its reference, or its captures) that found drift;
 * undefined otherwise. Each check is its own occurrence: `checkedAt` is part of its identity.
 */
export function driftDetectedEvent(r: DriftFinding, checkedAt: string): WebhookEvent | undefined {
  const head = r.head ?? (r.current.kind === "capture" ? { head: r.current.name } : undefined);
  if (!r.drift || !head) return undefined;
  const side = (s: { kind: string; name: string }) => `${s.kind}:${s.name}`;
  return makeEvent("drift.detected", [head.head, side(r.reference), side(r.current), checkedAt], {
    head: head.head,
    ...("version" in head ? { version: head.version } : {}),
    reference: side(r.reference),
    current: side(r.current),
    method: r.method,
    score: r.score,
    pValue: r.pValue,
    alpha: r.alpha,
    n: r.n,
    ...(r.labelShift ? { labelShiftDistance: r.labelShift.distance } : {}),
    checkedAt,
  });
}
