/**
 * Planning an embedding job: which items of the current dataset version are not in the cache
 * yet, grouped into shards. The plan is stored before any work starts, so every worker (local
 * or one of N SageMaker instances) and every resumed run embeds exactly the same shards.
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import type { BackboneSpec } from "../backbone/spec.ts";
import { embeddingKey, fileItemSha, sha256Hex, textItemSha, vectorItemSha } from "../cache/address.ts";
import { cachedShas, nextShardIndex } from "../cache/shards.ts";
import { readDatasetRows } from "../datasets/ingest.ts";
import { type DatasetRow, modalityOf } from "../datasets/manifest.ts";
import { NotFoundError, PreconditionFailedError, ValidationError } from "../errors.ts";
import { isValidName, keys, parseKey } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { EmbedJob, readJob } from "./job.ts";

export const DEFAULT_SHARD_SIZE = 4096;

export const PlannedItem = z.object({
  sha: z.string(),
  id: z.string(),
  label: z.union([z.string(), z.number(), z.array(z.string())]).optional(),
  split: z.enum(["train", "test"]).optional(),
  text: z.string().optional(),
  image: z.string().optional(),
  audio: z.string().optional(),
});
export type PlannedItem = z.infer<typeof PlannedItem>;

export const ShardPlan = z.object({
  job: z.string(),
  shard: z.number().int(),
  dataset: z.string(),
  backbone: z.string(),
  /** The planning attempt that wrote it (random); several may plan one job at once. */
  attempt: z.string().optional(),
  plannedAt: z.string().optional(),
  items: z.array(PlannedItem),
  /** Set (and `items` emptied) when no job can ever run this plan: see `collectOrphanPlans`. */
  orphaned: z.string().optional(),
});
export type ShardPlan = z.infer<typeof ShardPlan>;

/**
 * Readable and valid as a SageMaker job name (≤ 63 of [a-z0-9-], room left for a `-rNN` retry
 * suffix); unique per store × dataset version × embedding. With a customer, names start
 * `embed-<customer>--`, which is what the stack's IAM policies scope SageMaker actions by (the
 * double hyphen, which no customer id holds, keeps `acme`'s prefix off `acme-eu`'s jobs).
 */
export function embedJobId(
  storeUrl: string,
  dataset: string,
  backbone: BackboneSpec,
  datasetVersion: string,
  customer?: string,
): string {
  // The store is part of the name: two customers' identical uploads in one AWS account must not
  // share a SageMaker job name.
  const hash = createHash("sha256")
    .update(`${storeUrl}\0${dataset}\0${backbone.id}\0${embeddingKey(backbone)}\0${datasetVersion}`)
    .digest("hex")
    .slice(0, 16);
  const head = customer ? `embed-${customer}--` : "embed-";
  const room = 63 - "-r99".length - head.length - hash.length - 1;
  const slug = dataset
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, Math.max(0, Math.min(30, room)))
    .replace(/^-+|-+$/g, "");
  return `${head}${slug ? `${slug}-` : ""}${hash}`;
}

/** The content address of a dataset row under a backbone (see `embeddingKey`); file rows read the file. */
export async function rowItemSha(store: ObjectStore, dataset: string, embedding: string, row: DatasetRow) {
  if (row.vector !== undefined) return vectorItemSha(embedding, row.vector);
  if (row.text !== undefined) return textItemSha(embedding, row.text);
  const modality = modalityOf(row) as "image" | "audio";
  const path = (row.image ?? row.audio)!;
  const obj = await store.get(keys.datasetFile(dataset, path));
  if (!obj)
    throw new NotFoundError(`file ${keys.datasetFile(dataset, path)} (line ${row.line})`, {
      field: modality,
    });
  return fileItemSha(embedding, modality, sha256Hex(obj.body));
}

export interface PlanOptions {
  /** Items per shard at most (default 4,096). */
  shardSize?: number;
  /**
   * Make at least this many shards when there are enough items, so N parallel instances all
   * get work: a 5,000-item dataset on 4 instances becomes 4 shards of 1,250, not 2 of 4,096.
   */
  minShards?: number;
  /** Prefixes the job id (and so the SageMaker job name) with the customer. */
  customer?: string;
}

/**
 * Returns the job for the dataset's current version, creating its plan when none exists. A
 * job that exists already (finished or not) is returned as it is: running it again resumes.
 * Any number of planners may run at once: each writes its own plans, the first to create the
 * job file wins, and the others delete the plans they wrote (nobody else's) and return it.
 */
