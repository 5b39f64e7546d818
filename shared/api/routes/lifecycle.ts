/**
 * Lifecycle: list datasets, heads, a head's versions, embedding jobs and backbones; delete a
 * dataset, a head or a head version (`?force=true` past what still refers to it). The work is in
 * `lifecycle/`; mounted at `/v1`, beside each resource's own routes.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { deleteDataset, deleteHead, deleteVersion } from "../../lifecycle/delete.ts";
import { listBackbones, listDatasets, listHeads, listHeadVersions, listJobs } from "../../lifecycle/list.ts";
import {
  DatasetRecord as DatasetRecordDoc,
  DeleteResult as DeleteResultDoc,
  HeadRecord as HeadRecordDoc,
  VersionRecord as VersionRecordDoc,
} from "../../lifecycle/records.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { Backbone, EmbedJob, errorResponses, jsonBody } from "../responses.ts";
import { DatasetParams, HeadParams, HeadVersionParams } from "../schemas.ts";

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
const listJobsRoute = list("/jobs", "listJobs", "jobs", "Every embedding job's record", EmbedJob);
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
    "Refused (409) while an alias of any head points to a version trained on it, or one of its embedding jobs is running. " +
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
  description: "Aliases go first, so the head stops serving at once; see docs/formats.md#deleting.",
  request: { params: HeadParams, query: ForceQuery },
  responses: {
    200: jsonBody(DeleteResult, "Deleted"),
    ...errorResponses({ 400: true, 404: "Unknown head" }),
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

export function lifecycleRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const store = platform.store;
  const force = (q: { force?: string }) => ({ force: q.force === "true" });
  app.openapi(listDatasetsRoute, async (c) => c.json(await listDatasets(store), 200));
  app.openapi(listHeadsRoute, async (c) => c.json(await listHeads(store), 200));
  app.openapi(listVersionsRoute, async (c) =>
    c.json(await listHeadVersions(store, c.req.valid("param").head), 200),
  );
  app.openapi(listJobsRoute, async (c) => c.json(await listJobs(store), 200));
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
  return app;
}
