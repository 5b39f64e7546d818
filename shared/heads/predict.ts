/**
 * Serving a head: the head type's own predict on embeddings, then calibration and the task's
 * decision. Head versions are immutable, so a loaded version is cached for the life of the process;
 * only the alias is re-read.
 */

import { AudioDecodeError, DEFAULT_AUDIO_LIMITS } from "../audio/decode.ts";
import { loadEmbedder } from "../backbone/registry.ts";
import type { EmbedInput } from "../backbone/spec.ts";
import { normalizeText } from "../cache/address.ts";
import type { Config } from "../config.ts";
import { normalizeConcat, partsOf } from "../embed/composite.ts";
import { HeadstartError, NotFoundError, PayloadTooLargeError, ValidationError } from "../errors.ts";
import { DEFAULT_IMAGE_LIMITS, ImageDecodeError } from "../images/decode.ts";
import { storageKeyProblem } from "../layout.ts";
import { applyTemperature } from "../learn/calibration.ts";
import type { HeadKind, HeadTask } from "../learn/estimator.ts";
import { type OodScorer, oodFromJson, oodScores } from "../learn/ood.ts";
import { headKind } from "../learn/registry.ts";
import type { ObjectStore } from "../store/types.ts";
import type { Neighbor } from "./neighbors.ts";
import {
  type HeadDocument,
  type Report,
  readHeadVersion,
  resolveHeadRef,
  type UnknownDetector,
} from "./version.ts";

export interface LoadedHead {
  doc: HeadDocument;
  report?: Report;
  task: HeadTask;
  kind: HeadKind<unknown>;
  model: unknown;
}

export interface Prediction {
  /**
   * Names this prediction in a correction (`POST /v1/heads/{head}/feedback`): online `p-<24 hex>`,
   * batch `<job>:<row id>`. Set by the caller that answers (Platform.predict, batch output lines).
   */
  predictionId?: string;
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
  /**
   * Multiclass heads with an unknown-input detector (absent on versions trained before it): how
   * unlike the training data the input is, on the scorer's scale (higher: less like it).
   */
  unknownScore?: number;
  /** `unknownScore` is above the version's threshold. */
  unknown?: boolean;
  /** With `neighbors: k`: the most similar training items. */
  neighbors?: Neighbor[];
}

/** The label a prediction answers, with `rejectUnknown`, for an input its head finds unknown. */
export const UNKNOWN_LABEL = "unknown";

export interface PredictOptions {
  /** Answer UNKNOWN_LABEL instead of the class for inputs above the unknown threshold. */
  rejectUnknown?: boolean;
}

const MAX_CACHED = 64;
const loaded = new Map<string, Promise<LoadedHead>>();

