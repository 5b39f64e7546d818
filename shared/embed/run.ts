/**
 * Running an embedding job's shards. Committed shards are skipped, so a killed run resumes
 * where it stopped and never re-embeds a committed item. The same function runs inside the
 * SageMaker container (over the shards assigned to that instance) and in the local worker.
 */
import type { Embedder, EmbedInput, ItemFailure } from "../backbone/spec.ts";
import { normalizeText } from "../cache/address.ts";
import { isCommitted, writeShard } from "../cache/shards.ts";
import { HeadstartError, NotFoundError } from "../errors.ts";
import { type EmbedJob, requireJob } from "../jobs/job.ts";
import { keys } from "../layout.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../store/types.ts";
import { type PlannedItem, readShardPlan } from "./plan.ts";

export const DEFAULT_BATCH_SIZE = 256;

export type EmbedProgress =
  | { type: "start"; job: string; shards: number; pendingShards: number; items: number; pendingItems: number }
  | { type: "shard"; job: string; shard: number; items: number; committed: boolean; seconds: number }
  | { type: "batch"; job: string; shard: number; done: number; items: number }
  | { type: "skip"; job: string; shard: number };

/** Progress as structured log lines: one at the start, one per committed shard. */
export function logEmbedProgress(log: Logger): (e: EmbedProgress) => void {
  return (e) => {
    if (e.type === "start") {
      const { type: _type, ...fields } = e;
      log.info("embedding started", fields);
    } else if (e.type === "shard") {
      log.info("shard committed", {
        job: e.job,
        shard: e.shard,
        items: e.items,
        seconds: Number(e.seconds.toFixed(2)),
      });
    }
  };
}

export interface RunShardsOptions {
  /** Only these shard indices (a SageMaker instance's share); all of the job's by default. */
  shards?: readonly number[];
  batchSize?: number;
  onProgress?: (event: EmbedProgress) => void;
  /** Checked between batches; lets a server shut down cleanly mid-job. */
  signal?: AbortSignal;
}

export interface RunShardsResult {
  job: string;
  shardsCommitted: number;
  shardsSkipped: number;
  /** Items committed by this run, failed ones included. */
  itemsEmbedded: number;
  /** Items this run could not embed (corrupt or unsupported files), each kept with its reason. */
  itemsFailed: number;
  /** The first of them. */
  failures: Array<{ id: string; reason: string; message: string }>;
}

/** How many failures a run result lists; the cache keeps every one. */
const LISTED_FAILURES = 100;

async function inputOf(store: ObjectStore, dataset: string, item: PlannedItem): Promise<EmbedInput> {
  // The address covers the normalized text, so the backbone must see exactly that text.
  if (item.text !== undefined) return { text: normalizeText(item.text) };
  const path = (item.image ?? item.audio)!;
  const obj = await store.get(keys.datasetFile(dataset, path));
  if (!obj)
    throw new NotFoundError(`file ${keys.datasetFile(dataset, path)} (item ${item.id})`, { field: "file" });
  return item.image !== undefined ? { image: obj.body } : { audio: obj.body };
}

