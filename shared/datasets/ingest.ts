/**
 * Ingest: read the uploaded manifest a line at a time, validate every row, check referenced files
 * exist, and publish `_rows/<version>.jsonl` then `_status.json`. An upload with no usable row leaves the previous
 * rows untouched and says so in the status.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, promises as fs, type WriteStream } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
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
import { decodeUtf8, getJson, parseJsonl, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { folderRowPath, manifestFromFolder, type SkippedEntry } from "./folder-manifest.ts";
import { fileChunks, physicalLines } from "./lines.ts";
import {
  DatasetRow,
  MAX_REJECTIONS_LISTED,
  manifestFormatOf,
  modalityOf,
  type Rejection,
  readManifest,
} from "./manifest.ts";
import { compareSequencers } from "./sequencer.ts";
import { DatasetStatus } from "./status.ts";

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

/** A manifest is streamed, but kept whole on local disk while it is read; bigger datasets are split into several. */
export const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;

export interface IngestOptions {
  /** The manifest that triggered ingest (from an upload event); found by listing otherwise. */
  manifestKey?: string;
}

/**
 * Validates a manifest a line at a time and publishes its rows as the dataset's new version. The
 * rows are spooled to a local file (hashed on the way: the version is their sha256) and stored
 * from there, so memory stays one line plus 8 bytes a row whatever the manifest's size.
 */
export async function ingestDataset(
  store: ObjectStore,
  dataset: string,
  opts: IngestOptions = {},
): Promise<DatasetStatus> {
  const manifest = await locateManifest(store, dataset, opts.manifestKey);
  // The status is the dataset's one switch between versions; moving it by compare-and-swap
  // means a slow ingest of an older upload can never overwrite a newer one.
  const previous = await getJson(store, keys.datasetStatus(dataset), DatasetStatus);
  const snapshot = await openManifest(store, manifest.key);
  const spool = await RowSpool.create();
  try {
    const source: SourceVersion = { etag: snapshot.etag, sha256: snapshot.sha256 };
    const read = await readRows(store, dataset, snapshot.handle, manifest.format, spool);
    await snapshot.handle.close();

    const status: DatasetStatus = {
      dataset,
      state: spool.count > 0 ? "ingested" : "rejected",
      manifest: { key: manifest.key, format: manifest.format, etag: snapshot.etag, bytes: snapshot.size },
      rows: { total: read.total, accepted: spool.count, rejected: read.rejectedCount },
      rejected: read.rejected,
      ...read.summary.result(),
      ingestedAt: new Date().toISOString(),
    };

    if (spool.count === 0) {
      await commitRejected(store, status, read.total, previous, source);
      throw new ValidationError(`${manifest.key}: ${status.message}`, {
        field: read.rejected[0] ? `line ${read.rejected[0].line}` : "manifest",
        details: { rejected: status.rejected.slice(0, 20) },
      });
    }

    const version = await spool.finish();
    // Rows first (content-addressed, so rewriting them is harmless), status last.
    await putLocalFile(store, keys.datasetRows(dataset, version), spool.path, "application/x-ndjson");
    return await publishStatus(store, status, version, previous?.etag, source);
  } finally {
    await snapshot.handle.close().catch(() => undefined);
    await spool.remove();
  }
}

/** The manifest that triggered ingest (checked to be this dataset's), else the one there is. */
async function locateManifest(
  store: ObjectStore,
  dataset: string,
  manifestKey: string | undefined,
): Promise<{ key: string; format: ManifestFormat }> {
  if (!manifestKey) return findManifest(store, dataset);
  const parsed = parseKey(manifestKey);
  if (parsed?.kind !== "manifest" || parsed.dataset !== dataset) {
    throw new ValidationError(`${manifestKey} is not a manifest of dataset ${dataset}`, {
      field: "key",
    });
  }
  return { key: manifestKey, format: parsed.format };
}

/**
 * Validates every line and spools the rows whose files exist; rejections are all counted, the
 * first MAX_REJECTIONS_LISTED kept.
 */
