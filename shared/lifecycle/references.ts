/**
 * What still needs a thing a delete was asked to remove. The rules (docs/formats.md, "Deleting"):
 * - a dataset is needed by every head version an alias points to that was trained on it (any head
 *   type: `neighbors` reads the training rows of the exact dataset version, and retraining or
 *   comparing reads the dataset), by its embedding jobs still `running`, and by the batch jobs
 *   scoring it that are `queued` or `running`;
 * - a version is needed by an alias that points to it, or that would roll back to it;
 * - a job is needed while it is `running` (a batch-prediction job: `queued` or `running`);
 * - a head is needed by its batch jobs `queued` or `running`;
 * - a backbone is needed by every head version trained with it (alone or as a part of `a+b`), and
 *   by its embedding jobs still `running`.
 */
import type { EmbedJob } from "../embed/job.ts";
import { type Alias, HeadDocument, listAliases, readReport } from "../heads/version.ts";
import { keys, listPrefixes, parseKey } from "../layout.ts";
import { type BatchJob, readBatchJob } from "../predictions/job.ts";
import { getJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { listJobs } from "./list.ts";
import type { Reference } from "./records.ts";

type AliasDoc = import("zod").infer<typeof Alias>;

/** Every head's aliases (each read once). */
async function allAliases(store: ObjectStore): Promise<AliasDoc[]> {
  const heads = new Set<string>();
  for (const obj of await store.list(listPrefixes.heads)) {
    const p = parseKey(obj.key);
    if (p?.kind === "headAlias") heads.add(p.head);
  }
  const out: AliasDoc[] = [];
  for (const head of heads) out.push(...(await listAliases(store, head)));
  return out;
}

/** The dataset a version was trained on: from its report, else from its `head.json`. */
async function trainedOn(store: ObjectStore, head: string, version: string): Promise<string | undefined> {
  const report = await readReport(store, head, version);
  if (report?.dataset) return report.dataset.name;
  return (await getJson(store, keys.headFile(head, version, "head.json"), HeadDocument))?.value.dataset.name;
}

export async function datasetReferences(store: ObjectStore, dataset: string): Promise<Reference[]> {
  const refs: Reference[] = [];
  for (const a of await allAliases(store)) {
    if ((await trainedOn(store, a.head, a.version)) !== dataset) continue;
    refs.push({
      by: "alias",
      head: a.head,
      alias: a.alias,
      version: a.version,
      description: `head ${a.head}'s alias ${a.alias} points to version ${a.version}, trained on dataset ${dataset}`,
    });
  }
  for (const job of await jobsOfDataset(store, dataset)) {
    if (job.state === "running") refs.push(runningJob(job));
  }
  for (const job of await liveBatchJobs(store, (j) => j.input.dataset === dataset))
    refs.push({
      ...batchJobReference(job),
      description: `${batchJobReference(job).description}, scoring dataset ${dataset}`,
    });
  return refs;
}

export async function versionReferences(
  store: ObjectStore,
  head: string,
  version: string,
): Promise<Reference[]> {
  const refs: Reference[] = [];
  for (const a of await listAliases(store, head)) {
    if (a.version === version) {
      refs.push({
        by: "alias",
        head,
        alias: a.alias,
        version,
        description: `alias ${a.alias} of head ${head} points to version ${version}`,
      });
    } else if (a.previous === version) {
      refs.push({
        by: "alias",
        head,
        alias: a.alias,
        version,
        description: `alias ${a.alias} of head ${head} rolls back to version ${version}`,
      });
    }
  }
  return refs;
}

export function jobReferences(job: EmbedJob): Reference[] {
  return job.state === "running" ? [runningJob(job)] : [];
}

function runningJob(job: EmbedJob): Reference {
  return {
    by: "job",
    job: job.job,
    description: `embedding job ${job.job} of dataset ${job.dataset} is running`,
  };
}

/** The embedding jobs whose dataset is `dataset`. */
export async function jobsOfDataset(store: ObjectStore, dataset: string): Promise<EmbedJob[]> {
  return (await listJobs(store)).filter((job) => job.dataset === dataset);
}

export function batchJobReference(job: BatchJob): Reference {
  return {
    by: "job",
    job: job.job,
    head: job.head,
    version: job.version,
    description: `batch-prediction job ${job.job} of head ${job.head} is ${job.status}`,
  };
}

/** The batch jobs still `queued` or `running` that `match`. */
async function liveBatchJobs(store: ObjectStore, match: (job: BatchJob) => boolean): Promise<BatchJob[]> {
  const out: BatchJob[] = [];
  for (const obj of await store.list(listPrefixes.predictions)) {
    const p = parseKey(obj.key);
    if (p?.kind !== "batchJob") continue;
    const job = (await readBatchJob(store, p.job))?.value;
    if (job && (job.status === "queued" || job.status === "running") && match(job)) out.push(job);
  }
  return out;
}

/** The head's batch jobs still `queued` or `running`. */
export function batchJobsOfHead(store: ObjectStore, head: string): Promise<BatchJob[]> {
  return liveBatchJobs(store, (job) => job.head === head);
}

/** Head versions trained with `backbone` (alone or as a part), and its running embedding jobs. */
export async function backboneReferences(
  store: ObjectStore,
  backbone: string,
  jobs: EmbedJob[],
): Promise<Reference[]> {
  const refs: Reference[] = [];
  for (const obj of await store.list(listPrefixes.heads)) {
    const p = parseKey(obj.key);
    if (p?.kind !== "headFile" || p.file !== "head.json") continue;
    const doc = (await getJson(store, obj.key, HeadDocument))?.value;
    const parts = doc ? (doc.backbone.parts?.map((x) => x.id) ?? [doc.backbone.id]) : [];
    if (!parts.includes(backbone)) continue;
    refs.push({
      by: "version",
      head: p.head,
      version: p.version,
      description: `head ${p.head}@${p.version} was trained with backbone ${backbone}`,
    });
  }
  for (const job of jobs) if (job.state === "running") refs.push(runningJob(job));
  return refs;
}
