/**
 * Every storage key the platform reads or writes is built here and parsed here, so no other
 * module concatenates paths and no user-supplied name can escape its prefix.
 */
import { InvalidNameError, ValidationError } from "./errors.ts";

/** Every user-chosen name: dataset, backbone, head, version, job, alias. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9\-_.]{0,62}$/;
export const NAME_RULE = "use 1-63 characters from [a-z0-9-_.], starting with a letter or digit";
const NAME = NAME_PATTERN;

export type NameKind = "dataset" | "backbone" | "head" | "version" | "job" | "alias";

export function isValidName(value: string): boolean {
  return NAME.test(value);
}

export function assertName(kind: NameKind, value: string, field?: string): string {
  if (typeof value !== "string" || !NAME.test(value)) throw new InvalidNameError(kind, String(value), field);
  return value;
}

/**
 * Datasets named `bp-input-<hash>` are made from batch-prediction inputs (predictions/input.ts);
 * `gc` removes them once no batch job refers to them, so no user may take such a name.
 */
export const BATCH_INPUT_PREFIX = "bp-input-";

/** A dataset name a user chose (upload, ingest, import): a valid name outside the reserved prefix. */
export function assertUserDatasetName(value: string, field = "dataset"): string {
  assertName("dataset", value, field);
  if (value.startsWith(BATCH_INPUT_PREFIX))
    throw new ValidationError(
      `${field} ${JSON.stringify(value)}: names starting ${BATCH_INPUT_PREFIX} are reserved for batch-prediction inputs`,
      { field },
    );
  return value;
}

/**
 * Why `key` cannot name an object in a store, or undefined when it can: no empty, `.` or `..`
 * segment, no leading `/`, no control character (a NUL ends a path in the kernel), at most
 * 1,024 UTF-8 bytes (S3's limit). Both stores and every caller-supplied key are held to it.
 */
export function storageKeyProblem(key: string): string | undefined {
  if (typeof key !== "string" || key === "") return "is empty";
  if (key.startsWith("/")) return "starts with /";
  if (key.split("/").some((p) => p === "" || p === "." || p === "..")) return "has an empty, . or .. segment";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(key)) return "holds a control character";
  if (Buffer.byteLength(key) > 1024) return "is longer than 1024 bytes";
  return undefined;
}

export type ManifestFormat = "jsonl" | "csv";

/** Zero-padded so that lexicographic listing order is numeric order. */
export function shardName(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 99_999) {
    throw new ValidationError(`shard index out of range: ${index}`, { field: "shard" });
  }
  return String(index).padStart(5, "0");
}

/** A path below `datasets/<dataset>/files/`, as referenced by manifest rows. */
export function assertRelativeFilePath(path: string, field = "file"): string {
  const parts = path.split("/");
  const ok =
    path.length > 0 &&
    path.length <= 1024 &&
    // `.~` marks the filesystem store's temporary and lock files.
    parts.every((p) => p.length > 0 && p !== "." && p !== ".." && !p.includes("\\") && !p.includes(".~")) &&
    !path.includes("\0");
  if (!ok) throw new ValidationError(`invalid file path ${JSON.stringify(path)}`, { field });
  return path;
}

/** The top-level prefixes `headstart ls` walks (`lifecycle/`); each holds one resource's keys. */
export const listPrefixes = {
  datasets: "datasets/",
  heads: "heads/",
  backbones: "backbones/",
  jobs: "jobs/",
  cache: "cache/",
  /** Also walked by `gc` (lifecycle/gc.ts). */
  exports: "exports/",
  predictions: "predictions/",
  idempotency: "idempotency/",
} as const;

