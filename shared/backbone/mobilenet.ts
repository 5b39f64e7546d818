/**
 * The built-in image backbones from npm `nsfwjs`: its MobileNetV2 (`mobilenet-v2-1280`) and
 * InceptionV3 (`inception-v3-2048`) Keras classifiers, cut before their classification heads at
 * the pooled features and converted to ONNX at first use into the models folder.
 *
 * Both were ImageNet-pretrained and then fine-tuned (later blocks) on nsfwjs's five classes, so
 * the features lean towards what those classes need; they are still general image features.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import vm from "node:vm";
import { ValidationError } from "../errors.ts";
import { convertLayersModel, type LayersModelJson, parseLayersModelJson } from "../onnx/tfjs/layers.ts";
import { decodeWeights, type WeightTensor } from "../onnx/tfjs/model-json.ts";
import { ensureBuiltBackbone, writeBuiltBackbone } from "./built-backbone.ts";
import { TAP_VARIANTS, type TapVariant } from "./image-taps.ts";
import { BackboneSpec } from "./spec.ts";

export const NSFWJS_PACKAGE = "nsfwjs";
export const MOBILENET_ID = "mobilenet-v2-1280";
export const INCEPTION_ID = "inception-v3-2048";
/** Graph input: float32 `[batch, size, size, 3]`, RGB in [0, 1]. */
export const IMAGE_INPUT = "pixels";
export const IMAGE_OUTPUT = "embeddings";
const MODEL_FILE = "model.onnx";

interface NsfwjsModel {
  id: string;
  /** Folder under the package's `dist/models/`. */
  folder: string;
  size: number;
  dim: number;
  /** The layer before the classification head (the global-average-pooled map, flattened). */
  featureLayer: string;
  description: string;
}

export const NSFWJS_MODELS: Record<string, NsfwjsModel> = {
  [MOBILENET_ID]: {
    id: MOBILENET_ID,
    folder: "mobilenet_v2",
    size: 224,
    dim: 1280,
    featureLayer: "flatten_1",
    description:
      "MobileNetV2 (224×224, ImageNet-pretrained, blocks 11+ fine-tuned by nsfwjs), 1280-d average-pooled features",
  },
  [INCEPTION_ID]: {
    id: INCEPTION_ID,
    folder: "inception_v3",
    size: 299,
    dim: 2048,
    featureLayer: "flatten_1",
    description:
      "InceptionV3 (299×299, ImageNet-pretrained, later blocks fine-tuned by nsfwjs), 2048-d average-pooled features",
  },
};

/** The installed nsfwjs's root: its `exports` hide `package.json`, so walk up from its entry point. */
function nsfwjsRoot(): string {
  let dir = dirname(createRequire(import.meta.url).resolve(NSFWJS_PACKAGE));
  for (;;) {
    try {
      // `dist/*/package.json` files only set the module type; the root one has the name.
      if (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name === NSFWJS_PACKAGE) return dir;
    } catch {}
    const up = dirname(dir);
    if (up === dir) throw new ValidationError(`cannot find the ${NSFWJS_PACKAGE} package root`);
    dir = up;
  }
}

/** `dist/models/<folder>` of the installed nsfwjs. */
export function defaultNsfwjsSource(folder: string): string {
  return join(nsfwjsRoot(), "dist", "models", folder);
}

/**
 * The `module.exports` of one of nsfwjs's browserify bundles (the model JSON as an object, or a
 * shard as a base64 string). They are JS, not JSON, so they are run, in a context of their own
 * with nothing but `module`, and their result copied out as plain data.
 */
function runBundle(code: string, file: string): unknown {
  const module = { exports: {} as unknown };
  try {
    vm.runInNewContext(code, { module, exports: module.exports }, { filename: file, timeout: 30_000 });
    return JSON.parse(JSON.stringify(module.exports));
  } catch (cause) {
    throw new ValidationError(`${file}: not a readable nsfwjs model bundle`, { field: file, cause });
  }
}

export interface NsfwjsLayersModel {
  model: LayersModelJson;
  /** The shards concatenated, as TF.js reads them (`weightsManifest` describes the layout). */
  weightData: Uint8Array;
  weights: Map<string, WeightTensor>;
}

/** Reads `model.min.js` and its `<path>.min.js` shards from `dir` (an nsfwjs `dist/models/*` folder). */
export async function readNsfwjsModel(dir: string): Promise<NsfwjsLayersModel> {
  const modelFile = join(dir, "model.min.js");
  const model = parseLayersModelJson(runBundle(await readFile(modelFile, "utf8"), modelFile));
  const parts: Buffer[] = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) {
      const file = join(dir, `${p}.min.js`);
      const b64 = runBundle(await readFile(file, "utf8"), file);
      if (typeof b64 !== "string") {
        throw new ValidationError(`${file}: expected a base64 weight shard`, { field: file });
      }
      parts.push(Buffer.from(b64, "base64"));
    }
  }
  const weightData = new Uint8Array(Buffer.concat(parts));
  return { model, weightData, weights: decodeWeights(model.weightsManifest, weightData) };
}

