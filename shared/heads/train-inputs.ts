/**
 * The embedded data a training reads: the dataset's cached vectors under one backbone, under a
 * set of backbones side by side (`a+b`), or under each of `auto`'s backbone candidates.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { loadAlignedParts, normalizeConcat } from "../embed/composite.ts";
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { ValidationError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";
import type { TrainOptions } from "./train-request.ts";

/** One input a head may be trained on: a backbone or a set of them, and its training matrix. */
export interface BackboneInput {
  specs: readonly BackboneSpec[];
  data: EmbeddedDataset;
}

/**
 * The inputs of a training: `backbone` (one spec, or the parts of an `a+b` set in order), or with
 * `opts.backbones` each of `backboneCandidates` (their resolved parts, in the same order).
 */
export async function loadTrainingInputs(
  store: ObjectStore,
  opts: TrainOptions,
  backbone: BackboneSpec | readonly BackboneSpec[],
  backboneCandidates: ReadonlyArray<readonly BackboneSpec[]> | undefined,
): Promise<BackboneInput[]> {
  const searchBackbones = opts.backbones !== undefined;
  if (searchBackbones && backboneCandidates?.length !== opts.backbones!.length) {
    throw new ValidationError("backbones were not resolved for training", { field: "backbones" });
  }
  return loadInputs(
    store,
    opts.dataset,
    searchBackbones ? backboneCandidates! : [Array.isArray(backbone) ? backbone : [backbone as BackboneSpec]],
  );
}

/**
 * The training matrix of each backbone set, all over the same rows (those every part of every set
 * can embed), so candidates share folds. Each part's cache is read once however many sets use it.
 */
async function loadInputs(
  store: ObjectStore,
  dataset: string,
  sets: ReadonlyArray<readonly BackboneSpec[]>,
): Promise<BackboneInput[]> {
  const union: BackboneSpec[] = [];
  for (const set of sets) for (const s of set) if (!union.some((u) => u.id === s.id)) union.push(s);
  const { base, parts } = await loadAlignedParts(store, dataset, union);
  return sets.map((specs) => {
    const chosen = specs.map((s) => parts[union.findIndex((u) => u.id === s.id)]);
    if (chosen.length === 1) return { specs, data: chosen[0] };
    return {
      specs,
      data: {
        ...base,
        dim: chosen.reduce((t, p) => t + p.dim, 0),
        vectors: normalizeConcat(chosen, base.rows.length),
      },
    };
  });
}
