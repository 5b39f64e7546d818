/**
 * Joins a dataset's current rows with its embedding cache: the training matrix. Labels and
 * splits come from the current manifest, vectors from the cache by content address, so
 * relabelling a dataset retrains without re-embedding anything.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { embeddingKey } from "../cache/address.ts";
import { loadCache } from "../cache/shards.ts";
import { readDatasetRows } from "../datasets/ingest.ts";
import { type DatasetRow, modalityOf } from "../datasets/manifest.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";
import { rowItemSha } from "./plan.ts";

export interface EmbeddedDataset {
  dataset: string;
  version: string;
  dim: number;
  /** Rows that have a vector, in manifest order. */
  rows: DatasetRow[];
  /** rows.length × dim, row-major. */
  vectors: Float32Array;
  /** Rows the backbone cannot embed (another modality). */
  unsupported: number;
  /** Rows whose file could not be embedded (corrupt, unsupported format…): left out, with why. */
  failed: Array<{ id: string; reason: string; message: string }>;
}

export async function loadEmbeddedDataset(
  store: ObjectStore,
  dataset: string,
  backbone: BackboneSpec,
  /** A specific dataset version (a head's training data) instead of the current one. */
  version?: string,
): Promise<EmbeddedDataset> {
  const current = await readDatasetRows(store, dataset, version);
  if (!current) throw new NotFoundError(`dataset ${dataset}`, { field: "dataset" });
  const cache = await loadCache(store, backbone.id, dataset, backbone.sha256);
  const rows: DatasetRow[] = [];
  const found: Float32Array[] = [];
  const missing: string[] = [];
  let unsupported = 0;
  const failed: EmbeddedDataset["failed"] = [];
  const embedding = embeddingKey(backbone);
  for (const row of current.rows) {
    if (modalityOf(row) !== backbone.modality) {
      unsupported++;
      continue;
    }
    const sha = await rowItemSha(store, dataset, embedding, row);
    const vec = cache.vectors.get(sha);
    const failure = vec ? undefined : cache.failures.get(sha);
    if (failure) {
      failed.push({ id: row.id, ...failure });
      continue;
    }
    if (!vec) {
      missing.push(row.id);
      continue;
    }
    rows.push(row);
    found.push(vec);
  }
  if (missing.length > 0) {
    const fix =
      backbone.kind === "external"
        ? `import them with \`headstart import-embeddings ${dataset} --backbone ${backbone.id}\``
        : `run \`headstart embed ${dataset} --backbone ${backbone.id}\``;
    const none = rows.length === 0 && failed.length === 0;
    throw new ValidationError(
      none
        ? `dataset ${dataset} has no embeddings from ${backbone.id} yet; ${fix}`
        : `${missing.length} of ${current.rows.length} rows of dataset ${dataset} are not embedded with ${backbone.id} yet ` +
            `(first: ${missing.slice(0, 3).join(", ")}); ${fix}`,
      { field: "dataset" },
    );
  }
  const dim = backbone.dim;
  const vectors = new Float32Array(rows.length * dim);
  found.forEach((v, i) => {
    vectors.set(v, i * dim);
  });
  return { dataset, version: current.version, dim, rows, vectors, unsupported, failed };
}
