import { fileURLToPath } from "node:url";
import { S3Store } from "./aws/s3-store.ts";
import type { Config } from "./config.ts";
import { ValidationError } from "./errors.ts";
import { FsStore } from "./store/fs.ts";
import type { ObjectStore } from "./store/types.ts";

export { S3Store } from "./aws/s3-store.ts";
export { FsStore } from "./store/fs.ts";
export type { ObjectInfo, ObjectStore, PutOptions, StoredObject } from "./store/types.ts";

/** `s3://bucket[/prefix]` → S3Store; `file://…` or a plain path → FsStore. */
export function openStore(
  config: Pick<Config, "store" | "s3Endpoint" | "region" | "scratchDir" | "s3Client">,
): ObjectStore {
  const url = config.store;
  if (url.startsWith("s3://")) {
    const rest = url.slice("s3://".length);
    const [bucket, ...prefix] = rest.split("/");
    if (!bucket) throw new ValidationError(`store URL ${url} names no bucket`, { field: "store" });
    return new S3Store({
      bucket,
      prefix: prefix.filter(Boolean).join("/"),
      endpoint: config.s3Endpoint,
      region: config.region,
      scratchDir: config.scratchDir,
      ...config.s3Client,
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith("file://")) {
    throw new ValidationError(`unsupported store URL ${url}: use a directory, file://… or s3://bucket`, {
      field: "store",
    });
  }
  return new FsStore(url.startsWith("file://") ? fileURLToPath(url) : url);
}
