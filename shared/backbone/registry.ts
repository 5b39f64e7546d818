/**
 * Backbones live in the store (`backbones/<id>/backbone.json` + model + assets), so every
 * worker and Lambda of a deployment sees the same ones. Built-in backbones are converted from
 * packaged weights on first use and published like any user's own ONNX model.
 */
import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.ts";
import { fromZodError, HeadstartError, NotFoundError, ValidationError } from "../errors.ts";
import { assertName, keys } from "../layout.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { getJson, putJson } from "../store/json.ts";
import { fileSha256 } from "../store/local-file.ts";
import type { ObjectStore } from "../store/types.ts";
import { TAP_VARIANTS } from "./image-taps.ts";
import { BackboneSpec, type Embedder } from "./spec.ts";

/**
 * Built-in backbones: id → builder into a local directory holding backbone.json + files. The
 * builders read packaged weights (dev dependencies) and are loaded only when one runs, so the
 * Lambda bundles, which never build, carry neither the converters nor their inputs.
 */
const BUILT_IN: Record<string, (modelsDir: string) => Promise<{ dir: string }>> = {
  "glove-100d": async (d) => (await import("./glove.ts")).ensureGloveBackbone(d),
  "use-lite-512": async (d) => (await import("./use-lite.ts")).ensureUseLiteBackbone(d),
  "use-lite-512-int8": async (d) => (await import("./use-lite.ts")).ensureUseLiteInt8Backbone(d),
  "glove-100d-meanmax": async (d) =>
    (await import("./glove.ts")).ensureGloveBackbone(d, { pooling: "mean-max" }),
  "mobilenet-v2-1280": async (d) => (await import("./mobilenet.ts")).ensureMobileNetBackbone(d),
  "inception-v3-2048": async (d) => (await import("./mobilenet.ts")).ensureInceptionBackbone(d),
  ...Object.fromEntries(
    Object.keys(TAP_VARIANTS).map((id) => [
      id,
      async (d: string) => (await import("./mobilenet.ts")).ensureTapBackbone(id, d),
    ]),
  ),
  "speech-embedding-96": async (d) => (await import("./speech-embedding.ts")).ensureSpeechBackbone(d),
  "speech-embedding-96-meanmax": async (d) =>
    (await import("./speech-embedding.ts")).ensureSpeechBackbone(d, { pooling: "mean-max" }),
};

export const BUILT_IN_BACKBONES = Object.keys(BUILT_IN);

/** A built-in's builder; own keys only, so an id like "constructor" is no built-in. */
function builderOf(id: string) {
  return Object.hasOwn(BUILT_IN, id) ? BUILT_IN[id] : undefined;
}

/**
 * Publishes a local backbone directory (backbone.json, the model, its assets) to the store.
 * The model's sha256 is checked against the spec; backbone.json goes last, as the commit marker.
 */
export async function publishBackbone(store: ObjectStore, dir: string): Promise<BackboneSpec> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(join(dir, "backbone.json"), "utf8"));
  } catch (cause) {
    throw new ValidationError(`cannot read ${join(dir, "backbone.json")}: ${(cause as Error).message}`, {
      field: "backbone.json",
    });
  }
  const parsed = BackboneSpec.safeParse(raw);
  if (!parsed.success) {
    throw fromZodError(parsed.error, {
      prefix: "backbone.json",
      field: (path) => (path ? `backbone.json.${path}` : "backbone.json"),
      pathStyle: "dots",
    });
  }
  const spec = parsed.data;
  if (spec.kind === "external") {
    throw new ValidationError(
      "backbone.json: kind external is made by `headstart import-embeddings`, not published",
      { field: "backbone.json.kind" },
    );
  }
  const hashOf = (file: string, field: string) =>
    fileSha256(join(dir, file)).catch(() => {
      throw new ValidationError(`file ${join(dir, file)} is missing`, { field });
    });
  const actual = await hashOf(spec.model, "backbone.json.model");
  if (actual !== spec.sha256) {
    throw new ValidationError(
      `backbone.json sha256 ${spec.sha256} does not match ${spec.model} (${actual})`,
      {
        field: "backbone.json.sha256",
      },
    );
  }
  // Assets (vocabularies) decide vectors as much as the model does: record and check their hashes.
  const assetSha256: Record<string, string> = {};
  for (const asset of spec.assets) {
    assetSha256[asset] = await hashOf(asset, "backbone.json.assets");
    const declared = spec.assetSha256[asset];
    if (declared !== undefined && declared !== assetSha256[asset]) {
      throw new ValidationError(`backbone.json assetSha256.${asset} does not match the file`, {
        field: `backbone.json.assetSha256.${asset}`,
      });
    }
  }
  spec.assetSha256 = assetSha256;
  const existing = await getJson(store, keys.backboneSpec(spec.id), BackboneSpec);
  if (existing && JSON.stringify(existing.value) === JSON.stringify(spec)) return existing.value;
  for (const file of [spec.model, ...spec.assets]) {
    await store.put(keys.backboneAsset(spec.id, file), await fs.readFile(join(dir, file)));
  }
  await putJson(store, keys.backboneSpec(spec.id), spec);
  return spec;
}

/**
 * The spec of a backbone in the store, publishing a built-in one on first use — unless
 * `buildBackbones` is off (the Lambdas), where built-ins must have been published beforehand.
 */