export const keys = {
  datasetPrefix: (dataset: string) => `datasets/${assertName("dataset", dataset)}/`,
  manifest: (dataset: string, format: ManifestFormat) =>
    `datasets/${assertName("dataset", dataset)}/manifest.${format}`,
  datasetFile: (dataset: string, path: string) =>
    `datasets/${assertName("dataset", dataset)}/files/${assertRelativeFilePath(path)}`,
  datasetStatus: (dataset: string) => `datasets/${assertName("dataset", dataset)}/_status.json`,
  /**
   * The newest upload event applied to one manifest key (its S3 `sequencer`), so a late or
   * repeated notification of an older upload is recognized and skipped.
   */
  manifestEvents: (dataset: string, format: ManifestFormat) =>
    `datasets/${assertName("dataset", dataset)}/_events/manifest.${format}.json`,
  /**
   * The validated rows of one manifest version (named by their sha256); `_status.json` says
   * which version is current, so switching versions is one atomic write.
   */
  datasetRows: (dataset: string, version: string) => {
    if (!/^[0-9a-f]{64}$/.test(version))
      throw new ValidationError(`invalid dataset version ${version}`, { field: "version" });
    return `datasets/${assertName("dataset", dataset)}/_rows/${version}.jsonl`;
  },

  /**
   * The rows of the last `import-embeddings` (ids, labels, splits, texts; the vectors go to the
   * cache): the source its dataset version records, as an upload's is the manifest.
   */
  datasetImport: (dataset: string) => `datasets/${assertName("dataset", dataset)}/_import.jsonl`,
  /**
   * The 2-D map of one dataset version's embeddings under one backbone: derived
   * from the cache, so it can always be recomputed; written whole (`embed/dataset-map.ts`).
   */
  datasetMap: (dataset: string, backbone: string, version: string) => {
    if (!/^[0-9a-f]{64}$/.test(version))
      throw new ValidationError(`invalid dataset version ${version}`, { field: "version" });
    return `datasets/${assertName("dataset", dataset)}/_map/${assertName("backbone", backbone)}.${version}.json`;
  },

  backbonePrefix: (backbone: string) => `backbones/${assertName("backbone", backbone)}/`,
  backboneSpec: (backbone: string) => `backbones/${assertName("backbone", backbone)}/backbone.json`,
  backboneAsset: (backbone: string, file: string) => {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,127}$/.test(file)) {
      throw new ValidationError(`invalid backbone asset name ${JSON.stringify(file)}`, { field: "asset" });
    }
    return `backbones/${assertName("backbone", backbone)}/${file}`;
  },

  /** Every dataset's cache under one backbone. */
  cacheBackbonePrefix: (backbone: string) => `cache/${assertName("backbone", backbone)}/`,
  cachePrefix: (backbone: string, dataset: string) =>
    `cache/${assertName("backbone", backbone)}/${assertName("dataset", dataset)}/`,
  shardVectors: (backbone: string, dataset: string, shard: number) =>
    `${keys.cachePrefix(backbone, dataset)}shard-${shardName(shard)}.npy`,
  shardRows: (backbone: string, dataset: string, shard: number) =>
    `${keys.cachePrefix(backbone, dataset)}shard-${shardName(shard)}.rows.jsonl`,
  shardCommit: (backbone: string, dataset: string, shard: number) =>
    `${keys.cachePrefix(backbone, dataset)}_commit-${shardName(shard)}.json`,
  /** The items a job will embed into this shard; created create-only, so it also reserves the index. */
  shardPlan: (backbone: string, dataset: string, shard: number) =>
    `${keys.cachePrefix(backbone, dataset)}_plan-${shardName(shard)}.json`,
  /** Who is embedding this shard now, until when (see `embed/lease.ts`). */
  shardLease: (backbone: string, dataset: string, shard: number) =>
    `${keys.cachePrefix(backbone, dataset)}_lease-${shardName(shard)}.json`,

  headPrefix: (head: string) => `heads/${assertName("head", head)}/`,
  headVersionPrefix: (head: string) => `heads/${assertName("head", head)}/versions/`,
  /** One version's files (`head.json`, `report.json`). */
  headVersionFiles: (head: string, version: string) =>
    `heads/${assertName("head", head)}/versions/${assertName("version", version)}/`,
  headAliasPrefix: (head: string) => `heads/${assertName("head", head)}/aliases/`,
  headFile: (head: string, version: string, file: "head.json" | "report.json") =>
    `heads/${assertName("head", head)}/versions/${assertName("version", version)}/${file}`,
  headAlias: (head: string, alias: string) =>
    `heads/${assertName("head", head)}/aliases/${assertName("alias", alias)}.json`,
  /** A head's corrections (`feedback/records.ts`): one create-only record each. */
  headFeedbackPrefix: (head: string) => `heads/${assertName("head", head)}/feedback/`,
  headFeedback: (head: string, id: string) =>
    `heads/${assertName("head", head)}/feedback/${assertFeedbackId(id)}.json`,
  /** Images of a head's corrections (`feedback/files.ts`), content-addressed, create-only. */
  headFeedbackImage: (head: string, file: string) =>
    `heads/${assertName("head", head)}/feedback-images/${assertFeedbackImageFile(file)}`,
  /** Audio of a head's corrections (`feedback/files.ts`), content-addressed, create-only. */
  headFeedbackAudio: (head: string, file: string) =>
    `heads/${assertName("head", head)}/feedback-audio/${assertFeedbackAudioFile(file)}`,
  /** Inputs of online predictions a head keeps (`capture`), by prediction id (`feedback/capture.ts`). */
  headCapturePrefix: (head: string) => `heads/${assertName("head", head)}/captures/`,
  headCapture: (head: string, predictionId: string) =>
    `heads/${assertName("head", head)}/captures/${assertOnlinePredictionId(predictionId)}.json`,
  /** The scheduled drift check's last outcome for a head (`quality/drift-state.ts`), changed only by CAS. */
  headDriftState: (head: string) => `heads/${assertName("head", head)}/drift-state.json`,
  /** Every stored export of a head, or of one of its versions. */
  headExportsOf: (head: string, version?: string) =>
    `exports/${assertName("head", head)}/${version === undefined ? "" : `${assertName("version", version)}/`}`,
  /** Stored exports of one version (too large to answer inline); a version is immutable, so they never change. */
  headExportPrefix: (head: string, version: string, fused: boolean) =>
    `exports/${assertName("head", head)}/${assertName("version", version)}/${fused ? "fused" : "alone"}-`,
  /** Content-addressed: `exports/<head>/<version>/<fused|alone>-<sha256>.onnx`. */
  headExport: (head: string, version: string, fused: boolean, sha256: string) => {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return `${keys.headExportPrefix(head, version, fused)}${sha256}.onnx`;
  },

  job: (job: string) => `jobs/${assertName("job", job)}.json`,
  /** A SageMaker input manifest listing exactly the job's plan objects. */
  jobPlanManifest: (job: string) => `jobs/${assertName("job", job)}/plans.manifest.json`,
  /** What a job keeps beside its record (its plans manifest). */
  jobPrefix: (job: string) => `jobs/${assertName("job", job)}/`,
  /** Batch-prediction jobs parked until this embedding job ends (`predictions/waits.ts`), one marker each. */
  jobWaitersPrefix: (job: string) => `jobs/${assertName("job", job)}/waiters/`,
  jobWaiter: (job: string, batchJob: string) =>
    `jobs/${assertName("job", job)}/waiters/${assertName("job", batchJob)}.json`,

  /**
   * The bucket door for batch predictions: a manifest uploaded here starts a job scoring it with
   * the head's live version (`functions/ingest/handler.ts`). The uploader's own key.
   */
  batchUpload: (head: string, name: string, format: ManifestFormat) =>
    `batch/${assertName("head", head)}/${assertName("dataset", name, "name")}.${format}`,
  /** What became of one `batchUpload`: the job it started, or why it was refused. */
  batchUploadStatus: (head: string, name: string, format: ManifestFormat) =>
    `batch/${assertName("head", head)}/_status/${assertName("dataset", name, "name")}.${format}.json`,

  /** One batch-prediction job's folder: its record, its output parts, its summary. */
  predictionsPrefix: (job: string) => `predictions/${assertName("job", job)}/`,
  /** The job's record (`predictions/job.ts`), changed only by compare-and-swap. */
  batchJob: (job: string) => `${keys.predictionsPrefix(job)}_job.json`,
  predictionsPart: (job: string, part: number) =>
    `${keys.predictionsPrefix(job)}part-${shardName(part)}.jsonl`,
  predictionsErrors: (job: string, part: number) =>
    `${keys.predictionsPrefix(job)}errors-${shardName(part)}.jsonl`,
  /** Written after every part: the commit marker of the job's output. */
  predictionsSummary: (job: string) => `${keys.predictionsPrefix(job)}_summary.json`,

  /** One idempotency record (`shared/idempotency.ts`): a scope and the sha256 of the request. */
  idempotencyRecord: (scope: string, hash: string) => {
    if (!/^[0-9a-f]{64}$/.test(hash))
      throw new ValidationError(`invalid idempotency hash ${hash}`, { field: "idempotencyKey" });
    return `idempotency/${assertName("job", scope)}/${hash}.json`;
  },

  /**
   * The customer's API keys (hashes, scopes, customer; never a usable key), changed only by
   * conditional writes (`auth/key-store.ts`). Under `_system/`, which no name can reach.
   */
  apiKeys: () => "_system/api-keys.json",
  /** The customer's webhook endpoints and their signing secrets (`events/registrations.ts`). */
  webhooks: () => "_system/webhooks.json",
  webhookDeliveriesPrefix: () => "_system/webhook-deliveries/",
  /** One event's delivery to one endpoint: its attempts and outcome (`events/delivery.ts`). */
  webhookDelivery: (eventId: string, webhookId: string) => {
    if (!/^evt_[0-9a-f]{32}$/.test(eventId))
      throw new ValidationError(`invalid event id ${eventId}`, { field: "event" });
    if (!/^wh_[0-9a-f]{16}$/.test(webhookId))
      throw new ValidationError(`invalid webhook id ${webhookId}`, { field: "webhook" });
    return `_system/webhook-deliveries/${eventId}/${webhookId}.json`;
  },
  /**
   * Deliveries not settled yet, one marker each (`{createdAt}`, `events/delivery.ts`), so a scheduled retry
   * lists these rather than the whole delivery log.
   */
  webhookPendingPrefix: () => "_system/webhook-pending/",
  webhookPending: (eventId: string, webhookId: string) =>
    keys
      .webhookDelivery(eventId, webhookId)
      .replace("_system/webhook-deliveries/", "_system/webhook-pending/"),
} as const;

