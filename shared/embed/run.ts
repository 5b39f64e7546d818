/**
 * Running an embedding job's shards. Committed shards are skipped, so a killed run resumes
 * where it stopped and never re-embeds a committed item. The same function runs inside the
 * SageMaker container (over the shards assigned to that instance) and in the local worker.
 * Each shard is embedded under its lease (`lease.ts`), so any number of runs of one job can go
 * at once: each takes the free shards, then waits for the ones others hold.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Embedder, EmbedInput, ItemFailure } from "../backbone/spec.ts";
import { normalizeText } from "../cache/address.ts";
import { isCommitted, type ShardWrite, writeShard } from "../cache/shards.ts";
import { HeadstartError, NotFoundError } from "../errors.ts";
import { keys } from "../layout.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../store/types.ts";
import { type EmbedJob, requireJob } from "./job.ts";
import {
  acquireLease,
  DEFAULT_LEASE_TTL_MS,
  type HeldLease,
  newLeaseOwner,
  removeCommittedLeases,
} from "./lease.ts";
import { type PlannedItem, readShardPlan } from "./plan.ts";

export const DEFAULT_BATCH_SIZE = 256;

export type EmbedProgress =
  | { type: "start"; job: string; shards: number; pendingShards: number; items: number; pendingItems: number }
  | { type: "shard"; job: string; shard: number; items: number; committed: boolean; seconds: number }
  | { type: "batch"; job: string; shard: number; done: number; items: number }
  | { type: "skip"; job: string; shard: number }
  /** Another runner holds this shard's lease: this run comes back to it after its other shards. */
  | { type: "wait"; job: string; shard: number; holder: string; until: string };

