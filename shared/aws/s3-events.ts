/**
 * Bucket notifications → manifest uploads. AWS URL-encodes object keys in S3 events (spaces as
 * `+`); Ceph radosgw sends them raw. Keys are decoded here, in one place, for both.
 */
import { z } from "zod";
import { fromZodError, ValidationError } from "../errors.ts";
import { parseKey } from "../layout.ts";

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

export interface ManifestUpload {
  bucket: string;
  key: string;
  dataset: string;
  sequencer?: string;
  eTag?: string;
}

export function decodeEventKey(rawKey: string, eventSource: string): string {
  if (eventSource !== "aws:s3") return rawKey;
  try {
    return decodeURIComponent(rawKey.replace(/\+/g, " "));
  } catch {
    throw new ValidationError(`object key is not valid URL encoding: ${rawKey}`, { field: "s3.object.key" });
  }
}

/** The manifest uploads among an event's records; everything else (files, our own writes) is ignored. */
export function manifestUploads(event: unknown, storePrefix = ""): ManifestUpload[] {
  const parsed = S3Event.safeParse(event);
  if (!parsed.success)
    throw fromZodError(parsed.error, { prefix: "not an S3 event notification", fallback: "Records" });
  const out: ManifestUpload[] = [];
  for (const record of parsed.data.Records) {
    if (!record.eventName.startsWith("ObjectCreated")) continue;
    let key = decodeEventKey(record.s3.object.key, record.eventSource);
    if (storePrefix) {
      if (!key.startsWith(`${storePrefix}/`)) continue;
      key = key.slice(storePrefix.length + 1);
    }
    const target = parseKey(key);
    if (target?.kind !== "manifest") continue;
    const { sequencer, eTag } = record.s3.object;
    out.push({
      bucket: record.s3.bucket.name,
      key,
      dataset: target.dataset,
      ...(sequencer ? { sequencer } : {}),
      ...(eTag ? { eTag } : {}),
    });
  }
  return out;
}
