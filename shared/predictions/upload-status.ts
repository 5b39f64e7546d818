/**
 * `batch/<head>/_status/<name>.<format>.json`: what became of a manifest uploaded through the
 * bucket door (`batch/<head>/<name>.<format>`), beside the upload, where its uploader looks. The
 * job's id follows from the head version and the bytes, so the uploader cannot know it in advance;
 * this names it, or says why the upload started nothing (no such head, no readable row).
 */
import { z } from "zod";
import { keys, type ManifestFormat } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { BatchStatus } from "./job.ts";

export const BatchUploadStatus = z.object({
  /** The upload's key (relative to the store). */
  key: z.string(),
  /** The upload's ETag as the bucket notification gave it, when it did. */
  etag: z.string().optional(),
  /** `started`: the upload is a job's input (`job`); `refused`: nothing started (`error`). */
  state: z.enum(["started", "refused"]),
  job: z.string().optional(),
  /** The job's status when the upload was handled (its record at `predictions/<job>/_job.json` is current). */
  jobStatus: BatchStatus.optional(),
  error: z.string().optional(),
  updatedAt: z.string(),
});
export type BatchUploadStatus = z.infer<typeof BatchUploadStatus>;

export interface BatchUploadRef {
  head: string;
  name: string;
  format: ManifestFormat;
}

/** One put: readers see the previous status or this one, never a part. */
export async function writeBatchUploadStatus(
  store: ObjectStore,
  upload: BatchUploadRef,
  status: Omit<BatchUploadStatus, "updatedAt">,
): Promise<BatchUploadStatus> {
  const value = BatchUploadStatus.parse({ ...status, updatedAt: new Date().toISOString() });
  await putJson(store, keys.batchUploadStatus(upload.head, upload.name, upload.format), value);
  return value;
}

export async function readBatchUploadStatus(
  store: ObjectStore,
  upload: BatchUploadRef,
): Promise<BatchUploadStatus | undefined> {
  return (
    await getJson(store, keys.batchUploadStatus(upload.head, upload.name, upload.format), BatchUploadStatus)
  )?.value;
}
