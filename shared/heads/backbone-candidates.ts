/**
 * What `auto` searches when no backbone is named: every backbone whose embedding of the dataset's
 * current rows has finished, alone and in `+` sets, cheapest first. Each set reads caches that are
 * already there, so trying one costs head fits, never a backbone run.
 */
import { listBackbones } from "../backbone/registry.ts";
import type { BackboneSpec } from "../backbone/spec.ts";
import type { DatasetStatus } from "../datasets/status.ts";
import { backboneSetCost, MAX_BACKBONE_PARTS, PART_SEPARATOR } from "../embed/composite.ts";
import { readJob } from "../embed/job.ts";
import { embedJobId } from "../embed/plan.ts";
import type { ObjectStore } from "../store/types.ts";
import { MAX_BACKBONE_CANDIDATES } from "./train-request.ts";

/**
 * The published backbones of the dataset's modality whose embedding job for its current version
 * succeeded (a job is named after the dataset version, so a backbone that embedded an earlier
 * version only is left out until it embeds this one). An imported dataset has only its own.
 */
export async function cachedBackbones(
  store: ObjectStore,
  status: DatasetStatus,
  customer: string | undefined,
): Promise<BackboneSpec[]> {
  const modalities = Object.entries(status.modalities).filter(([, n]) => n > 0);
  if (status.imported || modalities.length !== 1 || !status.version) return [];
  const ready: BackboneSpec[] = [];
  for (const spec of await listBackbones(store)) {
    if (spec.modality !== modalities[0][0] || spec.kind === "external") continue;
    const id = embedJobId(store.url, status.dataset, spec, status.version, customer);
    if ((await readJob(store, id))?.value.state === "succeeded") ready.push(spec);
  }
  return ready;
}

/**
 * Every set of 1..MAX_BACKBONE_PARTS of `specs` as `a+b` references (parts in order of dimension,
 * then id), cheapest first, at most MAX_BACKBONE_CANDIDATES of them.
 */
export function backboneSets(specs: readonly BackboneSpec[]): string[] {
  const parts = [...specs].sort((a, b) => a.dim - b.dim || (a.id < b.id ? -1 : 1));
  const sets: BackboneSpec[][] = [];
  const grow = (from: number, set: BackboneSpec[]) => {
    if (set.length) sets.push(set);
    if (set.length === MAX_BACKBONE_PARTS) return;
    for (let i = from; i < parts.length; i++) grow(i + 1, [...set, parts[i]]);
  };
  grow(0, []);
  return sets
    .map((set) => ({ set, ref: set.map((s) => s.id).join(PART_SEPARATOR) }))
    .sort((a, b) => backboneSetCost(a.set) - backboneSetCost(b.set) || (a.ref < b.ref ? -1 : 1))
    .slice(0, MAX_BACKBONE_CANDIDATES)
    .map((s) => s.ref);
}
