/**
 * `predictions/<job>/_job.json`: the record of one batch-prediction job. Its id is derived from
 * what it computes (head, head version, input content), so a duplicate start finds the same
 * record instead of starting a second job. Created create-only; every change is a
 * compare-and-swap, so a cancel and a runner's progress never overwrite each other.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { NotFoundError, PreconditionFailedError } from "../errors.ts";
import { keys } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

export const BATCH_STATUSES = [
  "queued",
  "running",
  "succeeded",
  "succeeded-with-errors",
  "failed",
  "cancelled",
] as const;
export const BatchStatus = z.enum(BATCH_STATUSES);
export type BatchStatus = z.infer<typeof BatchStatus>;

export const HEARTBEAT_MS = 30_000;
export const STALE_MS = 5 * 60_000;

/**
 * Whether a `running` job's process has stopped beating (see `heartbeatAt`). A job parked until
 * its embedding jobs end has no process: the end of those jobs continues it (`waitingFor`).
 */
export function isStale(job: BatchJob, now = Date.now()): boolean {
  const beat = Date.parse(job.heartbeatAt ?? job.startedAt ?? job.updatedAt);
  return job.status === "running" && !isWaiting(job) && now - beat > STALE_MS;
}

/** A `running` job parked until the embedding jobs in `waitingFor` (run elsewhere: SageMaker) end. */
export function isWaiting(job: BatchJob): boolean {
  return job.status === "running" && job.progress.phase === "waiting-for-embedding";
}

/** Statuses a job never leaves (a `failed` one may be started again: see `startBatchJob`). */
export const FINAL_STATUSES: readonly BatchStatus[] = [
  "succeeded",
  "succeeded-with-errors",
  "failed",
  "cancelled",
];

export const BatchInput = z.object({
  /**
   * `dataset`: a dataset's current rows. `manifest`: a manifest or folder given as the input,
   * ingested as a dataset of its own (`predictions/input.ts`); its rejected lines are error rows.
   */
  source: z.enum(["dataset", "manifest"]),
  /** The dataset whose rows are scored. */
  dataset: z.string(),
  /** sha256 of the dataset's rows the job scores (its version when the job was started). */
  datasetVersion: z.string(),
});
export type BatchInput = z.infer<typeof BatchInput>;

export const BatchCounts = z.object({
  total: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
});
export type BatchCounts = z.infer<typeof BatchCounts>;

export const BatchJob = z.object({
  job: z.string(),
  kind: z.literal("batch-predict"),
  head: z.string(),
  /** The head version that scores every row (resolved from the alias when the job started). */
  version: z.string(),
  input: BatchInput,
  status: BatchStatus,
  progress: z.object({
    phase: z.enum(["queued", "embedding", "waiting-for-embedding", "scoring", "done"]),
    rowsDone: z.number().int(),
    rowsTotal: z.number().int(),
  }),
  /**
   * While the phase is `waiting-for-embedding`: the embedding jobs (`jobs/<job>.json`) the run
   * handed to the platform's runner; the last of them to end continues the job (`predictions/run.ts`).
   */
  waitingFor: z.array(z.string()).optional(),
  /** Rows per output part. */
  partRows: z.number().int(),
  counts: BatchCounts.optional(),
  /** Store keys of the prediction parts and error parts, once the job has succeeded. */
  outputs: z.array(z.string()),
  errors: z.array(z.string()),
  error: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().optional(),
  /**
   * Moved forward by the running process every `HEARTBEAT_MS`: a `running` job whose heartbeat is
   * older than `STALE_MS` lost its process (killed, crashed) and the next start takes it over.
   */
  heartbeatAt: z.string().optional(),
  finishedAt: z.string().optional(),
});
export type BatchJob = z.infer<typeof BatchJob>;

/**
 * `bp-<head>-<hash>`: a valid name (≤ 63 characters), the same for the same head version and the
 * same input content, different for anything else.
 */
export function batchJobId(head: string, version: string, input: BatchInput): string {
  const hash = createHash("sha256")
    .update(`${head}\0${version}\0${input.source}\0${input.dataset}\0${input.datasetVersion}`)
    .digest("hex")
    .slice(0, 20);
  const slug = head
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, 30)
    .replace(/^-+|-+$/g, "");
  return `bp-${slug ? `${slug}-` : ""}${hash}`;
}

export async function readBatchJob(
  store: ObjectStore,
  job: string,
): Promise<{ value: BatchJob; etag: string } | undefined> {
  return getJson(store, keys.batchJob(job), BatchJob);
}

export async function requireBatchJob(store: ObjectStore, job: string): Promise<BatchJob> {
  const found = await readBatchJob(store, job);
  if (!found) throw new NotFoundError(`batch job ${job}`, { field: "job" });
  return found.value;
}

/** Creates the record; false when it exists already (a duplicate start). */
export async function createBatchJob(store: ObjectStore, job: BatchJob): Promise<boolean> {
  try {
    await putJson(store, keys.batchJob(job.job), job, { ifNoneMatch: "*" });
    return true;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return false;
    throw err;
  }
}

/**
 * Applies `change` by compare-and-swap, retrying on a lost race. `change` answers undefined to
 * leave the record as it is (e.g. a cancelled job that a runner would mark running).
 */
export async function updateBatchJob(
  store: ObjectStore,
  job: string,
  change: (current: BatchJob) => Partial<BatchJob> | undefined,
): Promise<{ job: BatchJob; changed: boolean }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await readBatchJob(store, job);
    if (!current) throw new NotFoundError(`batch job ${job}`, { field: "job" });
    const patch = change(current.value);
    if (!patch) return { job: current.value, changed: false };
    const next: BatchJob = { ...current.value, ...patch, updatedAt: new Date().toISOString() };
    try {
      await putJson(store, keys.batchJob(job), next, { ifMatch: current.etag });
      return { job: next, changed: true };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
    }
  }
  throw new PreconditionFailedError(keys.batchJob(job));
}

/** Cancels a job that has not finished; a finished one is returned as it is. */
export async function cancelBatchJob(store: ObjectStore, job: string): Promise<BatchJob> {
  const { job: out } = await updateBatchJob(store, job, (j) =>
    FINAL_STATUSES.includes(j.status)
      ? undefined
      : { status: "cancelled", finishedAt: new Date().toISOString() },
  );
  return out;
}