export async function resolveBackbone(
  store: ObjectStore,
  id: string,
  config: Pick<Config, "modelsDir"> & { buildBackbones?: boolean },
): Promise<BackboneSpec> {
  assertName("backbone", id, "backbone");
  const found = await getJson(store, keys.backboneSpec(id), BackboneSpec);
  if (found) return found.value;
  const build = builderOf(id);
  if (!build) {
    throw new NotFoundError(
      `backbone ${id} (built-in: ${BUILT_IN_BACKBONES.join(", ")}; or add your own ONNX model)`,
      {
        field: "backbone",
      },
    );
  }
  if (config.buildBackbones === false) {
    throw new NotFoundError(
      // No store URL here: the message may reach an API caller.
      `backbone ${id} is not published in this deployment's store; publish it once with ` +
        `\`headstart backbone publish ${id} --store <the store>\``,
      { field: "backbone" },
    );
  }
  return publishBuiltIn(store, id, config.modelsDir);
}

/** Builds a built-in backbone into `modelsDir` (once) and publishes it to the store. */
export async function publishBuiltIn(store: ObjectStore, id: string, modelsDir: string) {
  const build = builderOf(id);
  if (!build) {
    throw new NotFoundError(`built-in backbone ${id} (built-in: ${BUILT_IN_BACKBONES.join(", ")})`, {
      field: "backbone",
    });
  }
  const { dir } = await build(modelsDir);
  return publishBackbone(store, dir);
}

export async function listBackbones(store: ObjectStore): Promise<BackboneSpec[]> {
  const out: BackboneSpec[] = [];
  for (const obj of await store.list("backbones/")) {
    if (!obj.key.endsWith("/backbone.json")) continue;
    const spec = await getJson(store, obj.key, BackboneSpec);
    if (spec) out.push(spec.value);
  }
  return out;
}

/** The embedder that runs `spec`'s preprocessing, over local files (loads onnxruntime). */
export async function createEmbedder(
  spec: BackboneSpec,
  modelPath: string,
  assetPaths: Record<string, string>,
  opts: { microBatch?: number; session?: SessionOptions } = {},
): Promise<Embedder> {
  return (await import("./embedders.ts")).createEmbedder(spec, modelPath, assetPaths, opts);
}

/**
 * A built-in backbone's embedder straight from the models folder, without a store: for
 * benchmarks and scripts that measure the backbone itself.
 */
export async function builtInEmbedder(
  id: string,
  modelsDir: string,
  opts: { microBatch?: number; session?: SessionOptions } = {},
): Promise<Embedder> {
  const build = builderOf(id);
  if (!build) {
    throw new NotFoundError(`built-in backbone ${id} (built-in: ${BUILT_IN_BACKBONES.join(", ")})`, {
      field: "backbone",
    });
  }
  const { dir } = await build(modelsDir);
  const spec = BackboneSpec.parse(JSON.parse(await fs.readFile(join(dir, "backbone.json"), "utf8")));
  const assets = Object.fromEntries(spec.assets.map((a) => [a, join(dir, a)]));
  return createEmbedder(spec, join(dir, spec.model), assets, opts);
}

const embedders = new Map<string, Promise<Embedder>>();

/** One embedder per store, backbone and model version, shared by every caller in the process. */
export function loadEmbedder(
  store: ObjectStore,
  id: string,
  config: Pick<Config, "modelsDir"> & { buildBackbones?: boolean },
): Promise<Embedder> {
  const cacheKey = `${store.url}\0${id}`;
  let promise = embedders.get(cacheKey);
  if (!promise) {
    promise = (async () => {
      const spec = await resolveBackbone(store, id, config);
      if (spec.kind === "external") {
        // Predict reaches here with raw inputs; the vectors must come from the user's own model.
        throw new ValidationError(
          `backbone ${id} holds imported embeddings, so headstart cannot embed raw inputs with it: ` +
            `a head trained on imported embeddings from ${id} needs \`embeddings\` (${spec.dim}-d vectors from the same model), not \`inputs\``,
          { field: "inputs" },
        );
      }
      // The files are checked against backbone.json before use: a GPU job and an API Lambda
      // reading the same bucket must run the very model the cache addresses were made with.
      const verified = async (file: string, expected: string | undefined) => {
        const local = await store.localFile(keys.backboneAsset(id, file));
        if (!local) throw new HeadstartError("internal", `backbone ${id} is missing its file ${file}`);
        const { path, sha256: actual } = local;
        if (expected !== undefined && actual !== expected) {
          throw new HeadstartError(
            "internal",
            `backbone ${id}: ${file} has sha256 ${actual}, backbone.json says ${expected}`,
          );
        }
        return path;
      };
      const modelPath = await verified(spec.model, spec.sha256);
      const assetPaths: Record<string, string> = {};
      for (const asset of spec.assets) assetPaths[asset] = await verified(asset, spec.assetSha256[asset]);
      return createEmbedder(spec, modelPath, assetPaths);
    })();
    promise.catch(() => embedders.delete(cacheKey));
    embedders.set(cacheKey, promise);
  }
  return promise;
}

/** Forget cached embedders (after a backbone is replaced, and in tests). */
export function clearEmbedders(): void {
  embedders.clear();
}
