/**
 * The embedding cache: `cache/<backbone>/<dataset>/shard-NNNNN.npy` + `.rows.jsonl`, made
 * visible by `_commit-NNNNN.json`, which is written last and create-only. Readers only ever
 * look at committed shards, so a crash mid-shard leaves nothing half-visible.
 */
import { z } from "zod";
import { HeadstartError, PreconditionFailedError } from "../errors.ts";
import { keys, parseKey } from "../layout.ts";
import { decodeUtf8, getJson, parseJsonl, putJson, toJsonl } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { sha256Hex } from "./address.ts";
import { decodeNpy, encodeNpy } from "./npy.ts";

export const ShardRow = z.object({
  id: z.string(),
  label: z.union([z.string(), z.number(), z.array(z.string())]).optional(),
  split: z.enum(["train", "test"]).optional(),
  sha: z.string(),
  /** The item could not be embedded (a corrupt file…): its vector is zeros and never used. */
  error: z.object({ reason: z.string(), message: z.string() }).optional(),
});
export type ShardRow = z.infer<typeof ShardRow>;

export const ShardCommit = z.object({
  shard: z.number().int(),
  count: z.number().int(),
  dim: z.number().int(),
  backbone: z.string(),
  backboneSha: z.string(),
  dataset: z.string(),
  job: z.string(),
  vectorsSha256: z.string(),
  rowsSha256: z.string(),
  committedAt: z.string(),
});
export type ShardCommit = z.infer<typeof ShardCommit>;

export interface ShardWrite {
  backbone: string;
  backboneSha: string;
  dataset: string;
  shard: number;
  job: string;
  dim: number;
  vectors: Float32Array;
  rows: ShardRow[];
}

/**
 * Returns false when the shard was committed by another worker first, or when `guard` (the
 * embedding runner's "do I still hold this shard's lease?") answers false before the data
 * files or before the commit marker. Data files are never written under an existing commit
 * marker. Should two writers still overlap on an uncommitted shard (a holder paused past its
 * lease), both write the same bytes, and readers check the marker's hashes regardless.
 */
export async function writeShard(
  store: ObjectStore,
  w: ShardWrite,
  guard: () => Promise<boolean> = async () => true,
): Promise<boolean> {
  if (await isCommitted(store, w.backbone, w.dataset, w.shard)) return false;
  const npy = encodeNpy(w.vectors, w.rows.length, w.dim);
  const rowsBody = toJsonl(w.rows);
  if (!(await guard())) return false;
  await store.put(keys.shardVectors(w.backbone, w.dataset, w.shard), npy, {
    contentType: "application/octet-stream",
  });
  await store.put(keys.shardRows(w.backbone, w.dataset, w.shard), rowsBody, {
    contentType: "application/x-ndjson",
  });
  const commit: ShardCommit = {
    shard: w.shard,
    count: w.rows.length,
    dim: w.dim,
    backbone: w.backbone,
    backboneSha: w.backboneSha,
    dataset: w.dataset,
    job: w.job,
    vectorsSha256: sha256Hex(npy),
    rowsSha256: sha256Hex(rowsBody),
    committedAt: new Date().toISOString(),
  };
  if (!(await guard())) return false;
  try {
    await putJson(store, keys.shardCommit(w.backbone, w.dataset, w.shard), commit, { ifNoneMatch: "*" });
    return true;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return false;
    throw err;
  }
}

export async function listCommits(
  store: ObjectStore,
  backbone: string,
  dataset: string,
): Promise<ShardCommit[]> {
  const prefix = keys.cachePrefix(backbone, dataset);
  const out: ShardCommit[] = [];
  for (const obj of await store.list(`${prefix}_commit-`)) {
    const commit = await getJson(store, obj.key, ShardCommit);
    if (commit) out.push(commit.value);
  }
  return out.sort((a, b) => a.shard - b.shard);
}

export async function isCommitted(store: ObjectStore, backbone: string, dataset: string, shard: number) {
  return (await store.head(keys.shardCommit(backbone, dataset, shard))) !== undefined;
}

