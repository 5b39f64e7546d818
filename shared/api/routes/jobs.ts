import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { requireJob } from "../../jobs/job.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { AnyObject, body, ErrorResponse, JobParams } from "../schemas.ts";

const show = createRoute({
  method: "get",
  path: "/{job}",
  summary: "A batch job's state",
  request: { params: JobParams },
  responses: {
    200: { description: "Job", content: { "application/json": { schema: AnyObject } } },
    404: { description: "Unknown job", content: { "application/json": { schema: ErrorResponse } } },
  },
});

export function jobRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(show, async (c) =>
    c.json(body(await requireJob(platform.store, c.req.valid("param").job)), 200),
  );
  return app;
}
