/**
 * Ingest: read the uploaded manifest, validate every row, check referenced files exist, and
 * publish `_rows.jsonl` then `_status.json`. An upload with no usable row leaves the previous
 * rows untouched and says so in the status.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import { basename, join, relative, sep } from "node:path";
import { z } from "zod";
import {
  ConflictError,
  HeadstartError,
  PayloadTooLargeError,
  PreconditionFailedError,
  ValidationError,
} from "../errors.ts";
import { keys, type ManifestFormat, parseKey } from "../layout.ts";
import { decodeUtf8, getJson, parseJsonl, putJson, toJsonl } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { manifestFromFolder, type SkippedEntry } from "./folder-manifest.ts";
import {
  DatasetRow,
  MAX_REJECTIONS_LISTED,
  manifestFormatOf,
  modalityOf,
  parseManifest,
  type Rejection,
} from "./manifest.ts";
import { DatasetStatus } from "./status.ts";
import { compareSequencers } from "./upload-event.ts";

async function findManifest(
  store: ObjectStore,
  dataset: string,
): Promise<{ key: string; format: ManifestFormat }> {
  const found: Array<{ key: string; format: ManifestFormat }> = [];
  for (const format of ["jsonl", "csv"] as const) {
    const key = keys.manifest(dataset, format);
    if (await store.head(key)) found.push({ key, format });
  }
  if (found.length === 0) {
    throw new ValidationError(`dataset ${dataset} has no manifest.jsonl or manifest.csv`, {
      field: "dataset",
    });
  }
  if (found.length > 1) {
    throw new ValidationError(`dataset ${dataset} has both manifest.jsonl and manifest.csv: keep one`, {
      field: "manifest",
    });
  }
  return found[0];
}

/** Manifests are read whole; bigger datasets are split into several. */
export const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;

export interface IngestOptions {
  /** The manifest that triggered ingest (from an upload event); found by listing otherwise. */
  manifestKey?: string;
}

export async function ingestDataset(
  store: ObjectStore,
  dataset: string,
  opts: IngestOptions = {},
): Promise<DatasetStatus> {
  let manifest: { key: string; format: ManifestFormat };
  if (opts.manifestKey) {
    const parsed = parseKey(opts.manifestKey);
    if (parsed?.kind !== "manifest" || parsed.dataset !== dataset) {
      throw new ValidationError(`${opts.manifestKey} is not a manifest of dataset ${dataset}`, {
        field: "key",
      });
    }
    manifest = { key: opts.manifestKey, format: parsed.format };
  } else {
    manifest = await findManifest(store, dataset);
  }
  // The status is the dataset's one switch between versions; moving it by compare-and-swap
  // means a slow ingest of an older upload can never overwrite a newer one.
  const previous = await getJson(store, keys.datasetStatus(dataset), DatasetStatus);
  const info = await store.head(manifest.key);
  if (!info) throw new ValidationError(`manifest ${manifest.key} does not exist`, { field: "manifest" });
  if (info.size > MAX_MANIFEST_BYTES) {
    throw new PayloadTooLargeError(
      `manifest ${manifest.key} is ${info.size} bytes; the limit is ${MAX_MANIFEST_BYTES}: split the dataset`,
      { field: "manifest" },
    );
  }
  const obj = await store.get(manifest.key);
  if (!obj) throw new ValidationError(`manifest ${manifest.key} does not exist`, { field: "manifest" });

  const source: SourceVersion = {
    etag: obj.etag,
    sha256: createHash("sha256").update(obj.body).digest("hex"),
  };
  const parsed = parseManifest(obj.body, manifest.format);
  const rows: DatasetRow[] = [];
  const rejected: Rejection[] = [...parsed.rejected];
  for (const row of parsed.rows) {
    const file = row.image ?? row.audio;
    if (file !== undefined && !(await store.head(keys.datasetFile(dataset, file)))) {
      rejected.push({
        line: row.line,
        id: row.id,
        field: row.image !== undefined ? "image" : "audio",
        reason: `file not found: ${keys.datasetFile(dataset, file)}`,
      });
      continue;
    }
    rows.push(row);
  }
  rejected.sort((a, b) => a.line - b.line);

  const status: DatasetStatus = {
    dataset,
    state: rows.length > 0 ? "ingested" : "rejected",
    manifest: { key: manifest.key, format: manifest.format, etag: obj.etag, bytes: obj.size },
    rows: { total: parsed.total, accepted: rows.length, rejected: rejected.length },
    rejected: rejected.slice(0, MAX_REJECTIONS_LISTED),
    ...summarizeRows(rows),
    ingestedAt: new Date().toISOString(),
  };

  if (rows.length === 0) {
    status.message =
      parsed.total === 0
        ? "the manifest is empty: no rows to ingest"
        : `none of the ${parsed.total} rows is valid; the previous rows of this dataset, if any, stay in use`;
    // The previous version stays current: training keeps working on the last good upload.
    if (previous?.value.version) status.version = previous.value.version;
    await commitStatus(store, status, previous?.etag, source);
    throw new ValidationError(`${manifest.key}: ${status.message}`, {
      field: rejected[0] ? `line ${rejected[0].line}` : "manifest",
      details: { rejected: status.rejected.slice(0, 20) },
    });
  }

  return publishVersion(store, status, rows, previous?.etag, source);
}

