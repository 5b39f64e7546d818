/**
 * S3 upload notification → ingest the manifest and start its embedding job; a batch input
 * uploaded under `batch/<head>/` is scored instead (./batch-upload.ts). A manifest with
 * no usable row is the uploader's problem, reported in `_status.json`, and must not be
 * retried; anything else is thrown so Lambda retries and finally dead-letters the event.
 *
 * Notifications arrive at least once, late and out of order. Per manifest key the newest
 * applied `sequencer` is recorded; an event at or below it (a duplicate, or an older upload
 * arriving after a newer one) is skipped — provided the bucket's manifest is the one already
 * ingested, so a mis-ordered sequencer can cost a repeated ingest, never a lost one. Concurrent deliveries of one event are serialized by
 * an idempotency record keyed by bucket, key and sequencer: one does the work, the other is
 * refused while it runs (and retried by Lambda) or gets the stored result after.
 */
import type { Context } from "aws-lambda";
import { bucketUploads, type ManifestUpload } from "../../shared/aws/s3-events.ts";
import { S3Store } from "../../shared/aws/s3-store.ts";
import { bootstrap } from "../../shared/bootstrap.ts";
import { appliedSequencer, readDatasetStatus, recordAppliedSequencer } from "../../shared/datasets/ingest.ts";
import { compareSequencers } from "../../shared/datasets/sequencer.ts";
import { isUserError } from "../../shared/errors.ts";
import { idempotent } from "../../shared/idempotency.ts";
import { attemptSeconds, instrument } from "../../shared/lambda.ts";
import { addMetric } from "../../shared/metrics.ts";
import { applyBatchUpload, type BatchUploadResult } from "./batch-upload.ts";

const { platform, log, metrics } = bootstrap("headstart-ingest");
const storePrefix = platform.store instanceof S3Store ? platform.store.prefix : "";

export interface IngestResult {
  dataset: string;
  key: string;
  /** `stale`: an event at or below the newest one applied to this key, skipped. */
  state: "ingested" | "rejected" | "stale";
  accepted: number;
  rejected: number;
  job?: string;
  /** With HEADSTART_UPLOAD_BACKBONES: one embedding job per backbone, run as one batch job. */
  jobs?: string[];
  error?: string;
  sequencer?: string;
}

export const handler = instrument({ log, metrics }, async (event: unknown, context?: Context) => {
  const results: IngestResult[] = [];
  const batches: BatchUploadResult[] = [];
  for (const upload of bucketUploads(event, storePrefix)) {
    if (upload.kind === "manifest") results.push(await applyUpload(upload, context));
    else batches.push(await applyBatchUpload({ platform, log }, upload, context));
  }
  // A local runner embeds in this process: finish before Lambda freezes it.
  await platform.local.idle();
  return { results, batches };
});

async function applyUpload(upload: ManifestUpload, context?: Context): Promise<IngestResult> {
  const { sequencer } = upload;
  if (sequencer !== undefined) {
    const applied = await appliedSequencer(platform.store, upload.key);
    if (
      applied !== undefined &&
      compareSequencers(sequencer, applied) <= 0 &&
      (await bucketObjectIngested(upload))
    ) {
      log.info("stale or repeated upload event skipped", { ...upload, applied });
      return {
        dataset: upload.dataset,
        key: upload.key,
        state: "stale",
        accepted: 0,
        rejected: 0,
        sequencer,
      };
    }
  }
  const { result, replayed } = await idempotent(
    platform.store,
    "ingest",
    { bucket: upload.bucket, key: upload.key, sequencer: sequencer ?? null, eTag: upload.eTag ?? null },
    async () => {
      const r = await ingestUpload(upload);
      if (sequencer !== undefined)
        await recordAppliedSequencer(platform.store, upload.key, sequencer, upload.eTag);
      return r;
    },
    { inProgressSeconds: attemptSeconds(context) },
  );
  if (replayed) log.info("repeated upload event: returning the stored result", { ...upload });
  return result;
}

/**
 * Whether the manifest now in the bucket is the one the dataset's status already ingested. A
 * stale event is skipped only then: sequencers that do not order as AWS's do (radosgw's, seen in
 * tests) must never leave a newer upload un-ingested. Ingest reads the bucket's current object,
 * so processing an out-of-order event can only re-ingest the newest upload, never an older one.
 */
async function bucketObjectIngested(upload: ManifestUpload): Promise<boolean> {
  const status = await readDatasetStatus(platform.store, upload.dataset);
  if (status?.manifest.key !== upload.key) return false;
  return (await platform.store.head(upload.key))?.etag === status.manifest.etag;
}

async function ingestUpload(upload: ManifestUpload): Promise<IngestResult> {
  const base = { dataset: upload.dataset, key: upload.key, sequencer: upload.sequencer };
  try {
    const status = await platform.ingest(upload.dataset, upload.key);
    const jobs = await platform.submitUploadEmbedding(upload.dataset);
    addMetric(metrics, "ingestRowsAccepted", status.rows.accepted);
    addMetric(metrics, "ingestRowsRejected", status.rows.rejected);
    log.info("dataset ingested", {
      ...upload,
      accepted: status.rows.accepted,
      rejected: status.rows.rejected,
      jobs: jobs.map((j) => j.job),
    });
    return {
      ...base,
      state: status.state,
      accepted: status.rows.accepted,
      rejected: status.rows.rejected,
      ...(platform.config.uploadBackbones ? { jobs: jobs.map((j) => j.job) } : { job: jobs[0].job }),
    };
  } catch (err) {
    // A SageMaker refusal is a deployment problem, not the uploader's: retry, then dead-letter.
    if (!isUserError(err) || err.field === "sagemaker") throw err;
    log.warn("manifest rejected", { ...upload, error: (err as Error).message });
    return { ...base, state: "rejected", accepted: 0, rejected: 0, error: (err as Error).message };
  }
}
