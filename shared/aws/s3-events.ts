/**
 * Bucket notifications → the uploads the ingest Lambda acts on (dataset manifests, batch inputs).
 * AWS URL-encodes object keys in S3 events (spaces as `+`); Ceph radosgw sends them raw. Keys are
 * decoded here, in one place, for both.
 */
import { z } from "zod";
import { fromZodError, ValidationError } from "../errors.ts";
import { type ManifestFormat, parseKey } from "../layout.ts";

const S3EventRecord = z.object({
  eventSource: z.string(),
  eventName: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({
      key: z.string(),
      size: z.number().optional(),
      eTag: z.string().optional(),
      /** Orders the events of one key (hex, compared after left-padding); absent from some servers. */
      sequencer: z
        .string()
        .regex(/^[0-9A-Fa-f]+$/, "a hexadecimal string")
        .optional(),
    }),
  }),
});
export const S3Event = z.object({ Records: z.array(S3EventRecord) });
export type S3Event = z.infer<typeof S3Event>;

interface UploadedObject {
  bucket: string;
  /** The decoded key, relative to the store's prefix. */
  key: string;
  sequencer?: string;
  eTag?: string;
}

/** `datasets/<dataset>/manifest.(jsonl|csv)`: ingest the dataset and embed it. */
export interface ManifestUpload extends UploadedObject {
  kind: "manifest";
  dataset: string;
}

/** `batch/<head>/<name>.(jsonl|csv)`: score the manifest with the head (a batch prediction). */
export interface BatchUpload extends UploadedObject {
  kind: "batch";
  head: string;
  name: string;
  format: ManifestFormat;
}

/** A key under `batch/` that is not `batch/<head>/<name>.(jsonl|csv)`: reported, never guessed at. */
export interface UnusableBatchUpload extends UploadedObject {
  kind: "unusable-batch";
}

export type BucketUpload = ManifestUpload | BatchUpload | UnusableBatchUpload;

export function decodeEventKey(rawKey: string, eventSource: string): string {
  if (eventSource !== "aws:s3") return rawKey;
  try {
    return decodeURIComponent(rawKey.replace(/\+/g, " "));
  } catch {
    throw new ValidationError(`object key is not valid URL encoding: ${rawKey}`, { field: "s3.object.key" });
  }
}

/**
 * The uploads among an event's records the ingest Lambda acts on: dataset manifests and batch
 * inputs. Everything else (dataset files, our own writes such as `batch/<head>/_status/…`) is ignored.
 */
export function bucketUploads(event: unknown, storePrefix = ""): BucketUpload[] {
  const parsed = S3Event.safeParse(event);
  if (!parsed.success)
    throw fromZodError(parsed.error, { prefix: "not an S3 event notification", fallback: "Records" });
  const out: BucketUpload[] = [];
  for (const record of parsed.data.Records) {
    if (!record.eventName.startsWith("ObjectCreated")) continue;
    let key = decodeEventKey(record.s3.object.key, record.eventSource);
    if (storePrefix) {
      if (!key.startsWith(`${storePrefix}/`)) continue;
      key = key.slice(storePrefix.length + 1);
    }
    const { sequencer, eTag } = record.s3.object;
    const object = {
      bucket: record.s3.bucket.name,
      key,
      ...(sequencer ? { sequencer } : {}),
      ...(eTag ? { eTag } : {}),
    };
    const target = parseKey(key);
    if (target?.kind === "manifest") out.push({ kind: "manifest", ...object, dataset: target.dataset });
    else if (target?.kind === "batchUpload") {
      out.push({ kind: "batch", ...object, head: target.head, name: target.name, format: target.format });
    } else if (!target && key.startsWith("batch/") && /\.(jsonl|csv)$/.test(key)) {
      out.push({ kind: "unusable-batch", ...object });
    }
  }
  return out;
}

/** The dataset manifest uploads among an event's records. */
export function manifestUploads(event: unknown, storePrefix = ""): ManifestUpload[] {
  return bucketUploads(event, storePrefix).filter((u): u is ManifestUpload => u.kind === "manifest");
}
