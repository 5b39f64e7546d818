import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError, PayloadTooLargeError, ValidationError } from "../../errors.ts";
import { EXPORT_URL_TTL_SECONDS, findStoredExport } from "../../heads/export-store.ts";
import { renderReportHtml } from "../../heads/report-html.ts";
import { readAlias } from "../../heads/version.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import {
  AliasInfo,
  AliasMoved,
  AliasRolledBack,
  ExportDownload,
  errorResponses,
  HeadInfo,
  HeadVersion,
  jsonBody,
  Report,
  TrainAccepted,
  TrainResponse,
} from "../responses.ts";
import {
  HeadAliasParams,
  HeadParams,
  HeadVersionParams,
  MAX_FILE_BASE64_CHARS,
  MAX_UPLOAD_FILE_BYTES,
  PredictBody,
  PredictForm,
  PredictResponse,
  PromoteBody,
  TrainBody,
} from "../schemas.ts";

const tags = ["heads"];
const unknownHead = "Unknown head or version";

/**
 * The heads resource, one sub-app per sub-resource. Every route keeps its full path (so each is
 * mounted at `/`), and the order below is the order of the OpenAPI document's paths.
 */
export function headRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.route("/", trainRoutes(platform));
  app.route("/", versionRoutes(platform));
  app.route("/", aliasRoutes(platform));
  app.route("/", predictRoutes(platform));
  app.route("/", exportRoutes(platform));
  app.route("/", reportRoutes(platform));
  return app;
}

// ---- Training: POST /{head}/train ----

const train = createRoute({
  method: "post",
  path: "/{head}/train",
  operationId: "trainHead",
  tags,
  summary: "Train a new head version on a dataset's cached embeddings",
  request: {
    params: HeadParams,
    body: { required: true, content: { "application/json": { schema: TrainBody } } },
  },
  responses: {
    200: jsonBody(TrainResponse, "Trained here: the new version and its metrics"),
    202: jsonBody(
      TrainAccepted,
      "Accepted: training runs in the background (in AWS, the train Lambda); the version appears under GET /v1/heads/{head}",
    ),
    ...errorResponses({
      400: "Invalid request (type, task, params, candidates, cv), or too few labelled rows",
      404: "Unknown dataset or backbone",
      413: true,
      415: "Not application/json",
      422:
        "A head type that cannot take these labels, params over a cap (`field` names it, e.g. `params.units`), " +
        "or a training over its memory or wall-clock budget (`field`: HEADSTART_TRAIN_MAX_MEMORY_MB, HEADSTART_TRAIN_MAX_SECONDS)",
    }),
  },
});

function trainRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(train, async (c) => {
    const { head } = c.req.valid("param");
    // The request's signal aborts when the client goes away: the training then stops unstored.
    const result = await platform.requestTraining(
      { head, ...c.req.valid("json") },
      { signal: c.req.raw.signal },
    );
    if (result.accepted) return c.json(result, 202);
    const { accepted: _accepted, ...trained } = result;
    return c.json(trained, 200);
  });
  return app;
}

// ---- The head and its versions ----

const show = createRoute({
  method: "get",
  path: "/{head}",
  operationId: "getHead",
  tags,
  summary: "A head: live version, its metrics, all versions",
  request: { params: HeadParams },
  responses: {
    200: jsonBody(HeadInfo, "The head"),
    ...errorResponses({ 400: true, 404: "Unknown head" }),
  },
});

const version = createRoute({
  method: "get",
  path: "/{head}/versions/{version}",
  operationId: "getHeadVersion",
  tags,
  summary: "One immutable head version with its report",
  request: { params: HeadVersionParams },
  responses: {
    200: jsonBody(HeadVersion, "The version's head.json (without weights) and its report"),
    ...errorResponses({ 400: true, 404: unknownHead }),
  },
});

function versionRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(show, async (c) => c.json(await platform.headInfo(c.req.valid("param").head), 200));
  app.openapi(version, async (c) => {
    const { head, version: v } = c.req.valid("param");
    return c.json(await platform.headVersion(head, v), 200);
  });
  return app;
}

// ---- Aliases (live, canary…): read, move, roll back ----

