/**
 * `jobs/<job>.json`: the state of one batch job. The planner creates it (create-only); only the
 * runner that owns the job updates it, with compare-and-swap so no update is lost. It lives in
 * `embed/`, which plans and runs the job, below `jobs/` (the runners), which imports it.
 */
import { z } from "zod";
import { NotFoundError, PreconditionFailedError } from "../errors.ts";
import { keys } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

export const JobState = z.enum(["planned", "running", "succeeded", "failed"]);
export type JobState = z.infer<typeof JobState>;

export const EmbedJob = z.object({
  job: z.string(),
  kind: z.literal("embed"),
  dataset: z.string(),
  /** sha256 of the dataset's `_rows.jsonl` the plan was made from. */
  datasetVersion: z.string(),
  backbone: z.string(),
  backboneSha: z.string(),
  /** Shard indices this job fills; each has a `_plan-NNNNN.json` in the cache prefix. */
  shards: z.array(z.number().int()),
  shardSize: z.number().int(),
  items: z.object({
    /** Distinct items this job embeds. */
    toEmbed: z.number().int(),
    /** Rows whose item was already in the cache (or repeated within the dataset). */
    cached: z.number().int(),
    /** Rows whose modality the backbone cannot embed. */
    unsupported: z.number().int(),
  }),
  state: JobState,
  runner: z.string().optional(),
  /** Set by a runner that hands work to another system (SageMaker's job name). */
  externalId: z.string().optional(),
  error: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
});
export type EmbedJob = z.infer<typeof EmbedJob>;

export async function readJob(
  store: ObjectStore,
  job: string,
): Promise<{ value: EmbedJob; etag: string } | undefined> {
  return getJson(store, keys.job(job), EmbedJob);
}

export async function requireJob(store: ObjectStore, job: string): Promise<EmbedJob> {
  const found = await readJob(store, job);
  if (!found) throw new NotFoundError(`job ${job}`, { field: "job" });
  return found.value;
}

/** Applies `change` with compare-and-swap, retrying when another writer got there first. */
export async function updateJob(
  store: ObjectStore,
  job: string,
  change: (current: EmbedJob) => Partial<EmbedJob>,
): Promise<EmbedJob> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await readJob(store, job);
    if (!current) throw new NotFoundError(`job ${job}`, { field: "job" });
    const next: EmbedJob = {
      ...current.value,
      ...change(current.value),
      updatedAt: new Date().toISOString(),
    };
    try {
      await putJson(store, keys.job(job), next, { ifMatch: current.etag });
      return next;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      await new Promise((r) => setTimeout(r, 10 * (attempt + 1)));
    }
  }
  throw new PreconditionFailedError(keys.job(job));
}
