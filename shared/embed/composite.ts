/**
 * Several backbones, one head: a backbone reference `a+b[+c…]` names parts whose cached vectors are
 * joined by row, each part L2-normalized (so no backbone dominates by scale) and concatenated in
 * the order given. Training, neighbours and serving all go through `normalizeConcat`, so a head
 * sees the same features whichever path made them. A plain `a` stays exactly as it was: its raw
 * vectors, unnormalized.
 */
import { createHash } from "node:crypto";
import type { BackboneSpec } from "../backbone/spec.ts";
import { HeadstartError, ValidationError } from "../errors.ts";
import { assertName, NAME_PATTERN } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";
import { type EmbeddedDataset, loadEmbeddedDataset } from "./embedded-dataset.ts";

export const MAX_BACKBONE_PARTS = 4;
export const PART_SEPARATOR = "+";

const NAME_BODY = NAME_PATTERN.source.replace(/^\^/, "").replace(/\$$/, "");
/** A backbone reference: one name, or up to MAX_BACKBONE_PARTS names joined by `+`. */
export const BACKBONE_REF_PATTERN = new RegExp(
  `^${NAME_BODY}(?:\\${PART_SEPARATOR}${NAME_BODY}){0,${MAX_BACKBONE_PARTS - 1}}$`,
);
export const BACKBONE_REF_RULE = `a backbone id, or up to ${MAX_BACKBONE_PARTS} distinct ids joined by "+" (e.g. glove-100d+use-lite-512)`;

/** The ids of a backbone reference in order; a plain id gives one part. */
export function parseBackboneRef(ref: string, field = "backbone"): string[] {
  if (typeof ref !== "string" || ref.length === 0) {
    throw new ValidationError(`invalid backbone reference ${JSON.stringify(ref)}: ${BACKBONE_REF_RULE}`, {
      field,
    });
  }
  const parts = ref.split(PART_SEPARATOR);
  if (parts.length === 1) return [assertName("backbone", ref, field)];
  if (parts.length > MAX_BACKBONE_PARTS) {
    throw new ValidationError(
      `backbone ${JSON.stringify(ref)} has ${parts.length} parts; at most ${MAX_BACKBONE_PARTS} can be combined`,
      { field },
    );
  }
  const seen = new Set<string>();
  for (const p of parts) {
    if (!NAME_PATTERN.test(p)) {
      throw new ValidationError(
        `invalid backbone part ${JSON.stringify(p)} in ${JSON.stringify(ref)}: ${BACKBONE_REF_RULE}`,
        { field },
      );
    }
    if (seen.has(p)) {
      throw new ValidationError(
        `backbone ${JSON.stringify(ref)} names ${p} twice; each part may appear once`,
        {
          field,
        },
      );
    }
    seen.add(p);
  }
  return parts;
}

export function isCompositeRef(ref: string): boolean {
  return ref.includes(PART_SEPARATOR);
}

export interface BackbonePart {
  id: string;
  sha256: string;
  dim: number;
}

/** What a head version records about its input: the parts in order when there are several. */
export interface BackboneRecord extends BackbonePart {
  parts?: BackbonePart[];
}

/**
 * The record of a backbone set: a single spec as before; several as `a+b`, the total dimension and
 * a sha256 over the parts' sha256s in order (another order is another input layout).
 */
export function backboneRecord(specs: readonly BackboneSpec[]): BackboneRecord {
  if (specs.length === 0) throw new HeadstartError("internal", "a backbone set needs at least one part");
  if (specs.length === 1) return { id: specs[0].id, sha256: specs[0].sha256, dim: specs[0].dim };
  const parts = specs.map((s) => ({ id: s.id, sha256: s.sha256, dim: s.dim }));
  return {
    id: parts.map((p) => p.id).join(PART_SEPARATOR),
    sha256: createHash("sha256")
      .update(parts.map((p) => p.sha256).join(PART_SEPARATOR))
      .digest("hex"),
    dim: parts.reduce((s, p) => s + p.dim, 0),
    parts,
  };
}

/**
 * What a backbone set costs to serve, for preferring the cheaper of two that score alike: every
 * part is embedded per request, so its total dimension, then (on a tie) its number of parts.
 */
export function backboneSetCost(specs: ReadonlyArray<Pick<BackboneSpec, "dim">>): number {
  return specs.reduce((t, s) => t + s.dim, 0) + specs.length / 100;
}

