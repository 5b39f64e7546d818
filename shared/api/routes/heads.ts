import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { PayloadTooLargeError, ValidationError } from "../../errors.ts";
import { renderReportHtml } from "../../heads/report-html.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import {
  AnyObject,
  body,
  ErrorResponse,
  HeadAliasParams,
  HeadParams,
  HeadVersionParams,
  MAX_IMAGE_BASE64_CHARS,
  MAX_UPLOAD_IMAGE_BYTES,
  PredictBody,
  PredictForm,
  PredictResponse,
  PromoteBody,
  TrainBody,
} from "../schemas.ts";

const err = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorResponse } },
});
const errors = { 400: err("Invalid input"), 404: err("Unknown head, version or dataset") };

const train = createRoute({
  method: "post",
  path: "/{head}/train",
  summary: "Train a new head version on a dataset's cached embeddings",
  request: {
    params: HeadParams,
    body: { required: true, content: { "application/json": { schema: TrainBody } } },
  },
  responses: {
    200: {
      description: "The new version and its metrics",
      content: { "application/json": { schema: AnyObject } },
    },
    202: {
      description:
        "Accepted: training runs in the background (in AWS, the train Lambda); the version appears under GET /v1/heads/{head}",
      content: { "application/json": { schema: AnyObject } },
    },
    ...errors,
    409: err("The live alias moved while training"),
    422: err("Unsupported head type or labels"),
  },
});

const show = createRoute({
  method: "get",
  path: "/{head}",
  summary: "A head: live version, its metrics, all versions",
  request: { params: HeadParams },
  responses: {
    200: { description: "Head", content: { "application/json": { schema: AnyObject } } },
    ...errors,
  },
});

const version = createRoute({
  method: "get",
  path: "/{head}/versions/{version}",
  summary: "One immutable head version with its report",
  request: { params: HeadVersionParams },
  responses: {
    200: { description: "Version", content: { "application/json": { schema: AnyObject } } },
    ...errors,
  },
});

const promote = createRoute({
  method: "put",
  path: "/{head}/aliases/{alias}",
  summary: "Point an alias (live, canary…) at a version; compare-and-swap with expectedVersion",
  request: {
    params: HeadAliasParams,
    body: { required: true, content: { "application/json": { schema: PromoteBody } } },
  },
  responses: {
    200: { description: "Alias moved", content: { "application/json": { schema: AnyObject } } },
    ...errors,
    409: err("expectedVersion did not match"),
  },
});

const rollback = createRoute({
  method: "post",
  path: "/{head}/aliases/{alias}/rollback",
  summary: "Move an alias back to the version it pointed to before its last move",
  request: { params: HeadAliasParams },
  responses: {
    200: { description: "Alias moved back", content: { "application/json": { schema: AnyObject } } },
    ...errors,
    409: err("No previous version, or the alias moved concurrently"),
  },
});

const predict = createRoute({
  method: "post",
  path: "/{head}/predict",
  summary: "Predict on raw inputs (texts, images) or ready embeddings",
  description:
    "JSON: `inputs` holds texts (strings or `{text}`) for a text head, or images for an image head: " +
    "`{image}` (base64) or `{imageKey}` (an object in this deployment's bucket); or `embeddings` holds " +
    `ready vectors. At most ${MAX_IMAGE_BASE64_CHARS} base64 characters per request (the Lambda payload limit). ` +
    "multipart/form-data: one `image` file part per image, plus optional `version`, `alias` and " +
    `\`neighbors\` fields, at most ${MAX_UPLOAD_IMAGE_BYTES} image bytes in all. A bad image is a 400 naming ` +
    "its input (`inputs[i]`, or `image[i]` for the i-th file part) with `details.reason` " +
    "(`empty`, `too-large`, `too-many-pixels`, `unsupported-format`, `corrupt`).",
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
    200: {
      description: "One prediction per input",
      content: { "application/json": { schema: PredictResponse } },
    },
    ...errors,
    413: err("More image data than one request may carry"),
    415: err("Neither JSON nor multipart/form-data"),
  },
});

/** Sum of the base64 image characters a JSON predict request carries. */
function base64Chars(inputs: readonly unknown[] | undefined): number {
  let n = 0;
  for (const input of inputs ?? []) {
    const image = (input as { image?: unknown } | null)?.image;
    if (typeof image === "string") n += image.length;
  }
  return n;
}

