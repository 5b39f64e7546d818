/**
 * `backbone.json`: a backbone is data, not a code branch. Any ONNX model plus one of these
 * files is a backbone, built-in or brought by the user.
 */
import { z } from "zod";
import { NAME_PATTERN, NAME_RULE } from "../layout.ts";
import { type FeatureTap, TAP_POOLS } from "../onnx/tfjs/feature-tap.ts";

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

/**
 * An image decoded to RGB (alpha dropped, grey expanded to three channels), resized to
 * `width`×`height` and fed as float32 `[batch, height, width, 3]` with
 * `value = pixel / 255 * scale + offset` (pixel in 0..255): `scale 1, offset 0` is [0, 1] (what
 * nsfwjs feeds its models), `scale 2, offset -1` is [-1, 1] (Keras MobileNet `preprocess_input`).
 */
export const ImagePreprocessing = z.object({
  type: z.literal("image"),
  /** Graph input name of the pixel batch. */
  input: z.string().default("pixels"),
  /** Size the model takes, in pixels; every image is resized to it. */
  width: z.number().int().min(1).max(4096),
  height: z.number().int().min(1).max(4096),
  /** Axis order of the pixel batch: batch, row, column, channel (R, G, B). */
  layout: z.literal("nhwc").default("nhwc"),
  /**
   * `stretch`: the whole image resized (bilinear) to `width`×`height`, aspect ratio not kept, as
   * nsfwjs does; `center-crop`: scaled so the image covers `width`×`height`, the centre cut out.
   */
  resize: z.enum(["stretch", "center-crop"]).default("stretch"),
  /** Multiplies `pixel / 255`. */
  scale: z.number().finite().default(1),
  /** Added after `scale`. */
  offset: z.number().finite().default(0),
});

/**
 * Audio through a two-stage model, as Google's speech_embedding runs (openWakeWord's preprocessing):
 * decoded samples (mono, resampled to `sampleRate`, in [-1, 1]) × `sampleScale` → the `melModel`
 * asset (`[1, samples]` → `[…, frames, melBins]`, one frame per 10 ms at 16 kHz) → `mel ×
 * melScale + melOffset` → windows of `window` frames every `stride` frames, fed to the backbone's
 * model as `[windows, window, melBins, 1]` → one `dim / (pooling = mean-max ? 2 : 1)`-d vector per
 * window → pooled over the clip's windows. A clip too short for one window is padded with silence;
 * one longer than `maxSeconds` is refused (`too-long`).
 */
export const AudioPreprocessing = z.object({
  type: z.literal("audio"),
  sampleRate: z.number().int().min(1000).max(192_000).default(16_000),
  /** Multiplies the [-1, 1] samples: 32768 feeds the int16 scale the speech models were trained on. */
  sampleScale: z.number().finite().positive().default(32_768),
  /** The ONNX file (an asset) that turns samples into mel frames. */
  melModel: AssetName,
  melInput: z.string().default("input"),
  melOutput: z.string().default("output"),
  melBins: z.number().int().min(1).max(1024),
  melScale: z.number().finite().default(1),
  melOffset: z.number().finite().default(0),
  /** Graph input name of the window batch. */
  input: z.string().default("input"),
  /** A shorter clip is padded with silence on both sides to this many samples (one window's worth). */
  minSamples: z.number().int().min(1).max(10_000_000),
  /** Mel frames per window and frames between window starts. */
  window: z.number().int().min(1).max(10_000),
  stride: z.number().int().min(1).max(10_000),
  /** `mean`: the mean of the windows; `mean-max`: the mean, then the per-dimension max. */
  pooling: z.enum(["mean", "mean-max"]).default("mean"),
  /** Longest clip embedded, in seconds: a cap on work and memory per item. */
  maxSeconds: z.number().positive().max(3600).default(60),
});

/** Imported vectors (`headstart import-embeddings`): computed elsewhere, nothing runs here. */
export const ExternalPreprocessing = z.object({ type: z.literal("external") });

export const Preprocessing = z.discriminatedUnion("type", [
  TextVocabPreprocessing,
  SentencepieceSparsePreprocessing,
  ImagePreprocessing,
  AudioPreprocessing,
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
  pooling: z.enum(["masked-mean", "masked-mean-max", "sif", "cls", "none"]).default("masked-mean"),
  normalized: z.boolean().default(false),
  /** Extra files the preprocessor reads (vocabularies…), stored beside the model. */
  assets: z.array(AssetName).default([]),
  /** sha256 of each asset; filled in when the backbone is published, checked when given. */
  assetSha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)).default({}),
  description: z.string().optional(),
  /**
   * Image backbones read at intermediate layers: which layers and how each map was pooled
   * (informational; the graph does it). Several taps were each L2-normalized, then concatenated.
   */
  taps: z
    .array(z.object({ layer: z.string().min(1), pool: z.enum(TAP_POOLS) }) satisfies z.ZodType<FeatureTap>)
    .min(1)
    .optional(),
  /** Each image's features were averaged with its left-right mirror's (informational; the graph does it). */
  mirror: z.boolean().optional(),
  source: z.string().optional(),
  license: z.string().optional(),
});
export type BackboneSpec = z.infer<typeof BackboneSpec>;
export type BackboneSpecInput = z.input<typeof BackboneSpec>;

/** One item to embed. Exactly one field is set; binary inputs arrive as bytes. */
export type EmbedInput = { text: string } | { image: Uint8Array } | { audio: Uint8Array };

/** Why one item could not be embedded (a corrupt or unsupported file): kept, not fatal. */
export interface ItemFailure {
  /** Stable code, e.g. `corrupt`, `unsupported-format`, `too-many-pixels`. */
  reason: string;
  message: string;
}

export interface SettledEmbedding {
  /** `inputs.length × spec.dim`; a failed item's row is zeros. */
  vectors: Float32Array;
  /** One slot per input: undefined where it embedded. */
  failures: (ItemFailure | undefined)[];
}

export interface Embedder {
  readonly spec: BackboneSpec;
  /** Returns `inputs.length × spec.dim` float32 values, row-major; any bad input throws. */
  embed(inputs: readonly EmbedInput[]): Promise<Float32Array>;
  /**
   * Backbones whose inputs can be individually unusable (files) embed the rest and report each
   * failure; the batch stage prefers this so one bad file does not fail a job.
   */
  embedSettled?(inputs: readonly EmbedInput[]): Promise<SettledEmbedding>;
}
