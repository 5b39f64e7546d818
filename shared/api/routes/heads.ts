import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
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
  return app;
}
