/**
 * The embedding cache and its jobs: every committed shard is readable and matches its marker
 * (both files' sha256, the vector count and dimension, the rows' schema), no item is committed
 * twice in one cache, leases on committed shards are gone, and every shard of a `succeeded`
 * job is committed. Uncommitted shard files, plans and leases of unfinished shards are the
 * protocol at work (docs/architecture.md, "At-least-once"), not problems.
 */
import { sha256Hex } from "../cache/address.ts";
import { decodeNpy } from "../cache/npy.ts";
import { ShardCommit, ShardRow } from "../cache/shards.ts";
import { EmbedJob } from "../embed/job.ts";
import { keys, parseKey } from "../layout.ts";
import { decodeUtf8, getJson, parseJsonl } from "../store/json.ts";
import type { ObjectInfo, ObjectStore } from "../store/types.ts";
import type { CheckLog } from "./report.ts";

interface CacheDir {
  backbone: string;
  dataset: string;
  commits: number[];
  leases: Array<{ key: string; shard: number }>;
}

/** `cache/<b>/<d>/` prefixes with their commit markers and leases, from one listing. */
function cacheDirs(objects: ObjectInfo[]): CacheDir[] {
  const dirs = new Map<string, CacheDir>();
  for (const o of objects) {
    const p = parseKey(o.key);
    if (!p || !("shard" in p) || !("backbone" in p)) continue;
    const id = `${p.backbone}/${p.dataset}`;
    let dir = dirs.get(id);
    if (!dir) {
      dir = { backbone: p.backbone, dataset: p.dataset, commits: [], leases: [] };
      dirs.set(id, dir);
    }
    if (p.kind === "shardCommit") dir.commits.push(p.shard);
    if (p.kind === "shardLease") dir.leases.push({ key: o.key, shard: p.shard });
  }
  return [...dirs.values()];
}

/** Reads a JSON document, recording an unreadable one as corrupt; undefined when absent or bad. */
async function readChecked<T>(
  store: ObjectStore,
  key: string,
  schema: Parameters<typeof getJson<T>>[2],
  log: CheckLog,
): Promise<T | undefined> {
  try {
    return (await getJson(store, key, schema))?.value;
  } catch (err) {
    if ((err as { code?: string }).code !== "internal") throw err;
    log.add(key, "corrupt", (err as Error).message);
    return undefined;
  }
}

/** One committed shard against its marker; the item addresses it holds, when readable. */
async function checkShard(
  store: ObjectStore,
  dir: CacheDir,
  shard: number,
  log: CheckLog,
): Promise<{ commit: ShardCommit; shas: string[] } | undefined> {
  log.checked++;
  const commitKey = keys.shardCommit(dir.backbone, dir.dataset, shard);
  const commit = await readChecked(store, commitKey, ShardCommit, log);
  if (!commit) return undefined;
  const vectorsKey = keys.shardVectors(dir.backbone, dir.dataset, shard);
  const rowsKey = keys.shardRows(dir.backbone, dir.dataset, shard);
  const [vectors, rows] = [await store.get(vectorsKey), await store.get(rowsKey)];
  let ok = true;
  if (!vectors) {
    log.add(vectorsKey, "missing", `committed by ${commitKey} but absent`);
    ok = false;
  } else if (sha256Hex(vectors.body) !== commit.vectorsSha256) {
    log.add(vectorsKey, "corrupt", "sha256 differs from its commit marker");
    ok = false;
  } else {
    try {
      const { rows: n, cols } = decodeNpy(vectors.body);
      if (n !== commit.count || cols !== commit.dim) {
        log.add(vectorsKey, "corrupt", `${n}×${cols} vectors, marker says ${commit.count}×${commit.dim}`);
        ok = false;
      }
    } catch (err) {
      log.add(vectorsKey, "corrupt", `not a readable .npy: ${(err as Error).message}`);
      ok = false;
    }
  }
  if (!rows) {
    log.add(rowsKey, "missing", `committed by ${commitKey} but absent`);
    return undefined;
  }
  if (sha256Hex(rows.body) !== commit.rowsSha256) {
    log.add(rowsKey, "corrupt", "sha256 differs from its commit marker");
    return undefined;
  }
  let parsed: ShardRow[];
  try {
    parsed = parseJsonl(decodeUtf8(rows.body), ShardRow, rowsKey);
  } catch (err) {
    log.add(rowsKey, "corrupt", (err as Error).message);
    return undefined;
  }
  if (parsed.length !== commit.count) {
    log.add(rowsKey, "corrupt", `${parsed.length} rows, marker says ${commit.count}`);
    return undefined;
  }
  return ok ? { commit, shas: parsed.map((r) => r.sha) } : undefined;
}

/** Items of one cache (same backbone model) committed in an earlier shard too. */
function findDuplicates(
  dir: CacheDir,
  shards: Array<{ commit: ShardCommit; shas: string[] }>,
  log: CheckLog,
): void {
  const firstShard = new Map<string, number>();
  for (const { commit, shas } of shards) {
    const repeated = new Map<number, number>();
    for (const sha of shas) {
      const id = `${commit.backboneSha}\0${sha}`;
      const first = firstShard.get(id);
      if (first === undefined) firstShard.set(id, commit.shard);
      else repeated.set(first, (repeated.get(first) ?? 0) + 1);
    }
    for (const [first, count] of repeated) {
      const p = log.add(
        keys.shardRows(dir.backbone, dir.dataset, commit.shard),
        "duplicated",
        `${count} items also committed in shard ${first}`,
      );
      log.duplicateItems.set(p, count);
    }
  }
}

export async function checkShards(store: ObjectStore, log: CheckLog, objects: ObjectInfo[]): Promise<void> {
  for (const dir of cacheDirs(objects)) {
    const readable: Array<{ commit: ShardCommit; shas: string[] }> = [];
    for (const shard of dir.commits.sort((a, b) => a - b)) {
      const r = await checkShard(store, dir, shard, log);
      if (r) readable.push(r);
    }
    findDuplicates(dir, readable, log);
  }
}

/** Leases on committed shards: every finishing run deletes them too (`removeCommittedLeases`). */
export async function checkLeases(
  store: ObjectStore,
  log: CheckLog,
  objects: ObjectInfo[],
  repair: boolean,
): Promise<void> {
  for (const dir of cacheDirs(objects)) {
    const committed = new Set(dir.commits);
    for (const lease of dir.leases) {
      log.checked++;
      if (!committed.has(lease.shard)) continue;
      const p = log.add(
        lease.key,
        "staleLease",
        `shard ${lease.shard} is committed; its lease was never released`,
      );
      if (repair) {
        await store.delete(lease.key);
        p.repaired = true;
      }
    }
  }
}

/** Every shard of a `succeeded` job must be committed: that is what `succeeded` promises. */
export async function checkJobs(store: ObjectStore, log: CheckLog, objects: ObjectInfo[]): Promise<void> {
  const committed = new Set(objects.filter((o) => parseKey(o.key)?.kind === "shardCommit").map((o) => o.key));
  for (const obj of await store.list("jobs/")) {
    if (parseKey(obj.key)?.kind !== "job") continue;
    log.checked++;
    const job = await readChecked(store, obj.key, EmbedJob, log);
    if (job?.state !== "succeeded") continue;
    const absent = job.shards.filter((s) => !committed.has(keys.shardCommit(job.backbone, job.dataset, s)));
    if (absent.length)
      log.add(obj.key, "missing", `succeeded, but shards ${absent.join(", ")} have no commit marker`);
  }
}

export { readChecked };
