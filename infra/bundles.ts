/**
 * What `npm run build` makes for each deployed function, and how large each may be. One table:
 * the build (scripts/build.ts) reads it to bundle, the stack to deploy, the tests to enforce the
 * budgets, and `npm run bench:cold` to report sizes.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DECODE_WORKER_BUNDLE_NAME } from "../shared/audio/decode-pool.ts";

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** `dist/functions/<name>/`: `index.mjs` (exports `handler`), its chunks, source maps, natives. */
export const DIST_FUNCTIONS = join(REPO_ROOT, "dist", "functions");

/** The web console's build (shared/api/console-build.ts writes it; `npm run build` and `headstart serve` run it). */
export const CONSOLE_BUILD = join(REPO_ROOT, ".build", "console");

/** npm packages with native code, shipped as files beside the bundle instead of bundled. */
export const NATIVE_PACKAGES = ["onnxruntime-node", "sharp"] as const;
export type NativePackage = (typeof NATIVE_PACKAGES)[number];

/**
 * The audio decoders and the resampler (JavaScript with their WebAssembly inlined, ≈ 2.6 MB):
 * bundled only into functions that decode audio files (`audio: true`); left out of the others,
 * which never import them (the packages are loaded on the first decode: shared/audio/).
 */
export const AUDIO_PACKAGES = [
  "wavefile",
  "@wasm-audio-decoders/flac",
  "mpg123-decoder",
  "@wasm-audio-decoders/ogg-vorbis",
  "@alexanderolsen/libsamplerate-js",
] as const;

export interface FunctionBundle {
  /** The TypeScript entry point. */
  entry: string;
  /**
   * Worker-thread scripts built beside `index.mjs` as `<name>.mjs` (sharing its chunks), for code
   * that starts them with `new Worker(new URL("./<name>.mjs", import.meta.url))`.
   */
  workers?: Readonly<Record<string, string>>;
  /** Native packages this function may load (only on first use: see shared/platform.ts). */
  native: readonly NativePackage[];
  /** Decodes audio files (predict's audio inputs, the batch stage): bundles `AUDIO_PACKAGES`. */
  audio?: true;
  /** Plain npm packages whose files the function reads at run time (Swagger UI's assets). */
  files?: readonly { pkg: string; paths: readonly string[] }[];
  /**
   * Serves the web console: `npm run build` puts its build (`CONSOLE_BUILD`) in the package as
   * `console/`, where functions/api/handler.ts finds it.
   */
  console?: true;
  /** Largest unzipped package allowed, in bytes (Lambda's own limit is 250 MB). */
  budgetBytes: number;
  /** Deployed as a container image (SageMaker) rather than a Lambda zip. */
  container?: true;
}

const MB = 1_000_000;

/** Swagger UI's page needs these files of swagger-ui-dist (shared/api/docs.ts serves them under /docs/assets/). */
export const SWAGGER_UI_FILES = [
  "package.json",
  "LICENSE",
  "swagger-ui-bundle.js",
  "swagger-ui.css",
  "index.css",
  "favicon-32x32.png",
  "favicon-16x16.png",
] as const;

export const FUNCTION_BUNDLES = {
  authorizer: { entry: "functions/authorizer/handler.ts", native: [], budgetBytes: 1 * MB },
  ingest: { entry: "functions/ingest/handler.ts", native: [], budgetBytes: 3 * MB },
  // Continues batch-prediction jobs after their embedding job (scoring: onnxruntime for some head types).
  "job-complete": {
    entry: "functions/job-complete/handler.ts",
    native: ["onnxruntime-node"],
    budgetBytes: 50 * MB,
  },
  "webhook-retry": { entry: "functions/webhook-retry/handler.ts", native: [], budgetBytes: 3 * MB },
  // Embeds heads' captured texts with their backbones (onnxruntime) for the scheduled drift check.
  "drift-check": {
    entry: "functions/drift-check/handler.ts",
    native: ["onnxruntime-node"],
    budgetBytes: 50 * MB,
  },
  // Heads fit with onnxruntime's GEMMs (docs/heads.md): the train function carries its CPU
  // binary, and so has the API's budget, not 3 MB (docs/deploy.md, "Package sizes").
  train: { entry: "functions/train/handler.ts", native: ["onnxruntime-node"], budgetBytes: 50 * MB },
  // onnxruntime (≈44 MB) for raw inputs plus sharp with libvips (≈19 MB) for image inputs.
  api: {
    entry: "functions/api/handler.ts",
    native: ["onnxruntime-node", "sharp"],
    audio: true,
    files: [{ pkg: "swagger-ui-dist", paths: SWAGGER_UI_FILES }],
    console: true,
    budgetBytes: 75 * MB,
  },
  // The SageMaker container installs its natives (with CUDA) itself; the budget is the bundle's.
  "embed-batch": {
    entry: "functions/embed-batch/main.ts",
    native: ["onnxruntime-node", "sharp"],
    audio: true,
    // Audio decodes on worker threads while onnxruntime embeds (shared/audio/decode-pool.ts).
    workers: { [DECODE_WORKER_BUNDLE_NAME]: "shared/audio/decode-worker.ts" },
    budgetBytes: 5 * MB,
    container: true,
  },
} as const satisfies Record<string, FunctionBundle>;

export type FunctionName = keyof typeof FUNCTION_BUNDLES;
export const FUNCTION_NAMES = Object.keys(FUNCTION_BUNDLES) as FunctionName[];
/** The Lambdas (zip packages); embed-batch is the SageMaker container's entry point. */
export const LAMBDA_NAMES = FUNCTION_NAMES.filter((n) => !(FUNCTION_BUNDLES[n] as FunctionBundle).container);

export function bundleDir(name: FunctionName): string {
  return join(DIST_FUNCTIONS, name);
}