export type ParsedKey =
  | { kind: "manifest"; dataset: string; format: ManifestFormat }
  | { kind: "datasetFile"; dataset: string; path: string }
  | { kind: "datasetStatus"; dataset: string }
  | { kind: "manifestEvents"; dataset: string; format: ManifestFormat }
  | { kind: "datasetRows"; dataset: string; version: string }
  | { kind: "datasetImport"; dataset: string }
  | { kind: "datasetMap"; dataset: string; backbone: string; version: string }
  | { kind: "backboneSpec"; backbone: string }
  | { kind: "backboneAsset"; backbone: string; file: string }
  | {
      kind: "shardVectors" | "shardRows" | "shardCommit" | "shardPlan" | "shardLease";
      backbone: string;
      dataset: string;
      shard: number;
    }
  | {
      kind: "headFile";
      head: string;
      version: string;
      file: "head.json" | "report.json";
    }
  | { kind: "headAlias"; head: string; alias: string }
  | { kind: "headExport"; head: string; version: string; fused: boolean; sha256: string }
  | { kind: "job"; job: string }
  | { kind: "jobPlanManifest"; job: string }
  | { kind: "jobWaiter"; job: string; batchJob: string }
  | { kind: "batchUpload" | "batchUploadStatus"; head: string; name: string; format: ManifestFormat }
  | { kind: "batchJob" | "predictionsSummary"; job: string }
  | { kind: "predictionsPart" | "predictionsErrors"; job: string; part: number }
  | { kind: "idempotencyRecord"; scope: string; hash: string }
  | { kind: "apiKeys" }
  | { kind: "headFeedback"; head: string; id: string }
  | { kind: "headCapture"; head: string; predictionId: string }
  | { kind: "headDriftState"; head: string }
  | { kind: "headFeedbackImage"; head: string; file: string }
  | { kind: "headFeedbackAudio"; head: string; file: string }
  | { kind: "webhooks" }
  | { kind: "webhookDelivery" | "webhookPending"; event: string; webhook: string };

