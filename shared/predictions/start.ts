/**
 * Starting a batch-prediction job: resolve the head version and the input's content, then create
 * the job's record under an id derived from both. A duplicate start (same head version, same
 * input content) answers the existing record and starts nothing; only a `failed` job is queued
 * again. One call, so any door (CLI, API, a bucket upload) starts a job the same way.
 */
import { readDatasetRows } from "../datasets/ingest.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import { readHeadVersion, resolveHeadRef } from "../heads/version.ts";
import { assertName } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";
import { type BatchJob, batchJobId, createBatchJob, readBatchJob, updateBatchJob } from "./job.ts";
import { DEFAULT_PART_ROWS } from "./output.ts";

export interface BatchStart {
  head: string;
  /** The rows to score: a dataset's current rows. */
  dataset: string;
  /** `manifest` when the dataset was made from a manifest or folder given as the input. */
  source?: "dataset" | "manifest";
  version?: string;
  alias?: string;
  /** Rows per output part (default 100,000). */
  partRows?: number;
}

export async function startBatchJob(
  store: ObjectStore,
  req: BatchStart,
): Promise<{ job: BatchJob; created: boolean }> {
  assertName("head", req.head, "head");
  assertName("dataset", req.dataset, "dataset");
  if (req.version !== undefined && req.alias !== undefined) {
    throw new ValidationError("name a version or an alias, not both", { field: "alias" });
  }
  const partRows = req.partRows ?? DEFAULT_PART_ROWS;
  if (!Number.isInteger(partRows) || partRows < 1) {
    throw new ValidationError("partRows must be a positive integer", { field: "partRows" });
  }
  const version = await resolveHeadRef(store, { head: req.head, version: req.version, alias: req.alias });
  await readHeadVersion(store, req.head, version); // a version that does not exist: 404 now, not later
  const rows = await readDatasetRows(store, req.dataset);
  if (!rows) throw new NotFoundError(`dataset ${req.dataset}`, { field: "dataset" });
  const input = { source: req.source ?? "dataset", dataset: req.dataset, datasetVersion: rows.version };
  const id = batchJobId(req.head, version, input);
  const now = new Date().toISOString();
  const record: BatchJob = {
    job: id,
    kind: "batch-predict",
    head: req.head,
    version,
    input,
    status: "queued",
    progress: { phase: "queued", rowsDone: 0, rowsTotal: rows.rows.length },
    partRows,
    outputs: [],
    errors: [],
    createdAt: now,
    updatedAt: now,
  };
  if (await createBatchJob(store, record)) return { job: record, created: true };
  return { job: await requeueFailed(store, id), created: false };
}

/** A duplicate start: the record as it is, except that a failed job is queued for another run. */
async function requeueFailed(store: ObjectStore, id: string): Promise<BatchJob> {
  const found = await readBatchJob(store, id);
  if (!found) throw new NotFoundError(`batch job ${id}`, { field: "job" });
  const { job } = await updateBatchJob(store, id, (j) =>
    j.status === "failed"
      ? {
          status: "queued",
          error: undefined,
          startedAt: undefined,
          finishedAt: undefined,
          progress: { ...j.progress, phase: "queued", rowsDone: 0 },
        }
      : undefined,
  );
  return job;
}