async function readRows(
  store: ObjectStore,
  dataset: string,
  handle: FileHandle,
  format: ManifestFormat,
  spool: RowSpool,
): Promise<{ total: number; summary: RowSummary; rejected: Rejection[]; rejectedCount: number }> {
  const summary = new RowSummary();
  const rejected: Rejection[] = [];
  let rejectedCount = 0;
  const reject = (r: Rejection) => {
    rejectedCount++;
    if (rejected.length < MAX_REJECTIONS_LISTED) rejected.push(r);
  };
  const { total } = await readManifest(() => physicalLines(fileChunks(handle)), format, {
    reject,
    row: async (row) => {
      const file = row.image ?? row.audio;
      if (file !== undefined && !(await store.head(keys.datasetFile(dataset, file)))) {
        const field = row.image !== undefined ? "image" : "audio";
        reject({
          line: row.line,
          id: row.id,
          field,
          reason: `file not found: ${keys.datasetFile(dataset, file)}`,
        });
        return;
      }
      await spool.write(row);
      summary.add(row);
    },
  });
  return { total, summary, rejected, rejectedCount };
}

/** Records an upload with no usable row; the previous version stays current. */
async function commitRejected(
  store: ObjectStore,
  status: DatasetStatus,
  total: number,
  previous: { value: DatasetStatus; etag: string } | undefined,
  source: SourceVersion,
): Promise<void> {
  status.message =
    total === 0
      ? "the manifest is empty: no rows to ingest"
      : `none of the ${total} rows is valid; the previous rows of this dataset, if any, stay in use`;
  // The previous version stays current: training keeps working on the last good upload.
  if (previous?.value.version) status.version = previous.value.version;
  await commitStatus(store, status, previous?.etag, source);
}

/**
 * The manifest's bytes as one version: an open handle on a local copy (FsStore: the object
 * itself, which a later upload renames over but cannot change), with that version's ETag and
 * sha256. The ETag is read before and after opening, so the handle holds exactly its bytes.
 */
async function openManifest(
  store: ObjectStore,
  key: string,
): Promise<{ handle: FileHandle; etag: string; size: number; sha256: string }> {
  const missing = () => new ValidationError(`manifest ${key} does not exist`, { field: "manifest" });
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = await store.head(key);
    if (!before) throw missing();
    if (before.size > MAX_MANIFEST_BYTES) {
      throw new PayloadTooLargeError(
        `manifest ${key} is ${before.size} bytes; the limit is ${MAX_MANIFEST_BYTES}: split the dataset`,
        { field: "manifest" },
      );
    }
    const local = await store.localFile(key);
    if (!local) throw missing();
    const handle = await fs.open(local.path, "r").catch((err) => {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined; // replaced meanwhile
      throw err;
    });
    if (!handle) continue;
    const after = await store.head(key);
    if (after?.etag === before.etag) {
      return { handle, etag: before.etag, size: before.size, sha256: local.sha256 };
    }
    await handle.close();
  }
  throw new ConflictError(`${key} kept changing while it was being read; ingest it again`, {
    field: "manifest",
  });
}

/** The version's rows as `_rows/<version>.jsonl` lines in a local file, hashed as they are written. */
class RowSpool {
  count = 0;
  private readonly hash = createHash("sha256");
  private constructor(
    private readonly dir: string,
    private readonly out: WriteStream,
  ) {}

  get path(): string {
    return join(this.dir, "rows.jsonl");
  }

  static async create(): Promise<RowSpool> {
    const dir = await fs.mkdtemp(join(tmpdir(), "headstart-ingest-"));
    return new RowSpool(dir, createWriteStream(join(dir, "rows.jsonl")));
  }

  async write(row: DatasetRow): Promise<void> {
    const line = `${JSON.stringify(row)}\n`;
    this.count++;
    this.hash.update(line);
    if (!this.out.write(line)) await once(this.out, "drain");
  }

