import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { parseBackboneList } from "../../config.ts";
import { PayloadTooLargeError, ValidationError } from "../../errors.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import {
  DatasetInfo,
  errorResponses,
  ImportEmbeddingsResponse,
  IngestResponse,
  jsonBody,
} from "../responses.ts";
import { DatasetInfoQuery, DatasetParams, ImportEmbeddingsBody, IngestQuery } from "../schemas.ts";
import { addDatasetItemRoutes } from "./dataset-items.ts";

export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** JSON numbers cost ~20 bytes each: about 10,000 × 384 vectors; larger imports use the CLI. */
export const MAX_IMPORT_BYTES = 64 * 1024 * 1024;

const tags = ["datasets"];
/** Ingest answers 404 for an unknown backbone or file, 409 when another ingest won the race. */
const ingestErrors = {
  400: true,
  404: "Unknown backbone, or a manifest row's file is not in the bucket",
  409: "Another ingest changed the dataset concurrently",
  422: "The backbone cannot be loaded",
} as const;

/**
 * A manifest travels as its own bytes, read raw and validated row by row. A plain schema object,
 * not zod: `application/jsonl` looks like JSON to @hono/zod-openapi, which would parse it whole.
 */
const ManifestBytes = { type: "string", format: "binary" } as const;
const manifestTypes = [
  "application/x-ndjson",
  "application/jsonl",
  "application/x-jsonlines",
  "application/ndjson",
];

const putManifest = createRoute({
  method: "put",
  path: "/{dataset}/manifest",
  operationId: "putManifest",
  tags,
  summary: "Upload a manifest (JSONL or CSV) and ingest it",
  description:
    "Body is the manifest itself: `application/x-ndjson` (or `application/jsonl`) for JSONL, `text/csv` for CSV. " +
    "Rows are validated one by one; rejected rows are listed with line numbers. Embedding starts unless `embed=false`.",
  request: {
    params: DatasetParams,
    query: IngestQuery,
    body: {
      required: true,
      description: "The manifest bytes, one row per line (JSONL) or a header and rows (CSV)",
      content: Object.fromEntries(
        [...manifestTypes, "text/csv"].map((type) => [type, { schema: ManifestBytes }]),
      ),
    },
  },
  responses: {
    200: jsonBody(IngestResponse, "Ingest status and the embedding job"),
    ...errorResponses({
      ...ingestErrors,
      400: "Invalid input, an unsupported content type (`field: content-type`), or no valid row",
      413: `Manifest over ${MAX_MANIFEST_BYTES} bytes: upload it to the bucket instead`,
    }),
  },
});

const ingest = createRoute({
  method: "post",
  path: "/{dataset}/ingest",
  operationId: "ingestDataset",
  tags,
  summary: "Ingest the manifest already in the bucket (what an upload notification does)",
  request: { params: DatasetParams, query: IngestQuery },
  responses: {
    200: jsonBody(IngestResponse, "Ingest status and the embedding job"),
    ...errorResponses({ ...ingestErrors, 404: "No manifest in the bucket, an unknown backbone or file" }),
  },
});

const importEmbeddings = createRoute({
  method: "post",
  path: "/{dataset}/embeddings",
  operationId: "importEmbeddings",
  tags,
  summary: "Import embeddings computed elsewhere (another model or provider)",
  description:
    "The rows become the dataset's current version and the vectors its cache under the external backbone `backbone` " +
    "(created on first import; its dim is then fixed). All or nothing: any invalid row or vector rejects the whole import " +
    `and changes nothing. Body at most ${MAX_IMPORT_BYTES} bytes; use \`headstart import-embeddings\` with an .npy file for more.`,
  request: {
    params: DatasetParams,
    body: { content: { "application/json": { schema: ImportEmbeddingsBody } }, required: true },
  },
  responses: {
    200: jsonBody(ImportEmbeddingsResponse, "The dataset status, the backbone and what was written"),
    ...errorResponses({
      400: "Invalid rows or vectors (`rows[i]…`, `embeddings[i]…`), a dim that differs from the backbone's, or a backbone that is a model",
      409: "Another ingest changed the dataset concurrently",
      413: `Body over ${MAX_IMPORT_BYTES} bytes: use \`headstart import-embeddings\``,
      415: "Not application/json",
    }),
  },
});

