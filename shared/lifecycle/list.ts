/**
 * Listing what a store holds, each kind from its owner's documents: datasets (`_status.json`),
 * heads and their versions (`head.json` makes a version exist; `report.json` summarizes it; the
 * aliases), embedding jobs (`jobs/<job>.json`), batch-prediction jobs (`predictions/<job>/_job.json`)
 * and backbones (`backbone.json`).
 */
import { listBackbones as registryBackbones } from "../backbone/registry.ts";
import type { BackboneSpec } from "../backbone/spec.ts";
import { DatasetStatus } from "../datasets/status.ts";
import { EmbedJob } from "../embed/job.ts";
import { NotFoundError } from "../errors.ts";
import { listAliases, type Report, readReport } from "../heads/version.ts";
import { assertName, keys, listPrefixes, parseKey } from "../layout.ts";
import { BatchJob } from "../predictions/job.ts";
import { getJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import type { DatasetRecord, HeadRecord, VersionRecord } from "./records.ts";

export async function listDatasets(store: ObjectStore): Promise<DatasetRecord[]> {
  const out: DatasetRecord[] = [];
  for (const obj of await store.list(listPrefixes.datasets)) {
    if (parseKey(obj.key)?.kind !== "datasetStatus") continue;
    const status = (await getJson(store, obj.key, DatasetStatus))?.value;
    // Deleted between the listing and the read: not there any more.
    if (!status) continue;
    const { rejected: _rejected, manifest: _manifest, message: _message, ...record } = status;
    out.push(record);
  }
  return out;
}

/** Every head's versions (from their `head.json`), by head, in name order. */
async function versionsByHead(store: ObjectStore, prefix: string): Promise<Map<string, string[]>> {
  const heads = new Map<string, string[]>();
  for (const obj of await store.list(prefix)) {
    const p = parseKey(obj.key);
    if (p?.kind === "headAlias" && !heads.has(p.head)) heads.set(p.head, []);
    if (p?.kind !== "headFile" || p.file !== "head.json") continue;
    if (!heads.has(p.head)) heads.set(p.head, []);
    heads.get(p.head)?.push(p.version);
  }
  return heads;
}

export async function listHeads(store: ObjectStore): Promise<HeadRecord[]> {
  const out: HeadRecord[] = [];
  for (const [head, versions] of await versionsByHead(store, listPrefixes.heads)) {
    const aliases = Object.fromEntries((await listAliases(store, head)).map((a) => [a.alias, a.version]));
    const live = aliases.live as string | undefined;
    const report = live === undefined ? undefined : await readReport(store, head, live);
    out.push({
      head,
      ...(live === undefined ? {} : { live }),
      aliases,
      versions: versions.length,
      ...(report ? { current: summary(report) } : {}),
    });
  }
  return out;
}

/**
 * A head's versions, oldest first: by their reports' `createdAt`, then by id (ids sort by the
 * second they were made in; two made in one second by a random suffix).
 */
export async function listHeadVersions(store: ObjectStore, head: string): Promise<VersionRecord[]> {
  assertName("head", head, "head");
  const versions = (await versionsByHead(store, keys.headPrefix(head))).get(head);
  if (!versions) throw new NotFoundError(`head ${head}`, { field: "head" });
  const aliases = await listAliases(store, head);
  const out: VersionRecord[] = [];
  for (const version of versions.sort()) {
    const report = await readReport(store, head, version);
    const pointing = aliases.filter((a) => a.version === version).map((a) => a.alias);
    out.push({ head, version, aliases: pointing, ...(report ? summary(report) : {}) });
  }
  const key = (r: VersionRecord) => `${r.createdAt ?? ""}\0${r.version}`;
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function summary(report: Report): Omit<VersionRecord, "head" | "version" | "aliases"> {
  return {
    type: report.type,
    ...(report.task ? { task: report.task } : {}),
    ...(report.dataset ? { dataset: report.dataset } : {}),
    ...(report.backbone ? { backbone: report.backbone } : {}),
    ...metricOf(report),
    createdAt: report.createdAt,
  };
}

function metricOf(report: Report): Pick<VersionRecord, "metric"> {
  if (report.metrics) return { metric: { name: "accuracy", value: report.metrics.accuracy } };
  if (report.multilabel)
    return { metric: { name: "subsetAccuracy", value: report.multilabel.subsetAccuracy } };
  if (report.regression) return { metric: { name: "rmse", value: report.regression.rmse } };
  return {};
}

/** The batch-prediction jobs' records (`predictions/<job>/_job.json`), in id order. */
export async function listBatchJobs(store: ObjectStore): Promise<BatchJob[]> {
  const out: BatchJob[] = [];
  for (const obj of await store.list(listPrefixes.predictions)) {
    if (parseKey(obj.key)?.kind !== "batchJob") continue;
    const job = (await getJson(store, obj.key, BatchJob))?.value;
    if (job) out.push(job);
  }
  return out;
}

/** Every job: embedding jobs, then batch-prediction jobs (`kind` tells them apart). */
export async function listAllJobs(store: ObjectStore): Promise<Array<EmbedJob | BatchJob>> {
  return [...(await listJobs(store)), ...(await listBatchJobs(store))];
}

/** The embedding jobs' records (`jobs/<job>.json`). */
export async function listJobs(store: ObjectStore): Promise<EmbedJob[]> {
  const out: EmbedJob[] = [];
  for (const obj of await store.list(listPrefixes.jobs)) {
    if (parseKey(obj.key)?.kind !== "job") continue;
    const job = (await getJson(store, obj.key, EmbedJob))?.value;
    if (job) out.push(job);
  }
  return out;
}

export function listBackbones(store: ObjectStore): Promise<BackboneSpec[]> {
  return registryBackbones(store);
}