async function packageVersion(sourceDir: string): Promise<string> {
  // `dist/models/<folder>` → the package root.
  try {
    const pkg = JSON.parse(await readFile(join(sourceDir, "..", "..", "..", "package.json"), "utf8"));
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

export interface NsfwjsBuildOptions {
  outDir: string;
  /** An nsfwjs `dist/models/<folder>`; default: the installed package's. */
  sourceDir?: string;
  id?: string;
}

async function build(
  which: NsfwjsModel,
  opts: NsfwjsBuildOptions,
  replace: boolean,
  variant?: TapVariant,
): Promise<BackboneSpec> {
  const source = opts.sourceDir ?? defaultNsfwjsSource(which.folder);
  const id = opts.id ?? variant?.id ?? which.id;
  const { model, weights } = await readNsfwjsModel(source);
  const onnx = convertLayersModel(model, weights, {
    ...(variant ? { taps: variant.taps } : { outputLayer: which.featureLayer }),
    ...(variant?.size ? { inputSize: { height: variant.size, width: variant.size } } : {}),
    ...(variant?.mirror ? { mirror: true } : {}),
    inputName: IMAGE_INPUT,
    outputName: IMAGE_OUTPUT,
    graphName: id,
  });
  const version = await packageVersion(source);
  const size = variant?.size ?? which.size;
  const cut = variant
    ? `tapped at ${variant.taps.map((t) => `${t.layer} (${t.pool})`).join(", ")}`
    : `cut at ${which.featureLayer}`;
  const input = `${size}×${size} input${variant?.mirror ? ", averaged with its mirror" : ""}`;
  const spec = BackboneSpec.parse({
    id,
    modality: "image",
    dim: variant?.dim ?? which.dim,
    model: MODEL_FILE,
    sha256: createHash("sha256").update(onnx).digest("hex"),
    io: { ids: IMAGE_INPUT, output: IMAGE_OUTPUT },
    // nsfwjs: `tf.browser.fromPixels` (RGB), `/ 255`, `tf.image.resizeBilinear` of the whole image
    // to size×size (alignCorners true).
    preprocessing: {
      type: "image",
      input: IMAGE_INPUT,
      width: size,
      height: size,
      layout: "nhwc",
      resize: "stretch",
      scale: 1,
      offset: 0,
    },
    pooling: "none",
    normalized: false,
    description: variant?.description ?? which.description,
    ...(variant ? { taps: variant.taps } : {}),
    ...(variant?.mirror ? { mirror: true } : {}),
    source: `TF.js layers model ${which.folder} from npm ${NSFWJS_PACKAGE}@${version}, ${cut}, ${input}, converted to ONNX by headstart`,
    license: "MIT",
  });
  await writeBuiltBackbone(opts.outDir, { [MODEL_FILE]: onnx }, spec, replace);
  return spec;
}

/** Converts nsfwjs's MobileNetV2 into `outDir/{model.onnx, backbone.json}`, replacing `outDir`. */
export function buildMobileNetBackbone(opts: NsfwjsBuildOptions): Promise<BackboneSpec> {
  return build(NSFWJS_MODELS[MOBILENET_ID] as NsfwjsModel, opts, true);
}

/** Converts nsfwjs's InceptionV3 into `outDir/{model.onnx, backbone.json}`, replacing `outDir`. */
export function buildInceptionBackbone(opts: NsfwjsBuildOptions): Promise<BackboneSpec> {
  return build(NSFWJS_MODELS[INCEPTION_ID] as NsfwjsModel, opts, true);
}

function ensure(which: NsfwjsModel, modelsDir: string, sourceDir?: string) {
  const dir = join(modelsDir, which.id);
  return ensureBuiltBackbone(dir, (replace) => build(which, { outDir: dir, sourceDir }, replace));
}

/**
 * `<modelsDir>/mobilenet-v2-1280/`, converted on first use and reused afterwards (see
 * `ensureBuiltBackbone` for concurrent first uses).
 */
export function ensureMobileNetBackbone(
  modelsDir: string,
  opts: { sourceDir?: string } = {},
): Promise<{ dir: string; spec: BackboneSpec }> {
  return ensure(NSFWJS_MODELS[MOBILENET_ID] as NsfwjsModel, modelsDir, opts.sourceDir);
}

/** `<modelsDir>/inception-v3-2048/`, converted on first use and reused afterwards. */
export function ensureInceptionBackbone(
  modelsDir: string,
  opts: { sourceDir?: string } = {},
): Promise<{ dir: string; spec: BackboneSpec }> {
  return ensure(NSFWJS_MODELS[INCEPTION_ID] as NsfwjsModel, modelsDir, opts.sourceDir);
}

function tapVariant(id: string): { which: NsfwjsModel; variant: TapVariant } {
  const variant = Object.hasOwn(TAP_VARIANTS, id) ? TAP_VARIANTS[id] : undefined;
  const which =
    variant && Object.hasOwn(NSFWJS_MODELS, variant.base) ? NSFWJS_MODELS[variant.base] : undefined;
  if (!variant || !which) {
    throw new ValidationError(
      `no tap variant ${JSON.stringify(id)}; valid: ${Object.keys(TAP_VARIANTS).join(", ")}`,
      { field: "id" },
    );
  }
  return { which, variant };
}

/** Converts a tap variant (`TAP_VARIANTS`) into `outDir`, replacing it. */
export function buildTapBackbone(id: string, opts: NsfwjsBuildOptions): Promise<BackboneSpec> {
  const { which, variant } = tapVariant(id);
  return build(which, opts, true, variant);
}

/** `<modelsDir>/<id>/` for a tap variant, converted on first use and reused afterwards. */
export function ensureTapBackbone(
  id: string,
  modelsDir: string,
  opts: { sourceDir?: string } = {},
): Promise<{ dir: string; spec: BackboneSpec }> {
  const { which, variant } = tapVariant(id);
  const dir = join(modelsDir, id);
  return ensureBuiltBackbone(dir, (replace) =>
    build(which, { outDir: dir, sourceDir: opts.sourceDir }, replace, variant),
  );
}
