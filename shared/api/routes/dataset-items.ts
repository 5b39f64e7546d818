/**
 * A dataset's files and its embedding map over HTTP, for clients that cannot reach the bucket
 * (the web console): `PUT …/files?path=` stores one file of an upload (the files first, then
 * the manifest by `PUT …/manifest`, which commits the upload as `headstart upload` does),
 * `GET …/files?path=` reads one back, and `GET …/map` is the 2-D PCA map of the cached vectors.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { defaultBackboneFor } from "../../backbone/defaults.ts";
import { readDatasetStatus } from "../../datasets/ingest.ts";
import { DatasetMap as DatasetMapDoc, datasetMap, MAP_MAX_POINTS } from "../../embed/dataset-map.ts";
import { NotFoundError, PayloadTooLargeError, ValidationError } from "../../errors.ts";
import { assertRelativeFilePath, assertUserDatasetName, keys } from "../../layout.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses, jsonBody } from "../responses.ts";
import { DatasetInfoQuery, DatasetParams } from "../schemas.ts";

/** One file of an upload; a bigger one goes to the bucket with `headstart upload`. */
export const MAX_DATASET_FILE_BYTES = 32 * 1024 * 1024;

const tags = ["datasets"];

const FileQuery = z.object({
  path: z.string().openapi({
    description:
      "The file's path in the dataset, `/`-separated (`cat/0001.png`): a manifest's `image` or `audio` value",
    example: "cat/0001.png",
  }),
});

const FileStored = z
  .object({ dataset: z.string(), path: z.string(), bytes: z.number().int() })
  .openapi("DatasetFileStored");

const DatasetMap = DatasetMapDoc.describe("DatasetMap").openapi("DatasetMap");

const putFile = createRoute({
  method: "put",
  path: "/{dataset}/files",
  operationId: "putDatasetFile",
  tags,
  summary: "Upload one file of a dataset (an image or audio file its manifest names)",
  description:
    "Stores the body as the file `path` of the dataset (`datasets/<dataset>/files/<path>`, as `headstart upload` " +
    "does). Upload every file first, then the manifest (`PUT /v1/datasets/{dataset}/manifest`): the manifest commits " +
    `the upload, and a row whose file is missing is rejected there with its line. At most ${MAX_DATASET_FILE_BYTES} bytes.`,
  request: {
    params: DatasetParams,
    query: FileQuery,
    body: {
      required: true,
      description: "The file's bytes",
      content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
    },
  },
  responses: {
    200: jsonBody(FileStored, "The file is stored"),
    ...errorResponses({
      400: "An invalid path (`field: path`), dataset name or an empty body (`field: body`)",
      413: `File over ${MAX_DATASET_FILE_BYTES} bytes`,
    }),
  },
});

const getFile = createRoute({
  method: "get",
  path: "/{dataset}/files",
  operationId: "getDatasetFile",
  tags,
  summary: "One file of a dataset (an image's thumbnail in the console)",
  description:
    "The stored bytes with a content type from the file's extension (`image/png`, `image/jpeg`, `image/webp`, " +
    "`image/gif`, `audio/wav`, `audio/mpeg`, `audio/flac`, `audio/ogg`; anything else `application/octet-stream`).",
  request: { params: DatasetParams, query: FileQuery },
  responses: {
    200: { description: "The file's bytes", content: { "application/octet-stream": { schema: z.string() } } },
    ...errorResponses({ 400: "An invalid path (`field: path`)", 404: "No such file in the dataset" }),
  },
});

const getMap = createRoute({
  method: "get",
  path: "/{dataset}/map",
  operationId: "getDatasetMap",
  tags,
  summary: "A 2-D map of the dataset's embeddings (PCA), for drawing",
  description:
    "The current version's cached vectors under `backbone` (default: the default backbone of the rows' modality) " +
    `projected on their first two principal components; at most ${MAP_MAX_POINTS} points (a seeded sample of bigger ` +
    "datasets: `total` says how many rows are embedded). Computed once per dataset version and backbone, then stored.",
  request: { params: DatasetParams, query: DatasetInfoQuery },
  responses: {
    200: jsonBody(DatasetMap, "The points, each with its id, label and text or image path"),
    ...errorResponses({
      400: "The rows are not embedded with the backbone yet (`field: dataset`), or an invalid name",
      404: "Unknown dataset or backbone",
    }),
  },
});

const CONTENT_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  wav: "audio/wav",
  mp3: "audio/mpeg",
  flac: "audio/flac",
  ogg: "audio/ogg",
};

export function contentTypeOf(path: string): string {
  const dot = path.lastIndexOf(".");
  return (
    (dot < 0 ? undefined : CONTENT_TYPES[path.slice(dot + 1).toLowerCase()]) ?? "application/octet-stream"
  );
}

/** Adds the routes to the datasets app (mounted at `/v1/datasets`). */
export function addDatasetItemRoutes(app: OpenAPIHono<AppEnv>, platform: Platform): void {
  app.use(
    "/:dataset/files",
    bodyLimit({
      maxSize: MAX_DATASET_FILE_BYTES,
      onError: () => {
        throw new PayloadTooLargeError(`file is larger than ${MAX_DATASET_FILE_BYTES} bytes`, {
          field: "body",
        });
      },
    }),
  );
  app.openapi(putFile, async (c) => {
    const { dataset } = c.req.valid("param");
    const { path } = c.req.valid("query");
    assertUserDatasetName(dataset);
    assertRelativeFilePath(path, "path");
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length === 0) throw new ValidationError(`file ${path} is empty`, { field: "body" });
    await platform.store.put(keys.datasetFile(dataset, path), bytes, { contentType: contentTypeOf(path) });
    return c.json({ dataset, path, bytes: bytes.length }, 200);
  });
  app.openapi(getFile, async (c) => {
    const { dataset } = c.req.valid("param");
    const { path } = c.req.valid("query");
    const key = keys.datasetFile(dataset, assertRelativeFilePath(path, "path"));
    const obj = await platform.store.get(key);
    if (!obj) throw new NotFoundError(`file ${path} of dataset ${dataset}`, { field: "path" });
    const res = c.body(obj.body as Uint8Array<ArrayBuffer>, 200, {
      "content-type": contentTypeOf(path),
      "x-content-type-options": "nosniff",
      // Shown, never run: a file is data even where a browser would render it as a document.
      "content-security-policy": "default-src 'none'; sandbox",
      "cache-control": "private, max-age=60",
    });
    return res as never;
  });
  app.openapi(getMap, async (c) => {
    const { dataset } = c.req.valid("param");
    const named = c.req.valid("query").backbone;
    const status = await readDatasetStatus(platform.store, dataset);
    if (!status) throw new NotFoundError(`dataset ${dataset}`, { field: "dataset" });
    const spec = await platform.backbone(
      named ?? defaultBackboneFor(status, platform.config, { mixed: "text" }),
    );
    return c.json(await datasetMap(platform.store, dataset, spec), 200);
  });
}
