/**
 * The one place environment variables are read. Entry points call `loadConfig()` once at module
 * scope (or with CLI overrides); nothing else touches `process.env`.
 */
import { totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ValidationError } from "./errors.ts";

/** The package root, so paths work no matter which directory `headstart` is run from. */
export const PACKAGE_ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Each modality's backbone when none is named (each overridable by its env variable below). The
 * image one was chosen by measurement: docs/benchmarks.md, "Which image backbone transfers best".
 */
export const DEFAULT_BACKBONES = {
  text: "glove-100d",
  image: "mobilenet-v2-taps-384",
  audio: "speech-embedding-96-meanmax",
} as const;

/**
 * `--backbones recommended`: the backbones worth embedding a dataset with so that `train --type
 * auto` can choose among them and their `+` sets (docs/benchmarks.md measured each). Text: word
 * vectors and a sentence encoder, which win different tasks and together win whole documents.
 * Images: the default and the most accurate Inception taps. Audio: the one audio backbone that
 * transfers (its mean-pooled twin is half of it).
 */
export const RECOMMENDED_BACKBONES = {
  text: ["glove-100d", "use-lite-512"],
  image: ["mobilenet-v2-taps-384", "inception-v3-taps-1536-149"],
  audio: ["speech-embedding-96-meanmax"],
} as const;

/** `backbones: "recommended"`: the recommended set of the dataset's modality (Config's). */
export const RECOMMENDED = "recommended";

/** Most backbones one ingest embeds with (each is a full pass over the dataset). */
export const MAX_INGEST_BACKBONES = 4;

/**
 * `--backbones` / `backbones=`: ids separated by commas (each once, at most MAX_INGEST_BACKBONES),
 * or `recommended`. Combinations (`a+b`) are not embedded: each part is, and training combines them.
 */
export function parseBackboneList(value: string): string[] | typeof RECOMMENDED {
  const field = "backbones";
  if (value.trim() === RECOMMENDED) return RECOMMENDED;
  const ids = value.split(",").map((s) => s.trim());
  if (ids.length > MAX_INGEST_BACKBONES || ids.some((id) => id === "")) {
    throw new ValidationError(
      `backbones takes 1..${MAX_INGEST_BACKBONES} backbone ids separated by commas, or ${RECOMMENDED}; got ${JSON.stringify(value)}`,
      { field },
    );
  }
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
  if (repeated) throw new ValidationError(`backbones lists ${repeated} twice`, { field });
  return ids;
}

/** A backbone list as `parseBackboneList` reads it, or undefined when it is not one (settings). */
export function tryParseBackboneList(value: string): string[] | typeof RECOMMENDED | undefined {
  try {
    return parseBackboneList(value);
  } catch {
    return undefined;
  }
}

/**
 * A customer id: lower-case words joined by single hyphens. No `--` and no hyphen at either end,
 * so `embed-<id>--` (the job-name prefix IAM scopes by) of one customer can never be a prefix of
 * another's, whatever the ids (`acme` and `acme-eu`). infra/customers.ts holds ids to the same rule.
 */
export const CUSTOMER_ID = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const CUSTOMER_ID_RULE = "use lower-case letters and digits in words joined by single hyphens";