const show = createRoute({
  method: "get",
  path: "/{dataset}",
  operationId: "getDataset",
  tags,
  summary: "Dataset status: ingest result, embedding progress and items that could not be embedded",
  request: {
    params: DatasetParams,
    query: DatasetInfoQuery,
  },
  responses: {
    200: jsonBody(DatasetInfo, "Dataset status and the backbone's embedding progress"),
    ...errorResponses({ 400: true, 404: "Unknown dataset" }),
  },
});

function formatOf(contentType: string | undefined): "jsonl" | "csv" {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (type === "text/csv") return "csv";
  if (manifestTypes.includes(type)) return "jsonl";
  throw new ValidationError(
    `unsupported content-type ${JSON.stringify(type)}: send text/csv or application/x-ndjson`,
    { field: "content-type" },
  );
}

type EmbedQuery = { embed?: string; backbone?: string; backbones?: string };

/** The embedding job, or with `backbones` one per backbone submitted as one batch job. */
async function startEmbedding(platform: Platform, dataset: string, q: EmbedQuery) {
  if (q.embed === "false") return {};
  if (q.backbones !== undefined) {
    return { jobs: await platform.submitEmbeds(dataset, parseBackboneList(q.backbones)) };
  }
  return { job: await platform.submitEmbed(dataset, { backbone: q.backbone }) };
}

/** A named backbone that does not exist or cannot run is refused before the manifest is stored. */
async function checkEmbedding(platform: Platform, dataset: string, q: EmbedQuery) {
  if (q.embed === "false") return;
  if (q.backbones === undefined) return platform.checkEmbeddable(dataset, q.backbone);
  if (q.backbone !== undefined)
    throw new ValidationError("send backbone or backbones, not both", { field: "backbones" });
  await platform.checkEmbeddables(dataset, parseBackboneList(q.backbones));
}

export function datasetRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.use(
    "/:dataset/manifest",
    bodyLimit({
      maxSize: MAX_MANIFEST_BYTES,
      onError: () => {
        throw new PayloadTooLargeError(
          `manifest is larger than ${MAX_MANIFEST_BYTES} bytes: upload it to the bucket instead`,
          {
            field: "body",
          },
        );
      },
    }),
  );
  app.openapi(putManifest, async (c) => {
    const { dataset } = c.req.valid("param");
    const query = c.req.valid("query");
    const format = formatOf(c.req.header("content-type"));
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    await checkEmbedding(platform, dataset, query);
    const status = await platform.putManifest(dataset, format, bytes);
    return c.json({ status, ...(await startEmbedding(platform, dataset, query)) }, 200);
  });
  app.openapi(ingest, async (c) => {
    const { dataset } = c.req.valid("param");
    await checkEmbedding(platform, dataset, c.req.valid("query"));
    const status = await platform.ingest(dataset);
    return c.json({ status, ...(await startEmbedding(platform, dataset, c.req.valid("query"))) }, 200);
  });
  app.use(
    "/:dataset/embeddings",
    bodyLimit({
      maxSize: MAX_IMPORT_BYTES,
      onError: () => {
        throw new PayloadTooLargeError(
          `request body is larger than ${MAX_IMPORT_BYTES} bytes: import large files with \`headstart import-embeddings\``,
          { field: "body" },
        );
      },
    }),
  );
  app.openapi(importEmbeddings, async (c) => {
    const { dataset } = c.req.valid("param");
    const { backbone, rows, embeddings } = c.req.valid("json");
    return c.json(await platform.importEmbeddings(dataset, { backbone, rows, embeddings }), 200);
  });
  app.openapi(show, async (c) =>
    c.json(await platform.datasetInfo(c.req.valid("param").dataset, c.req.valid("query").backbone), 200),
  );
  addDatasetItemRoutes(app, platform);
  return app;
}