/** Label, split and modality counts of accepted rows, as `_status.json` reports them. */
export function summarizeRows(
  rows: readonly DatasetRow[],
): Pick<DatasetStatus, "labels" | "splits" | "modalities"> {
  // No prototype: a label may be called "constructor" or "__proto__".
  const labels: Record<string, number> = Object.create(null);
  const splits = { train: 0, test: 0, unspecified: 0 };
  const modalities: Record<string, number> = {};
  for (const r of rows) {
    for (const l of r.label === undefined ? [] : Array.isArray(r.label) ? r.label : [String(r.label)]) {
      labels[l] = (labels[l] ?? 0) + 1;
    }
    splits[r.split ?? "unspecified"]++;
    const modality = modalityOf(r);
    modalities[modality] = (modalities[modality] ?? 0) + 1;
  }
  return { labels, splits, modalities };
}

/** The source object as it was read: its ETag, and (for manifests) the sha256 of its bytes. */
export interface SourceVersion {
  etag: string;
  sha256?: string;
}

/**
 * Makes `rows` the dataset's current version (an ingest's or an embeddings import's): the
 * status is moved by compare-and-swap from `previousEtag`, and only while the source object
 * (`status.manifest`) still is `source`. Returns the status now current.
 */
export async function publishVersion(
  store: ObjectStore,
  status: DatasetStatus,
  rows: readonly DatasetRow[],
  previousEtag: string | undefined,
  source: SourceVersion,
): Promise<DatasetStatus> {
  const body = toJsonl(rows);
  const version = createHash("sha256").update(body).digest("hex");
  // Rows first (content-addressed, so rewriting them is harmless), status last.
  await store.put(keys.datasetRows(status.dataset, version), body, {
    contentType: "application/x-ndjson",
  });
  return publishStatus(store, status, version, previousEtag, source);
}

/**
 * The last step of `publishVersion`, for a caller that stored `_rows/<version>.jsonl` itself (an
 * embeddings import streams it): makes `version` current by compare-and-swap.
 */
export function publishStatus(
  store: ObjectStore,
  status: DatasetStatus,
  version: string,
  previousEtag: string | undefined,
  source: SourceVersion,
): Promise<DatasetStatus> {
  status.version = version;
  return commitStatus(store, status, previousEtag, source);
}

