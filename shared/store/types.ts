/**
 * The storage contract both adapters (filesystem, S3) satisfy. Keys are `/`-separated and come
 * from `layout.ts` only. Bodies are bytes; JSON helpers live in `store/json.ts`.
 */
import type { LocalFile } from "./local-file.ts";

export interface PutOptions {
  /** `"*"`: create only; fails with PreconditionFailedError if the key exists. */
  ifNoneMatch?: "*";
  /** Replace only if the current ETag matches; fails with PreconditionFailedError otherwise. */
  ifMatch?: string;
  contentType?: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
}

export interface StoredObject extends ObjectInfo {
  body: Uint8Array;
}

export interface ObjectStore {
  /** Human-readable location, e.g. `file:///abs/dir` or `s3://bucket`. */
  readonly url: string;
  get(key: string): Promise<StoredObject | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Atomic: readers see the old object or the new one, never a torn write. */
  put(key: string, body: Uint8Array | string, opts?: PutOptions): Promise<ObjectInfo>;
  /** Keys under `prefix`, sorted lexicographically. */
  list(prefix: string): Promise<ObjectInfo[]>;
  delete(key: string): Promise<void>;
  /**
   * A local file holding the object's bytes, for consumers that need a path (ONNX Runtime).
   * FsStore returns the object itself; S3Store downloads into a cache keyed by ETag.
   */
  localPath(key: string): Promise<string | undefined>;
  /**
   * `localPath` with the sha256 of the file's bytes. S3Store hashes while it downloads, so a
   * verified cold start reads a large model once, not twice.
   */
  localFile(key: string): Promise<LocalFile | undefined>;
}
