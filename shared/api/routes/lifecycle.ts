/**
 * Lifecycle: list datasets, heads, a head's versions, jobs and backbones; delete a dataset, a
 * head, a head version, a job or a backbone (`?force=true` past what still refers to it); collect
 * what nothing refers to (`POST /v1/gc`, admins). The work is in `lifecycle/`; mounted at `/v1`,
 * beside each resource's own routes.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { NAME_PATTERN, NAME_RULE } from "../../layout.ts";
import {
  deleteBackbone,
  deleteDataset,
  deleteHead,
  deleteJob,
  deleteVersion,
} from "../../lifecycle/delete.ts";
import {
  collectGarbage,
  DEFAULT_KEEP_VERSIONS,
  DEFAULT_MIN_AGE_MS,
  GcResult as GcResultDoc,
} from "../../lifecycle/gc.ts";
import {
  listAllJobs,
  listBackbones,
  listDatasets,
  listHeads,
  listHeadVersions,
} from "../../lifecycle/list.ts";
import {
  DatasetRecord as DatasetRecordDoc,
  DeleteResult as DeleteResultDoc,
  HeadRecord as HeadRecordDoc,
  VersionRecord as VersionRecordDoc,
} from "../../lifecycle/records.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { Backbone, BatchPredictionJob, EmbedJob, errorResponses, jsonBody } from "../responses.ts";
import { DatasetParams, HeadParams, HeadVersionParams, JobParams } from "../schemas.ts";

// Copies of lifecycle/'s schemas get `.openapi()` here (see responses.ts for why).
const DatasetRecord = DatasetRecordDoc.describe("A dataset: its last ingest's summary").openapi(
  "DatasetRecord",
);
const HeadRecord = HeadRecordDoc.describe("A head: its aliases, versions and live version's summary").openapi(
  "HeadRecord",
);
const VersionRecord = VersionRecordDoc.describe("A head version, summarized from its report").openapi(
  "VersionRecord",
);
const DeleteResult = DeleteResultDoc.describe(
  "What a delete removed (every key, in order) and the references `force` overrode",
).openapi("DeleteResult");

const GcResult = GcResultDoc.describe(
  "What gc removed (or, with `dryRun`, would remove), key by key",
).openapi("GcResult");
const Job = z.union([EmbedJob, BatchPredictionJob]).openapi("Job", {
  description: "An embedding job (`kind: embed`) or a batch-prediction job (`kind: batch-predict`)",
});
const BackboneParams = z.object({
  backbone: z
    .string()
    .regex(NAME_PATTERN, NAME_RULE)
    .openapi({ param: { name: "backbone", in: "path" }, example: "glove-6b-100d" }),
});

export const ForceQuery = z.object({
  force: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "Delete even what is still referenced (default false)", example: "true" }),
});

const list = (path: string, operationId: string, tag: string, summary: string, item: z.ZodType) =>
  createRoute({
    method: "get",
    path,
    operationId,
    tags: [tag],
    summary,
    responses: {
      200: jsonBody(z.array(item), "An array of records, in name order"),
      ...errorResponses({}),
    },
  });

const referenced =
  "Still referenced (`details.referencedBy` names what refers to it); `?force=true` deletes anyway";

const listDatasetsRoute = list("/datasets", "listDatasets", "datasets", "Every dataset", DatasetRecord);
const listHeadsRoute = list("/heads", "listHeads", "heads", "Every head", HeadRecord);
const listVersionsRoute = createRoute({
  method: "get",
  path: "/heads/{head}/versions",
  operationId: "listHeadVersions",
  tags: ["heads"],
  summary: "A head's versions, oldest first, with the aliases pointing to each",
  request: { params: HeadParams },
  responses: {
    200: jsonBody(z.array(VersionRecord), "An array of records, oldest first"),
    ...errorResponses({ 400: true, 404: "Unknown head" }),
  },
});
const listJobsRoute = list(
  "/jobs",
  "listJobs",
  "jobs",
  "Every job's record: embedding jobs, then batch-prediction jobs",
  Job,
);
const listBackbonesRoute = list(
  "/backbones",
  "listBackbones",
  "backbones",
  "Every published backbone",
  Backbone,
);

const deleteDatasetRoute = createRoute({
  method: "delete",
  path: "/datasets/{dataset}",
  operationId: "deleteDataset",
  tags: ["datasets"],
  summary: "Delete a dataset, its cached embeddings and its embedding jobs",
  description:
    "Refused (409) while an alias of any head points to a version trained on it, one of its embedding jobs is running, " +
    "or a batch job scoring it is queued or running. " +
    "`_status.json` goes first, so the dataset disappears at once; see docs/formats.md#deleting.",
  request: { params: DatasetParams, query: ForceQuery },
  responses: {
    200: jsonBody(DeleteResult, "Deleted"),
    ...errorResponses({ 400: true, 404: "Unknown dataset", 409: referenced }),
  },
});

const deleteHeadRoute = createRoute({
  method: "delete",
  path: "/heads/{head}",
  operationId: "deleteHead",
  tags: ["heads"],
  summary: "Delete a head: its aliases, every version and its stored exports",
  description:
    "Refused (409) while a batch job of the head is queued or running; with `force=true` those jobs are cancelled first. " +
    "Aliases go first, so the head stops serving at once; see docs/formats.md#deleting.",
  request: { params: HeadParams, query: ForceQuery },
  responses: {
    200: jsonBody(DeleteResult, "Deleted"),
    ...errorResponses({ 400: true, 404: "Unknown head", 409: referenced }),
  },
});

const deleteVersionRoute = createRoute({
  method: "delete",
  path: "/heads/{head}/versions/{version}",
  operationId: "deleteHeadVersion",
  tags: ["heads"],
  summary: "Delete one head version",
  description:
    "Refused (409) while an alias points to it or would roll back to it; with `force=true` those aliases are removed " +
    "(or forget their rollback target) first. `head.json` goes before the report; see docs/formats.md#deleting.",
  request: { params: HeadVersionParams, query: ForceQuery },
  responses: {
    200: jsonBody(DeleteResult, "Deleted"),
    ...errorResponses({ 400: true, 404: "Unknown head or version", 409: referenced }),
  },
});

const deleteJobRoute = createRoute({
  method: "delete",
  path: "/jobs/{job}",
  operationId: "deleteJob",
  tags: ["jobs"],
  summary: "Delete a job: an embedding job's record, or a batch-prediction job with its outputs",
  description:
    "An embedding job's shards stay (they are its dataset's cache; `POST /v1/gc` removes what nothing needs). " +
    "A batch-prediction job's whole `predictions/<job>/` goes, its record first. Refused (409) while the job is " +
    "running (a batch job: queued or running); with `force=true` a batch job is cancelled first.",
  request: { params: JobParams, query: ForceQuery },
  responses: {
    200: jsonBody(DeleteResult, "Deleted"),
    ...errorResponses({ 400: true, 404: "Unknown job", 409: referenced }),
  },
});

const deleteBackboneRoute = createRoute({
  method: "delete",
  path: "/backbones/{backbone}",
  operationId: "deleteBackbone",
  tags: ["backbones"],
  summary: "Delete a backbone, its cached embeddings and its embedding jobs",
  description:
    "Refused (409) while a head version was trained with it (alone or as a part of `a+b`; " +
    "`details.referencedBy` names each head@version) or one of its embedding jobs is running. " +
    "`backbone.json` goes first; see docs/formats.md#deleting.",
  request: { params: BackboneParams, query: ForceQuery },
  responses: {
    200: jsonBody(DeleteResult, "Deleted"),
    ...errorResponses({ 400: true, 404: "Unknown backbone", 409: referenced }),
  },
});

const GcRequest = z
  .object({
    dryRun: z.boolean().optional().openapi({ description: "Only list what would be removed" }),
    keepVersions: z
      .number()
      .int()
      .min(0)
      .optional()
      .openapi({
        description: `Versions kept per head besides those an alias or a queued or running batch job needs (default ${DEFAULT_KEEP_VERSIONS})`,
      }),
    minAgeSeconds: z
      .number()
      .int()
      .min(0)
      .optional()
      .openapi({
        description: `Objects younger than this are work in progress and left alone (default ${DEFAULT_MIN_AGE_MS / 1000})`,
      }),
  })
  .strict()
  .openapi("GcRequest", { example: { dryRun: true, keepVersions: 5 } });

const gcRoute = createRoute({
  method: "post",
  path: "/gc",
  operationId: "collectGarbage",
  tags: ["system"],
  summary: "Remove what nothing refers to (old versions, unused cache, temporaries); admins only",
  description:
    "Old head versions (aliases' targets, the last `keepVersions` and those of queued or running batch jobs stay), " +
    "rows versions and cache shards nothing kept reads, unused batch inputs, stale plans and leases, expired " +
    "idempotency records. Never `_system/`, uploads or batch outputs. Safe while other work runs; see docs/formats.md#garbage-collection.",
  request: {
    body: { content: { "application/json": { schema: GcRequest } }, required: false },
  },
  responses: {
    200: jsonBody(GcResult, "Every key removed (or that would be), with its size"),
    ...errorResponses({ 400: true }),
  },
});

export function lifecycleRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const store = platform.store;
  const force = (q: { force?: string }) => ({ force: q.force === "true" });
  app.openapi(listDatasetsRoute, async (c) => c.json(await listDatasets(store), 200));
  app.openapi(listHeadsRoute, async (c) => c.json(await listHeads(store), 200));
  app.openapi(listVersionsRoute, async (c) =>
    c.json(await listHeadVersions(store, c.req.valid("param").head), 200),
  );
  app.openapi(listJobsRoute, async (c) => c.json(await listAllJobs(store), 200));
  app.openapi(listBackbonesRoute, async (c) => c.json(await listBackbones(store), 200));
  app.openapi(deleteDatasetRoute, async (c) =>
    c.json(await deleteDataset(store, c.req.valid("param").dataset, force(c.req.valid("query"))), 200),
  );
  app.openapi(deleteHeadRoute, async (c) =>
    c.json(await deleteHead(store, c.req.valid("param").head, force(c.req.valid("query"))), 200),
  );
  app.openapi(deleteVersionRoute, async (c) => {
    const { head, version } = c.req.valid("param");
    return c.json(await deleteVersion(store, head, version, force(c.req.valid("query"))), 200);
  });
  app.openapi(deleteJobRoute, async (c) =>
    c.json(await deleteJob(store, c.req.valid("param").job, force(c.req.valid("query"))), 200),
  );
  app.openapi(deleteBackboneRoute, async (c) =>
    c.json(await deleteBackbone(store, c.req.valid("param").backbone, force(c.req.valid("query"))), 200),
  );
  app.openapi(gcRoute, async (c) => {
    const body = c.req.header("content-type") ? c.req.valid("json") : {};
    const minAgeMs = body.minAgeSeconds === undefined ? undefined : body.minAgeSeconds * 1000;
    return c.json(await collectGarbage(store, { ...body, minAgeMs }), 200);
  });
  return app;
}