export async function planEmbedJob(
  store: ObjectStore,
  dataset: string,
  backbone: BackboneSpec,
  opts: PlanOptions = {},
): Promise<EmbedJob> {
  const { maxShardSize, minShards } = checkPlanOptions(dataset, backbone, opts);
  const current = await readDatasetRows(store, dataset);
  if (!current) throw new NotFoundError(`dataset ${dataset} (ingest it first)`, { field: "dataset" });
  const jobId = embedJobId(store.url, dataset, backbone, current.version, opts.customer);
  const existing = await readJob(store, jobId);
  if (existing) {
    await collectOrphanPlansQuietly(store, backbone.id, dataset, existing.value);
    return existing.value;
  }

  const { items, alreadyCached, unsupported } = await itemsToEmbed(store, dataset, backbone, current.rows);
  const shardSize = Math.max(1, Math.min(maxShardSize, Math.ceil(items.length / minShards)));
  const attempt = randomBytes(8).toString("hex");
  const shards = await writePlans(
    store,
    { job: jobId, dataset, backbone: backbone.id, attempt },
    items,
    shardSize,
  );

  const now = new Date().toISOString();
  const job: EmbedJob = {
    job: jobId,
    kind: "embed",
    dataset,
    datasetVersion: current.version,
    backbone: backbone.id,
    backboneSha: backbone.sha256,
    shards,
    shardSize,
    items: { toEmbed: items.length, cached: alreadyCached, unsupported },
    state: items.length === 0 ? "succeeded" : "planned",
    createdAt: now,
    updatedAt: now,
    ...(items.length === 0 ? { finishedAt: now } : {}),
  };
  return createJob(store, job);
}

function checkPlanOptions(
  dataset: string,
  backbone: BackboneSpec,
  opts: PlanOptions,
): { maxShardSize: number; minShards: number } {
  const maxShardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
  if (!Number.isInteger(maxShardSize) || maxShardSize < 1 || maxShardSize > 1_000_000) {
    throw new ValidationError(`shardSize must be an integer in 1..1000000, got ${maxShardSize}`, {
      field: "shardSize",
    });
  }
  const minShards = opts.minShards ?? 1;
  if (!Number.isInteger(minShards) || minShards < 1 || minShards > 10_000) {
    throw new ValidationError(`minShards must be an integer in 1..10000, got ${minShards}`, {
      field: "minShards",
    });
  }
  if (backbone.kind === "external") {
    throw new ValidationError(
      `backbone ${backbone.id} holds imported embeddings; headstart cannot compute them: ` +
        `run \`headstart import-embeddings ${dataset} --backbone ${backbone.id}\` with your vectors`,
      { field: "backbone" },
    );
  }
  return { maxShardSize, minShards };
}

/** The rows of the backbone's modality whose items are not cached yet, each item once. */
async function itemsToEmbed(
  store: ObjectStore,
  dataset: string,
  backbone: BackboneSpec,
  rows: readonly DatasetRow[],
): Promise<{ items: PlannedItem[]; alreadyCached: number; unsupported: number }> {
  const cached = await cachedShas(store, backbone.id, dataset);
  const seen = new Set<string>();
  const embedding = embeddingKey(backbone);
  const items: PlannedItem[] = [];
  let alreadyCached = 0;
  let unsupported = 0;
  for (const row of rows) {
    if (modalityOf(row) !== backbone.modality) {
      unsupported++;
      continue;
    }
    const sha = await rowItemSha(store, dataset, embedding, row);
    if (cached.has(sha) || seen.has(sha)) {
      alreadyCached++;
      continue;
    }
    seen.add(sha);
    const { line: _line, ...rest } = row;
    items.push({ sha, ...rest });
  }
  return { items, alreadyCached, unsupported };
}

/** Creates the job file, create-only; a planner that loses the race returns the winner's job. */
async function createJob(store: ObjectStore, job: EmbedJob): Promise<EmbedJob> {
  const { dataset, backbone } = job;
  try {
    // The first planner to create the job file wins; its `shards` never change afterwards.
    await putJson(store, keys.job(job.job), job, { ifNoneMatch: "*" });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    // Lost the race: we created our plans, so we may delete them, but only those the winner
    // does not list (an S3 client retrying our own successful write also gets a 412).
    const winner = (await readJob(store, job.job))!.value;
    for (const shard of job.shards) {
      if (!winner.shards.includes(shard)) await store.delete(keys.shardPlan(backbone, dataset, shard));
    }
    await collectOrphanPlansQuietly(store, backbone, dataset, winner);
    return winner;
  }
  await collectOrphanPlansQuietly(store, backbone, dataset, job);
  return EmbedJob.parse(job);
}

