/**
 * Listing what a store holds, each kind from its owner's documents: datasets (`_status.json`),
 * heads and their versions (`head.json` makes a version exist; `report.json` summarizes it; the
 * aliases), embedding jobs (`jobs/<job>.json`) and backbones (`backbone.json`).
 */
import { listBackbones as registryBackbones } from "../backbone/registry.ts";
import type { BackboneSpec } from "../backbone/spec.ts";
import { DatasetStatus } from "../datasets/status.ts";
import { EmbedJob } from "../embed/job.ts";
import { NotFoundError } from "../errors.ts";
import { listAliases, type Report, readReport } from "../heads/version.ts";
import { assertName, keys, listPrefixes, parseKey } from "../layout.ts";
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

/** A head's versions, oldest first (version ids sort by creation time). */
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
  return out;
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

/** The embedding jobs' records (batch-prediction jobs live under `predictions/`, not here). */
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