const promote = createRoute({
  method: "put",
  path: "/{head}/aliases/{alias}",
  operationId: "setHeadAlias",
  tags,
  summary: "Point an alias (live, canary…) at a version; compare-and-swap with expectedVersion",
  request: {
    params: HeadAliasParams,
    body: { required: true, content: { "application/json": { schema: PromoteBody } } },
  },
  responses: {
    200: jsonBody(AliasMoved, "The alias moved"),
    ...errorResponses({
      400: true,
      404: unknownHead,
      409: "expectedVersion did not match, or the alias moved concurrently",
      413: true,
      415: "Not application/json",
    }),
  },
});

const alias = createRoute({
  method: "get",
  path: "/{head}/aliases/{alias}",
  operationId: "getHeadAlias",
  tags,
  summary: "Where an alias points, where it pointed before, and its history of moves",
  request: { params: HeadAliasParams },
  responses: {
    200: jsonBody(AliasInfo, "The alias document"),
    ...errorResponses({ 400: true, 404: "Unknown head or alias" }),
  },
});

const rollback = createRoute({
  method: "post",
  path: "/{head}/aliases/{alias}/rollback",
  operationId: "rollbackHeadAlias",
  tags,
  summary: "Move an alias back to the version it pointed to before its last move",
  request: { params: HeadAliasParams },
  responses: {
    200: jsonBody(AliasRolledBack, "The alias moved back"),
    ...errorResponses({
      400: true,
      404: "Unknown head or alias",
      409: "No previous version, or the alias moved concurrently",
    }),
  },
});

function aliasRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(promote, async (c) => {
    const { head, alias } = c.req.valid("param");
    const body = c.req.valid("json");
    await platform.promote(head, body.version, body.expectedVersion, alias);
    return c.json({ head, alias, version: body.version }, 200);
  });
  app.openapi(alias, async (c) => {
    const { head, alias: name } = c.req.valid("param");
    const found = await readAlias(platform.store, head, name);
    if (!found) throw new NotFoundError(`alias ${name} of head ${head}`, { field: "alias" });
    return c.json(found.value, 200);
  });
  app.openapi(rollback, async (c) => {
    const { head, alias } = c.req.valid("param");
    return c.json({ head, alias, ...(await platform.rollback(head, alias)) }, 200);
  });
  return app;
}

// ---- Predictions ----

const predict = createRoute({
  method: "post",
  path: "/{head}/predict",
  operationId: "predictHead",
  tags,
  summary: "Predict on raw inputs (texts, images, audio) or ready embeddings",
  description:
    "JSON: `inputs` holds texts (strings or `{text}`) for a text head, images for an image head: " +
    "`{image}` (base64) or `{imageKey}` (an object under `datasets/` in this deployment's bucket), or audio for an " +
    "audio head: `{audio}` (base64 WAV, FLAC, MP3 or Ogg Vorbis) or `{audioKey}`; or `embeddings` holds " +
    `ready vectors. At most ${MAX_FILE_BASE64_CHARS} base64 characters of files per request (the Lambda payload limit). ` +
    "multipart/form-data: one `image` file part per image, or one `audio` file part per clip, plus optional " +
    `\`version\`, \`alias\` and \`neighbors\` fields, at most ${MAX_UPLOAD_FILE_BYTES} file bytes in all. ` +
    "A bad file is a 400 naming its input (`inputs[i]`, or `image[i]`/`audio[i]` for the i-th file part) with " +
    "`details.reason` (`empty`, `too-large`, `too-many-pixels` (images), `too-long` (audio), " +
    "`unsupported-format`, `corrupt`).",
  request: {
    params: HeadParams,
    // Not `required`: @hono/zod-openapi then validates each body only when its content type is
    // sent (and refuses other types with 415); with `required` it would run both validators.
    body: {
      content: {
        "application/json": { schema: PredictBody },
        "multipart/form-data": { schema: PredictForm },
      },
    },
  },
  responses: {
    200: jsonBody(PredictResponse, "One prediction per input"),
    ...errorResponses({
      400: "Invalid input (`field` names it: `inputs[i]`, `image[i]`, `audio[i]`, `embeddings[i]`…), with `details.reason` for files",
      404: "Unknown head, version or alias, or no object at an `imageKey` or `audioKey`",
      409: "The head's backbone was replaced since it was trained",
      413: "More file data than one request may carry, or a body over 8 MiB",
      415: "Neither JSON nor multipart/form-data",
      422: "The head's backbone cannot be loaded here",
    }),
  },
});

