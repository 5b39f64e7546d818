/**
 * Which cache shards `gc` removes. A folder `cache/<backbone>/<dataset>/` goes whole when its
 * backbone is gone, or its dataset is gone and no kept head version or batch job names it. Else
 * one committed shard goes when nothing kept needs it: not made by an embedding job of a kept
 * rows version, and none of its items is an item of a kept rows version (the dataset's current
 * one, those of kept head versions, of batch jobs, of live embedding jobs). Shards of image and
 * audio rows stay while their dataset does: their addresses hash the files' bytes, which `gc`
 * does not read. A folder an embedding job is still writing is left alone.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { embeddingKey } from "../cache/address.ts";
import { ShardCommit, ShardRow } from "../cache/shards.ts";
import { readDatasetRows } from "../datasets/ingest.ts";
import { modalityOf } from "../datasets/manifest.ts";
import { rowItemSha, ShardPlan } from "../embed/plan.ts";
import { keys, parseKey } from "../layout.ts";
import { decodeUtf8, getJson, parseJsonl } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { liveEmbedJob, type Snapshot } from "./gc-snapshot.ts";

/** What kept things refer to, worked out by gc.ts before the cache. */
export interface KeptRefs {
  /** Dataset → the rows versions something kept still reads. */
  rows: Map<string, Set<string>>;
  /** The backbones (parts) kept head versions were trained with, and on which dataset. */
  headBackbones: Array<{ dataset: string; backbone: string; sha256: string }>;
  /** Datasets `gc` removes in this run (unreferenced batch inputs). */
  collected: Set<string>;
}

type ShardFiles = Partial<Record<"commit" | "vectors" | "rows" | "plan" | "lease", string>>;
const FILE_OF = {
  shardCommit: "commit",
  shardVectors: "vectors",
  shardRows: "rows",
  shardPlan: "plan",
  shardLease: "lease",
} as const;

/** `cache/<b>/<d>/` folders and their shards' files, from the snapshot's listing. */
function cacheFolders(snap: Snapshot) {
  const folders = new Map<string, { backbone: string; dataset: string; shards: Map<number, ShardFiles> }>();
  for (const key of snap.objects.keys()) {
    const p = parseKey(key);
    if (!p || !("shard" in p) || !("backbone" in p)) continue;
    const id = `${p.backbone}/${p.dataset}`;
    if (!folders.has(id)) folders.set(id, { backbone: p.backbone, dataset: p.dataset, shards: new Map() });
    const shards = folders.get(id)!.shards;
    if (!shards.has(p.shard)) shards.set(p.shard, {});
    shards.get(p.shard)![FILE_OF[p.kind]] = key;
  }
  return [...folders.values()];
}

/** A shard's files in removal order: the marker first (readers stop trusting it), the plan last (it reserves the index). */
function inOrder(f: ShardFiles, only?: Array<keyof ShardFiles>): string[] {
  const order: Array<keyof ShardFiles> = ["commit", "vectors", "rows", "lease", "plan"];
  return order.filter((k) => f[k] !== undefined && (!only || only.includes(k))).map((k) => f[k]!);
}

/** Groups of keys to remove (each group in order), for every cache folder. */
export async function cacheGarbage(store: ObjectStore, snap: Snapshot, refs: KeptRefs): Promise<string[][]> {
  const out: string[][] = [];
  for (const folder of cacheFolders(snap)) {
    const { backbone, dataset, shards } = folder;
    if (snap.embedJobs.some((j) => liveEmbedJob(j) && j.backbone === backbone && j.dataset === dataset))
      continue;
    const spec = snap.backbones.get(backbone);
    const gone = !snap.datasets.has(dataset) || refs.collected.has(dataset);
    if (!spec || (gone && !refs.rows.get(dataset)?.size)) {
      for (const files of shards.values()) out.push(inOrder(files));
      continue;
    }
    const needs = new ShardNeeds(store, snap, refs, spec, dataset);
    for (const files of shards.values()) out.push(...(await shardGarbage(store, snap, files, needs)));
  }
  return out.filter((g) => g.length > 0);
}

/** One shard of a folder that stays: all of it when unneeded, else its stale plan and lease. */
async function shardGarbage(
  store: ObjectStore,
  snap: Snapshot,
  files: ShardFiles,
  needs: ShardNeeds,
): Promise<string[][]> {
  if (files.commit) {
    if (!(await needs.needed(files.commit))) return [inOrder(files)];
    // Committed: its lease and plan are done with (no job in flight writes this folder).
    return [inOrder(files, ["lease"]), inOrder(files, ["plan"])];
  }
  if (!files.plan) return [inOrder(files)]; // data files or a lease that no plan explains
  const plan = await getJson(store, files.plan, PlanJob);
  const job = plan && snap.embedJobs.find((j) => j.job === plan.value.job);
  // A failed job resumes from its plans; one that succeeded or no longer exists never will.
  return job?.state === "failed" ? [] : [inOrder(files)];
}

const PlanJob = ShardPlan.pick({ job: true });

/** Whether one committed shard of a folder is needed; the needed item addresses worked out once. */
class ShardNeeds {
  private items?: Promise<Set<string> | "unknown">;

  constructor(
    private readonly store: ObjectStore,
    private readonly snap: Snapshot,
    private readonly refs: KeptRefs,
    private readonly spec: BackboneSpec,
    private readonly dataset: string,
  ) {}

  async needed(commitKey: string): Promise<boolean> {
    const commit = (await getJson(this.store, commitKey, ShardCommit))?.value;
    if (!commit) return true; // unreadable: doctor's to report, not gc's to guess
    const kept = this.refs.rows.get(this.dataset) ?? new Set<string>();
    if (commit.backboneSha !== this.spec.sha256) {
      // Embedded by an earlier model of the backbone: needed only by head versions trained with it.
      return this.refs.headBackbones.some(
        (h) => h.dataset === this.dataset && h.backbone === this.spec.id && h.sha256 === commit.backboneSha,
      );
    }
    const job = this.snap.embedJobs.find((j) => j.job === commit.job);
    if (job && job.backbone === this.spec.id && kept.has(job.datasetVersion)) return true;
    this.items ??= this.neededItems(kept);
    const items = await this.items;
    if (items === "unknown") return true;
    return (await this.shardItems(commit)).some((sha) => items.has(sha));
  }

  private async shardItems(commit: ShardCommit): Promise<string[]> {
    const obj = await this.store.get(keys.shardRows(commit.backbone, commit.dataset, commit.shard));
    if (!obj) return [];
    return parseJsonl(decodeUtf8(obj.body), ShardRow, "shard rows").map((r) => r.sha);
  }

  /** The addresses of the kept rows' items under this backbone; "unknown" when they hash files. */
  private async neededItems(kept: Set<string>): Promise<Set<string> | "unknown"> {
    const out = new Set<string>();
    const embedding = embeddingKey(this.spec);
    for (const version of kept) {
      const rows = await readDatasetRows(this.store, this.dataset, version).catch(() => undefined);
      if (!rows) return "unknown";
      for (const row of rows.rows) {
        const modality = modalityOf(row);
        if (modality !== this.spec.modality) continue;
        if (modality === "image" || modality === "audio") return "unknown";
        out.add(await rowItemSha(this.store, this.dataset, embedding, row));
      }
    }
    return out;
  }
}