export async function loadHead(
  store: ObjectStore,
  head: string,
  version?: string,
  alias?: string,
  /** The version's documents, already being read by a caller that could not wait (cold start). */
  prefetched?: ReturnType<typeof readHeadVersion>,
): Promise<LoadedHead> {
  const v = version ?? (await resolveHeadRef(store, { head, alias }));
  const key = `${store.url}\0${head}\0${v ?? ""}`;
  let promise = loaded.get(key);
  if (!promise) {
    promise = (async () => {
      const { head: doc, report } = await (prefetched ?? readHeadVersion(store, head, v));
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
  opts: PredictOptions = {},
): Promise<Prediction[]> {
  const labels = head.doc.labels;
  const k = labels.length;
  let out = await head.kind.predict(head.model, vectors, n);
  if (head.task === "regression") return Array.from(out, (value) => ({ value }));
  if (head.doc.calibration) out = applyTemperature(out, n, k, head.doc.calibration.temperature);
  const on = head.task === "multilabel" ? decideLabels(head, out, n) : undefined;
  const detector = head.task === "multiclass" ? head.doc.unknown : undefined;
  const unknownScores = detector ? scoreUnknown(detector, vectors, out, n, k) : undefined;
  const reject = opts.rejectUnknown === true;
  const newScores = scoresMaker(labels);
  const predictions: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    const scores = newScores(out, i * k);
    let best = 0;
    for (let c = 1; c < k; c++) if (out[i * k + c] > out[i * k + best]) best = c;
    if (on) {
      predictions.push({ labels: labels.filter((_, c) => on[i * k + c] === 1), scores });
    } else if (unknownScores) {
      // Built whole, so every record has one shape (adding fields later slows batch scoring).
      const unknown = unknownScores[i] > detector!.threshold;
      const label = reject && unknown ? UNKNOWN_LABEL : labels[best];
      const score = out[i * k + best];
      predictions.push({ label, score, scores, unknownScore: unknownScores[i], unknown });
    } else {
      predictions.push({ label: labels[best], score: out[i * k + best], scores });
    }
  }
  return predictions;
}

/**
 * Builds one row's `{label: probability}` object. Assigning the labels in the same order to a
 * fresh `{}` gives every row's object one hidden class (one allocation, fast properties); a
 * label that `{}` would treat specially (`__proto__`) needs an object without a prototype.
 */
function scoresMaker(labels: readonly string[]): (out: Float64Array, at: number) => Record<string, number> {
  const k = labels.length;
  if (labels.includes("__proto__")) {
    return (out, at) => {
      const scores: Record<string, number> = Object.create(null);
      for (let c = 0; c < k; c++) scores[labels[c]] = out[at + c];
      return scores;
    };
  }
  return (out, at) => {
    const scores: Record<string, number> = {};
    for (let c = 0; c < k; c++) scores[labels[c]] = out[at + c];
    return scores;
  };
}

/** Parsed scorers by their detector document (a loaded version's is parsed once). */
const scorers = new WeakMap<UnknownDetector, OodScorer>();

/** The detector's score of each row (its scorer parsed once per loaded version). */
function scoreUnknown(
  detector: UnknownDetector,
  vectors: Float32Array,
  proba: Float64Array,
  n: number,
  k: number,
): Float64Array {
  let scorer = scorers.get(detector);
  if (!scorer) {
    scorer = oodFromJson(detector.scorer);
    scorers.set(detector, scorer);
  }
  return oodScores(scorer, vectors, n, proba, k);
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

/** Raw inputs (texts, image or audio bytes): embedded with the head's backbone here, then classified. */
export async function predictInputs(
  store: ObjectStore,
  head: LoadedHead,
  inputs: readonly EmbedInput[],
  config: Pick<Config, "modelsDir">,
): Promise<Prediction[]> {
  return predictVectors(head, await embedInputs(store, head, inputs, config), inputs.length);
}

function modalityOf(input: EmbedInput): string {
  if ("text" in input && typeof input.text === "string") return "text";
  if ("image" in input && input.image instanceof Uint8Array) return "image";
  if ("audio" in input && input.audio instanceof Uint8Array) return "audio";
  return "nothing usable";
}

/**
 * Inputs embedded with the head's own backbone (refusing a replaced one); for a head over several
 * backbones, with each part, normalized and concatenated exactly as its training rows were. Every
 * input must be of the backbone's modality: an image sent to a text head is the caller's mistake,
 * named by its index, not something to embed as an empty text.
 */
export async function embedInputs(
  store: ObjectStore,
  head: LoadedHead,
  inputs: readonly EmbedInput[],
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
  const modality = embedders[0].spec.modality;
  const wrong = embedders.find((e) => e.spec.modality !== modality);
  if (wrong) {
    throw new ValidationError(
      `head ${head.doc.head} mixes ${modality} and ${wrong.spec.modality} backbones; raw inputs cannot feed both`,
      { field: "inputs" },
    );
  }
  inputs.forEach((input, i) => {
    const got = modalityOf(input);
    if (got !== modality) {
      const accepts = modality === "embedding" ? "only ready embeddings" : `${modality} inputs`;
      throw new ValidationError(
        `inputs[${i}] is ${got === "image" ? "an image" : got}, but head ${head.doc.head} ` +
          `(backbone ${head.doc.backbone.id}) takes ${accepts}`,
        { field: `inputs[${i}]`, details: { expected: modality, got } },
      );
    }
  });
  // Texts normalized exactly as cached training items were, so serving matches training.
  const items: EmbedInput[] = inputs.map((input) =>
    "text" in input ? { text: normalizeText(input.text) } : input,
  );
  if (embedders.length === 1) return embedders[0].embed(items);
  const vectors: Float32Array[] = [];
  for (const embedder of embedders) vectors.push(await embedder.embed(items));
  return normalizeConcat(
    vectors.map((v, i) => ({ vectors: v, dim: parts[i].dim })),
    inputs.length,
  );
}

/**
 * One raw predict input as callers send it: a text (a string or `{ text }`), a file as base64
 * (`{ image }`, `{ audio }`; in-process callers such as the CLI and multipart uploads pass the
 * bytes), or `{ imageKey }` / `{ audioKey }`, an object in the caller's own store such as
 * `datasets/pets/files/cat/1.jpg`.
 */
export type PredictInput =
  | string
  | { text: string }
  | { image: string | Uint8Array }
  | { imageKey: string }
  | { audio: string | Uint8Array }
  | { audioKey: string };

/** The file inputs predict takes, each read (by bytes and key) the same way. */
export type FileKind = "image" | "audio";
const FILE_KINDS: readonly FileKind[] = ["image", "audio"];

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decoded size of canonical base64, without decoding it. */
export function base64Size(b64: string): number {
  return (b64.length / 4) * 3 - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
}

/**
 * Bytes of bucket files (`imageKey`, `audioKey`) one predict request may load: every input's bytes
 * are held at once, and 256 keys of 20 MB each would be 5 GB in a Lambda. 100 MB is five
 * maximum-size photos, or 256 typical ones of ~400 KB.
 */
export const MAX_KEY_BYTES_PER_REQUEST = 100 * 1024 * 1024;

/** A file's `empty` or `too-large` refusal, as its decoder words it (`details.reason`). */
function fileError(kind: FileKind, reason: "empty" | "too-large", message: string, field: string) {
  return kind === "audio"
    ? new AudioDecodeError(reason, message, { field })
    : new ImageDecodeError(reason, message, { field });
}

/** `{imageKey}` or `{audioKey}`: the kind of file and its key. */
function bucketKeyOf(input: unknown): { kind: FileKind; key: string } | undefined {
  if (!input || typeof input !== "object") return undefined;
  if ("imageKey" in input && typeof input.imageKey === "string")
    return { kind: "image", key: input.imageKey };
  if ("audioKey" in input && typeof input.audioKey === "string")
    return { kind: "audio", key: input.audioKey };
  return undefined;
}

/** A text, or a file's bytes (given, or as base64 checked and decoded), as an embedder input. */
function inlineInput(input: PredictInput, i: number, maxBytes: Record<FileKind, number>): EmbedInput {
  if (typeof input === "string") return { text: input };
  if (input && typeof input === "object") {
    if ("text" in input && typeof input.text === "string") return { text: input.text };
    for (const kind of FILE_KINDS) {
      const value = (input as Partial<Record<FileKind, unknown>>)[kind];
      if (value instanceof Uint8Array) return fileInput(kind, value);
      if (typeof value === "string")
        return fileInput(kind, decodeBase64File(value, `inputs[${i}].${kind}`, maxBytes[kind], kind));
    }
  }
  throw new ValidationError(
    `inputs[${i}] must be a string, {text}, {image}, {imageKey}, {audio} or {audioKey}`,
    { field: `inputs[${i}]` },
  );
}

const fileInput = (kind: FileKind, bytes: Uint8Array): EmbedInput =>
  kind === "audio" ? { audio: bytes } : { image: bytes };

/**
 * Predict inputs as embedder inputs. Base64 is checked (alphabet, padding, decoded size) before it
 * is decoded, because `Buffer.from(…, "base64")` silently skips what it cannot read and would turn
 * a mangled upload into a confusing "corrupt image". Bucket objects are sized by `head`, each and
 * together, before any is read. Errors name `inputs[i].image` / `inputs[i].imageKey` (and `audio`,
 * `audioKey`). `maxBytes`: per image (default the image decoder's), `maxAudioBytes`: per audio file
 * (default the audio decoder's).
 */
export async function readPredictInputs(
  store: ObjectStore,
  inputs: readonly PredictInput[],
  limits: { maxBytes?: number; maxAudioBytes?: number; maxKeyBytes?: number } = {},
): Promise<EmbedInput[]> {
  const maxBytes = {
    image: limits.maxBytes ?? DEFAULT_IMAGE_LIMITS.maxBytes,
    audio: limits.maxAudioBytes ?? DEFAULT_AUDIO_LIMITS.maxBytes,
  };
  const maxKeyBytes = limits.maxKeyBytes ?? MAX_KEY_BYTES_PER_REQUEST;
  const keys = await Promise.all(
    inputs.map((input, i) => {
      const found = bucketKeyOf(input);
      if (!found) return undefined;
      const field = `inputs[${i}].${found.kind}Key`;
      return statFileKey(store, found.key, field, maxBytes[found.kind], found.kind);
    }),
  );
  const keyBytes = keys.reduce((n, k) => n + (k?.size ?? 0), 0);
  if (keyBytes > maxKeyBytes) {
    throw new PayloadTooLargeError(
      `inputs: the imageKey and audioKey objects hold ${keyBytes} bytes, more than the limit of ${maxKeyBytes} per request; send fewer per request`,
      { field: "inputs" },
    );
  }
  return Promise.all(
    inputs.map(async (input, i): Promise<EmbedInput> => {
      const key = keys[i];
      if (!key) return inlineInput(input, i, maxBytes);
      const obj = await store.get(key.key);
      if (!obj)
        throw new NotFoundError(`${key.field}: no object ${key.key} in this store`, { field: key.field });
      return fileInput(key.kind, obj.body);
    }),
  );
}

export function decodeBase64File(
  b64: string,
  field: string,
  maxBytes: number,
  kind: FileKind = "image",
): Uint8Array {
  if (b64.length === 0) throw fileError(kind, "empty", `${field} is empty`, field);
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) {
    throw new ValidationError(
      `${field} is not valid base64 (standard alphabet A–Z a–z 0–9 + /, padded with =, no data: prefix or line breaks)`,
      { field },
    );
  }
  const size = base64Size(b64);
  if (size > maxBytes) {
    throw fileError(
      kind,
      "too-large",
      `${field}: ${size} bytes is more than the limit of ${maxBytes}`,
      field,
    );
  }
  const buf = Buffer.from(b64, "base64");
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Where `imageKey`s and `audioKey`s may point: the datasets users upload (e.g. `datasets/pets/files/cat/1.jpg`). */
export const FILE_KEY_PREFIX = "datasets/";

/** A bucket file's key checked and its size read, without reading its bytes. */
export async function statFileKey(
  store: ObjectStore,
  key: string,
  field: string,
  maxBytes: number,
  kind: FileKind = "image",
) {
  // Keys are resolved against the caller's own store; `..`, `.`, empty segments, absolute paths,
  // backslashes and control characters are refused so no key can mean anything but its object.
  // Only users' own uploads: heads, backbones, the cache and jobs are not the caller's to
  // probe (an answer would tell whether such an object exists, and its size).
  const problem = key.includes("\\")
    ? "holds a backslash"
    : (storageKeyProblem(key) ??
      (key.startsWith(FILE_KEY_PREFIX) ? undefined : `is not under ${FILE_KEY_PREFIX}`));
  if (problem) {
    throw new ValidationError(
      `${field}: ${JSON.stringify(key)} is not a plain key in this store (it ${problem})`,
      {
        field,
      },
    );
  }
  const info = await store.head(key);
  if (!info) throw new NotFoundError(`${field}: no object ${key} in this store`, { field });
  if (info.size > maxBytes) {
    throw fileError(
      kind,
      "too-large",
      `${field}: ${key} is ${info.size} bytes, more than the limit of ${maxBytes}`,
      field,
    );
  }
  return { key, field, size: info.size, kind };
}
