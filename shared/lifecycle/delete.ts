/**
 * Deleting a dataset, a head, a head version or an embedding job. Each refuses (ConflictError,
 * naming what refers to it) while something still needs the thing, unless `force`. Each deletes
 * the marker that makes the thing exist first, so a reader sees it whole or not at all, then the
 * rest; a crash midway leaves only keys nothing reads, which `headstart doctor` reports and a
 * repeated delete removes (docs/formats.md, "Deleting").
 */
import { listBackbones } from "../backbone/registry.ts";
import { readDatasetRows } from "../datasets/ingest.ts";
import { readJob } from "../embed/job.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { feedbackDatasetName } from "../heads/train-feedback.ts";
import { dropRollbackTarget, forgetAliases, listAliases } from "../heads/version.ts";
import { assertName, isFeedbackId, keys, parseKey } from "../layout.ts";
import { cancelBatchJob, readBatchJob } from "../predictions/job.ts";
import type { ObjectStore } from "../store/types.ts";
import { listJobs } from "./list.ts";
import type { DeleteResult, Reference } from "./records.ts";
import {
  backboneReferences,
  batchJobReference,
  batchJobsOfHead,
  datasetReferences,
  jobReferences,
  jobsOfDataset,
  versionReferences,
} from "./references.ts";

export interface DeleteOptions {
  /** Delete even what is still referenced (the references are listed in the result). */
  force?: boolean;
}

/** Deletes at most this many keys at once (S3 has no multi-key delete in the store contract). */
const PARALLEL_DELETES = 16;

/** Deletes `keys` in order of the groups given: a group starts only when the one before is gone. */
async function deleteInOrder(
  store: ObjectStore,
  groups: readonly string[][],
  removed: string[],
): Promise<void> {
  for (const group of groups) {
    for (let i = 0; i < group.length; i += PARALLEL_DELETES) {
      const batch = group.slice(i, i + PARALLEL_DELETES);
      await Promise.all(batch.map((k) => store.delete(k)));
      removed.push(...batch);
    }
  }
}

function refuseUnlessForced(what: string, refs: Reference[], opts: DeleteOptions): void {
  if (refs.length === 0 || opts.force) return;
  throw new ConflictError(
    `${what} is still referenced: ${refs.map((r) => r.description).join("; ")} (--force / ?force=true deletes it anyway)`,
    { field: "force", details: { referencedBy: refs } },
  );
}

const listKeys = async (store: ObjectStore, prefix: string) => (await store.list(prefix)).map((o) => o.key);

/**
 * A dataset: `_status.json` first (what makes it exist for ingest, embed, train and `ls`), then the
 * rest of `datasets/<d>/`, then its caches under every backbone (commit markers before the shards
 * they vouch for), then its embedding jobs' records.
 */
export async function deleteDataset(store: ObjectStore, dataset: string, opts: DeleteOptions = {}) {
  assertName("dataset", dataset, "dataset");
  const own = await listKeys(store, keys.datasetPrefix(dataset));
  const caches = await datasetCaches(store, dataset);
  const jobs = await jobsOfDataset(store, dataset);
  // What an interrupted delete left (caches, job records) is still this dataset's to remove.
  if (own.length === 0 && caches.every((c) => c.length === 0) && jobs.length === 0)
    throw new NotFoundError(`dataset ${dataset}`, { field: "dataset" });
  const refs = await datasetReferences(store, dataset);
  refuseUnlessForced(`dataset ${dataset}`, refs, opts);
  const removed: string[] = [];
  const status = keys.datasetStatus(dataset);
  await deleteInOrder(store, [own.filter((k) => k === status), own.filter((k) => k !== status)], removed);
  const isCommit = (k: string) => parseKey(k)?.kind === "shardCommit";
  for (const cache of caches)
    await deleteInOrder(store, [cache.filter(isCommit), cache.filter((k) => !isCommit(k))], removed);
  for (const job of jobs) removed.push(...(await removeJob(store, job.job)));
  return result("dataset", dataset, removed, refs, opts);
}

/** The dataset's cache keys under each published backbone. */
async function datasetCaches(store: ObjectStore, dataset: string): Promise<string[][]> {
  const out: string[][] = [];
  for (const spec of await listBackbones(store))
    out.push(await listKeys(store, keys.cachePrefix(spec.id, dataset)));
  return out;
}

/**
 * A head: its aliases first (what serves it), then every version (with its feedback and captured
 * inputs), then its stored exports and its feedback dataset. Refused
 * while one of its batch jobs is queued or running; with `force` those jobs are cancelled first.
 */
export async function deleteHead(store: ObjectStore, head: string, opts: DeleteOptions = {}) {
  assertName("head", head, "head");
  const own = await listKeys(store, keys.headPrefix(head));
  const exports = await listKeys(store, keys.headExportsOf(head));
  if (own.length === 0 && exports.length === 0) throw new NotFoundError(`head ${head}`, { field: "head" });
  const live = await batchJobsOfHead(store, head);
  const refs = live.map(batchJobReference);
  refuseUnlessForced(`head ${head}`, refs, opts);
  for (const job of live) await cancelBatchJob(store, job.job);
  const removed: string[] = [];
  const isAlias = (k: string) => parseKey(k)?.kind === "headAlias";
  const isMarker = (k: string) => k.endsWith("/head.json");
  await deleteInOrder(
    store,
    [own.filter(isAlias), own.filter(isMarker), own.filter((k) => !isAlias(k) && !isMarker(k)), exports],
    removed,
  );
  forgetAliases(store, head);
  removed.push(...(await deleteFeedbackDataset(store, head)));
  return result("head", head, removed, refs, opts);
}

