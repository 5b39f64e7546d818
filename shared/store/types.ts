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
  /**
   * When the object was last written (ms since the epoch): set by `list` on both stores (what
   * `gc`'s grace period reads), absent from `head` and `put`.
   */
  modifiedMs?: number;
}

export interface StoredObject extends ObjectInfo {
  body: Uint8Array;
}

/** A leftover of an interrupted write: not an object, never listed (FsStore's `.~tmp-…`, `.~lock`). */
export interface Temporary {
  /** Its name in key form (`cache/b/d/shard-00001.npy.~tmp-3f2a…`). */
  key: string;
  ageMs: number;
  size: number;
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
  /**
   * `put` (unconditional) of a local file's bytes, streamed rather than read into memory: for
   * documents that grow with a dataset (an import's rows). Callers fall back to `put` without it.
   */
  putFile?(key: string, file: string, opts?: Pick<PutOptions, "contentType">): Promise<ObjectInfo>;
  /**
   * A URL anyone holding it may GET the object from until it expires, saved as `filename` by a
   * browser (S3Store: a presigned GET). Absent where the store has no URLs of its own (FsStore:
   * the local server streams the object instead).
   */
  downloadUrl?(key: string, opts: { expiresInSeconds: number; filename: string }): Promise<string>;
  /** Leftovers of interrupted writes; absent on stores whose writes leave none (S3: one PUT each). */
  temporaries?(): Promise<Temporary[]>;
  /** Removes one if it is still at least `minAgeMs` old; false when it was younger or gone. */
  removeTemporary?(key: string, minAgeMs: number): Promise<boolean>;
}
