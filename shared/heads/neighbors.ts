/**
 * Explanations by example: the training items closest (cosine) to an input, from the exact
 * dataset version the head was trained on. Built once per head version and process.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { loadBackboneSetDataset, partsOf } from "../embed/composite.ts";
import { HeadstartError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";
import type { HeadDocument } from "./version.ts";

export const MAX_NEIGHBORS = 50;
/** A neighbour's `text` is cut to this many characters (an ellipsis marks the cut). */
export const NEIGHBOR_TEXT_CHARS = 200;

export interface Neighbor {
  id: string;
  label?: string | number | string[];
  /** The training row's text, cut to NEIGHBOR_TEXT_CHARS (text rows). */
  text?: string;
  /** The training row's file path in the head's dataset (image rows). */
  image?: string;
  /** The training row's file path in the head's dataset (audio rows). */
  audio?: string;
  similarity: number;
}

/** What a neighbour shows of its training row: the text (cut) or the file's path. */
type Item = Pick<Neighbor, "text" | "image" | "audio">;

function itemOf(row: { text?: string; image?: string; audio?: string }): Item {
  if (row.image !== undefined) return { image: row.image };
  if (row.audio !== undefined) return { audio: row.audio };
  // An imported row's text is informational only, yet still what the row is: shown too.
  if (row.text === undefined) return {};
  const text =
    row.text.length > NEIGHBOR_TEXT_CHARS ? `${row.text.slice(0, NEIGHBOR_TEXT_CHARS - 1)}…` : row.text;
  return { text };
}

export class NeighborIndex {
  private constructor(
    private readonly ids: string[],
    private readonly labels: Array<string | number | string[] | undefined>,
    /** The rows' text or file path, read with the rows the index is built from (no extra read). */
    private readonly items: Item[],
    /** Unit-length rows; a zero vector stays zero (similarity 0 to everything). */
    private readonly unit: Float32Array,
    readonly dim: number,
  ) {}

  get size(): number {
    return this.ids.length;
  }

  /**
   * The training rows of a head: its dataset version's labelled rows outside the test split, in
   * the head's input space (for several backbones, their normalized concatenation). `backbone`: the
   * head's backbone, or its parts in order.
   */
  static async forHead(
    store: ObjectStore,
    doc: HeadDocument,
    backbone: BackboneSpec | readonly BackboneSpec[],
  ): Promise<NeighborIndex> {
    const specs: readonly BackboneSpec[] = Array.isArray(backbone) ? backbone : [backbone as BackboneSpec];
    const expected = partsOf(doc.backbone);
    if (
      specs.length !== expected.length ||
      specs.some((s, i) => s.id !== expected[i].id || s.sha256 !== expected[i].sha256)
    ) {
      throw new HeadstartError(
        "conflict",
        `head ${doc.head}'s backbone ${doc.backbone.id} has been replaced; retrain the head`,
        {
          field: "head",
        },
      );
    }
    const data = await loadBackboneSetDataset(store, doc.dataset.name, specs, doc.dataset.version);
    const hasTest = data.rows.some((r) => r.split === "test");
    const keep: number[] = [];
    data.rows.forEach((r, i) => {
      if (r.label !== undefined && !(hasTest && r.split === "test")) keep.push(i);
    });
    const dim = data.dim;
    const unit = new Float32Array(keep.length * dim);
    keep.forEach((r, i) => {
      const src = data.vectors.subarray(r * dim, (r + 1) * dim);
      let norm = 0;
      for (let j = 0; j < dim; j++) norm += src[j] * src[j];
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let j = 0; j < dim; j++) unit[i * dim + j] = src[j] * inv;
    });
    return new NeighborIndex(
      keep.map((r) => data.rows[r].id),
      keep.map((r) => data.rows[r].label),
      keep.map((r) => itemOf(data.rows[r])),
      unit,
      dim,
    );
  }

  /** The `k` most similar training items to `vector`, most similar first (ties by id order). */
  query(vector: Float32Array, k: number): Neighbor[] {
    let norm = 0;
    for (let j = 0; j < this.dim; j++) norm += vector[j] * vector[j];
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    const n = this.ids.length;
    const take = Math.min(k, n);
    // A small sorted buffer beats sorting all n similarities for the k ≤ 50 asked for.
    const bestIdx: number[] = [];
    const bestSim: number[] = [];
    for (let i = 0; i < n; i++) {
      let dot = 0;
      const off = i * this.dim;
      for (let j = 0; j < this.dim; j++) dot += this.unit[off + j] * vector[j];
      const sim = dot * inv;
      if (bestIdx.length === take && sim <= bestSim[take - 1]) continue;
      let pos = bestIdx.length === take ? take - 1 : bestIdx.length;
      while (pos > 0 && bestSim[pos - 1] < sim) pos--;
      bestIdx.splice(pos, 0, i);
      bestSim.splice(pos, 0, sim);
      if (bestIdx.length > take) {
        bestIdx.pop();
        bestSim.pop();
      }
    }
    return bestIdx.map((i, r) => ({
      id: this.ids[i],
      ...(this.labels[i] === undefined ? {} : { label: this.labels[i] }),
      ...this.items[i],
      similarity: bestSim[r],
    }));
  }
}

const indexes = new Map<string, Promise<NeighborIndex>>();
const MAX_CACHED = 8;

export function neighborIndex(
  store: ObjectStore,
  doc: HeadDocument,
  backbone: BackboneSpec | readonly BackboneSpec[],
): Promise<NeighborIndex> {
  const key = `${store.url}\0${doc.head}\0${doc.version}`;
  let promise = indexes.get(key);
  if (!promise) {
    promise = NeighborIndex.forHead(store, doc, backbone);
    promise.catch(() => indexes.delete(key));
    if (indexes.size >= MAX_CACHED) indexes.delete(indexes.keys().next().value!);
    indexes.set(key, promise);
  }
  return promise;
}
