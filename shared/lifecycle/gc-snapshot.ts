/**
 * What `gc` decides from: one listing of every prefix it may collect in, and the documents that
 * say what refers to what (datasets' `_status.json`, heads' versions and aliases, embedding and
 * batch-prediction job records, backbone specs). `_system/`, `batch/` and anything `parseKey`
 * does not know are never listed here, so nothing can be collected there.
 */
import { BackboneSpec } from "../backbone/spec.ts";
import { DatasetStatus } from "../datasets/status.ts";
import { EmbedJob } from "../embed/job.ts";
import { type Alias, listAliases, readReport } from "../heads/version.ts";
import { listPrefixes, parseKey } from "../layout.ts";
import { BatchJob } from "../predictions/job.ts";
import { getJson } from "../store/json.ts";
import type { ObjectInfo, ObjectStore } from "../store/types.ts";

type AliasDoc = import("zod").infer<typeof Alias>;

/** The prefixes `gc` lists; each holds only keys `parseKey` names (or none it touches). */
const GC_PREFIXES = [
  listPrefixes.datasets,
  listPrefixes.heads,
  listPrefixes.exports,
  listPrefixes.jobs,
  listPrefixes.cache,
  listPrefixes.backbones,
  listPrefixes.predictions,
  listPrefixes.idempotency,
] as const;

export interface Snapshot {
  /** Every listed object by key, with its size and the time of its last write. */
  objects: Map<string, ObjectInfo>;
  datasets: Map<string, DatasetStatus>;
  /** Each head's versions (those with a `head.json`), oldest first. */
  versions: Map<string, string[]>;
  aliases: AliasDoc[];
  embedJobs: EmbedJob[];
  batchJobs: BatchJob[];
  backbones: Map<string, BackboneSpec>;
}

export async function takeSnapshot(store: ObjectStore): Promise<Snapshot> {
  const objects = new Map<string, ObjectInfo>();
  for (const prefix of GC_PREFIXES) for (const o of await store.list(prefix)) objects.set(o.key, o);
  const snap: Snapshot = {
    objects,
    datasets: new Map(),
    versions: new Map(),
    aliases: [],
    embedJobs: [],
    batchJobs: [],
    backbones: new Map(),
  };
  const heads = new Set<string>();
  for (const key of objects.keys()) {
    const p = parseKey(key);
    if (!p) continue;
    if (p.kind === "headAlias") heads.add(p.head);
    if (p.kind === "headFile" && p.file === "head.json") {
      heads.add(p.head);
      snap.versions.set(p.head, [...(snap.versions.get(p.head) ?? []), p.version]);
    }
    await readDocument(store, key, p, snap);
  }
  for (const [head, versions] of snap.versions)
    snap.versions.set(head, await byCreation(store, head, versions));
  for (const head of [...heads].sort()) snap.aliases.push(...(await listAliases(store, head)));
  return snap;
}

/**
 * Oldest first, by their reports' `createdAt` (ids sort by the second they were made in; two made
 * in one second sort by a random suffix), then by id.
 */
async function byCreation(store: ObjectStore, head: string, versions: string[]): Promise<string[]> {
  const at = new Map<string, string>();
  for (const v of versions)
    at.set(v, (await readReport(store, head, v).catch(() => undefined))?.createdAt ?? "");
  const key = (v: string) => `${at.get(v)}\0${v}`;
  return [...versions].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The documents that refer to other things, each read once; one deleted meanwhile is skipped. */
async function readDocument(
  store: ObjectStore,
  key: string,
  p: NonNullable<ReturnType<typeof parseKey>>,
  snap: Snapshot,
): Promise<void> {
  if (p.kind === "datasetStatus") {
    const status = (await getJson(store, key, DatasetStatus))?.value;
    if (status) snap.datasets.set(p.dataset, status);
  } else if (p.kind === "job") {
    const job = (await getJson(store, key, EmbedJob))?.value;
    if (job) snap.embedJobs.push(job);
  } else if (p.kind === "batchJob") {
    const job = (await getJson(store, key, BatchJob))?.value;
    if (job) snap.batchJobs.push(job);
  } else if (p.kind === "backboneSpec") {
    const spec = (await getJson(store, key, BackboneSpec))?.value;
    if (spec) snap.backbones.set(p.backbone, spec);
  }
}

/** Embedding jobs that may still write (their plans, leases and shards are theirs). */
export function liveEmbedJob(job: EmbedJob): boolean {
  return job.state === "planned" || job.state === "running";
}

/** Batch jobs that will still read their head version and rows. */
export function liveBatchJob(job: BatchJob): boolean {
  return job.status === "queued" || job.status === "running";
}