/** Multipart predict: the file parts become image inputs; their errors name the part. */
async function predictUpload(platform: Platform, head: string, form: z.infer<typeof PredictForm>) {
  const files = Array.isArray(form.image) ? form.image : [form.image];
  const total = files.reduce((n, f) => n + f.size, 0);
  if (total > MAX_UPLOAD_IMAGE_BYTES) {
    throw new PayloadTooLargeError(
      `image: ${files.length} file parts hold ${total} bytes, more than the limit of ${MAX_UPLOAD_IMAGE_BYTES} per request`,
      { field: "image" },
    );
  }
  const inputs = await Promise.all(
    files.map(async (f) => ({ image: new Uint8Array(await f.arrayBuffer()) })),
  );
  const { version, alias, neighbors } = form;
  try {
    return await platform.predict(head, { inputs, version, alias, neighbors });
  } catch (err) {
    const i = err instanceof ValidationError ? /^inputs\[(\d+)\]/.exec(err.field ?? "")?.[1] : undefined;
    if (!(err instanceof ValidationError) || i === undefined) throw err;
    const name = files[Number(i)]?.name;
    const part = `image[${i}]`;
    const label = `${part}${name ? ` (${name})` : ""}`;
    const message = /^inputs\[\d+\]/.test(err.message)
      ? err.message.replace(/^inputs\[\d+\]/, label)
      : `${label}: ${err.message.replace(/^input \d+: (image: )?/, "")}`;
    throw new ValidationError(message, {
      field: part,
      details: err.details,
      cause: err,
    });
  }
}

const exportModel = createRoute({
  method: "get",
  path: "/{head}/versions/{version}/model.onnx",
  summary: "A head version as an ONNX model, alone or fused with its backbone",
  description:
    "Alone: input `embedding` float32 [N, d] → `probabilities` [N, k] (or `value` [N, 1] for regression). " +
    "With `fused=true`: the backbone's own inputs (token ids and mask) → the same output. See docs/formats.md.",
  request: {
    params: HeadVersionParams,
    query: z.object({
      fused: z
        .enum(["true", "false"])
        .optional()
        .openapi({ description: "Put the head's backbone in front of it (default false)" }),
    }),
  },
  responses: {
    200: {
      description: "The ONNX model",
      content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
    },
    ...errors,
    409: err("The head's backbone has been replaced since it was trained"),
    422: err("The backbone cannot be fused (not ONNX, or an unsupported opset)"),
  },
});

const report = createRoute({
  method: "get",
  path: "/{head}/versions/{version}/report",
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
        "application/json": { schema: AnyObject },
      },
    },
    ...errors,
  },
});

export function headRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(train, async (c) => {
    const { head } = c.req.valid("param");
    const result = await platform.requestTraining({ head, ...c.req.valid("json") });
    if (result.accepted) return c.json(body(result), 202);
    const { accepted: _accepted, ...trained } = result;
    return c.json(body(trained), 200);
  });
  app.openapi(show, async (c) => c.json(body(await platform.headInfo(c.req.valid("param").head)), 200));
  app.openapi(version, async (c) => {
    const { head, version: v } = c.req.valid("param");
    return c.json(body(await platform.headVersion(head, v)), 200);
  });
  app.openapi(promote, async (c) => {
    const { head, alias } = c.req.valid("param");
    const body = c.req.valid("json");
    await platform.promote(head, body.version, body.expectedVersion, alias);
    return c.json({ head, alias, version: body.version }, 200);
  });
  app.openapi(rollback, async (c) => {
    const { head, alias } = c.req.valid("param");
    return c.json({ head, alias, ...(await platform.rollback(head, alias)) }, 200);
  });
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
    if (chars > MAX_IMAGE_BASE64_CHARS) {
      throw new PayloadTooLargeError(
        `inputs: images hold ${chars} base64 characters, more than the limit of ${MAX_IMAGE_BASE64_CHARS} per request; ` +
          "send fewer per request, or upload them to the bucket and send {imageKey}",
        { field: "inputs" },
      );
    }
    return c.json(await platform.predict(head, req), 200);
  });
  app.openapi(exportModel, async (c) => {
    const { head, version: v } = c.req.valid("param");
    const fused = c.req.valid("query").fused === "true";
    const out = await platform.exportHead(`${head}@${v}`, { fused });
    return c.body(out.bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
      "content-disposition": `attachment; filename="${out.filename}"`,
    });
  });
  app.openapi(report, async (c) => {
    const { head, version: v } = c.req.valid("param");
    const found = await platform.headReport(head, v);
    if (c.req.valid("query").format === "json") return c.json(body(found.report), 200);
    return c.body(renderReportHtml(found.report, found.head), 200, {
      "content-type": "text/html; charset=utf-8",
    });
  });
  return app;
}