/** Sum of the base64 file characters (images and audio) a JSON predict request carries. */
function base64Chars(inputs: readonly unknown[] | undefined): number {
  let n = 0;
  for (const input of inputs ?? []) {
    const file = input as { image?: unknown; audio?: unknown } | null;
    if (typeof file?.image === "string") n += file.image.length;
    if (typeof file?.audio === "string") n += file.audio.length;
  }
  return n;
}

/** Multipart predict: the file parts become image or audio inputs; their errors name the part. */
async function predictUpload(platform: Platform, head: string, form: z.infer<typeof PredictForm>) {
  const kind = form.audio !== undefined ? "audio" : "image";
  const parts = form[kind] ?? [];
  const files = Array.isArray(parts) ? parts : [parts];
  const total = files.reduce((n, f) => n + f.size, 0);
  if (total > MAX_UPLOAD_FILE_BYTES) {
    throw new PayloadTooLargeError(
      `${kind}: ${files.length} file parts hold ${total} bytes, more than the limit of ${MAX_UPLOAD_FILE_BYTES} per request`,
      { field: kind },
    );
  }
  const inputs = await Promise.all(
    files.map(async (f) => {
      const bytes = new Uint8Array(await f.arrayBuffer());
      return kind === "audio" ? { audio: bytes } : { image: bytes };
    }),
  );
  const { version, alias, neighbors } = form;
  const rejectUnknown = form.rejectUnknown === "true";
  try {
    return await platform.predict(head, { inputs, version, alias, neighbors, rejectUnknown });
  } catch (err) {
    const i = err instanceof ValidationError ? /^inputs\[(\d+)\]/.exec(err.field ?? "")?.[1] : undefined;
    if (!(err instanceof ValidationError) || i === undefined) throw err;
    const name = files[Number(i)]?.name;
    const part = `${kind}[${i}]`;
    const label = `${part}${name ? ` (${name})` : ""}`;
    const message = /^inputs\[\d+\]/.test(err.message)
      ? err.message.replace(/^inputs\[\d+\]/, label)
      : `${label}: ${err.message.replace(/^input \d+: ((image|audio): )?/, "")}`;
    throw new ValidationError(message, {
      field: part,
      details: err.details,
      cause: err,
    });
  }
}

function predictRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(predict, async (c) => {
    const { head } = c.req.valid("param");
    if (
      /^(multipart\/form-data|application\/x-www-form-urlencoded)/i.test(c.req.header("content-type") ?? "")
    ) {
      return c.json(
        await predictUpload(platform, head, c.req.valid("form") as z.infer<typeof PredictForm>),
        200,
      );
    }
    const req = c.req.valid("json") as z.infer<typeof PredictBody>;
    const chars = base64Chars(req.inputs);
    if (chars > MAX_FILE_BASE64_CHARS) {
      throw new PayloadTooLargeError(
        `inputs: the files hold ${chars} base64 characters, more than the limit of ${MAX_FILE_BASE64_CHARS} per request; ` +
          "send fewer per request, or upload them to the bucket and send {imageKey} or {audioKey}",
        { field: "inputs" },
      );
    }
    return c.json(await platform.predict(head, req), 200);
  });
  return app;
}

// ---- ONNX export ----

/** `?fused=true|false` of the export routes. */
const fusedQuery = (description: string) =>
  z.object({ fused: z.enum(["true", "false"]).optional().openapi({ description }) });

