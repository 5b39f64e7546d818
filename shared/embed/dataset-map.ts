/**
 * A 2-D map of a dataset's embeddings (the console draws it): the current version's cached
 * vectors under one backbone, at most MAP_MAX_POINTS of them (a seeded sample, so the same
 * version gives the same picture), projected on their first two principal components. Stored at
 * `keys.datasetMap(dataset, backbone, version)`, one object written whole, and read back while
 * the version and the backbone's weights (its sha256) are the same; a new upload is a new version
 * and so a new map.
 */
import { z } from "zod";
import type { BackboneSpec } from "../backbone/spec.ts";
import { readDatasetStatus } from "../datasets/ingest.ts";
import type { DatasetRow } from "../datasets/manifest.ts";
import { NotFoundError } from "../errors.ts";
import { keys } from "../layout.ts";
import { pca } from "../learn/pca.ts";
import { mulberry32, shuffleInPlace } from "../learn/split.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { loadEmbeddedDataset } from "./embedded-dataset.ts";

export const MAP_MAX_POINTS = 2000;
/** Texts are cut to this many characters in the map: enough to recognise an item on hover. */
export const MAP_TEXT_CHARS = 160;
const SEED = 17;

export const MapPoint = z.object({
  id: z.string(),
  x: z.number(),
  y: z.number(),
  label: z.string().optional(),
  /** The item's text (cut to MAP_TEXT_CHARS), or its image file's path in the dataset. */
  text: z.string().optional(),
  image: z.string().optional(),
});
export type MapPoint = z.infer<typeof MapPoint>;

export const DatasetMap = z.object({
  dataset: z.string(),
  version: z.string(),
  backbone: z.string(),
  backboneSha: z.string().optional(),
  method: z.literal("pca"),
  /** Each axis's share of the sample's variance. */
  explained: z.array(z.number()),
  /** Embedded rows in the version; `points` holds all of them or a sample of MAP_MAX_POINTS. */
  total: z.number().int(),
  points: z.array(MapPoint),
  createdAt: z.string(),
});
export type DatasetMap = z.infer<typeof DatasetMap>;

const labelOf = (row: DatasetRow): string | undefined =>
  row.label === undefined ? undefined : Array.isArray(row.label) ? row.label.join(", ") : String(row.label);

/** Row indices to draw: all, or a seeded sample of `max` in their original order. */
export function sampleIndices(n: number, max: number, seed = SEED): number[] {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  if (n <= max) return Array.from(order);
  shuffleInPlace(order, mulberry32(seed));
  return Array.from(order.subarray(0, max)).sort((a, b) => a - b);
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;

/** The stored map when it is current, else a new one (stored before it is returned). */
export async function datasetMap(
  store: ObjectStore,
  dataset: string,
  backbone: BackboneSpec,
): Promise<DatasetMap> {
  const status = await readDatasetStatus(store, dataset);
  if (!status?.version) throw new NotFoundError(`dataset ${dataset}`, { field: "dataset" });
  const key = keys.datasetMap(dataset, backbone.id, status.version);
  const stored = await getJson(store, key, DatasetMap);
  if (stored && stored.value.backboneSha === backbone.sha256) return stored.value;
  const embedded = await loadEmbeddedDataset(store, dataset, backbone, status.version);
  const { dim, rows, vectors } = embedded;
  const picked = sampleIndices(rows.length, MAP_MAX_POINTS);
  const X = new Float32Array(picked.length * dim);
  picked.forEach((r, i) => {
    X.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  const { coords, explained } = pca(X, picked.length, dim, { seed: SEED });
  const points = picked.map((r, i): MapPoint => {
    const row = rows[r];
    return {
      id: row.id,
      x: round(coords[i * 2]),
      y: round(coords[i * 2 + 1]),
      label: labelOf(row),
      text: row.text === undefined ? undefined : row.text.slice(0, MAP_TEXT_CHARS),
      image: row.image,
    };
  });
  const map: DatasetMap = {
    dataset,
    version: embedded.version,
    backbone: backbone.id,
    backboneSha: backbone.sha256,
    method: "pca",
    explained: explained.map(round),
    total: rows.length,
    points,
    createdAt: new Date().toISOString(),
  };
  // One object, written whole (a reader sees the old map or the new one); two requests racing
  // compute the same map from the same vectors, so the last write changes nothing.
  await putJson(store, key, map);
  return map;
}