  /** Flushes the file; returns the version (the rows' sha256). */
  async finish(): Promise<string> {
    await new Promise<void>((resolve, reject) =>
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    return this.hash.digest("hex");
  }

  async remove(): Promise<void> {
    this.out.destroy();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/** `putFile` where the store has it (streamed), else `put` of the file's bytes. */
async function putLocalFile(
  store: ObjectStore,
  key: string,
  path: string,
  contentType: string,
): Promise<void> {
  if (store.putFile) await store.putFile(key, path, { contentType });
  else await store.put(key, await fs.readFile(path), { contentType });
}

/** Label, split and modality counts of accepted rows, added up a row at a time. */
export class RowSummary {
  // No prototype: a label may be called "constructor" or "__proto__".
  private readonly labels: Record<string, number> = Object.create(null);
  private readonly splits = { train: 0, test: 0, unspecified: 0 };
  private readonly modalities: Record<string, number> = {};

  add(r: DatasetRow): void {
    for (const l of r.label === undefined ? [] : Array.isArray(r.label) ? r.label : [String(r.label)]) {
      this.labels[l] = (this.labels[l] ?? 0) + 1;
    }
    this.splits[r.split ?? "unspecified"]++;
    const modality = modalityOf(r);
    this.modalities[modality] = (this.modalities[modality] ?? 0) + 1;
  }

  result(): Pick<DatasetStatus, "labels" | "splits" | "modalities"> {
    // A plain object again for callers (fromEntries defines keys, so "__proto__" stays a key).
    return {
      labels: Object.fromEntries(Object.entries(this.labels)),
      splits: this.splits,
      modalities: this.modalities,
    };
  }
}

/** The source object as it was read: its ETag, and (for manifests) the sha256 of its bytes. */
export interface SourceVersion {
  etag: string;
  sha256?: string;
}

/**
 * Makes `version` (whose `_rows/<version>.jsonl` the caller stored) the dataset's current one: the
 * status is moved by compare-and-swap from `previousEtag`, and only while the source object
 * (`status.manifest`) still is `source`. Returns the status now current.
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
  // Hashed from a local copy (S3: downloaded, streamed), never read into memory.
  return (await store.localFile(key))?.sha256 === source.sha256;
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
 * `files/`; or a labelled folder of images or audio files (`<label>/<file>`, optional `test/<label>/<file>`),
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
  const manifestKey = await putManifest(store, dataset, manifestFormatOf(basename(manifestPath)), {
    file: manifestPath,
  });
  return { manifestKey };
}

/** Longest id the manifest takes; longer paths keep the generated `line-N` id. */
const MAX_ID_CHARS = 256;

async function uploadLabelledFolder(store: ObjectStore, dataset: string, dir: string): Promise<UploadResult> {
  const { rows, skipped } = await manifestFromFolder(dir);
  if (rows.length === 0) {
    throw new ValidationError(
      `${dir} has no manifest.jsonl or manifest.csv and no images or audio files in <label>/<file> folders` +
        (skipped.length
          ? ` (${skipped.length} entries skipped, first: ${skipped[0]?.path}: ${skipped[0]?.reason})`
          : ""),
      { field: "manifest" },
    );
  }
  await putFiles(
    store,
    dataset,
    rows.map((r) => ({ local: join(dir, ...folderRowPath(r).split("/")), rel: folderRowPath(r) })),
  );
  // The path is a stable id: adding files to the folder later does not renumber the others.
  const lines = rows.map((r) => {
    const path = folderRowPath(r);
    return JSON.stringify(path.length <= MAX_ID_CHARS ? { id: path, ...r } : r);
  });
  const manifestKey = await putManifest(store, dataset, "jsonl", `${lines.join("\n")}\n`);
  return { manifestKey, skipped };
}

/**
 * Stores a dataset's manifest in one format: bytes, or a local file (streamed where the store can).
 * The new manifest is written before the other format's is removed, so a failed write never
 * leaves the dataset without one.
 */
export async function putManifest(
  store: ObjectStore,
  dataset: string,
  format: ManifestFormat,
  body: Uint8Array | string | { file: string },
): Promise<string> {
  const key = keys.manifest(dataset, format);
  const contentType = format === "csv" ? "text/csv" : "application/x-ndjson";
  if (typeof body === "object" && "file" in body) await putLocalFile(store, key, body.file, contentType);
  else await store.put(key, body, { contentType });
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
