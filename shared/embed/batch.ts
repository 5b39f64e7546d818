/**
 * The batch stage's entry logic, shared by the SageMaker container and the local worker
 * process. SageMaker hands each instance its share of the job's shard plans as files under
 * `/opt/ml/processing/input/plans` (ShardedByS3Key); without that folder the whole job runs.
 */
import { promises as fs } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { loadEmbedder } from "../backbone/registry.ts";
import type { Config } from "../config.ts";
import { ValidationError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../store/types.ts";
import { type EmbedJob, requireJob } from "./job.ts";
import { ShardPlan } from "./plan.ts";
import { logEmbedProgress, type RunShardsResult, runEmbedShards } from "./run.ts";

export const SAGEMAKER_PROCESSING_DIR = "/opt/ml/processing";
export const SAGEMAKER_PLANS_DIR = `${SAGEMAKER_PROCESSING_DIR}/input/plans`;

const BatchEnv = z.object({
  HEADSTART_JOB: z.string().min(1, "HEADSTART_JOB must name the job to run"),
  HEADSTART_PLANS_DIR: z.string().default(SAGEMAKER_PLANS_DIR),
  HEADSTART_BATCH_SIZE: z.coerce.number().int().min(1).max(65_536).optional(),
});

export interface BatchSettings {
  job: string;
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
    job: parsed.data.HEADSTART_JOB,
    plansDir: parsed.data.HEADSTART_PLANS_DIR,
    batchSize: parsed.data.HEADSTART_BATCH_SIZE,
  };
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

export async function runBatch(
  store: ObjectStore,
  config: Config,
  settings: BatchSettings,
  log: Logger,
): Promise<RunShardsResult> {
  const job = await requireJob(store, settings.job);
  const shards = await assignedShards(settings.plansDir, job);
  log.info("batch stage starting", {
    job: job.job,
    dataset: job.dataset,
    backbone: job.backbone,
    shards: shards ?? job.shards,
    assignedBy: shards ? settings.plansDir : "job",
  });
  const embedder = await loadEmbedder(store, job.backbone, config);
  const result = await runEmbedShards(store, job, embedder, {
    shards,
    batchSize: settings.batchSize,
    onProgress: logEmbedProgress(log),
    leaseTtlMs: config.leaseTtlSeconds * 1000,
  });
  log.info("batch stage finished", { ...result });
  return result;
}