const EnvSchema = z.object({
  HEADSTART_STORE: z.string().min(1).default(".headstart"),
  HEADSTART_S3_ENDPOINT: z.url().optional(),
  /** S3 requests: tries per request, idle-connection and connect timeouts (aws/s3-store.ts `S3_DEFAULTS`). */
  HEADSTART_S3_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).optional(),
  HEADSTART_S3_SOCKET_TIMEOUT_MS: z.coerce.number().int().min(50).max(600_000).optional(),
  HEADSTART_S3_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(50).max(600_000).optional(),
  HEADSTART_MODELS_DIR: z.string().min(1).default(`${PACKAGE_ROOT}.models`),
  HEADSTART_SCRATCH_DIR: z.string().min(1).optional(),
  /** The backbone of text datasets when none is named. */
  HEADSTART_DEFAULT_BACKBONE: z.string().min(1).default(DEFAULT_BACKBONES.text),
  /** The backbone of image datasets when none is named. */
  HEADSTART_DEFAULT_IMAGE_BACKBONE: z.string().min(1).default(DEFAULT_BACKBONES.image),
  HEADSTART_DEFAULT_AUDIO_BACKBONE: z.string().min(1).default(DEFAULT_BACKBONES.audio),
  /** What a manifest dropped into the bucket is embedded with: backbone ids, or `recommended`. */
  HEADSTART_UPLOAD_BACKBONES: z
    .string()
    .min(1)
    .refine((v) => tryParseBackboneList(v) !== undefined, {
      message: `1..${MAX_INGEST_BACKBONES} distinct backbone ids separated by commas, or ${RECOMMENDED}`,
    })
    .optional(),
  /** `false` in the Lambdas: built-in backbones come published in the store, never built there. */
  HEADSTART_BUILD_BACKBONES: z.enum(["true", "false"]).default("true"),
  HEADSTART_LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).optional(),
  /** How long an embedding runner's claim on a shard lasts unless renewed (see embed/lease.ts). */
  HEADSTART_LEASE_TTL_S: z.coerce.number().min(0.2).max(3600).default(60),
  /** Lambda's advanced logging controls: wins over HEADSTART_LOG_LEVEL (Powertools reads it too). */
  AWS_LAMBDA_LOG_LEVEL: z
    .string()
    .transform((v) => v.toUpperCase())
    .pipe(z.enum(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]))
    .optional(),
  /** Set by the Lambda runtime: this process is a Lambda function. */
  AWS_LAMBDA_FUNCTION_NAME: z.string().min(1).optional(),
  /** CloudWatch EMF metrics on stdout: on by default in Lambda only (stdout is the CLI's output). */
  HEADSTART_METRICS: z.enum(["on", "off"]).optional(),
  AWS_REGION: z.string().min(1).optional(),
  /** Where submitted embedding jobs run: this machine, or SageMaker Processing. */
  HEADSTART_RUNNER: z.enum(["local", "sagemaker"]).default("local"),
  HEADSTART_SAGEMAKER_ROLE_ARN: z.string().min(1).optional(),
  HEADSTART_EMBED_IMAGE_URI: z.string().min(1).optional(),
  HEADSTART_EMBED_INSTANCE_TYPE: z.string().min(1).default("ml.g5.xlarge"),
  HEADSTART_EMBED_INSTANCE_COUNT: z.coerce.number().int().min(1).max(100).default(1),
  HEADSTART_EMBED_MAX_RUNTIME_S: z.coerce
    .number()
    .int()
    .min(60)
    .max(5 * 24 * 3600)
    .default(3600),
  HEADSTART_EMBED_VOLUME_GB: z.coerce.number().int().min(1).max(16_384).default(30),
  /** KMS key for the job's volumes and outputs (the customer's key in AWS). */
  HEADSTART_KMS_KEY_ID: z.string().min(1).optional(),
  /** SageMaker API endpoint override (a local stand-in in tests). */
  HEADSTART_SAGEMAKER_ENDPOINT: z.url().optional(),
  /** The customer this deployment belongs to (tags its SageMaker jobs, scopes their IAM). */
  HEADSTART_CUSTOMER: z.string().max(32).regex(CUSTOMER_ID, CUSTOMER_ID_RULE).optional(),
  /** Train Lambda the API hands training requests to (asynchronously); unset: train in process. */
  HEADSTART_TRAIN_FUNCTION_NAME: z.string().min(1).optional(),
  /** Lambda the API hands started batch-prediction jobs to (asynchronously); unset: run in process. */
  HEADSTART_BATCH_FUNCTION_NAME: z.string().min(1).optional(),
  /** The customer's EventBridge bus the platform's events also go to (the Lambdas); unset: webhooks only. */
  HEADSTART_EVENT_BUS_NAME: z.string().min(1).optional(),
  /** A training's wall-clock budget; default 600 in Lambda (its 15 min cap is never hit), 3600 elsewhere. */
  HEADSTART_TRAIN_MAX_SECONDS: z.coerce
    .number()
    .min(1)
    .max(24 * 3600)
    .optional(),
  /** A training's memory budget; default 75% of the Lambda's memory, else half of this machine's. */
  HEADSTART_TRAIN_MAX_MEMORY_MB: z.coerce.number().int().min(16).optional(),
  /** Set by the Lambda runtime: the function's memory in MB. */
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: z.coerce.number().int().min(1).optional(),
  /** Exports larger than this are stored and answered with a download URL (Lambda answers ≤ 6 MB). */
  HEADSTART_EXPORT_INLINE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(5 * 1024 * 1024),
  /** The scheduled drift check reads the inputs captured within this many days (default 7). */
  HEADSTART_DRIFT_WINDOW_DAYS: z.coerce.number().min(0.01).max(365).optional(),
});

