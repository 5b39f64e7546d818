/**
 * Serving a head: a matmul and a softmax in plain TypeScript. Head versions are immutable, so
 * a loaded version is cached for the life of the process; only the alias is re-read.
 */

import { loadEmbedder } from "../backbone/registry.ts";
import { normalizeText } from "../cache/address.ts";
import type { Config } from "../config.ts";
import { HeadstartError, ValidationError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";
import { type LogRegModel, logRegFromJson, predictProbaLogReg } from "./logreg.ts";
import type { Neighbor } from "./neighbors.ts";
import { type HeadDocument, type Report, readHeadVersion, resolveHeadRef } from "./version.ts";

export interface LoadedHead {
  doc: HeadDocument;
  report?: Report;
  model: LogRegModel;
}

export interface Prediction {
  label: string;
  score: number;
  scores: Record<string, number>;
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
      return { doc, report, model: logRegFromJson(doc.model) };
    })();
    promise.catch(() => loaded.delete(key));
    if (loaded.size >= MAX_CACHED) loaded.delete(loaded.keys().next().value!);
    loaded.set(key, promise);
  }
  return promise;
}

export function predictVectors(head: LoadedHead, vectors: Float32Array, n: number): Prediction[] {
  const k = head.doc.labels.length;
  const proba = predictProbaLogReg(head.model, vectors, n);
  const out: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    const scores: Record<string, number> = {};
    let best = 0;
    for (let c = 0; c < k; c++) {
      scores[head.doc.labels[c]] = proba[i * k + c];
      if (proba[i * k + c] > proba[i * k + best]) best = c;
    }
    out.push({ label: head.doc.labels[best], score: proba[i * k + best], scores });
  }
  return out;
}

/** Ready embeddings (from the same backbone the head was trained on). */
export function predictEmbeddings(
  head: LoadedHead,
  embeddings: readonly (readonly number[])[],
): Prediction[] {
  return predictVectors(head, embeddingsToVectors(head, embeddings), embeddings.length);
}

/** Validated ready embeddings as one row-major matrix. */
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

/** Texts embedded with the head's own backbone (refusing a replaced one). */
export async function embedTexts(
  store: ObjectStore,
  head: LoadedHead,
  texts: readonly string[],
  config: Pick<Config, "modelsDir">,
): Promise<Float32Array> {
  const embedder = await loadEmbedder(store, head.doc.backbone.id, config);
  if (embedder.spec.sha256 !== head.doc.backbone.sha256) {
    throw new HeadstartError(
      "conflict",
      `head ${head.doc.head} was trained on backbone ${head.doc.backbone.id}@${head.doc.backbone.sha256.slice(0, 12)}, ` +
        `which has since been replaced (${embedder.spec.sha256.slice(0, 12)}); retrain the head`,
      { field: "head" },
    );
  }
  // Normalized exactly as cached training items were, so serving matches training.
  return embedder.embed(texts.map((text) => ({ text: normalizeText(text) })));
}
