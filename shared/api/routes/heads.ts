import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
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
  PredictBody,
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
  summary: "Classify raw inputs or ready embeddings",
  request: {
    params: HeadParams,
    body: { required: true, content: { "application/json": { schema: PredictBody } } },
  },
  responses: {
    200: {
      description: "One prediction per input",
      content: { "application/json": { schema: PredictResponse } },
    },
    ...errors,
  },
});

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
    return c.json(await platform.predict(head, c.req.valid("json")), 200);
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
