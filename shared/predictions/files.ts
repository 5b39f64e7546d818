/**
 * Where a finished batch job's parts are fetched from (`GET …/batch-predictions/<job>/files`):
 * each part with a URL to GET it from. A store that issues URLs (S3) gives a presigned GET, so
 * a client downloads the parts straight from the bucket, past the API's response limits; a
 * directory store has none, and the URL is the local server's route for that part. As with
 * `export-predictions`, only a committed job (its `_summary.json` written) hands out files, so a
 * client never fetches half a job.
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { ConflictError, HeadstartError, NotFoundError, ValidationError } from "../errors.ts";
import { EXPORT_URL_TTL_SECONDS } from "../heads/export-store.ts";
import { keys, parseKey } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";
import { type BatchCounts, type BatchJob, type BatchStatus, requireBatchJob } from "./job.ts";
import { type BatchSummary, readSummary } from "./output.ts";

export type BatchFileKind = "predictions" | "errors";

export interface BatchFile {
  kind: BatchFileKind;
  part: number;
  key: string;
  bytes: number;
  url: string;
  /** When a presigned `url` stops working; absent for the local server's route. */
  expiresAt?: string;
}

export interface BatchFiles {
  job: string;
  status: BatchStatus;
  counts: BatchCounts;
  files: BatchFile[];
}

/** The job and its summary; 404 for a job of another head, 409 for one not finished. */
export async function finishedBatchJob(
  store: ObjectStore,
  job: string,
  head?: string,
): Promise<{ record: BatchJob; summary: BatchSummary }> {
  const record = await requireBatchJob(store, job);
  if (head !== undefined && record.head !== head) {
    throw new NotFoundError(`batch job ${job} of head ${head}`, { field: "job" });
  }
  const summary = await readSummary(store, job);
  if (!summary) {
    throw new ConflictError(`batch job ${job} is ${record.status}; only a finished job can be exported`, {
      field: "job",
    });
  }
  return { record, summary };
}

/**
 * Every part of a finished job of `head`, prediction parts then error parts, each in the
 * summary's order. `localUrl(name)` is the URL of the part named `name` where the store issues
 * none.
 */
export async function listBatchFiles(
  store: ObjectStore,
  head: string,
  job: string,
  localUrl: (name: string) => string,
  ttlSeconds = EXPORT_URL_TTL_SECONDS,
): Promise<BatchFiles> {
  const { record, summary } = await finishedBatchJob(store, job, head);
  // One listing for every part's size, not a HEAD each: a large job has many parts.
  const sizes = new Map((await store.list(keys.predictionsPrefix(job))).map((o) => [o.key, o.size]));
  const files = await Promise.all(
    [...summary.outputs, ...summary.errors].map(async (key): Promise<BatchFile> => {
      const { kind, part, name } = partOf(job, key);
      const bytes = sizes.get(key);
      if (bytes === undefined) {
        throw new HeadstartError("internal", `part ${key} of a committed batch job is missing`);
      }
      const filename = `${job}-${name}`;
      const signed = await store.downloadUrl?.(key, { expiresInSeconds: ttlSeconds, filename });
      const file: BatchFile = { kind, part, key, bytes, url: signed ?? localUrl(name) };
      if (signed) file.expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString();
      return file;
    }),
  );
  return { job, status: record.status, counts: summary.counts, files };
}

export interface OpenedBatchFile {
  filename: string;
  bytes: number;
  body: ReadableStream<Uint8Array>;
}

/**
 * The part named `name` (`part-00000.jsonl`, `errors-00000.jsonl`) of a finished job of `head`,
 * streamed. The key is built by `layout.ts` and must be one the summary lists: a name of any
 * other shape (a path, another file of the job's folder) is refused before the store is read.
 */
export async function openBatchFile(
  store: ObjectStore,
  head: string,
  job: string,
  name: string,
): Promise<OpenedBatchFile> {
  const key = `${keys.predictionsPrefix(job)}${name}`;
  const kind = parseKey(key)?.kind;
  if (kind !== "predictionsPart" && kind !== "predictionsErrors") {
    throw new ValidationError(
      `invalid file name ${JSON.stringify(name)}: part-NNNNN.jsonl or errors-NNNNN.jsonl`,
      { field: "name" },
    );
  }
  const { summary } = await finishedBatchJob(store, job, head);
  const listed = summary.outputs.includes(key) || summary.errors.includes(key);
  const info = listed ? await store.head(key) : undefined;
  const path = info && (await store.localPath(key));
  if (!info || !path) throw new NotFoundError(`file ${name} of batch job ${job}`, { field: "name" });
  return {
    filename: `${job}-${name}`,
    bytes: info.size,
    body: Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
  };
}

/** A part key of the summary: its kind, number and file name. */
function partOf(job: string, key: string): { kind: BatchFileKind; part: number; name: string } {
  const parsed = parseKey(key);
  if ((parsed?.kind !== "predictionsPart" && parsed?.kind !== "predictionsErrors") || parsed.job !== job) {
    throw new HeadstartError("internal", `${key} in the summary of batch job ${job} is not one of its parts`);
  }
  const kind = parsed.kind === "predictionsPart" ? "predictions" : "errors";
  return { kind, part: parsed.part, name: key.slice(keys.predictionsPrefix(job).length) };
}