/** A feedback record's id: `fb-<UTC yyyymmddHHMMSSmmm>-<8 hex>`, so names sort by creation time. */
const FEEDBACK_ID = "fb-[0-9]{17}-[0-9a-f]{8}";
/** An online prediction's id: `p-<24 hex>` (a batch prediction's is `<job>:<row id>`). */
const ONLINE_PREDICTION_ID = "p-[0-9a-f]{24}";

/** A feedback image's file name: `<sha256 of its bytes>.<jpg|png|webp|gif>`. */
const FEEDBACK_IMAGE_FILE = "[0-9a-f]{64}\\.(?:jpg|png|webp|gif)";

export function assertFeedbackImageFile(file: string): string {
  if (!new RegExp(`^${FEEDBACK_IMAGE_FILE}$`).test(file)) {
    throw new ValidationError(`invalid feedback image ${JSON.stringify(file)}`, { field: "image" });
  }
  return file;
}

/** A feedback audio file's name: `<sha256 of its bytes>.<wav|flac|mp3|ogg>`. */
const FEEDBACK_AUDIO_FILE = "[0-9a-f]{64}\\.(?:wav|flac|mp3|ogg)";

export function assertFeedbackAudioFile(file: string): string {
  if (!new RegExp(`^${FEEDBACK_AUDIO_FILE}$`).test(file)) {
    throw new ValidationError(`invalid feedback audio ${JSON.stringify(file)}`, { field: "audio" });
  }
  return file;
}