async function commitStatus(
  store: ObjectStore,
  status: DatasetStatus,
  previousEtag: string | undefined,
  source: SourceVersion,
): Promise<DatasetStatus> {
  const lost = () =>
    new ConflictError(
      `${status.manifest.key} changed while it was being ingested; the newer upload is ingested on its own`,
      { field: "manifest" },
    );
  if (!(await sourceUnchanged(store, status.manifest.key, source))) throw lost();
  try {
    await putJson(
      store,
      keys.datasetStatus(status.dataset),
      status,
      previousEtag ? { ifMatch: previousEtag } : { ifNoneMatch: "*" },
    );
    return status;
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
    // Another ingest of the very same upload got there first (a repeated event, two runs of
    // one command): its version is this one, so this ingest is done, not lost.
    const current = await getJson(store, keys.datasetStatus(status.dataset), DatasetStatus);
    if (
      current !== undefined &&
      source.sha256 !== undefined &&
      current.value.version === status.version &&
      current.value.manifest.key === status.manifest.key &&
      (await sourceUnchanged(store, status.manifest.key, source))
    ) {
      return current.value;
    }
    throw lost();
  }
}

/**
 * Whether the source object still holds what was read. A re-upload of identical bytes gets a
 * new ETag on some stores: with the bytes' sha256 known, only different bytes count as a change.
 */
async function sourceUnchanged(store: ObjectStore, key: string, source: SourceVersion): Promise<boolean> {
  const info = await store.head(key);
  if (!info) return false;
  if (info.etag === source.etag) return true;
  if (source.sha256 === undefined) return false;
  const now = await store.get(key);
  return now !== undefined && createHash("sha256").update(now.body).digest("hex") === source.sha256;
}

/** The newest upload notification applied to one manifest key (`keys.manifestEvents`). */
const AppliedEvent = z.object({
  key: z.string(),
  sequencer: z.string(),
  eTag: z.string().optional(),
  appliedAt: z.string(),
});

function manifestEventsKey(manifestKey: string): string {
  const parsed = parseKey(manifestKey);
  if (parsed?.kind !== "manifest")
    throw new ValidationError(`${manifestKey} is not a manifest key`, { field: "key" });
  return keys.manifestEvents(parsed.dataset, parsed.format);
}

/** The `sequencer` of the newest upload event of `manifestKey` already applied, if any. */
export async function appliedSequencer(store: ObjectStore, manifestKey: string): Promise<string | undefined> {
  return (await getJson(store, manifestEventsKey(manifestKey), AppliedEvent))?.value.sequencer;
}

/**
 * Records that the upload event `sequencer` of `manifestKey` has been applied, unless a newer
 * one already is: by compare-and-swap, so two events finishing together leave the newer.
 */
export async function recordAppliedSequencer(
  store: ObjectStore,
  manifestKey: string,
  sequencer: string,
  eTag?: string,
): Promise<void> {
  const key = manifestEventsKey(manifestKey);
  for (;;) {
    const current = await getJson(store, key, AppliedEvent);
    if (current && compareSequencers(current.value.sequencer, sequencer) >= 0) return;
    const record = { key: manifestKey, sequencer, eTag, appliedAt: new Date().toISOString() };
    try {
      await putJson(store, key, record, current ? { ifMatch: current.etag } : { ifNoneMatch: "*" });
      return;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
}

export async function readDatasetStatus(
  store: ObjectStore,
  dataset: string,
): Promise<DatasetStatus | undefined> {
  return (await getJson(store, keys.datasetStatus(dataset), DatasetStatus))?.value;
}

/** The rows of the dataset's current version (the one its status names). */
export async function readDatasetRows(
  store: ObjectStore,
  dataset: string,
  /** A specific (earlier) version instead of the current one. */
  atVersion?: string,
): Promise<{ rows: DatasetRow[]; version: string } | undefined> {
  const version = atVersion ?? (await readDatasetStatus(store, dataset))?.version;
  if (!version) return undefined;
  const status = { version };
  const key = keys.datasetRows(dataset, status.version);
  const obj = await store.get(key);
  if (!obj)
    throw new HeadstartError(
      "internal",
      `dataset ${dataset} version ${status.version} has no rows at ${key}`,
    );
  return { rows: parseJsonl(decodeUtf8(obj.body), DatasetRow, key), version: status.version };
}

/**
 * Uploads a local manifest file, or a directory holding `manifest.jsonl|csv` and `files/…`,
 * the way a user would drop it in the bucket. Files go first so the manifest never references
 * a file that is not there yet.
 */
export interface UploadResult {
  manifestKey: string;
  /** A labelled folder: files the `<label>/<file>` convention could not place, with why. */
  skipped?: SkippedEntry[];
}

/** Files in flight at once: enough to hide S3 latency, few enough for small machines. */
const UPLOAD_CONCURRENCY = 8;

async function putFiles(store: ObjectStore, dataset: string, files: Array<{ local: string; rel: string }>) {
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++] as { local: string; rel: string };
      await store.put(keys.datasetFile(dataset, f.rel), await fs.readFile(f.local));
    }
  };
  await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, files.length) }, worker));
}

