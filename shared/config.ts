/**
 * The one place environment variables are read. Entry points call `loadConfig()` once at module
 * scope (or with CLI overrides); nothing else touches `process.env`.
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ValidationError } from "./errors.ts";

/** The package root, so paths work no matter which directory `headstart` is run from. */
export const PACKAGE_ROOT = fileURLToPath(new URL("..", import.meta.url));

const EnvSchema = z.object({
  HEADSTART_STORE: z.string().min(1).default(".headstart"),
  HEADSTART_S3_ENDPOINT: z.url().optional(),
  HEADSTART_MODELS_DIR: z.string().min(1).default(`${PACKAGE_ROOT}.models`),
  HEADSTART_SCRATCH_DIR: z.string().min(1).optional(),
  HEADSTART_DEFAULT_BACKBONE: z.string().min(1).default("glove-100d"),
  HEADSTART_LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  AWS_REGION: z.string().min(1).optional(),
});

export interface Config {
  /** A directory path, `file://…`, or `s3://bucket[/prefix]`. */
  store: string;
  /** S3-compatible endpoint for non-AWS servers (radosgw, MinIO…). */
  s3Endpoint?: string;
  region?: string;
  /** Where converted pretrained weights are built and cached (git-ignored). */
  modelsDir: string;
  /** Local scratch space for downloaded models; defaults to the OS temp dir. */
  scratchDir?: string;
  defaultBackbone: string;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
}

/** The environment that makes a child process (a batch worker) see this same configuration. */
export function configToEnv(config: Config): Record<string, string> {
  const env: Record<string, string> = {
    HEADSTART_STORE: config.store,
    HEADSTART_MODELS_DIR: config.modelsDir,
    HEADSTART_DEFAULT_BACKBONE: config.defaultBackbone,
    HEADSTART_LOG_LEVEL: config.logLevel,
  };
  if (config.s3Endpoint) env.HEADSTART_S3_ENDPOINT = config.s3Endpoint;
  if (config.region) env.AWS_REGION = config.region;
  if (config.scratchDir) env.HEADSTART_SCRATCH_DIR = config.scratchDir;
  return env;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0] ?? "environment");
    throw new ValidationError(`environment variable ${name} is invalid: ${issue.message}`, { field: name });
  }
  const e = parsed.data;
  const config: Config = {
    store: e.HEADSTART_STORE,
    s3Endpoint: e.HEADSTART_S3_ENDPOINT,
    region: e.AWS_REGION,
    modelsDir: e.HEADSTART_MODELS_DIR,
    scratchDir: e.HEADSTART_SCRATCH_DIR,
    defaultBackbone: e.HEADSTART_DEFAULT_BACKBONE,
    logLevel: e.HEADSTART_LOG_LEVEL,
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (config as unknown as Record<string, unknown>)[k] = v;
  }
  return config;
}