/**
 * Stores one plan per `shardSize` items, create-only at fresh indices: an index another
 * planner took makes us move past everything in the prefix. Returns the indices written.
 */
async function writePlans(
  store: ObjectStore,
  head: { job: string; dataset: string; backbone: string; attempt: string },
  items: PlannedItem[],
  shardSize: number,
): Promise<number[]> {
  const shards: number[] = [];
  let index = await nextShardIndex(store, head.backbone, head.dataset);
  for (let start = 0; start < items.length; start += shardSize) {
    const plan = {
      ...head,
      plannedAt: new Date().toISOString(),
      items: items.slice(start, start + shardSize),
    };
    index = await reserveShardPlan(store, plan, index);
    shards.push(index++);
  }
  return shards;
}

/**
 * Writes `plan` create-only at the first free shard index from `from` and returns the index it
 * holds: an index another writer took moves past everything in the prefix. Embedding planners
 * and imports reserve indices this one way, so they never share a shard file.
 */
export async function reserveShardPlan(
  store: ObjectStore,
  plan: Omit<ShardPlan, "shard">,
  from: number,
): Promise<number> {
  let index = from;
  for (;;) {
    const key = keys.shardPlan(plan.backbone, plan.dataset, index);
    try {
      await putJson(store, key, { ...plan, shard: index }, { ifNoneMatch: "*" });
      return index;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // A retried request whose first try got through finds its own attempt's plan there.
      if (
        plan.attempt !== undefined &&
        (await getJson(store, key, ShardPlan))?.value.attempt === plan.attempt
      )
        return index;
      // Re-listing beats probing index by index while several writers reserve at once.
      index = Math.max(index + 1, await nextShardIndex(store, plan.backbone, plan.dataset));
    }
  }
}

/**
 * Withdraws plans that provably no job will ever run: uncommitted, and their job file exists
 * without listing their index (a job's shards are fixed when the file is created). Such plans
 * were left by a planner that crashed after losing, or before finishing, the race for the job
 * file. They are not deleted but rewritten empty with `If-Match` on the ETag just read: the
 * index stays taken, so it can never be handed to a new plan that a stale read-then-delete
 * would then remove. Plans of `known` (just read) are skipped without reading them.
 */
export async function collectOrphanPlans(
  store: ObjectStore,
  backbone: string,
  dataset: string,
  known?: EmbedJob,
): Promise<number[]> {
  const objects = await store.list(keys.cachePrefix(backbone, dataset));
  const committed = new Set<number>();
  const plans: number[] = [];
  for (const o of objects) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "shardCommit") committed.add(parsed.shard);
    if (parsed?.kind === "shardPlan") plans.push(parsed.shard);
  }
  // Reading one plan of a job reveals all of that job's shards: the rest are skipped unread, so
  // a large abandoned job costs one plan read, not one per shard.
  const jobs = new Map<string, EmbedJob | undefined>(known ? [[known.job, known]] : []);
  const listed = new Set(known?.shards ?? []);
  const withdrawn: number[] = [];
  for (const shard of plans) {
    if (committed.has(shard) || listed.has(shard)) continue;
    const key = keys.shardPlan(backbone, dataset, shard);
    const plan = await getJson(store, key, ShardPlan);
    if (!plan || plan.value.orphaned) continue;
    const jobId = plan.value.job;
    if (!jobs.has(jobId)) {
      const job = isValidName(jobId) ? (await readJob(store, jobId))?.value : undefined;
      jobs.set(jobId, job);
      for (const s of job?.shards ?? []) listed.add(s);
    }
    const job = jobs.get(jobId);
    if (!job || job.shards.includes(shard)) continue; // no proof: its planner may still be at work
    const tombstone: ShardPlan = { ...plan.value, items: [], orphaned: new Date().toISOString() };
    try {
      await putJson(store, key, tombstone, { ifMatch: plan.etag });
      withdrawn.push(shard);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
  return withdrawn;
}

/** Collection only saves space: a failure must not fail the planning that triggered it. */
async function collectOrphanPlansQuietly(
  store: ObjectStore,
  backbone: string,
  dataset: string,
  job: EmbedJob,
) {
  await collectOrphanPlans(store, backbone, dataset, job).catch(() => undefined);
}

export async function readShardPlan(store: ObjectStore, backbone: string, dataset: string, shard: number) {
  const plan = await getJson(store, keys.shardPlan(backbone, dataset, shard), ShardPlan);
  if (!plan)
    throw new NotFoundError(`shard plan ${keys.shardPlan(backbone, dataset, shard)}`, { field: "shard" });
  return plan.value;
}