/**
 * The head's corrections as a dataset (`feedback-<head>`, made by `train --with-feedback`): only
 * this head trains on it, so it goes with the head — unless it holds a row that is no correction
 * (someone's own dataset under that name, which feedback never overwrote either).
 */
async function deleteFeedbackDataset(store: ObjectStore, head: string): Promise<string[]> {
  const dataset = feedbackDatasetName(head);
  const current = await readDatasetRows(store, dataset);
  if (!current?.rows.every((r) => isFeedbackId(r.id))) return [];
  return (await deleteDataset(store, dataset, { force: true })).removed;
}

/**
 * One version: with `force`, the aliases that point to it go first and those that would roll back
 * to it forget that target; then `head.json` (what makes it exist), its report, its exports.
 */
export async function deleteVersion(
  store: ObjectStore,
  head: string,
  version: string,
  opts: DeleteOptions = {},
) {
  assertName("head", head, "head");
  assertName("version", version, "version");
  const marker = keys.headFile(head, version, "head.json");
  const files = await listKeys(store, keys.headVersionFiles(head, version));
  const exports = await listKeys(store, keys.headExportsOf(head, version));
  if (files.length === 0 && exports.length === 0)
    throw new NotFoundError(`head ${head} version ${version}`, { field: "version" });
  const refs = await versionReferences(store, head, version);
  refuseUnlessForced(`head ${head} version ${version}`, refs, opts);
  const removed: string[] = [];
  for (const a of await listAliases(store, head)) {
    if (a.version === version) await deleteInOrder(store, [[keys.headAlias(head, a.alias)]], removed);
    else if (a.previous === version) await dropRollbackTarget(store, head, a.alias, version);
  }
  await deleteInOrder(
    store,
    [files.filter((k) => k === marker), files.filter((k) => k !== marker), exports],
    removed,
  );
  return result("version", `${head}@${version}`, removed, refs, opts);
}

/**
 * A job. An embedding job: its record and its plans manifest; the shards it committed stay (they
 * are the dataset's cache, which other jobs reuse; removing unreferenced cache is `gc`'s). A
 * batch-prediction job: its whole `predictions/<job>/` folder, the record first; a queued or
 * running one is refused, and with `force` cancelled first.
 */
export async function deleteJob(store: ObjectStore, job: string, opts: DeleteOptions = {}) {
  assertName("job", job, "job");
  const batch = await listKeys(store, keys.predictionsPrefix(job));
  if (batch.length > 0) return deleteBatchJob(store, job, batch, opts);
  const found = await readJob(store, job);
  if (!found && (await listKeys(store, keys.jobPrefix(job))).length === 0)
    throw new NotFoundError(`job ${job}`, { field: "job" });
  const refs = found ? jobReferences(found.value) : [];
  refuseUnlessForced(`job ${job}`, refs, opts);
  return result("job", job, await removeJob(store, job), refs, opts);
}

async function deleteBatchJob(store: ObjectStore, job: string, own: string[], opts: DeleteOptions) {
  const found = (await readBatchJob(store, job))?.value;
  const refs =
    found && (found.status === "queued" || found.status === "running") ? [batchJobReference(found)] : [];
  refuseUnlessForced(`batch job ${job}`, refs, opts);
  if (refs.length > 0) await cancelBatchJob(store, job);
  const record = keys.batchJob(job);
  // Listed again: a job cancelled just now may have written one more part.
  const all = [...new Set([...own, ...(await listKeys(store, keys.predictionsPrefix(job)))])];
  const removed: string[] = [];
  await deleteInOrder(store, [all.filter((k) => k === record), all.filter((k) => k !== record)], removed);
  return result("job", job, removed, refs, opts);
}

/**
 * A backbone: `backbone.json` first (what makes it exist), its other files, then its caches under
 * every dataset (commit markers first) and its embedding jobs' records (which would otherwise
 * answer a later identical job with shards that are gone). Refused while a head version was
 * trained with it or one of its embedding jobs is running.
 */
export async function deleteBackbone(store: ObjectStore, backbone: string, opts: DeleteOptions = {}) {
  assertName("backbone", backbone, "backbone");
  const own = await listKeys(store, keys.backbonePrefix(backbone));
  const cache = await listKeys(store, keys.cacheBackbonePrefix(backbone));
  const jobs = (await listJobs(store)).filter((j) => j.backbone === backbone);
  if (own.length === 0 && cache.length === 0 && jobs.length === 0)
    throw new NotFoundError(`backbone ${backbone}`, { field: "backbone" });
  const refs = await backboneReferences(store, backbone, jobs);
  refuseUnlessForced(`backbone ${backbone}`, refs, opts);
  const spec = keys.backboneSpec(backbone);
  const isCommit = (k: string) => parseKey(k)?.kind === "shardCommit";
  const removed: string[] = [];
  await deleteInOrder(
    store,
    [
      own.filter((k) => k === spec),
      own.filter((k) => k !== spec),
      cache.filter(isCommit),
      cache.filter((k) => !isCommit(k)),
    ],
    removed,
  );
  for (const job of jobs) removed.push(...(await removeJob(store, job.job)));
  return result("backbone", backbone, removed, refs, opts);
}

/** The record first (what makes the job exist), then what it keeps beside it. */
async function removeJob(store: ObjectStore, job: string): Promise<string[]> {
  const removed: string[] = [];
  await deleteInOrder(store, [[keys.job(job)], await listKeys(store, keys.jobPrefix(job))], removed);
  return removed;
}

function result(
  kind: DeleteResult["kind"],
  name: string,
  removed: string[],
  refs: Reference[],
  opts: DeleteOptions,
): DeleteResult {
  return { kind, name, removed, forced: Boolean(opts.force), overridden: refs };
}
