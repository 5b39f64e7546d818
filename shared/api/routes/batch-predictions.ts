import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { NotFoundError } from "../../errors.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { BatchPredictionJob, errorResponses, jsonBody } from "../responses.ts";
import { BatchPredictionBody, HeadJobParams, HeadParams } from "../schemas.ts";

const start = createRoute({
  method: "post",
  path: "/{head}/batch-predictions",
  operationId: "startBatchPrediction",
  tags: ["heads"],
  summary: "Score every row of a dataset with a head (a batch job)",
  description:
    "Starts a job that scores the dataset's current rows with the head's live version (or `version` / " +
    "`alias`), embedding only the rows its backbone has not cached yet, and writes " +
    "`predictions/<job>/part-NNNNN.jsonl`, `errors-NNNNN.jsonl` and `_summary.json` to the store. The job id " +
    "follows from the head version and the rows' content: starting the same again answers the same job " +
    "(a finished one is not run again; a failed one is queued again).",
  request: {
    params: HeadParams,
    body: { content: { "application/json": { schema: BatchPredictionBody } }, required: true },
  },
  responses: {
    202: jsonBody(BatchPredictionJob, "The job: queued, or as it is when it was started before"),
    ...errorResponses({ 400: true, 404: "Unknown head, version, alias or dataset" }),
  },
});

const show = createRoute({
  method: "get",
  path: "/{head}/batch-predictions/{job}",
  operationId: "getBatchPrediction",
  tags: ["heads"],
  summary: "A batch-prediction job: status, progress, counts and output keys",
  request: { params: HeadJobParams },
  responses: {
    200: jsonBody(BatchPredictionJob, "The job record"),
    ...errorResponses({ 400: true, 404: "Unknown job (or a job of another head)" }),
  },
});

const cancel = createRoute({
  method: "post",
  path: "/{head}/batch-predictions/{job}/cancel",
  operationId: "cancelBatchPrediction",
  tags: ["heads"],
  summary: "Cancel a batch-prediction job that has not finished",
  description:
    "A finished job is answered as it is. A cancelled job stops after its current part and writes no `_summary.json`.",
  request: { params: HeadJobParams },
  responses: {
    200: jsonBody(BatchPredictionJob, "The job record after the cancel"),
    ...errorResponses({ 400: true, 404: "Unknown job (or a job of another head)" }),
  },
});

export function batchPredictionRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(start, async (c) => {
    const { head } = c.req.valid("param");
    const body = c.req.valid("json");
    return c.json(await platform.submitBatchPrediction({ head, ...body }), 202);
  });
  app.openapi(show, async (c) => {
    const { head, job } = c.req.valid("param");
    return c.json(await headJob(platform, head, job), 200);
  });
  app.openapi(cancel, async (c) => {
    const { head, job } = c.req.valid("param");
    await headJob(platform, head, job);
    return c.json(await platform.cancelBatchPrediction(job), 200);
  });
  return app;
}

/** The job, only under its own head's path. */
async function headJob(platform: Platform, head: string, job: string) {
  const record = await platform.batchPrediction(job);
  if (record.head !== head) throw new NotFoundError(`batch job ${job} of head ${head}`, { field: "job" });
  return record;
}
