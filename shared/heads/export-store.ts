/**
 * Exports too large for one response (Lambda answers at most 6 MB) are stored and handed out as
 * a download URL. A version is immutable, so head + version + fused decides the bytes: the object
 * is content-addressed under that prefix, written create-only, and a repeat export finds it by one
 * listing instead of rebuilding it.
 */
import { createHash } from "node:crypto";
import { PreconditionFailedError } from "../errors.ts";
import { keys, parseKey } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";

export interface StoredExport {
  key: string;
  bytes: number;
  sha256: string;
}

/** How long a download URL stays valid where the store issues them (S3: presigned). */
export const EXPORT_URL_TTL_SECONDS = 3600;

export async function findStoredExport(
  store: ObjectStore,
  head: string,
  version: string,
  fused: boolean,
): Promise<StoredExport | undefined> {
  for (const o of await store.list(keys.headExportPrefix(head, version, fused))) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "headExport") return { key: o.key, bytes: o.size, sha256: parsed.sha256 };
  }
  return undefined;
}

export async function storeExport(
  store: ObjectStore,
  head: string,
  version: string,
  fused: boolean,
  bytes: Uint8Array,
): Promise<StoredExport> {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const key = keys.headExport(head, version, fused, sha256);
  try {
    await store.put(key, bytes, { ifNoneMatch: "*", contentType: "application/octet-stream" });
  } catch (err) {
    // A concurrent export stored these very bytes first (the key is their hash).
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  return { key, bytes: bytes.byteLength, sha256 };
}