export interface Config {
  /** A directory path, `file://…`, or `s3://bucket[/prefix]`. */
  store: string;
  /** S3-compatible endpoint for non-AWS servers (radosgw, MinIO…). */
  s3Endpoint?: string;
  /** Bounded retries and timeouts of S3 requests; unset fields take `S3_DEFAULTS`. */
  s3Client?: { maxAttempts?: number; socketTimeoutMs?: number; connectTimeoutMs?: number };
  region?: string;
  /** Where converted pretrained weights are built and cached (git-ignored). */
  modelsDir: string;
  /** Local scratch space for downloaded models; defaults to the OS temp dir. */
  scratchDir?: string;
  /** Text datasets' backbone when none is named (see backbone/defaults.ts). */
  defaultBackbone: string;
  /** Image datasets' backbone when none is named. */
  defaultImageBackbone: string;
  /** Audio datasets' backbone when none is named. */
  defaultAudioBackbone: string;
  /**
   * What an upload notification (a manifest dropped into the bucket) embeds with; unset: the
   * default backbone of the rows' modality.
   */
  uploadBackbones?: string[] | typeof RECOMMENDED;
  /** Build a missing built-in backbone from packaged weights (local use), or only read the store. */
  buildBackbones: boolean;
  /** AWS_LAMBDA_LOG_LEVEL, else HEADSTART_LOG_LEVEL, else `info`. */
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  /** Whether EMF metrics are printed (HEADSTART_METRICS; on by default in Lambda only). */
  metrics: boolean;
  /** The Lambda function this process runs as (AWS_LAMBDA_FUNCTION_NAME), if any. */
  lambdaFunction?: string;
  /** Seconds a shard lease lasts unless renewed; a crashed runner's shards wait this long at most. */
  leaseTtlSeconds: number;
  runner: "local" | "sagemaker";
  /** Present when `runner` is `sagemaker`; every required field named by its variable. */
  sagemaker?: SageMakerSettings;
  trainFunctionName?: string;
  batchFunctionName?: string;
  /** The EventBridge bus events are put on (`aws/eventbridge-publisher.ts`), if any. */
  eventBusName?: string;
  /** This deployment's customer: prefixes job names (`embed-<customer>--…`). */
  customer?: string;
  /** Wall-clock and memory budget of one training (see learn/budget.ts). */
  trainMaxSeconds: number;
  trainMaxMemoryMb: number;
  /** Exports over this many bytes go to the store and are answered with a download URL. */
  exportInlineMaxBytes: number;
  /** The scheduled drift check's window of captured inputs, in days (quality/drift-schedule.ts). */
  driftWindowDays?: number;
}

export interface SageMakerSettings {
  roleArn: string;
  imageUri: string;
  instanceType: string;
  instanceCount: number;
  maxRuntimeSeconds: number;
  volumeSizeGb: number;
  kmsKeyId?: string;
  endpoint?: string;
  /** Tagged on every job as `headstart:customer`, which the stack's IAM conditions check. */
  customer?: string;
}

/** The environment that makes a child process (a batch worker) see this same configuration. */
export function configToEnv(config: Config): Record<string, string> {
  const env: Record<string, string> = {
    HEADSTART_STORE: config.store,
    HEADSTART_MODELS_DIR: config.modelsDir,
    HEADSTART_DEFAULT_BACKBONE: config.defaultBackbone,
    HEADSTART_DEFAULT_IMAGE_BACKBONE: config.defaultImageBackbone,
    HEADSTART_DEFAULT_AUDIO_BACKBONE: config.defaultAudioBackbone,
    ...(config.uploadBackbones
      ? {
          HEADSTART_UPLOAD_BACKBONES:
            config.uploadBackbones === RECOMMENDED ? RECOMMENDED : config.uploadBackbones.join(","),
        }
      : {}),
    HEADSTART_LOG_LEVEL: config.logLevel,
    HEADSTART_LEASE_TTL_S: String(config.leaseTtlSeconds),
  };
  if (config.s3Endpoint) env.HEADSTART_S3_ENDPOINT = config.s3Endpoint;
  const s3 = config.s3Client ?? {};
  if (s3.maxAttempts !== undefined) env.HEADSTART_S3_MAX_ATTEMPTS = String(s3.maxAttempts);
  if (s3.socketTimeoutMs !== undefined) env.HEADSTART_S3_SOCKET_TIMEOUT_MS = String(s3.socketTimeoutMs);
  if (s3.connectTimeoutMs !== undefined) env.HEADSTART_S3_CONNECT_TIMEOUT_MS = String(s3.connectTimeoutMs);
  if (config.region) env.AWS_REGION = config.region;
  if (config.scratchDir) env.HEADSTART_SCRATCH_DIR = config.scratchDir;
  return env;
}

