/**
 * S3 upload notification → ingest the manifest and start its embedding job. A manifest with
 * no usable row is the uploader's problem, reported in `_status.json`, and must not be
 * retried; anything else is thrown so Lambda retries and finally dead-letters the event.
 */
import { bootstrap } from "../../shared/bootstrap.ts";
import { manifestUploads } from "../../shared/datasets/upload-event.ts";
import { isUserError } from "../../shared/errors.ts";
import { S3Store } from "../../shared/store/s3.ts";

const { platform, log } = bootstrap("headstart-ingest");
const storePrefix = platform.store instanceof S3Store ? platform.store.prefix : "";

export interface IngestResult {
  dataset: string;
  key: string;
  state: "ingested" | "rejected";
  accepted: number;
  rejected: number;
  job?: string;
  error?: string;
}

export async function handler(event: unknown): Promise<{ results: IngestResult[] }> {
  const results: IngestResult[] = [];
  for (const upload of manifestUploads(event, storePrefix)) {
    try {
      const status = await platform.ingest(upload.dataset, upload.key);
      const job = await platform.submitEmbed(upload.dataset);
      log.info("dataset ingested", {
        ...upload,
        accepted: status.rows.accepted,
        rejected: status.rows.rejected,
        job: job.job,
      });
      results.push({
        dataset: upload.dataset,
        key: upload.key,
        state: status.state,
        accepted: status.rows.accepted,
        rejected: status.rows.rejected,
        job: job.job,
      });
    } catch (err) {
      // A SageMaker refusal is a deployment problem, not the uploader's: retry, then dead-letter.
      if (!isUserError(err) || err.field === "sagemaker") throw err;
      log.warn("manifest rejected", { ...upload, error: (err as Error).message });
      results.push({
        dataset: upload.dataset,
        key: upload.key,
        state: "rejected",
        accepted: 0,
        rejected: 0,
        error: (err as Error).message,
      });
    }
  }
  // A local runner embeds in this process: finish before Lambda freezes it.
  await platform.local.idle();
  return { results };
}
