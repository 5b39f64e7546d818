/**
 * Two kinds of events, both asynchronous (Lambda retries, then dead-letters, what throws):
 *
 * - EventBridge "SageMaker Processing Job State Change" → `jobs/<job>.json`: succeeded once every
 *   shard is committed, failed with SageMaker's failure reason (or the missing shards) otherwise.
 *   A group's processing job (several jobs of a dataset, one per backbone) updates every member
 *   job, and each member that ended is handled as a job of its own. A job that ended is announced to the webhooks (`dataset.embedded` / `dataset.failed`), and
 *   the batch-prediction jobs parked on it continue here: scored when every embedding job they
 *   wait for has succeeded, failed when one failed (`platform.continueBatchPredictions`).
 * - `{batchJob}` from the API (`aws/lambda-batch-dispatcher.ts`): runs a started batch job up to
 *   its end, or up to its park on the embedding jobs it submitted to SageMaker.
 *
 * Store errors are thrown so the event is redriven; events that are not this store's headstart
 * jobs are logged and ignored. Every step is idempotent: a duplicate delivery does no work twice.
 */

import {
  applyProcessingJobStateChange,
  endedJobs,
  type JobStateChangeResult,
} from "../../shared/aws/sagemaker-runner.ts";
import { bootstrap } from "../../shared/bootstrap.ts";
import { instrument } from "../../shared/lambda.ts";
import { BatchRunEvent } from "../../shared/predictions/dispatch.ts";

const { platform, log, metrics } = bootstrap("headstart-job-complete");

/** What the handler answers: the state change's result, and the batch jobs it ran or continued. */
export type JobCompleteResult = JobStateChangeResult & { batchJobs?: string[] };

export const handler = instrument({ log, metrics }, async (event: unknown): Promise<JobCompleteResult> => {
  const batch = BatchRunEvent.safeParse(event);
  if (!batch.success) return stateChange(event);
  const job = await platform.runBatchPrediction(batch.data.batchJob);
  log.info("batch job run", { job: job.job, status: job.status, phase: job.progress.phase });
  return { outcome: "updated", status: job.status, batchJobs: [job.job] };
});

async function stateChange(event: unknown): Promise<JobCompleteResult> {
  const result = await applyProcessingJobStateChange(platform.store, event, log);
  if (result.outcome === "ignored") log.info("event ignored", { ...result });
  const batchJobs = new Set<string>();
  // Every member of a group that ended, each as a job of its own; replays too: an event's id
  // follows from the job, so the delivery log sends it once.
  for (const job of endedJobs(result)) {
    await platform.notifyJobEnded(job);
    for (const b of await platform.continueBatchPredictions(job)) {
      log.info("batch job continued", { job: b.job, status: b.status, phase: b.progress.phase });
      batchJobs.add(b.job);
    }
  }
  return batchJobs.size ? { ...result, batchJobs: [...batchJobs] } : result;
}
