import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { requireJob } from "../../embed/job.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { EmbedJob, errorResponses, jsonBody } from "../responses.ts";
import { JobParams } from "../schemas.ts";

const show = createRoute({
  method: "get",
  path: "/{job}",
  operationId: "getJob",
  tags: ["jobs"],
  summary: "A batch job's state",
  request: { params: JobParams },
  responses: {
    200: jsonBody(EmbedJob, "The job document"),
    ...errorResponses({ 400: true, 404: "Unknown job" }),
  },
});

export function jobRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(show, async (c) => c.json(await requireJob(platform.store, c.req.valid("param").job), 200));
  return app;
}
