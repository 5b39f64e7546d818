/**
 * EventBridge "SageMaker Processing Job State Change" → `jobs/<job>.json`: succeeded once every
 * shard is committed, failed with SageMaker's failure reason (or the missing shards) otherwise.
 * Store errors are thrown so the event is redriven and finally dead-lettered; events that are
 * not this store's headstart jobs are logged and ignored. A job that ended is announced to the
 * webhooks (`dataset.embedded` / `dataset.failed`) before returning.
 */

import {
  applyProcessingJobStateChange,
  type JobStateChangeResult,
} from "../../shared/aws/sagemaker-runner.ts";
import { bootstrap } from "../../shared/bootstrap.ts";
import { instrument } from "../../shared/lambda.ts";

const { platform, log, metrics } = bootstrap("headstart-job-complete");

export const handler = instrument({ log, metrics }, async (event: unknown): Promise<JobStateChangeResult> => {
  const result = await applyProcessingJobStateChange(platform.store, event, log);
  if (result.outcome === "ignored") log.info("event ignored", { ...result });
  // Replays too: the event's id follows from the job, so the delivery log sends it once.
  if (result.job && (result.state === "succeeded" || result.state === "failed"))
    await platform.notifyJobEnded(result.job);
  return result;
});
