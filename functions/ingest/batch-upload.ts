/**
 * The bucket door for batch predictions: a manifest uploaded as `batch/<head>/<name>.(jsonl|csv)`
 * is scored with the head's live version, as `POST /v1/heads/{head}/batch-predictions
 * {manifestKey}` would. The job's id follows from the head version and the manifest's bytes, so
 * every delivery of the event names the same job; an idempotency record per event serializes
 * concurrent deliveries and answers repeats with the stored result. The job's work is done before
 * this returns (Lambda freezes the process after).
 *
 * A head that does not exist or a manifest with no readable row is the uploader's problem: not
 * retried, logged, and written to `batch/<head>/_status/<name>.<format>.json` beside the upload,
 * which also names the job an accepted upload started. Anything else throws, so Lambda retries.
 */
import type { Context } from "aws-lambda";
import type { BatchUpload, UnusableBatchUpload } from "../../shared/aws/s3-events.ts";
import { isUserError } from "../../shared/errors.ts";
import { idempotent } from "../../shared/idempotency.ts";
import { attemptSeconds } from "../../shared/lambda.ts";
import type { Logger } from "../../shared/log.ts";
import type { Platform } from "../../shared/platform.ts";
import type { BatchCounts, BatchStatus } from "../../shared/predictions/job.ts";
import { writeBatchUploadStatus } from "../../shared/predictions/upload-status.ts";

export interface BatchUploadResult {
  kind: "batch";
  key: string;
  head?: string;
  /** `started`: the upload is the input of `job`; `refused`: nothing started, `error` says why. */
  state: "started" | "refused";
  job?: string;
  status?: BatchStatus;
  counts?: BatchCounts;
  error?: string;
  sequencer?: string;
}

interface Env {
  platform: Platform;
  log: Logger;
}

export async function applyBatchUpload(
  env: Env,
  upload: BatchUpload | UnusableBatchUpload,
  context?: Context,
): Promise<BatchUploadResult> {
  if (upload.kind === "unusable-batch") {
    const error = "a batch input's key is batch/<head>/<name>.jsonl or .csv (head and name: lowercase names)";
    env.log.warn("batch upload refused", { ...upload, error });
    return { kind: "batch", key: upload.key, state: "refused", error, sequencer: upload.sequencer };
  }
  const { result, replayed } = await idempotent(
    env.platform.store,
    "ingest-batch",
    {
      bucket: upload.bucket,
      key: upload.key,
      sequencer: upload.sequencer ?? null,
      eTag: upload.eTag ?? null,
    },
    () => startAndRun(env, upload),
    { inProgressSeconds: attemptSeconds(context) },
  );
  if (replayed) env.log.info("repeated batch upload event: returning the stored result", { ...upload });
  return result;
}

async function startAndRun(env: Env, upload: BatchUpload): Promise<BatchUploadResult> {
  const { platform, log } = env;
  const base = { kind: "batch" as const, key: upload.key, head: upload.head, sequencer: upload.sequencer };
  const etag = upload.eTag === undefined ? {} : { etag: upload.eTag };
  let job: string;
  try {
    job = (await platform.submitBatchPrediction({ head: upload.head, manifestKey: upload.key })).job;
  } catch (err) {
    // A SageMaker refusal is a deployment problem, not the uploader's: retry, then dead-letter.
    if (!isUserError(err) || err.field === "sagemaker") throw err;
    const error = (err as Error).message;
    log.warn("batch upload refused", { ...upload, error });
    await writeBatchUploadStatus(platform.store, upload, {
      key: upload.key,
      ...etag,
      state: "refused",
      error,
    });
    return { ...base, state: "refused", error };
  }
  await platform.batchIdle();
  const record = await platform.batchPrediction(job);
  await writeBatchUploadStatus(platform.store, upload, {
    key: upload.key,
    ...etag,
    state: "started",
    job,
    jobStatus: record.status,
  });
  log.info("batch upload scored", { ...upload, job, status: record.status, counts: record.counts });
  return {
    ...base,
    state: "started",
    job,
    status: record.status,
    ...(record.counts ? { counts: record.counts } : {}),
  };
}