export async function runEmbedShards(
  store: ObjectStore,
  jobOrId: EmbedJob | string,
  embedder: Embedder,
  opts: RunShardsOptions = {},
): Promise<RunShardsResult> {
  const job = typeof jobOrId === "string" ? await requireJob(store, jobOrId) : jobOrId;
  if (embedder.spec.id !== job.backbone || embedder.spec.sha256 !== job.backboneSha) {
    throw new HeadstartError(
      "conflict",
      `job ${job.job} was planned for backbone ${job.backbone}@${job.backboneSha.slice(0, 12)}, ` +
        `but the embedder is ${embedder.spec.id}@${embedder.spec.sha256.slice(0, 12)}`,
    );
  }
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const wanted = opts.shards ?? job.shards;
  const unknown = wanted.filter((s) => !job.shards.includes(s));
  if (unknown.length)
    throw new NotFoundError(`shards ${unknown.join(", ")} in job ${job.job}`, { field: "shards" });

  const pending: number[] = [];
  const result: RunShardsResult = {
    job: job.job,
    shardsCommitted: 0,
    shardsSkipped: 0,
    itemsEmbedded: 0,
    itemsFailed: 0,
    failures: [],
  };
  for (const shard of wanted) {
    if (await isCommitted(store, job.backbone, job.dataset, shard)) {
      result.shardsSkipped++;
      opts.onProgress?.({ type: "skip", job: job.job, shard });
    } else {
      pending.push(shard);
    }
  }
  // Every shard but the job's last is full, so pending items follow from the shard indices.
  const last = job.shards[job.shards.length - 1];
  const lastSize = job.items.toEmbed - (job.shards.length - 1) * job.shardSize;
  const pendingItems = pending.reduce((sum, s) => sum + (s === last ? lastSize : job.shardSize), 0);
  opts.onProgress?.({
    type: "start",
    job: job.job,
    shards: wanted.length,
    pendingShards: pending.length,
    items: job.items.toEmbed,
    pendingItems,
  });

  const dim = embedder.spec.dim;
  for (const shard of pending) {
    const started = performance.now();
    const plan = await readShardPlan(store, job.backbone, job.dataset, shard);
    const vectors = new Float32Array(plan.items.length * dim);
    const errors: (ItemFailure | undefined)[] = new Array(plan.items.length).fill(undefined);
    const read = (start: number) =>
      Promise.all(
        plan.items.slice(start, start + batchSize).map((item) => inputOf(store, job.dataset, item)),
      );
    let nextInputs = read(0);
    for (let start = 0; start < plan.items.length; start += batchSize) {
      opts.signal?.throwIfAborted();
      const batch = plan.items.slice(start, start + batchSize);
      const inputs = await nextInputs;
      // Files for the next batch are read from the store while this one embeds.
      if (start + batchSize < plan.items.length) {
        nextInputs = read(start + batchSize);
        nextInputs.catch(() => {}); // surfaced when awaited; not an unhandled rejection meanwhile
      }
      let out: Float32Array;
      if (embedder.embedSettled) {
        const settled = await embedder.embedSettled(inputs);
        out = settled.vectors;
        settled.failures.forEach((f, k) => {
          errors[start + k] = f;
        });
      } else {
        out = await embedder.embed(inputs);
      }
      if (out.length !== batch.length * dim) {
        throw new HeadstartError(
          "internal",
          `backbone ${job.backbone} returned ${out.length} values for ${batch.length}×${dim}`,
        );
      }
      vectors.set(out, start * dim);
      opts.onProgress?.({
        type: "batch",
        job: job.job,
        shard,
        done: start + batch.length,
        items: plan.items.length,
      });
    }
    const committed = await writeShard(store, {
      backbone: job.backbone,
      backboneSha: job.backboneSha,
      dataset: job.dataset,
      shard,
      job: job.job,
      dim,
      vectors,
      rows: plan.items.map((it, i) => ({
        id: it.id,
        ...(it.label === undefined ? {} : { label: it.label }),
        ...(it.split === undefined ? {} : { split: it.split }),
        sha: it.sha,
        ...(errors[i] === undefined ? {} : { error: errors[i] }),
      })),
    });
    if (committed) {
      result.shardsCommitted++;
      result.itemsEmbedded += plan.items.length;
      errors.forEach((e, i) => {
        if (!e) return;
        result.itemsFailed++;
        if (result.failures.length < LISTED_FAILURES) result.failures.push({ id: plan.items[i]!.id, ...e });
      });
    } else {
      result.shardsSkipped++;
    }
    opts.onProgress?.({
      type: "shard",
      job: job.job,
      shard,
      items: plan.items.length,
      committed,
      seconds: (performance.now() - started) / 1000,
    });
  }
  return result;
}
