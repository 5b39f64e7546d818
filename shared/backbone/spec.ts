/**
 * `backbone.json`: a backbone is data, not a code branch. Any ONNX model plus one of these
 * files is a backbone, built-in or brought by the user.
 */
import { z } from "zod";
import { NAME_PATTERN, NAME_RULE } from "../layout.ts";

const Name = z.string().regex(NAME_PATTERN, NAME_RULE);
const AssetName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,127}$/);

/** Text through a word vocabulary: tokens → ids (unknown tokens dropped) → model. */
export const TextVocabPreprocessing = z.object({
  type: z.literal("text-vocab"),
  /** `glove`: lowercase, punctuation and clitics (`n't`, `'s`) split off, as GloVe 6B was trained. */
  tokenizer: z.enum(["glove", "whitespace"]),
  /** One token per line; the line number (0-based) is the token id. */
  vocab: AssetName,
  /** Longer inputs are truncated to this many known tokens. */
  maxTokens: z.number().int().min(1).max(100_000).default(512),
  lowercase: z.boolean().default(true),
});

/**
 * Text through a unigram sentencepiece vocabulary into a model that takes the ids as a sparse batch
 * (`indices` `[nnz, 2]` of `(text, position)` and `values` `[nnz]`, both int64), as the Universal
 * Sentence Encoder lite does. The batch size is the largest text index + 1, so the embedder keeps
 * the last text of every batch non-empty.
 */
export const SentencepieceSparsePreprocessing = z.object({
  type: z.literal("sentencepiece-sparse"),
  /** JSON array of `[piece, score | null]` in id order (the USE `vocab.json` layout). */
  vocab: AssetName,
  /** Leading vocabulary entries (control symbols) that never match text. */
  reservedCount: z.number().int().min(0).max(1000).default(6),
  /** Longer inputs keep their first this many pieces. */
  maxTokens: z.number().int().min(1).max(100_000).default(1024),
  /** Graph input names of the sparse batch. */
  indices: z.string().default("indices"),
  values: z.string().default("values"),
});

/** Imported vectors (`headstart import-embeddings`): computed elsewhere, nothing runs here. */
export const ExternalPreprocessing = z.object({ type: z.literal("external") });

export const Preprocessing = z.discriminatedUnion("type", [
  TextVocabPreprocessing,
  SentencepieceSparsePreprocessing,
  ExternalPreprocessing,
]);

export const BackboneSpec = z.object({
  id: Name,
  /**
   * Absent: an ONNX model headstart runs. `external`: vectors imported from another model or
   * provider (modality `embedding`, preprocessing `external`); there is no model to run, so
   * `sha256` is a stable id of the name and dim instead of a file hash.
   */
  kind: z.literal("external").optional(),
  modality: z.enum(["text", "image", "audio", "embedding"]),
  /** Length of the embedding vector the model outputs. */
  dim: z.number().int().min(1).max(65_536),
  /** The ONNX file, an asset of this backbone. */
  model: AssetName.default("model.onnx"),
  /** sha256 (hex) of the model file: part of every cache item's content address. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Names of the graph's inputs and output. */
  io: z.object({
    ids: z.string().default("input_ids"),
    mask: z.string().default("attention_mask"),
    output: z.string().default("embeddings"),
  }),
  preprocessing: Preprocessing,
  /** What the graph does after the encoder; informational for users of the cache. */
  pooling: z.enum(["masked-mean", "cls", "none"]).default("masked-mean"),
  normalized: z.boolean().default(false),
  /** Extra files the preprocessor reads (vocabularies…), stored beside the model. */
  assets: z.array(AssetName).default([]),
  /** sha256 of each asset; filled in when the backbone is published, checked when given. */
  assetSha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)).default({}),
  description: z.string().optional(),
  source: z.string().optional(),
  license: z.string().optional(),
});
export type BackboneSpec = z.infer<typeof BackboneSpec>;
export type BackboneSpecInput = z.input<typeof BackboneSpec>;

/** One item to embed. Exactly one field is set; binary inputs arrive as bytes. */
export type EmbedInput = { text: string } | { image: Uint8Array } | { audio: Uint8Array };

export interface Embedder {
  readonly spec: BackboneSpec;
  /** Returns `inputs.length × spec.dim` float32 values, row-major. */
  embed(inputs: readonly EmbedInput[]): Promise<Float32Array>;
}
