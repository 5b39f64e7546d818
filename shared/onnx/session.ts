/**
 * The one place that creates onnxruntime `InferenceSession`s. Sessions are expensive (the GloVe
 * model alone is 136 MB of weights) and safe to share between concurrent `run` calls, so each
 * model is opened once per process and every caller awaits the same promise.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { InferenceSession, listSupportedBackends } from "onnxruntime-node";
import { ValidationError } from "../errors.ts";

/** Embedders build their feeds with these; only `shared/onnx/` imports onnxruntime itself. */
export { type InferenceSession, Tensor } from "onnxruntime-node";

export type ExecutionProvider = "cuda" | "cpu";

export interface SessionOptions {
  /** In order of preference; default: CUDA when its provider library is installed, then CPU. */
  executionProviders?: ExecutionProvider[];
  /** Threads one `run` may use; default: onnxruntime's choice (all cores). */
  intraOpNumThreads?: number;
}

const OPTION_NAMES = ["executionProviders", "intraOpNumThreads"] as const;
const PROVIDERS: readonly ExecutionProvider[] = ["cuda", "cpu"];

interface Entry {
  promise: Promise<InferenceSession>;
  providers?: ExecutionProvider[];
}
const sessions = new Map<string, Entry>();

let cudaAvailable: boolean | undefined;

/**
 * onnxruntime-node lists `cuda` even when its provider library was never downloaded (`bundled:
 * false`, the install script is skipped offline), so also look for the library where the binding
 * loads it from; otherwise every session would pay for a failed CUDA attempt.
 */
export function isCudaAvailable(): boolean {
  if (cudaAvailable !== undefined) return cudaAvailable;
  const cuda = listSupportedBackends().find((b) => b.name === "cuda");
  cudaAvailable = cuda !== undefined && (cuda.bundled || cudaLibraryInstalled());
  return cudaAvailable;
}

function cudaLibraryInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const pkgDir = dirname(require.resolve("onnxruntime-node/package.json"));
    const binDir = join(pkgDir, "bin", "napi-v6", process.platform, process.arch);
    return existsSync(join(binDir, "libonnxruntime_providers_cuda.so"));
  } catch {
    return false;
  }
}

function validateOptions(opts: SessionOptions): void {
  for (const k of Object.keys(opts)) {
    if (!(OPTION_NAMES as readonly string[]).includes(k)) {
      throw new ValidationError(
        `unknown session option ${JSON.stringify(k)}; valid: ${OPTION_NAMES.join(", ")}`,
        {
          field: k,
        },
      );
    }
  }
  const eps = opts.executionProviders;
  if (eps !== undefined) {
    if (!Array.isArray(eps) || eps.length === 0) {
      throw new ValidationError("executionProviders must be a non-empty array", {
        field: "executionProviders",
      });
    }
    for (const ep of eps) {
      if (!PROVIDERS.includes(ep)) {
        throw new ValidationError(
          `unknown execution provider ${JSON.stringify(ep)}; valid: ${PROVIDERS.join(", ")}`,
          { field: "executionProviders" },
        );
      }
    }
  }
  const t = opts.intraOpNumThreads;
  if (t !== undefined && (!Number.isInteger(t) || t < 0 || t > 1024)) {
    throw new ValidationError("intraOpNumThreads must be an integer in [0, 1024] (0 = default)", {
      field: "intraOpNumThreads",
    });
  }
}

async function create(modelPath: string, opts: SessionOptions, entry: Entry): Promise<InferenceSession> {
  const requested = opts.executionProviders;
  const preferred: ExecutionProvider[] = requested ?? (isCudaAvailable() ? ["cuda", "cpu"] : ["cpu"]);
  const base: InferenceSession.SessionOptions = {
    graphOptimizationLevel: "all",
    ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
  };
  try {
    const s = await InferenceSession.create(modelPath, { ...base, executionProviders: preferred });
    entry.providers = preferred;
    return s;
  } catch (err) {
    // A broken CUDA install should cost speed, not availability, unless CUDA was asked for explicitly.
    if (preferred[0] !== "cuda" || !preferred.includes("cpu")) throw err;
    const s = await InferenceSession.create(modelPath, { ...base, executionProviders: ["cpu"] });
    entry.providers = ["cpu"];
    return s;
  }
}

/**
 * The session for `modelPath`, created once per `key` (use the model's sha256 so two paths to the
 * same bytes share a session). Options apply only to the call that creates the session. A failed
 * creation is forgotten so that a later call can retry.
 */
export function getSession(
  modelPath: string,
  key: string,
  opts: SessionOptions = {},
): Promise<InferenceSession> {
  const existing = sessions.get(key);
  if (existing) return existing.promise;
  try {
    validateOptions(opts);
  } catch (err) {
    return Promise.reject(err);
  }
  const entry = {} as Entry;
  entry.promise = create(modelPath, opts, entry);
  sessions.set(key, entry);
  entry.promise.catch(() => {
    if (sessions.get(key) === entry) sessions.delete(key);
  });
  return entry.promise;
}

/** The providers the session under `key` was created with, once it exists (for logs and `/health`). */
export function sessionProviders(key: string): ExecutionProvider[] | undefined {
  return sessions.get(key)?.providers;
}

/** Closes every session (tests, shutdown). Sessions still being created are closed once they exist. */
export async function releaseSessions(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(
    all.map(async (e) => {
      try {
        await (await e.promise).release();
      } catch {
        // A session that failed to open has nothing to release.
      }
    }),
  );
}