/** The parts of a recorded backbone: its `parts`, or itself for a single backbone. */
export function partsOf(record: BackboneRecord): BackbonePart[] {
  return record.parts && record.parts.length > 0 ? record.parts : [record];
}

/**
 * n rows of each part (row-major, `dim` wide) → n rows of Σ dim: each part's row divided by its L2
 * norm (a zero row stays zero), placed side by side in part order. The one normalization used by
 * training, neighbours and serving.
 */
export function normalizeConcat(
  parts: ReadonlyArray<{ vectors: Float32Array; dim: number }>,
  n: number,
): Float32Array {
  const total = parts.reduce((s, p) => s + p.dim, 0);
  const out = new Float32Array(n * total);
  let offset = 0;
  for (const { vectors, dim } of parts) {
    if (vectors.length !== n * dim) {
      throw new HeadstartError("internal", `a backbone part has ${vectors.length} values for ${n} × ${dim}`);
    }
    for (let i = 0; i < n; i++) {
      const base = i * dim;
      let sq = 0;
      for (let j = 0; j < dim; j++) sq += vectors[base + j] * vectors[base + j];
      const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
      const dst = i * total + offset;
      for (let j = 0; j < dim; j++) out[dst + j] = vectors[base + j] * inv;
    }
    offset += dim;
  }
  return out;
}

/**
 * Each part's embedded dataset restricted to the rows every part can embed, in manifest order (of
 * the same dataset version for every part). Rows a part cannot embed (another modality) are left
 * out of all parts and counted as unsupported; rows a part should embed but has not yet are an error
 * naming that part.
 */
export async function loadAlignedParts(
  store: ObjectStore,
  dataset: string,
  specs: readonly BackboneSpec[],
  version?: string,
): Promise<{ base: EmbeddedDataset; parts: EmbeddedDataset[] }> {
  const ref = specs.map((s) => s.id).join(PART_SEPARATOR);
  const loaded: EmbeddedDataset[] = [];
  for (const spec of specs) {
    try {
      // Later parts read the version the first one saw, so a concurrent ingest cannot mix versions.
      loaded.push(await loadEmbeddedDataset(store, dataset, spec, version ?? loaded[0]?.version));
    } catch (err) {
      if (specs.length > 1 && err instanceof ValidationError) {
        throw new ValidationError(`backbone part ${spec.id} of ${ref}: ${err.message}`, {
          field: err.field ?? "backbone",
        });
      }
      throw err;
    }
  }
  if (loaded.length === 1) return { base: loaded[0], parts: loaded };
  const byPart = loaded.map((d) => new Map(d.rows.map((r, i) => [r.id, i])));
  const keep = loaded[0].rows.filter((r) => byPart.every((m) => m.has(r.id)));
  const total = loaded[0].rows.length + loaded[0].unsupported + loaded[0].failed.length;
  if (keep.length === 0 && total > 0) {
    const counts = loaded.map((d, p) => `${specs[p].id} embeds ${d.rows.length}`).join(", ");
    throw new ValidationError(
      `no row of dataset ${dataset} can be embedded by every part of ${ref} (${counts} of ${total}; ` +
        "the others are another modality)",
      { field: "backbone" },
    );
  }
  // A row whose file one part could not embed is left out of every part.
  const failed = [...new Map(loaded.flatMap((d) => d.failed.map((f) => [f.id, f] as const))).values()];
  const parts = loaded.map((d, p) => {
    const vectors = new Float32Array(keep.length * d.dim);
    keep.forEach((r, i) => {
      const src = byPart[p].get(r.id)!;
      vectors.set(d.vectors.subarray(src * d.dim, (src + 1) * d.dim), i * d.dim);
    });
    return { ...d, rows: keep, vectors, unsupported: total - keep.length - failed.length, failed };
  });
  return { base: parts[0], parts };
}

/**
 * The training matrix of a backbone set: one backbone's embedded dataset as it is, or the parts
 * joined by row, normalized and concatenated (`dim` = Σ part dims).
 */
export async function loadBackboneSetDataset(
  store: ObjectStore,
  dataset: string,
  specs: readonly BackboneSpec[],
  version?: string,
): Promise<EmbeddedDataset> {
  const { base, parts } = await loadAlignedParts(store, dataset, specs, version);
  if (parts.length === 1) return base;
  return {
    ...base,
    dim: parts.reduce((s, p) => s + p.dim, 0),
    vectors: normalizeConcat(parts, base.rows.length),
  };
}