/**
 * Uploads a dataset from the local disk: a manifest file; a directory with one manifest and
 * `files/`; or a labelled folder of images (`<label>/<file>`, optional `test/<label>/<file>`),
 * whose manifest is generated. Files go first and the manifest last, since the manifest is what
 * makes the upload visible.
 */
export async function uploadDataset(
  store: ObjectStore,
  dataset: string,
  localPath: string,
): Promise<UploadResult> {
  const st = await fs.stat(localPath).catch(() => undefined);
  if (!st) throw new ValidationError(`no such file or directory: ${localPath}`, { field: "manifest" });
  let manifestPath = localPath;
  if (st.isDirectory()) {
    const present: string[] = [];
    for (const n of ["manifest.jsonl", "manifest.csv"])
      if (
        await fs.stat(join(localPath, n)).then(
          () => true,
          () => false,
        )
      )
        present.push(n);
    if (present.length === 0) return uploadLabelledFolder(store, dataset, localPath);
    if (present.length !== 1) {
      throw new ValidationError(`${localPath} must hold exactly one of manifest.jsonl, manifest.csv`, {
        field: "manifest",
      });
    }
    manifestPath = join(localPath, present[0] as string);
    const filesDir = join(localPath, "files");
    const files = (await walkFiles(filesDir)).map((local) => ({
      local,
      rel: relative(filesDir, local).split(sep).join("/"),
    }));
    await putFiles(store, dataset, files);
  }
  const manifestKey = await putManifest(
    store,
    dataset,
    manifestFormatOf(basename(manifestPath)),
    await fs.readFile(manifestPath),
  );
  return { manifestKey };
}

/** Longest id the manifest takes; longer paths keep the generated `line-N` id. */
const MAX_ID_CHARS = 256;

async function uploadLabelledFolder(store: ObjectStore, dataset: string, dir: string): Promise<UploadResult> {
  const { rows, skipped } = await manifestFromFolder(dir);
  if (rows.length === 0) {
    throw new ValidationError(
      `${dir} has no manifest.jsonl or manifest.csv and no images in <label>/<file> folders` +
        (skipped.length
          ? ` (${skipped.length} entries skipped, first: ${skipped[0]?.path}: ${skipped[0]?.reason})`
          : ""),
      { field: "manifest" },
    );
  }
  await putFiles(
    store,
    dataset,
    rows.map((r) => ({ local: join(dir, ...r.image.split("/")), rel: r.image })),
  );
  // The path is a stable id: adding files to the folder later does not renumber the others.
  const lines = rows.map((r) => JSON.stringify(r.image.length <= MAX_ID_CHARS ? { id: r.image, ...r } : r));
  const manifestKey = await putManifest(store, dataset, "jsonl", `${lines.join("\n")}\n`);
  return { manifestKey, skipped };
}

/**
 * Stores a dataset's manifest in one format. The new manifest is written before the other
 * format's is removed, so a failed write never leaves the dataset without one.
 */
export async function putManifest(
  store: ObjectStore,
  dataset: string,
  format: ManifestFormat,
  body: Uint8Array | string,
): Promise<string> {
  const key = keys.manifest(dataset, format);
  await store.put(key, body, { contentType: format === "csv" ? "text/csv" : "application/x-ndjson" });
  await store.delete(keys.manifest(dataset, format === "csv" ? "jsonl" : "csv"));
  return key;
}

async function walkFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFiles(full)));
    else if (e.isFile()) out.push(full);
  }
  return out.sort();
}