/** The `download` route next to the `model.onnx` a request asked for, on the same server. */
function localDownloadUrl(requestUrl: string): string {
  const url = new URL(requestUrl);
  const fused = url.searchParams.get("fused") === "true";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/download`;
  url.search = fused ? "?fused=true" : "";
  return url.toString();
}
const exportModel = createRoute({
  method: "get",
  path: "/{head}/versions/{version}/model.onnx",
  operationId: "exportHeadModel",
  tags,
  summary: "A head version as an ONNX model, alone or fused with its backbone",
  description:
    "Alone: input `embedding` float32 [N, d] → `probabilities` [N, k] (or `value` [N, 1] for regression). " +
    "With `fused=true`: the backbone's own inputs (token ids and mask) → the same output. See docs/formats.md.",
  request: {
    params: HeadVersionParams,
    query: fusedQuery("Put the head's backbone in front of it (default false)"),
  },
  responses: {
    200: {
      description:
        "The ONNX model's bytes when it is at most `HEADSTART_EXPORT_INLINE_MAX_BYTES` (5 MB by default); " +
        "a larger model is stored once and answered as JSON with a URL to GET it from (in AWS a presigned S3 URL, " +
        "valid for an hour; locally the `model.onnx/download` route of this server). JSON rather than a redirect, " +
        "so scripts get its size and sha256 to check the download against.",
      content: {
        "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) },
        "application/json": { schema: ExportDownload },
      },
    },
    ...errorResponses({
      400: true,
      404: unknownHead,
      409: "The head's backbone has been replaced since it was trained",
      422: "The backbone cannot be fused (not ONNX, or an unsupported opset)",
    }),
  },
});

const exportDownload = createRoute({
  method: "get",
  path: "/{head}/versions/{version}/model.onnx/download",
  operationId: "downloadHeadModel",
  tags,
  summary: "A stored (large) ONNX export's bytes, where the store has no download URLs of its own",
  description:
    "The URL that `model.onnx` answers with locally (a filesystem store). Serves only exports already stored " +
    "by `model.onnx`; in AWS that answer holds a presigned S3 URL instead.",
  request: {
    params: HeadVersionParams,
    query: fusedQuery("The fused export (default false)"),
  },
  responses: {
    200: {
      description: "The ONNX model",
      content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
    },
    ...errorResponses({
      400: true,
      404: "Unknown head or version, or no stored export of it (GET model.onnx first)",
    }),
  },
});

function exportRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(exportModel, async (c) => {
    const { head, version: v } = c.req.valid("param");
    const fused = c.req.valid("query").fused === "true";
    const out = await platform.exportHeadForResponse(`${head}@${v}`, { fused });
    if ("bytes" in out) {
      return c.body(out.bytes as Uint8Array<ArrayBuffer>, 200, {
        "content-type": "application/octet-stream",
        "content-disposition": `attachment; filename="${out.filename}"`,
      });
    }
    const { key, bytes, sha256 } = out.stored;
    const ttl = EXPORT_URL_TTL_SECONDS;
    const signed = await platform.store.downloadUrl?.(key, { expiresInSeconds: ttl, filename: out.filename });
    const body: z.infer<typeof ExportDownload> = {
      url: signed ?? localDownloadUrl(c.req.url),
      bytes,
      sha256,
      filename: out.filename,
    };
    if (signed) body.expiresAt = new Date(Date.now() + ttl * 1000).toISOString();
    return c.json(body, 200);
  });
  app.openapi(exportDownload, async (c) => {
    const { head, version: v } = c.req.valid("param");
    const fused = c.req.valid("query").fused === "true";
    // Only an export object of this head version: the key is built here, never taken from the request.
    const stored = await findStoredExport(platform.store, head, v, fused);
    const path = stored && (await platform.store.localPath(stored.key));
    if (!stored || !path) {
      throw new NotFoundError(
        `stored export of ${head}@${v}${fused ? " (fused)" : ""}: GET model.onnx first`,
        {
          field: "version",
        },
      );
    }
    const filename = `${head}-${v}${fused ? "-fused" : ""}.onnx`;
    return c.body(Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>, 200, {
      "content-type": "application/octet-stream",
      "content-length": String(stored.bytes),
      "content-disposition": `attachment; filename="${filename}"`,
    });
  });
  return app;
}

// ---- Reports ----

const report = createRoute({
  method: "get",
  path: "/{head}/versions/{version}/report",
  operationId: "getHeadReport",
  tags,
  summary: "A version's evaluation report as one self-contained HTML page, or as JSON",
  description:
    "HTML by default: metrics, per-class scores, confusion matrix, reliability diagram and model search, " +
    "with inline CSS and SVG only (no scripts or remote resources). `format=json` returns the stored report.",
  request: {
    params: HeadVersionParams,
    query: z.object({
      format: z.enum(["html", "json"]).optional().openapi({ description: "html (default) or json" }),
    }),
  },
  responses: {
    200: {
      description: "The report",
      content: {
        "text/html": { schema: z.string() },
        "application/json": { schema: Report },
      },
    },
    ...errorResponses({ 400: true, 404: "Unknown head or version, or a version without a report" }),
  },
});

function reportRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(report, async (c) => {
    const { head, version: v } = c.req.valid("param");
    const found = await platform.headReport(head, v);
    if (c.req.valid("query").format === "json") return c.json(found.report, 200);
    return c.body(renderReportHtml(found.report, found.head), 200, {
      "content-type": "text/html; charset=utf-8",
    });
  });
  return app;
}