/**
 * One past the highest index any file uses (plan, lease, data, commit), so a new plan never
 * lands on an index in use. Indices freed in between (a losing planner's deleted plans) stay
 * gaps: nothing relies on a job's shards being contiguous.
 */
export async function nextShardIndex(store: ObjectStore, backbone: string, dataset: string): Promise<number> {
  let max = -1;
  for (const obj of await store.list(keys.cachePrefix(backbone, dataset))) {
    const parsed = parseKey(obj.key);
    if (parsed && "shard" in parsed && parsed.shard > max) max = parsed.shard;
  }
  return max + 1;
}

async function readShardRows(store: ObjectStore, commit: ShardCommit): Promise<ShardRow[]> {
  const key = keys.shardRows(commit.backbone, commit.dataset, commit.shard);
  const obj = await store.get(key);
  if (!obj) throw new HeadstartError("internal", `committed shard is missing its rows: ${key}`);
  if (sha256Hex(obj.body) !== commit.rowsSha256) {
    throw new HeadstartError("internal", `cache shard ${key} does not match its commit marker (corrupted?)`);
  }
  return parseJsonl(decodeUtf8(obj.body), ShardRow, key);
}

/** Addresses of every committed item: what a new embedding job can skip. */
export async function cachedShas(
  store: ObjectStore,
  backbone: string,
  dataset: string,
): Promise<Set<string>> {
  const out = new Set<string>();
  for (const commit of await listCommits(store, backbone, dataset)) {
    for (const row of await readShardRows(store, commit)) out.add(row.sha);
  }
  return out;
}

export interface LoadedCache {
  dim: number;
  backboneSha?: string;
  /** Item address → its vector (a view into the shard's buffer). */
  vectors: Map<string, Float32Array>;
  /** Item address → why it could not be embedded. */
  failures: Map<string, { reason: string; message: string }>;
  shards: number;
}

/**
 * Loads the committed shards of a dataset, verifying each against its commit marker. With
 * `backboneSha`, shards embedded by an earlier version of the backbone are skipped.
 */
export async function loadCache(
  store: ObjectStore,
  backbone: string,
  dataset: string,
  backboneSha?: string,
): Promise<LoadedCache> {
  const vectors = new Map<string, Float32Array>();
  const failures = new Map<string, { reason: string; message: string }>();
  let dim = 0;
  const commits = (await listCommits(store, backbone, dataset)).filter(
    (c) => backboneSha === undefined || c.backboneSha === backboneSha,
  );
  for (const commit of commits) {
    const key = keys.shardVectors(backbone, dataset, commit.shard);
    const obj = await store.get(key);
    if (!obj) throw new HeadstartError("internal", `committed shard is missing its vectors: ${key}`);
    if (sha256Hex(obj.body) !== commit.vectorsSha256) {
      throw new HeadstartError(
        "internal",
        `cache shard ${key} does not match its commit marker (corrupted?)`,
      );
    }
    const { data, rows, cols } = decodeNpy(obj.body);
    const shardRows = await readShardRows(store, commit);
    if (rows !== shardRows.length)
      throw new HeadstartError(
        "internal",
        `cache shard ${key} has ${rows} vectors for ${shardRows.length} rows`,
      );
    if (dim && cols !== dim)
      throw new HeadstartError("internal", `cache shard ${key} has dim ${cols}, others ${dim}`);
    dim = cols;
    shardRows.forEach((r, i) => {
      if (r.error) failures.set(r.sha, r.error);
      else vectors.set(r.sha, data.subarray(i * cols, (i + 1) * cols));
    });
  }
  return { dim, backboneSha, vectors, failures, shards: commits.length };
}

/** Every committed item that could not be embedded, with its reason (for a dataset's status). */
export async function cachedFailures(
  store: ObjectStore,
  backbone: string,
  dataset: string,
): Promise<Array<{ id: string; sha: string; reason: string; message: string }>> {
  const out: Array<{ id: string; sha: string; reason: string; message: string }> = [];
  for (const commit of await listCommits(store, backbone, dataset)) {
    for (const row of await readShardRows(store, commit)) {
      if (row.error) out.push({ id: row.id, sha: row.sha, ...row.error });
    }
  }
  return out;
}