export function isFeedbackId(id: string): boolean {
  return new RegExp(`^${FEEDBACK_ID}$`).test(id);
}

export function assertFeedbackId(id: string): string {
  if (!isFeedbackId(id)) {
    throw new ValidationError(`invalid feedback id ${JSON.stringify(id)}`, { field: "id" });
  }
  return id;
}

export function assertOnlinePredictionId(id: string): string {
  if (!new RegExp(`^${ONLINE_PREDICTION_ID}$`).test(id)) {
    throw new ValidationError(`invalid prediction id ${JSON.stringify(id)}`, { field: "predictionId" });
  }
  return id;
}

const N = "([a-z0-9][a-z0-9\\-_.]{0,62})";
const SHARD = "(\\d{5})";
const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => ParsedKey]> = [
  [
    new RegExp(`^datasets/${N}/manifest\\.(jsonl|csv)$`),
    (m) => ({ kind: "manifest", dataset: m[1], format: m[2] as ManifestFormat }),
  ],
  [new RegExp(`^datasets/${N}/files/(.+)$`), (m) => ({ kind: "datasetFile", dataset: m[1], path: m[2] })],
  [new RegExp(`^datasets/${N}/_status\\.json$`), (m) => ({ kind: "datasetStatus", dataset: m[1] })],
  [
    new RegExp(`^datasets/${N}/_events/manifest\\.(jsonl|csv)\\.json$`),
    (m) => ({ kind: "manifestEvents", dataset: m[1], format: m[2] as ManifestFormat }),
  ],
  [
    new RegExp(`^datasets/${N}/_rows/([0-9a-f]{64})\\.jsonl$`),
    (m) => ({ kind: "datasetRows", dataset: m[1], version: m[2] }),
  ],
  [new RegExp(`^datasets/${N}/_import\\.jsonl$`), (m) => ({ kind: "datasetImport", dataset: m[1] })],
  [
    new RegExp(`^datasets/${N}/_map/${N}\\.([0-9a-f]{64})\\.json$`),
    (m) => ({ kind: "datasetMap", dataset: m[1], backbone: m[2], version: m[3] }),
  ],
  [new RegExp(`^backbones/${N}/backbone\\.json$`), (m) => ({ kind: "backboneSpec", backbone: m[1] })],
  [
    new RegExp(`^backbones/${N}/([a-zA-Z0-9][a-zA-Z0-9\\-_.]{0,127})$`),
    (m) => ({ kind: "backboneAsset", backbone: m[1], file: m[2] }),
  ],
  [
    new RegExp(`^cache/${N}/${N}/shard-${SHARD}\\.npy$`),
    (m) => ({ kind: "shardVectors", backbone: m[1], dataset: m[2], shard: Number(m[3]) }),
  ],
  [
    new RegExp(`^cache/${N}/${N}/shard-${SHARD}\\.rows\\.jsonl$`),
    (m) => ({ kind: "shardRows", backbone: m[1], dataset: m[2], shard: Number(m[3]) }),
  ],
  [
    new RegExp(`^cache/${N}/${N}/_commit-${SHARD}\\.json$`),
    (m) => ({ kind: "shardCommit", backbone: m[1], dataset: m[2], shard: Number(m[3]) }),
  ],
  [
    new RegExp(`^cache/${N}/${N}/_plan-${SHARD}\\.json$`),
    (m) => ({ kind: "shardPlan", backbone: m[1], dataset: m[2], shard: Number(m[3]) }),
  ],
  [
    new RegExp(`^cache/${N}/${N}/_lease-${SHARD}\\.json$`),
    (m) => ({ kind: "shardLease", backbone: m[1], dataset: m[2], shard: Number(m[3]) }),
  ],
  [
    new RegExp(`^heads/${N}/versions/${N}/(head\\.json|report\\.json)$`),
    (m) => ({ kind: "headFile", head: m[1], version: m[2], file: m[3] as "head.json" }),
  ],
  [new RegExp(`^heads/${N}/aliases/${N}\\.json$`), (m) => ({ kind: "headAlias", head: m[1], alias: m[2] })],
  [
    new RegExp(`^exports/${N}/${N}/(fused|alone)-([0-9a-f]{64})\\.onnx$`),
    (m) => ({ kind: "headExport", head: m[1], version: m[2], fused: m[3] === "fused", sha256: m[4] }),
  ],
  [new RegExp(`^jobs/${N}\\.json$`), (m) => ({ kind: "job", job: m[1] })],
  [new RegExp(`^jobs/${N}/plans\\.manifest\\.json$`), (m) => ({ kind: "jobPlanManifest", job: m[1] })],
  [new RegExp(`^jobs/${N}/waiters/${N}\\.json$`), (m) => ({ kind: "jobWaiter", job: m[1], batchJob: m[2] })],
  [
    new RegExp(`^batch/${N}/${N}\\.(jsonl|csv)$`),
    (m) => ({ kind: "batchUpload", head: m[1], name: m[2], format: m[3] as ManifestFormat }),
  ],
  [
    new RegExp(`^batch/${N}/_status/${N}\\.(jsonl|csv)\\.json$`),
    (m) => ({ kind: "batchUploadStatus", head: m[1], name: m[2], format: m[3] as ManifestFormat }),
  ],
  [new RegExp(`^predictions/${N}/_job\\.json$`), (m) => ({ kind: "batchJob", job: m[1] })],
  [new RegExp(`^predictions/${N}/_summary\\.json$`), (m) => ({ kind: "predictionsSummary", job: m[1] })],
  [
    new RegExp(`^predictions/${N}/(part|errors)-${SHARD}\\.jsonl$`),
    (m) => ({
      kind: m[2] === "part" ? "predictionsPart" : "predictionsErrors",
      job: m[1],
      part: Number(m[3]),
    }),
  ],
  [
    new RegExp(`^idempotency/${N}/([0-9a-f]{64})\\.json$`),
    (m) => ({ kind: "idempotencyRecord", scope: m[1], hash: m[2] }),
  ],
  [/^_system\/api-keys\.json$/, () => ({ kind: "apiKeys" })],
  [
    new RegExp(`^heads/${N}/feedback/(${FEEDBACK_ID})\\.json$`),
    (m) => ({ kind: "headFeedback", head: m[1], id: m[2] }),
  ],
  [
    new RegExp(`^heads/${N}/feedback-images/(${FEEDBACK_IMAGE_FILE})$`),
    (m) => ({ kind: "headFeedbackImage", head: m[1], file: m[2] }),
  ],
  [
    new RegExp(`^heads/${N}/feedback-audio/(${FEEDBACK_AUDIO_FILE})$`),
    (m) => ({ kind: "headFeedbackAudio", head: m[1], file: m[2] }),
  ],
  [
    new RegExp(`^heads/${N}/captures/(${ONLINE_PREDICTION_ID})\\.json$`),
    (m) => ({ kind: "headCapture", head: m[1], predictionId: m[2] }),
  ],
  [new RegExp(`^heads/${N}/drift-state\\.json$`), (m) => ({ kind: "headDriftState", head: m[1] })],
  [/^_system\/webhooks\.json$/, () => ({ kind: "webhooks" })],
  [
    /^_system\/webhook-deliveries\/(evt_[0-9a-f]{32})\/(wh_[0-9a-f]{16})\.json$/,
    (m) => ({ kind: "webhookDelivery", event: m[1], webhook: m[2] }),
  ],
  [
    /^_system\/webhook-pending\/(evt_[0-9a-f]{32})\/(wh_[0-9a-f]{16})\.json$/,
    (m) => ({ kind: "webhookPending", event: m[1], webhook: m[2] }),
  ],
];

/** The inverse of `keys`: returns undefined for keys the platform does not own. */
export function parseKey(key: string): ParsedKey | undefined {
  for (const [re, build] of PATTERNS) {
    const m = re.exec(key);
    if (!m) continue;
    const parsed = build(m);
    if (parsed.kind === "datasetFile") {
      try {
        assertRelativeFilePath(parsed.path);
      } catch {
        return undefined;
      }
    }
    return parsed;
  }
  return undefined;
}
