/**
 * What the API answers: the success bodies (built from the domain's own zod schemas, so the
 * document follows the stored formats) and the error responses every route shares.
 */
import { z } from "@hono/zod-openapi";
import { BackboneSpec } from "../backbone/spec.ts";
import { DatasetStatus as DatasetStatusDoc } from "../datasets/status.ts";
import { EmbedJob as EmbedJobDoc } from "../embed/job.ts";
import { TrainTimings } from "../heads/train-timings.ts";
import {
  Alias as AliasDoc,
  HeadDocument,
  HeadTask,
  Metrics,
  MultilabelMetrics,
  RegressionMetrics,
  Report as ReportDoc,
  Search,
} from "../heads/version.ts";
import { BATCH_STATUSES, BatchCounts, BatchJob as BatchJobDoc } from "../predictions/job.ts";
import { ErrorResponse } from "./errors.ts";

// Schemas made elsewhere get `.openapi()` only on a copy made here (`.describe()` clones): zod 4
// copies methods onto a schema when it is built, so one built before @hono/zod-openapi extended
// zod (import order differs between tsx and the bundles) has no `.openapi`.

export const HealthResponse = z
  .object({
    status: z.literal("ok"),
    runner: z.string().openapi({ description: "Where embedding jobs run", example: "local" }),
  })
  .openapi("HealthResponse");

export const DatasetStatus = DatasetStatusDoc.describe(
  "`datasets/<d>/_status.json`: the last ingest's result (see docs/formats.md)",
).openapi("DatasetStatus");
export const EmbedJob = EmbedJobDoc.describe("`jobs/<job>.json`: a batch job").openapi("EmbedJob");
export const Backbone = BackboneSpec.describe("`backbone.json`").openapi("Backbone");

export const BatchPredictionJob = BatchJobDoc.describe(
  "`predictions/<job>/_job.json`: a batch-prediction job (status, progress; counts and output keys once finished)",
).openapi("BatchPredictionJob");

export const BatchPredictionFile = z
  .object({
    kind: z.enum(["predictions", "errors"]).openapi({
      description:
        "`predictions`: a `part-NNNNN.jsonl` of scored rows; `errors`: an `errors-NNNNN.jsonl` of rows not scored",
      example: "predictions",
    }),
    part: z.number().int().openapi({ description: "The part's number (`NNNNN`)", example: 0 }),
    key: z.string().openapi({
      description: "Its store key",
      example: "predictions/bp-imdb-sentiment-3f2a9c0d1e4b5a6c7d8e/part-00000.jsonl",
    }),
    bytes: z.number().int().openapi({ description: "Its size", example: 3301852 }),
    url: z.string().openapi({
      description:
        "GET it for the part's JSON lines: in AWS a presigned S3 URL (no API key needed), locally this server's `files/{name}` route (with the API key the listing took)",
      example:
        "https://headstart-acme.s3.eu-west-1.amazonaws.com/predictions/bp-imdb-sentiment-3f2a9c0d1e4b5a6c7d8e/part-00000.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=…",
    }),
    expiresAt: z.string().optional().openapi({
      description: "When a presigned URL stops working (absent: the local route, which does not expire)",
      example: "2026-12-07T05:12:09.000Z",
    }),
  })
  .openapi("BatchPredictionFile");

export const BatchPredictionFiles = z
  .object({
    job: z.string().openapi({ example: "bp-imdb-sentiment-3f2a9c0d1e4b5a6c7d8e" }),
    status: z.enum(BATCH_STATUSES).openapi({ example: "succeeded-with-errors" }),
    counts: BatchCounts.describe("Rows scored and rows not scored (`_summary.json`'s counts)").openapi({
      example: { total: 25000, succeeded: 24998, failed: 2 },
    }),
    files: z.array(BatchPredictionFile).openapi({
      description: "Every prediction part, then every error part, in part order",
    }),
  })
  .openapi("BatchPredictionFiles");

export const IngestResponse = z
  .object({
    status: DatasetStatus,
    job: EmbedJob.optional(),
    jobs: z.array(EmbedJob).optional(),
  })
  .openapi("IngestResponse", {
    description:
      "`job` is the embedding job (absent with `embed=false`); with `backbones`, `jobs` holds one per backbone, run as one batch job",
  });

export const ImportEmbeddingsResponse = z
  .object({
    dataset: z.string(),
    backbone: Backbone,
    status: DatasetStatus,
    rows: z.number().int(),
    dim: z.number().int(),
    dtype: z.string().openapi({ description: "The input's dtype (float64 is stored as float32)" }),
    vectors: z.object({ written: z.number().int(), reused: z.number().int() }),
    shards: z.array(z.number().int()),
  })
  .openapi("ImportEmbeddingsResponse");

export const DatasetInfo = z
  .object({
    status: DatasetStatus,
    embedding: z.object({
      backbone: z.string(),
      cachedItems: z.number().int(),
      // The current version's embedding job, if one was planned.
      job: EmbedJob.and(z.object({ shardsCommitted: z.number().int() })).optional(),
      failedItems: z.number().int(),
      failures: z
        .array(z.object({ id: z.string(), reason: z.string(), message: z.string() }))
        .openapi({ description: "The first 100 items the backbone could not embed" }),
    }),
  })
  .openapi("DatasetInfo");

export const Report = ReportDoc.describe(
  "A version's `report.json`: evaluation, calibration and `auto` search (docs/formats.md)",
).openapi("Report");