/** Lambda's levels in ours: TRACE is our finest (debug), FATAL our coarsest (error). */
function lambdaLogLevel(level: string | undefined): Config["logLevel"] | undefined {
  if (level === undefined) return undefined;
  if (level === "TRACE") return "debug";
  if (level === "FATAL") return "error";
  return level.toLowerCase() as Config["logLevel"];
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
    s3Client: {
      maxAttempts: e.HEADSTART_S3_MAX_ATTEMPTS,
      socketTimeoutMs: e.HEADSTART_S3_SOCKET_TIMEOUT_MS,
      connectTimeoutMs: e.HEADSTART_S3_CONNECT_TIMEOUT_MS,
    },
    region: e.AWS_REGION,
    modelsDir: e.HEADSTART_MODELS_DIR,
    scratchDir: e.HEADSTART_SCRATCH_DIR,
    defaultBackbone: e.HEADSTART_DEFAULT_BACKBONE,
    defaultImageBackbone: e.HEADSTART_DEFAULT_IMAGE_BACKBONE,
    defaultAudioBackbone: e.HEADSTART_DEFAULT_AUDIO_BACKBONE,
    uploadBackbones: e.HEADSTART_UPLOAD_BACKBONES
      ? tryParseBackboneList(e.HEADSTART_UPLOAD_BACKBONES)
      : undefined,
    buildBackbones: e.HEADSTART_BUILD_BACKBONES === "true",
    logLevel: lambdaLogLevel(e.AWS_LAMBDA_LOG_LEVEL) ?? e.HEADSTART_LOG_LEVEL ?? "info",
    leaseTtlSeconds: e.HEADSTART_LEASE_TTL_S,
    metrics: e.HEADSTART_METRICS ? e.HEADSTART_METRICS === "on" : e.AWS_LAMBDA_FUNCTION_NAME !== undefined,
    lambdaFunction: e.AWS_LAMBDA_FUNCTION_NAME,
    runner: e.HEADSTART_RUNNER,
    trainFunctionName: e.HEADSTART_TRAIN_FUNCTION_NAME,
    batchFunctionName: e.HEADSTART_BATCH_FUNCTION_NAME,
    eventBusName: e.HEADSTART_EVENT_BUS_NAME,
    customer: e.HEADSTART_CUSTOMER,
    trainMaxSeconds: e.HEADSTART_TRAIN_MAX_SECONDS ?? (e.AWS_LAMBDA_FUNCTION_NAME ? 600 : 3600),
    trainMaxMemoryMb:
      e.HEADSTART_TRAIN_MAX_MEMORY_MB ??
      Math.floor(
        e.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ? e.AWS_LAMBDA_FUNCTION_MEMORY_SIZE * 0.75 : totalmem() / 2 ** 21,
      ),
    exportInlineMaxBytes: e.HEADSTART_EXPORT_INLINE_MAX_BYTES,
    driftWindowDays: e.HEADSTART_DRIFT_WINDOW_DAYS,
  };
  if (e.HEADSTART_RUNNER === "sagemaker") {
    for (const name of ["HEADSTART_SAGEMAKER_ROLE_ARN", "HEADSTART_EMBED_IMAGE_URI"] as const) {
      if (!e[name])
        throw new ValidationError(
          `environment variable ${name} is required when HEADSTART_RUNNER=sagemaker`,
          { field: name },
        );
    }
    if (!e.HEADSTART_STORE.startsWith("s3://")) {
      throw new ValidationError("HEADSTART_RUNNER=sagemaker needs an s3:// HEADSTART_STORE", {
        field: "HEADSTART_STORE",
      });
    }
    config.sagemaker = {
      roleArn: e.HEADSTART_SAGEMAKER_ROLE_ARN!,
      imageUri: e.HEADSTART_EMBED_IMAGE_URI!,
      instanceType: e.HEADSTART_EMBED_INSTANCE_TYPE,
      instanceCount: e.HEADSTART_EMBED_INSTANCE_COUNT,
      maxRuntimeSeconds: e.HEADSTART_EMBED_MAX_RUNTIME_S,
      volumeSizeGb: e.HEADSTART_EMBED_VOLUME_GB,
      kmsKeyId: e.HEADSTART_KMS_KEY_ID,
      endpoint: e.HEADSTART_SAGEMAKER_ENDPOINT,
      customer: e.HEADSTART_CUSTOMER,
    };
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (config as unknown as Record<string, unknown>)[k] = v;
  }
  return config;
}