/** Progress as structured log lines: one at the start, one per committed shard. */
export function logEmbedProgress(log: Logger): (e: EmbedProgress) => void {
  return (e) => {
    if (e.type === "start") {
      const { type: _type, ...fields } = e;
      log.info("embedding started", fields);
    } else if (e.type === "wait") {
      log.info("shard leased by another runner; coming back to it", {
        job: e.job,
        shard: e.shard,
        holder: e.holder,
        until: e.until,
      });
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
  /** How long this run's shard leases last unless renewed (`HEADSTART_LEASE_TTL_S`; 60 s). */
  leaseTtlMs?: number;
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

  const run: ShardRun = {
    store,
    job,
    embedder,
    batchSize,
    opts,
    owner: newLeaseOwner(),
    ttlMs: opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
    result,
    waitedFor: new Set(),
  };
  let waiting: number[] = [];
  for (const shard of pending) {
    if ((await runShard(run, shard)) === "busy") waiting.push(shard);
  }
  // Shards another runner holds: come back until they are committed (by it) or its lease
  // lapses (then we take them over), so a run only returns once all its shards are committed.
  const poll = Math.min(2_000, Math.max(100, run.ttlMs / 10));
  while (waiting.length > 0) {
    await sleep(poll, undefined, { signal: opts.signal });
    const still: number[] = [];
    for (const shard of waiting) if ((await runShard(run, shard)) === "busy") still.push(shard);
    waiting = still;
  }
  // Every shard of ours is committed: leases a dead holder left on them can go.
  await removeCommittedLeases(store, job.backbone, job.dataset);
  return result;
}

interface ShardRun {
  store: ObjectStore;
  job: EmbedJob;
  embedder: Embedder;
  batchSize: number;
  opts: RunShardsOptions;
  /** This call's lease owner id. */
  owner: string;
  ttlMs: number;
  result: RunShardsResult;
  /** Shards a `wait` event was reported for. */
  waitedFor: Set<number>;
}

/**
 * One shard, if nobody else is on it: "done" once it is committed (by us or anyone), "busy"
 * while another runner holds its lease (or took it from us).
 */
async function runShard(run: ShardRun, shard: number): Promise<"done" | "busy"> {
  const { store, job } = run;
  // Other runs may have committed it since this run started: one HEAD beats taking a lease.
  if (await isCommitted(store, job.backbone, job.dataset, shard)) return skipped(run, shard);
  const got = await acquireLease(
    store,
    { backbone: job.backbone, dataset: job.dataset, shard, job: job.job },
    { owner: run.owner, ttlMs: run.ttlMs },
  );
  if (!got.held) {
    if (!run.waitedFor.has(shard) && got.current) {
      run.waitedFor.add(shard);
      const { owner: holder, expiresAt: until } = got.current;
      run.opts.onProgress?.({ type: "wait", job: job.job, shard, holder, until });
    }
    return "busy";
  }
  const lease = got.lease;
  const stop = lease.keepAlive();
  try {
    const started = performance.now();
    // Committed between our check and our lease (rare), writeShard finds out and we skip it.
    const embedded = await embedShard(run, shard, lease);
    const committed =
      embedded !== undefined && (await writeShard(store, embedded.write, () => lease.renew()));
    stop();
    if (!committed) {
      if (!(await isCommitted(store, job.backbone, job.dataset, shard))) {
        return "busy"; // the lease was taken over: its new holder finishes the shard, or we retake it
      }
      await lease.release().catch(() => undefined); // a no-op unless it is still ours
      return skipped(run, shard);
    }
    await lease.release().catch(() => undefined); // an expired leftover is harmless
    record(run.result, embedded!);
    run.opts.onProgress?.({
      type: "shard",
      job: job.job,
      shard,
      items: embedded!.items.length,
      committed: true,
      seconds: (performance.now() - started) / 1000,
    });
    return "done";
  } catch (err) {
    await lease.abandon().catch(() => undefined); // so the next runner need not wait for expiry
    throw err;
  } finally {
    stop();
  }
}

function skipped(run: ShardRun, shard: number): "done" {
  run.result.shardsSkipped++;
  run.opts.onProgress?.({ type: "skip", job: run.job.job, shard });
  return "done";
}

interface EmbeddedShard {
  items: PlannedItem[];
  errors: (ItemFailure | undefined)[];
  write: ShardWrite;
}

/** The shard's vectors, batch by batch; undefined as soon as the lease is lost. */
async function embedShard(
  run: ShardRun,
  shard: number,
  lease: HeldLease,
): Promise<EmbeddedShard | undefined> {
  const { store, job, embedder, batchSize, opts } = run;
  const plan = await readShardPlan(store, job.backbone, job.dataset, shard);
  const dim = embedder.spec.dim;
  const vectors = new Float32Array(plan.items.length * dim);
  const errors: (ItemFailure | undefined)[] = new Array(plan.items.length).fill(undefined);
  const read = (start: number) =>
    Promise.all(plan.items.slice(start, start + batchSize).map((item) => inputOf(store, job.dataset, item)));
  let nextInputs = read(0);
  nextInputs.catch(() => {}); // surfaced when awaited; not an unhandled rejection meanwhile
  for (let start = 0; start < plan.items.length; start += batchSize) {
    opts.signal?.throwIfAborted();
    if (lease.lost) return undefined;
    const batch = plan.items.slice(start, start + batchSize);
    const inputs = await nextInputs;
    // Files for the next batch are read from the store while this one embeds.
    if (start + batchSize < plan.items.length) {
      nextInputs = read(start + batchSize);
      nextInputs.catch(() => {});
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
  const write: ShardWrite = {
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
  };
  return { items: plan.items, errors, write };
}

function record(result: RunShardsResult, shard: EmbeddedShard): void {
  result.shardsCommitted++;
  result.itemsEmbedded += shard.items.length;
  shard.errors.forEach((e, i) => {
    if (!e) return;
    result.itemsFailed++;
    if (result.failures.length < LISTED_FAILURES) result.failures.push({ id: shard.items[i]!.id, ...e });
  });
}
