/**
 * Serving a head: the head type's own predict on embeddings, then calibration and the task's
 * decision. Head versions are immutable, so a loaded version is cached for the life of the process;
 * only the alias is re-read.
 */

import { loadEmbedder } from "../backbone/registry.ts";
import { normalizeText } from "../cache/address.ts";
import type { Config } from "../config.ts";
import { normalizeConcat, partsOf } from "../embed/composite.ts";
import { HeadstartError, ValidationError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";
import { applyTemperature } from "./calibration.ts";
import type { HeadKind, HeadTask } from "./kind.ts";
import { headKind } from "./kinds.ts";
import type { Neighbor } from "./neighbors.ts";
import { type HeadDocument, type Report, readHeadVersion, resolveHeadRef } from "./version.ts";

export interface LoadedHead {
  doc: HeadDocument;
  report?: Report;
  task: HeadTask;
  kind: HeadKind<unknown>;
  model: unknown;
}

export interface Prediction {
  /** Multiclass: the most probable class. */
  label?: string;
  /** Multilabel: every label whose probability reaches its threshold. */
  labels?: string[];
  /** Regression: the predicted value. */
  value?: number;
  /** Multiclass: probability of `label`. */
  score?: number;
  /** Probability per class (multiclass) or per label (multilabel). */
  scores?: Record<string, number>;
  /** With `neighbors: k`: the most similar training items. */
  neighbors?: Neighbor[];
}

const MAX_CACHED = 64;
const loaded = new Map<string, Promise<LoadedHead>>();

export async function loadHead(
  store: ObjectStore,
  head: string,
  version?: string,
  alias?: string,
): Promise<LoadedHead> {
  const v = version ?? (await resolveHeadRef(store, { head, alias }));
  const key = `${store.url}\0${head}\0${v ?? ""}`;
  let promise = loaded.get(key);
  if (!promise) {
    promise = (async () => {
      const { head: doc, report } = await readHeadVersion(store, head, v);
      const kind = headKind(doc.type) as HeadKind<unknown>;
      return { doc, report, task: doc.task ?? "multiclass", kind, model: kind.fromJson(doc.model) };
    })();
    promise.catch(() => loaded.delete(key));
    if (loaded.size >= MAX_CACHED) loaded.delete(loaded.keys().next().value!);
    loaded.set(key, promise);
  }
  return promise;
}

export async function predictVectors(
  head: LoadedHead,
  vectors: Float32Array,
  n: number,
): Promise<Prediction[]> {
  const labels = head.doc.labels;
  const k = labels.length;
  let out = await head.kind.predict(head.model, vectors, n);
  if (head.task === "regression") return Array.from(out, (value) => ({ value }));
  if (head.doc.calibration) out = applyTemperature(out, n, k, head.doc.calibration.temperature);
  const on = head.task === "multilabel" ? decideLabels(head, out, n) : undefined;
  const predictions: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    // No prototype: a label named like an Object.prototype member still gets its own entry.
    const scores: Record<string, number> = Object.create(null);
    let best = 0;
    for (let c = 0; c < k; c++) {
      scores[labels[c]] = out[i * k + c];
      if (out[i * k + c] > out[i * k + best]) best = c;
    }
    if (on) {
      predictions.push({ labels: labels.filter((_, c) => on[i * k + c] === 1), scores: { ...scores } });
    } else {
      predictions.push({ label: labels[best], score: out[i * k + best], scores: { ...scores } });
    }
  }
  return predictions;
}

/** Multi-label decisions by the head's own per-label thresholds (p ≥ 0.5 for kinds without them). */
function decideLabels(head: LoadedHead, out: Float64Array, n: number): Uint8Array {
  if (head.kind.decide) return head.kind.decide(head.model, out, n);
  return Uint8Array.from(out, (p) => (p >= 0.5 ? 1 : 0));
}

/** Ready embeddings (from the same backbone the head was trained on). */
export function predictEmbeddings(
  head: LoadedHead,
  embeddings: readonly (readonly number[])[],
): Promise<Prediction[]> {
  return predictVectors(head, embeddingsToVectors(head, embeddings), embeddings.length);
}

/**
 * Validated ready embeddings as one row-major matrix. For a head over several backbones these are
 * the finished input: each part's vector L2-normalized, concatenated in the head's part order.
 */
export function embeddingsToVectors(
  head: LoadedHead,
  embeddings: readonly (readonly number[])[],
): Float32Array {
  const dim = head.doc.backbone.dim;
  const flat = new Float32Array(embeddings.length * dim);
  embeddings.forEach((row, i) => {
    if (row.length !== dim) {
      throw new ValidationError(
        `embeddings[${i}] has ${row.length} values; head ${head.doc.head} expects ${dim}`,
        {
          field: `embeddings[${i}]`,
        },
      );
    }
    for (let j = 0; j < dim; j++) {
      if (!Number.isFinite(row[j])) {
        throw new ValidationError(`embeddings[${i}][${j}] is not a finite number`, {
          field: `embeddings[${i}]`,
        });
      }
      flat[i * dim + j] = row[j];
    }
  });
  return flat;
}

/** Raw text inputs: embedded with the head's backbone on this machine, then classified. */
export async function predictTexts(
  store: ObjectStore,
  head: LoadedHead,
  texts: readonly string[],
  config: Pick<Config, "modelsDir">,
): Promise<Prediction[]> {
  return predictVectors(head, await embedTexts(store, head, texts, config), texts.length);
}

/**
 * Texts embedded with the head's own backbone (refusing a replaced one); for a head over several
 * backbones, with each part, normalized and concatenated exactly as its training rows were.
 */
export async function embedTexts(
  store: ObjectStore,
  head: LoadedHead,
  texts: readonly string[],
  config: Pick<Config, "modelsDir">,
): Promise<Float32Array> {
  const parts = partsOf(head.doc.backbone);
  const embedders = await Promise.all(parts.map((p) => loadEmbedder(store, p.id, config)));
  embedders.forEach((embedder, i) => {
    const part = parts[i];
    if (embedder.spec.sha256 !== part.sha256) {
      const of = parts.length > 1 ? ` (part of ${head.doc.backbone.id})` : "";
      throw new HeadstartError(
        "conflict",
        `head ${head.doc.head} was trained on backbone ${part.id}@${part.sha256.slice(0, 12)}${of}, ` +
          `which has since been replaced (${embedder.spec.sha256.slice(0, 12)}); retrain the head`,
        { field: "head" },
      );
    }
  });
  // Normalized exactly as cached training items were, so serving matches training.
  const items = texts.map((text) => ({ text: normalizeText(text) }));
  if (embedders.length === 1) return embedders[0].embed(items);
  const vectors: Float32Array[] = [];
  for (const embedder of embedders) vectors.push(await embedder.embed(items));
  return normalizeConcat(
    vectors.map((v, i) => ({ vectors: v, dim: parts[i].dim })),
    texts.length,
  );
}
