/**
 * The batch stage's entry logic, shared by the SageMaker container and the local worker
 * process. SageMaker hands each instance its share of the job's shard plans as files under
 * `/opt/ml/processing/input/plans` (ShardedByS3Key); without that folder the whole job runs.
 *
 * One batch job may run several embedding jobs of a dataset (one per backbone, `HEADSTART_JOB`
 * = their ids separated by commas), one after the other in this process. Each member's plans
 * then arrive in a folder of their own, `<plans>/<job>` (SageMaker allows one input per local
 * path), and the result line lists every member's result (see `batchResultLine`).
 */
import { promises as fs } from "node:fs";
import { join, posix } from "node:path";
import { z } from "zod";
import { loadEmbedder } from "../backbone/registry.ts";
import type { Config } from "../config.ts";
import { isUserError, ValidationError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../store/types.ts";
import { type EmbedJob, requireJob } from "./job.ts";
import { ShardPlan } from "./plan.ts";
import { logEmbedProgress, type RunShardsResult, runEmbedShards } from "./run.ts";

export const SAGEMAKER_PROCESSING_DIR = "/opt/ml/processing";
export const SAGEMAKER_PLANS_DIR = `${SAGEMAKER_PROCESSING_DIR}/input/plans`;

/** `a` or `a,b,c`: the jobs the batch job runs, in that order. */
const JobIds = z
  .string()
  .min(1, "HEADSTART_JOB must name the job to run")
  .transform((v) => v.split(",").map((id) => id.trim()))
  .refine((ids) => ids.every((id) => id.length > 0), "HEADSTART_JOB must be job ids separated by commas")
  .refine((ids) => new Set(ids).size === ids.length, "HEADSTART_JOB names a job twice");

const BatchEnv = z.object({
  HEADSTART_JOB: JobIds,
  HEADSTART_PLANS_DIR: z.string().default(SAGEMAKER_PLANS_DIR),
  HEADSTART_BATCH_SIZE: z.coerce.number().int().min(1).max(65_536).optional(),
});

export interface BatchSettings {
  /** The jobs to run, in order; one for a batch job of a single embedding job. */
  jobs: string[];
  plansDir: string;
  batchSize?: number;
}

export function batchSettingsFromEnv(env: NodeJS.ProcessEnv): BatchSettings {
  const parsed = BatchEnv.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0]);
    throw new ValidationError(`environment variable ${name} is invalid: ${issue.message}`, { field: name });
  }
  return {
    jobs: parsed.data.HEADSTART_JOB,
    plansDir: parsed.data.HEADSTART_PLANS_DIR,
    batchSize: parsed.data.HEADSTART_BATCH_SIZE,
  };
}

/**
 * Where a job's plan files arrive: the plans folder itself for a batch job of one job (as
 * always), `<plans>/<job>` for a member of several (the SageMaker runner's input LocalPath).
 */
export function jobPlansDir(plansDir: string, job: string, group: boolean): string {
  return group ? posix.join(plansDir, job) : plansDir;
}

/** Shard indices of `job` among the plan files SageMaker copied to this instance, or undefined if none were. */
async function assignedShards(plansDir: string, job: EmbedJob): Promise<number[] | undefined> {
  const names = await fs.readdir(plansDir).catch(() => undefined);
  if (!names) {
    // Inside SageMaker, no plans folder means this instance's share is empty (more instances
    // than shards), not "run the whole job".
    const onSageMaker = await fs.stat(SAGEMAKER_PROCESSING_DIR).then(
      () => true,
      () => false,
    );
    return onSageMaker ? [] : undefined;
  }
  const shards: number[] = [];
  // Only plan objects count: an input prefix may also deliver commit markers or other jobs' plans.
  for (const name of names.filter((n) => /(^|_)plan-\d{5}\.json$/.test(n)).sort()) {
    const parsed = ShardPlan.safeParse(JSON.parse(await fs.readFile(join(plansDir, name), "utf8")));
    if (parsed.success && parsed.data.job === job.job && job.shards.includes(parsed.data.shard)) {
      shards.push(parsed.data.shard);
    }
  }
  return shards;
}

/** Runs one job's assigned shards (all of them outside SageMaker when no plans were handed out). */
export async function runBatchJob(
  store: ObjectStore,
  config: Config,
  jobId: string,
  opts: { plansDir: string; batchSize?: number },
  log: Logger,
): Promise<RunShardsResult> {
  const job = await requireJob(store, jobId);
  const shards = await assignedShards(opts.plansDir, job);
  log.info("batch stage starting", {
    job: job.job,
    dataset: job.dataset,
    backbone: job.backbone,
    shards: shards ?? job.shards,
    assignedBy: shards ? opts.plansDir : "job",
  });
  const embedder = await loadEmbedder(store, job.backbone, config);
  const result = await runEmbedShards(store, job, embedder, {
    shards,
    batchSize: opts.batchSize,
    onProgress: logEmbedProgress(log),
    leaseTtlMs: config.leaseTtlSeconds * 1000,
  });
  log.info("batch stage finished", { ...result });
  return result;
}

/** What a batch job did: the result of each job that ran to its end, and why the others did not. */
export interface BatchOutcome {
  results: RunShardsResult[];
  failures: Array<{ job: string; error: Error }>;
}

/**
 * Runs the settings' jobs one after the other. A job that fails does not stop the next: in a
 * group, each backbone's work is worth keeping (its shards commit) whatever another one does.
 */
export async function runBatch(
  store: ObjectStore,
  config: Config,
  settings: BatchSettings,
  log: Logger,
): Promise<BatchOutcome> {
  const group = settings.jobs.length > 1;
  const outcome: BatchOutcome = { results: [], failures: [] };
  for (const job of settings.jobs) {
    const plansDir = jobPlansDir(settings.plansDir, job, group);
    try {
      outcome.results.push(
        await runBatchJob(store, config, job, { plansDir, batchSize: settings.batchSize }, log),
      );
    } catch (err) {
      if (group) log.error("batch job failed", { job, error: (err as Error).message });
      outcome.failures.push({ job, error: err as Error });
    }
  }
  return outcome;
}

/**
 * The last line on stdout of a batch job of several jobs: every member's result, and the
 * members that failed with their error. (A batch job of one job prints its RunShardsResult.)
 */
export const BatchGroupResult = z.object({
  jobs: z.array(z.object({ job: z.string() }).passthrough()),
  failed: z.array(z.object({ job: z.string(), error: z.string() })),
});
export interface BatchGroupResult {
  jobs: RunShardsResult[];
  failed: Array<{ job: string; error: string }>;
}

export function batchGroupResult(outcome: BatchOutcome): BatchGroupResult {
  return {
    jobs: outcome.results,
    failed: outcome.failures.map((f) => ({ job: f.job, error: f.error.message })),
  };
}

/** The process's exit code: 0, 2 when every failure is the user's (bad input), else 1. */
export function batchExitCode(outcome: BatchOutcome): number {
  if (outcome.failures.length === 0) return 0;
  return outcome.failures.every((f) => isUserError(f.error)) ? 2 : 1;
}
