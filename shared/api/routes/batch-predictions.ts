import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError } from "../../errors.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { BatchPredictionFiles, BatchPredictionJob, errorResponses, jsonBody } from "../responses.ts";
import { BatchPredictionBody, HeadJobFileParams, HeadJobParams, HeadParams } from "../schemas.ts";

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

const files = createRoute({
  method: "get",
  path: "/{head}/batch-predictions/{job}/files",
  operationId: "listBatchPredictionFiles",
  tags: ["heads"],
  summary: "A finished batch job's output parts, each with a URL to download it",
  description:
    "Every `part-NNNNN.jsonl` (predictions), then every `errors-NNNNN.jsonl` (rows not scored), in part order, " +
    "with its size and a URL to GET it from: in AWS a presigned S3 URL valid for an hour (`expiresAt`), so the " +
    "parts come straight from the bucket; locally this server's `files/{name}` route. Only a finished job (its " +
    "`_summary.json` written) has files, as `headstart export-predictions` exports only such a job.",
  request: { params: HeadJobParams },
  responses: {
    200: jsonBody(BatchPredictionFiles, "The job's counts and its parts"),
    ...errorResponses({
      400: true,
      404: "Unknown job (or a job of another head)",
      409: "The job has not finished (queued or running), or it failed or was cancelled: it has no files",
    }),
  },
});

const file = createRoute({
  method: "get",
  path: "/{head}/batch-predictions/{job}/files/{name}",
  operationId: "downloadBatchPredictionFile",
  tags: ["heads"],
  summary: "One part of a finished batch job, where the store has no download URLs of its own",
  description:
    "The URL that `files` answers with locally (a filesystem store): the part's JSON lines as stored. " +
    "In AWS that answer holds presigned S3 URLs instead.",
  request: { params: HeadJobFileParams },
  responses: {
    200: {
      description: "The part's JSON lines, one prediction (or one refused row) a line",
      content: {
        "application/x-ndjson": {
          schema: z.string(),
          example:
            '{"id":"r0","predictionId":"bp-imdb-sentiment-3f2a9c0d1e4b5a6c7d8e:r0","label":"pos","score":0.93,"scores":{"neg":0.07,"pos":0.93},"version":"v20261207-041200-3f2a9c"}\n',
        },
      },
    },
    ...errorResponses({
      400: "Not a part's name (`part-NNNNN.jsonl` or `errors-NNNNN.jsonl`; `field: name`)",
      404: "Unknown job (or a job of another head), or a part the job does not have",
      409: "The job has not finished, or it failed or was cancelled: it has no files",
    }),
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
  app.openapi(files, async (c) => {
    const { head, job } = c.req.valid("param");
    const listing = await platform.batchPredictionFiles(head, job, partUrl(c.req.url));
    return c.json(listing, 200);
  });
  app.openapi(file, async (c) => {
    const { head, job, name } = c.req.valid("param");
    const part = await platform.openBatchPredictionFile(head, job, name);
    const res = c.body(part.body, 200, {
      "content-type": "application/x-ndjson",
      "content-length": String(part.bytes),
      "content-disposition": `attachment; filename="${part.filename}"`,
    });
    // @hono/zod-openapi reads `application/x-ndjson` as a JSON type it cannot name (never).
    return res as never;
  });
  return app;
}

/** The job, only under its own head's path. */
async function headJob(platform: Platform, head: string, job: string) {
  const record = await platform.batchPrediction(job);
  if (record.head !== head) throw new NotFoundError(`batch job ${job} of head ${head}`, { field: "job" });
  return record;
}

/** This server's route for the part named `name`: the listing's own URL, one segment further. */
function partUrl(listingUrl: string): (name: string) => string {
  const url = new URL(listingUrl);
  url.search = "";
  const base = url.toString().replace(/\/+$/, "");
  return (name) => `${base}/${name}`;
}