export const TrainResponse = z
  .object({
    head: z.string(),
    version: z.string(),
    type: z.string(),
    task: HeadTask,
    params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
    metrics: Metrics.optional().openapi({ description: "Multiclass heads" }),
    multilabel: MultilabelMetrics.optional(),
    regression: RegressionMetrics.optional(),
    calibration: z
      .object({ temperature: z.number(), eceBefore: z.number(), eceAfter: z.number() })
      .optional(),
    search: Search.optional().openapi({ description: "With `type: auto`" }),
    evaluation: z.enum(["test-split", "cv"]),
    trainSeconds: z.number(),
    timings: TrainTimings.describe("Wall seconds per phase of this training; a phase it did not run is 0"),
    counts: ReportDoc.shape.counts,
    unknown: ReportDoc.shape.unknown.describe(
      "Multiclass heads: the unknown-input scorer and the threshold chosen on held-out in-distribution rows",
    ),
    promoted: z.boolean(),
    notPromoted: z.object({ reason: z.string(), live: z.string().nullable() }).optional().openapi({
      description:
        "Present when the live alias moved while this version trained: the version is stored but not live",
    }),
  })
  .openapi("TrainResponse");

export const TrainAccepted = z
  .object({ accepted: z.literal(true), head: z.string(), dataset: z.string() })
  .openapi("TrainAccepted");

/** `head.json` without the fitted weights. */
export const HeadSummary = HeadDocument.omit({ model: true }).openapi("HeadSummary");

export const HeadInfo = z
  .object({
    head: z.string(),
    live: z.string().openapi({ description: "The version the live alias points to" }),
    versions: z.array(z.string()),
    current: HeadSummary,
    report: Report.optional(),
  })
  .openapi("HeadInfo");

export const HeadVersion = HeadDocument.omit({ model: true })
  .extend({ report: Report.optional() })
  .openapi("HeadVersion");

export const AliasInfo = AliasDoc.describe(
  "`heads/<h>/aliases/<alias>.json`: where the alias points and its last moves (docs/formats.md)",
).openapi("Alias");

export const AliasMoved = z
  .object({ head: z.string(), alias: z.string(), version: z.string() })
  .openapi("AliasMoved");

export const ExportDownload = z
  .object({
    url: z
      .string()
      .openapi({ description: "GET it for the model's bytes (no API key needed for a presigned S3 URL)" }),
    bytes: z.number().int().openapi({ description: "The model's size" }),
    sha256: z.string().openapi({ description: "sha256 of the model's bytes, hex" }),
    filename: z.string(),
    expiresAt: z
      .string()
      .optional()
      .openapi({ description: "When the URL stops working (absent: it does not expire)" }),
  })
  .openapi("ExportDownload");

export const AliasRolledBack = z
  .object({
    head: z.string(),
    alias: z.string(),
    from: z.string().openapi({ description: "The version the alias pointed to" }),
    to: z.string().openapi({ description: "The version it points to now" }),
  })
  .openapi("AliasRolledBack");

/**
 * API Gateway's own body when the authorizer refuses a request: HTTP APIs cannot reshape it, so
 * it is the one error that does not have the app's `ErrorResponse` shape.
 */
export const GatewayError = z
  .object({ message: z.string().openapi({ example: "Forbidden" }) })
  .openapi("GatewayError");

export function jsonBody<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

const DEFAULT_ERRORS = {
  400: "Invalid input: a path, query or body value failed validation (`field` names it)",
  404: "Not found",
  409: "Conflict: a concurrent change won, or an expectation did not hold",
  413: "Request body too large",
  415: "Unsupported content type",
  422: "Unsupported: the request is valid but this head, label or backbone cannot do it",
} as const;
type ErrorStatus = keyof typeof DEFAULT_ERRORS;

const errorResponse = (description: string) => jsonBody(ErrorResponse, description);

/**
 * The error responses of a route: the listed statuses (with the default description unless one
 * is given), 500 always, and, unless `public`, API Gateway's own 401 (no `x-api-key` while the
 * authorizer's cache is on) and 403 (a refused key).
 */
export function errorResponses(
  statuses: Partial<Record<ErrorStatus, string | true>>,
  opts: { public?: boolean } = {},
) {
  const out: Record<number, ReturnType<typeof errorResponse> | ReturnType<typeof jsonBody>> = {};
  for (const [status, text] of Object.entries(statuses)) {
    out[Number(status)] = errorResponse(
      text === true ? DEFAULT_ERRORS[status as unknown as ErrorStatus] : text,
    );
  }
  if (!opts.public) {
    const refusal = z.union([ErrorResponse, GatewayError]);
    out[401] = jsonBody(
      refusal,
      "No usable API key. The app (a local server with keys) names `x-api-key`; in AWS, API Gateway answers a missing `x-api-key` itself (its own body) while the authorizer's result cache is on",
    );
    out[403] = jsonBody(
      refusal,
      "Refused: the key lacks the operation's scope (`x-required-scopes`; `field: x-api-key`), a local server's Host or cross-site check (`field: host` / `origin`), or, with API Gateway's own body, the deployment's authorizer (an unknown, revoked or other customer's key)",
    );
  }
  out[500] = errorResponse("Internal error; the server log has the details");
  out[503] = errorResponse(
    "The object store kept failing after bounded retries (`unavailable`); retry later",
  );
  return out;
}
