/**
 * `headstart import-embeddings`: vectors computed elsewhere (another model, a provider's API)
 * become a dataset version plus its cache under an *external* backbone, so heads train on them
 * like on any other cache. An import is all or nothing: every check runs before the first
 * write, and the dataset switches versions through ingest's compare-and-swap.
 */
import { createHash } from "node:crypto";
import { type FileHandle, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILT_IN_BACKBONES } from "../backbone/registry.ts";
import { BackboneSpec } from "../backbone/spec.ts";
import { embeddingKey, vectorItemSha } from "../cache/address.ts";
import { cachedShas, nextShardIndex, writeShard } from "../cache/shards.ts";
import { IdHashes } from "../datasets/id-hashes.ts";
import { publishStatus, RowSummary } from "../datasets/ingest.ts";
import type { DatasetRow } from "../datasets/manifest.ts";
import { DatasetStatus } from "../datasets/status.ts";
import { HeadstartError, PreconditionFailedError, ValidationError } from "../errors.ts";
import { assertName, keys } from "../layout.ts";
import { getJson, putJson, toJsonl } from "../store/json.ts";
import type { ObjectInfo, ObjectStore } from "../store/types.ts";
import {
  chunks,
  jsonMatrix,
  MAX_DIM,
  type Matrix,
  npyBytesMatrix,
  openNpyFile,
  vectorSha,
} from "./import-matrix.ts";
import {
  arrayRows,
  datasetRow,
  fileRows,
  jsonlRows,
  type RowProblem,
  type RowSource,
  type ValidRow,
  validateRow,
} from "./import-rows.ts";
import { DEFAULT_SHARD_SIZE, reserveShardPlan } from "./plan.ts";
import { ShaSet } from "./sha-set.ts";

const EXTERNAL_SCHEME = "headstart-external-v1";
const MAX_ERRORS_LISTED = 20;

export type ImportInput =
  /** Local files (the CLI): read in chunks, never whole. */
  | { backbone: string; npyPath: string; rowsPath: string }
  /** The same formats as bytes. */
  | { backbone: string; npy: Uint8Array; rows: Uint8Array | string }
  /** JSON (the API): one object per row, one number array per vector. */
  | { backbone: string; rows: readonly unknown[]; embeddings: readonly (readonly unknown[])[] };

export interface ImportResult {
  dataset: string;
  backbone: BackboneSpec;
  status: DatasetStatus;
  rows: number;
  dim: number;
  /** The input's dtype (`float64` inputs are converted to float32). */
  dtype: string;
  vectors: {
    /** New vectors written to the cache. */
    written: number;
    /** Rows whose vector was already cached (a re-import) or repeats an earlier row's. */
    reused: number;
  };
  shards: number[];
}

/**
 * The spec of an external backbone. Its sha256 (and so every item address under it) depends
 * only on the name and dim, so re-importing the same vectors lands on the same addresses.
 */
export function externalBackboneSpec(id: string, dim: number): BackboneSpec {
  return BackboneSpec.parse({
    id,
    kind: "external",
    modality: "embedding",
    dim,
    sha256: createHash("sha256").update(`${EXTERNAL_SCHEME}\0${id}\0${dim}`).digest("hex"),
    io: {},
    preprocessing: { type: "external" },
    pooling: "none",
    description: "embeddings imported with headstart import-embeddings",
  });
}

/** An import's inputs as a matrix and rows, with the names messages use for them. */
interface OpenedInput {
  matrix: Matrix;
  rows: RowSource;
  vectorsName: string;
  /** Where errors about single values point: `npy[i][j]` or `embeddings[i][j]`. */
  vectorsField: "npy" | "embeddings";
}

async function openInput(input: ImportInput): Promise<OpenedInput> {
  if ("npyPath" in input) {
    const matrix = await openNpyFile(input.npyPath);
    return { matrix, rows: fileRows(input.rowsPath), vectorsName: input.npyPath, vectorsField: "npy" };
  }
  if ("npy" in input) {
    const rows = jsonlRows(input.rows);
    const matrix = npyBytesMatrix(input.npy, "embeddings.npy");
    return { matrix, rows, vectorsName: "embeddings.npy", vectorsField: "npy" };
  }
  const rows = arrayRows(input.rows);
  return {
    matrix: jsonMatrix(input.embeddings),
    rows,
    vectorsName: "embeddings",
    vectorsField: "embeddings",
  };
}

/** A valid row with its vector (a view into the current chunk) and that vector's sha256. */
interface Paired {
  index: number;
  row: ValidRow;
  vector: Float32Array;
  sha: string;
}

/**
 * Walks rows and vectors side by side, one chunk of vectors at a time. Invalid rows go to
 * `onProblem` (and get no vector); a non-finite value throws at once, naming it.
 */
async function* pairRows(
  matrix: Matrix,
  source: RowSource,
  vectorsName: string,
  vectorsField: string,
  onProblem: (p: RowProblem) => void,
): AsyncGenerator<Paired, number> {
  const cols = matrix.cols;
  const vectors = chunks(matrix);
  let chunk: { start: number; data: Float32Array } | undefined;
  let index = 0;
  for await (const entry of source.entries()) {
    const i = index++;
    const checked = validateRow(entry);
    if ("problem" in checked) {
      onProblem(checked.problem);
      continue;
    }
    if (i >= matrix.rows) continue; // counted: the mismatch is reported after the pass
    while (!chunk || i >= chunk.start + chunk.data.length / cols) chunk = (await vectors.next()).value!;
    const r = i - chunk.start;
    const vector = chunk.data.subarray(r * cols, (r + 1) * cols);
    for (let j = 0; j < cols; j++) {
      const v = vector[j];
      if (!Number.isFinite(v)) {
        const overflow = matrix.dtype === "float64" && !Number.isNaN(v) ? " (beyond float32's ±3.4e38)" : "";
        throw new ValidationError(
          `${vectorsName} row ${i} (id ${JSON.stringify(checked.row.id)}), column ${j} is ${v}${overflow}: every value must be finite`,
          { field: `${vectorsField}[${i}][${j}]` },
        );
      }
    }
    yield { index: i, row: checked.row, vector, sha: vectorSha(chunk.data, r, cols) };
  }
  return index;
}

/** Invalid rows: every one counted, the first MAX_ERRORS_LISTED kept for the error's details. */
class Problems {
  readonly listed: RowProblem[] = [];
  count = 0;

  add(p: RowProblem): void {
    if (this.count++ < MAX_ERRORS_LISTED) this.listed.push(p);
  }

  throwIfAny(): void {
    if (this.count === 0) return;
    const more = this.count > 1 ? ` (and ${this.count - 1} more invalid rows)` : "";
    throw new ValidationError(`${this.listed[0].reason}${more}`, {
      field: this.listed[0].field,
      details: { rejected: this.listed },
    });
  }
}

/**
 * Pass 1, before any write: every row and value checked, ids unique, and the digest of the
 * version's rows. Holds one chunk of vectors and 8 bytes per row, whatever the import's size.
 */
async function validateImport(
  { matrix, rows: source, vectorsName, vectorsField }: OpenedInput,
  dataset: string,
  backbone: string,
): Promise<{ count: number; rowsDigest: string; job: string }> {
  const problems = new Problems();
  const ids = new IdHashes();
  const digest = createHash("sha256");
  const jobHash = createHash("sha256").update(`${dataset}\0${backbone}`);
  const pairs = pairRows(matrix, source, vectorsName, vectorsField, (p) => problems.add(p));
  let valid = 0;
  let next = await pairs.next();
  for (; !next.done; next = await pairs.next()) {
    valid++;
    ids.add(next.value.row.id);
    jobHash.update(`\0${next.value.row.id}\0${next.value.sha}`);
    digest.update(`${JSON.stringify(datasetRow(next.value.row, next.value.sha))}\n`);
  }
  const count = next.value;
  const repeated = ids.repeated();
  if (repeated.size > 0) {
    await listDuplicateIds(source, repeated, problems);
    problems.listed.sort((a, b) => a.line - b.line);
  }
  problems.throwIfAny();
  if (matrix.rows !== count) {
    throw new ValidationError(
      `${vectorsName} has ${matrix.rows} rows but ${source.name} has ${count}: row i of the vectors must describe line i of the rows`,
      { field: "rows" },
    );
  }
  if (valid === 0)
    throw new ValidationError(`${vectorsName} has no rows: nothing to import`, { field: "rows" });
  return { count, rowsDigest: digest.digest("hex"), job: `import-${jobHash.digest("hex").slice(0, 16)}` };
}

/**
 * Rare: a second pass to find the lines of the ids whose hashes repeated (and drop hash
 * collisions of distinct ids), each repeat a problem naming where the id was first seen.
 */
async function listDuplicateIds(source: RowSource, repeated: Set<number>, problems: Problems): Promise<void> {
  const firstSeen = new Map<string, string>();
  for await (const e of source.entries()) {
    const checked = validateRow(e);
    if ("problem" in checked || !repeated.has(IdHashes.of(checked.row.id))) continue;
    const { id } = checked.row;
    const first = firstSeen.get(id);
    if (first === undefined) firstSeen.set(id, e.where);
    else {
      problems.add({
        line: e.line,
        id,
        field: `${e.field}.id`,
        reason: `${e.where}: duplicate id ${JSON.stringify(id)} (first seen at ${first})`,
      });
    }
  }
}

/** The external backbone `name` already holds, if any; a name of a model headstart runs is refused. */
async function existingExternal(store: ObjectStore, name: string): Promise<BackboneSpec | undefined> {
  if (BUILT_IN_BACKBONES.includes(name)) {
    throw new ValidationError(
      `backbone ${name} is a built-in model; import your vectors under another name`,
      {
        field: "backbone",
      },
    );
  }
  const existing = (await getJson(store, keys.backboneSpec(name), BackboneSpec))?.value;
  if (existing && existing.kind !== "external") {
    throw new ValidationError(
      `backbone ${name} is a model headstart runs (${existing.modality}, ${existing.dim}-d), not imported embeddings; import your vectors under another name`,
      { field: "backbone" },
    );
  }
  return existing;
}

export async function importEmbeddings(
  store: ObjectStore,
  dataset: string,
  input: ImportInput,
  opts: { shardSize?: number } = {},
): Promise<ImportResult> {
  assertName("dataset", dataset, "dataset");
  const name = assertName("backbone", input.backbone, "backbone");
  const existing = await existingExternal(store, name);
  const shardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
  const opened = await openInput(input);
  const { matrix } = opened;
  const spool = await openSpool();
  try {
    // Everything is validated before anything is written.
    const { count, rowsDigest, job } = await checkImport(opened, dataset, name, existing);
    const spec = existing ?? externalBackboneSpec(name, matrix.cols);
    const previous = await getJson(store, keys.datasetStatus(dataset), DatasetStatus);

    // Writes: backbone, cache, the import record, then the version switch.
    const backbone = existing ?? (await registerExternal(store, spec));
    const out = await writeVectors(store, { dataset, backbone, job, shardSize }, opened, spool);
    if (out.rowsDigest !== rowsDigest) {
      throw new ValidationError(
        `${opened.vectorsName} or ${opened.rows.name} changed while they were being imported`,
        { field: "npy" },
      );
    }
    const status = await publishImport(store, spool, {
      dataset,
      backbone,
      count,
      rowsDigest,
      summary: out.summary,
      previousEtag: previous?.etag,
    });
    return {
      dataset,
      backbone,
      status,
      rows: count,
      dim: matrix.cols,
      dtype: matrix.dtype,
      vectors: { written: out.written, reused: count - out.written },
      shards: out.shards,
    };
  } finally {
    await matrix.close();
    await closeSpool(spool);
  }
}

/** The checks before the first write: the dim, every row and value (pass 1), the backbone's dim. */
async function checkImport(
  opened: OpenedInput,
  dataset: string,
  name: string,
  existing: BackboneSpec | undefined,
): Promise<{ count: number; rowsDigest: string; job: string }> {
  const { matrix, vectorsName } = opened;
  if (matrix.rows > 0 && (matrix.cols < 1 || matrix.cols > MAX_DIM)) {
    throw new ValidationError(`${vectorsName} has dim ${matrix.cols}: need 1..${MAX_DIM}`, {
      field: "npy",
    });
  }
  const checked = await validateImport(opened, dataset, name);
  if (existing && existing.dim !== matrix.cols) {
    throw new ValidationError(
      `backbone ${name} holds ${existing.dim}-d imported embeddings; ${vectorsName} has ${matrix.cols} columns: ` +
        "import vectors of another model under another name",
      { field: "backbone" },
    );
  }
  return checked;
}

/**
 * Stores the import record and the version's rows, then switches the dataset to the new version
 * through ingest's compare-and-swap on its status.
 */
async function publishImport(
  store: ObjectStore,
  spool: Spool,
  done: {
    dataset: string;
    backbone: BackboneSpec;
    count: number;
    rowsDigest: string;
    summary: ReturnType<RowSummary["result"]>;
    previousEtag: string | undefined;
  },
): Promise<DatasetStatus> {
  const { dataset, backbone, count, rowsDigest } = done;
  const ndjson = { contentType: "application/x-ndjson" };
  const info = await putSpooled(store, keys.datasetImport(dataset), spool.record, ndjson);
  const status: DatasetStatus = {
    dataset,
    state: "ingested",
    manifest: { key: info.key, format: "jsonl", etag: info.etag, bytes: info.size },
    rows: { total: count, accepted: count, rejected: 0 },
    rejected: [],
    ...done.summary,
    imported: { backbone: backbone.id, dim: backbone.dim },
    ingestedAt: new Date().toISOString(),
  };
  // Rows first (content-addressed, so rewriting them is harmless), status last.
  await putSpooled(store, keys.datasetRows(dataset, rowsDigest), spool.versionRows, ndjson);
  await publishStatus(store, status, rowsDigest, done.previousEtag, { etag: info.etag });
  return status;
}

/** Local files for the two row documents, which grow with the import. */
interface Spool {
  dir: string;
  versionRows: FileHandle;
  record: FileHandle;
}

const spoolPaths = new WeakMap<FileHandle, string>();

async function openSpoolFile(path: string): Promise<FileHandle> {
  const fh = await open(path, "w+");
  spoolPaths.set(fh, path);
  return fh;
}

async function openSpool(): Promise<Spool> {
  const dir = await mkdtemp(join(tmpdir(), "headstart-import-"));
  return {
    dir,
    versionRows: await openSpoolFile(join(dir, "rows.jsonl")),
    record: await openSpoolFile(join(dir, "import.jsonl")),
  };
}

async function closeSpool(spool: Spool): Promise<void> {
  await spool.versionRows.close();
  await spool.record.close();
  await rm(spool.dir, { recursive: true, force: true });
}

/** Stores a spooled local file, streamed where the store can (see ObjectStore.putFile). */
async function putSpooled(
  store: ObjectStore,
  key: string,
  file: FileHandle,
  opts: { contentType: string },
): Promise<ObjectInfo> {
  const path = spoolPaths.get(file);
  if (store.putFile && path) return store.putFile(key, path, opts);
  const { size } = await file.stat();
  const bytes = new Uint8Array(size);
  await file.read(bytes, 0, size, 0);
  return store.put(key, bytes, opts);
}

/** Creates the external backbone's spec, create-only; a concurrent import with another dim loses. */
async function registerExternal(store: ObjectStore, spec: BackboneSpec): Promise<BackboneSpec> {
  try {
    await putJson(store, keys.backboneSpec(spec.id), spec, { ifNoneMatch: "*" });
    return spec;
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  const current = (await getJson(store, keys.backboneSpec(spec.id), BackboneSpec))?.value;
  if (current?.kind !== "external" || current.dim !== spec.dim || current.sha256 !== spec.sha256) {
    throw new ValidationError(
      `backbone ${spec.id} was just created by someone else${current ? ` (${current.kind ?? "model"}, ${current.dim}-d)` : ""}; import under another name`,
      { field: "backbone" },
    );
  }
  return current;
}

/** Where the write pass puts the vectors: the import's cache shards and their plans. */
interface ShardTarget {
  dataset: string;
  backbone: BackboneSpec;
  job: string;
  shardSize: number;
}

/**
 * Pass 2: writes the vectors the cache lacks, in shards like an embedding job's, and builds the
 * two row documents. Holds one chunk and one shard of vectors at a time.
 */
async function writeVectors(
  store: ObjectStore,
  target: ShardTarget,
  { matrix, rows: source, vectorsName }: OpenedInput,
  spool: Spool,
) {
  const embedding = embeddingKey(target.backbone);
  const cached = new ShaSet(await cachedShas(store, target.backbone.id, target.dataset));
  const shards = await ShardWriter.open(store, target, matrix);
  const docs = new RowDocuments(spool, target.shardSize);
  const changed = (p: RowProblem) => {
    throw new ValidationError(`${p.reason}: the rows changed while they were being imported`, {
      field: p.field,
    });
  };
  for await (const { row, vector, sha: vectorHash } of pairRows(
    matrix,
    source,
    vectorsName,
    "npy",
    changed,
  )) {
    await docs.add(row, vectorHash);
    const sha = vectorItemSha(embedding, vectorHash);
    if (!cached.add(sha)) continue; // cached already, or an earlier row's vector
    await shards.add(sha, row, vector);
  }
  await shards.flush();
  await docs.end();
  return {
    written: shards.written,
    shards: shards.indices,
    summary: docs.summary.result(),
    rowsDigest: docs.digest.digest("hex"),
  };
}

/** The version's rows and the import record, spooled to local files a batch at a time. */
class RowDocuments {
  readonly digest = createHash("sha256");
  readonly summary = new RowSummary();
  private batch: DatasetRow[] = [];
  private records = "";

  constructor(
    private readonly spool: Spool,
    private readonly batchSize: number,
  ) {}

  async add(row: ValidRow, vectorHash: string): Promise<void> {
    const r = datasetRow(row, vectorHash);
    this.digest.update(`${JSON.stringify(r)}\n`);
    const { line: _line, ...record } = row;
    this.records += `${JSON.stringify(record)}\n`;
    this.batch.push(r);
    this.summary.add(r);
    if (this.batch.length === this.batchSize) await this.end();
  }

  /** Writes the batch so far. */
  async end(): Promise<void> {
    await this.spool.versionRows.write(toJsonl(this.batch));
    await this.spool.record.write(this.records);
    this.batch = [];
    this.records = "";
  }
}

type ShardItem = { sha: string; id: string; label?: DatasetRow["label"]; split?: DatasetRow["split"] };

/**
 * The vectors the cache lacks, a shard at a time. Each index is reserved with a create-only plan
 * first, so concurrent imports never share a shard file.
 */
class ShardWriter {
  readonly indices: number[] = [];
  written = 0;
  private items: ShardItem[] = [];
  private readonly buffer: Float32Array;

  private constructor(
    private readonly store: ObjectStore,
    private readonly target: ShardTarget,
    private readonly cols: number,
    rows: number,
    private index: number,
  ) {
    this.buffer = new Float32Array(Math.min(target.shardSize, rows) * cols);
  }

  static async open(store: ObjectStore, target: ShardTarget, matrix: Matrix): Promise<ShardWriter> {
    const index = await nextShardIndex(store, target.backbone.id, target.dataset);
    return new ShardWriter(store, target, matrix.cols, matrix.rows, index);
  }

  async add(sha: string, row: ValidRow, vector: Float32Array): Promise<void> {
    this.buffer.set(vector, this.items.length * this.cols);
    this.items.push({
      sha,
      id: row.id,
      ...(row.label === undefined ? {} : { label: row.label }),
      ...(row.split === undefined ? {} : { split: row.split }),
    });
    if (this.items.length === this.target.shardSize) await this.flush();
  }

  /** Writes the shard so far, if any. */
  async flush(): Promise<void> {
    const { store, target, items } = this;
    if (items.length === 0) return;
    const { dataset, backbone, job } = target;
    this.index = await reserveShardPlan(store, { job, dataset, backbone: backbone.id, items }, this.index);
    const ok = await writeShard(store, {
      backbone: backbone.id,
      backboneSha: backbone.sha256,
      dataset,
      shard: this.index,
      job,
      dim: this.cols,
      vectors: this.buffer.subarray(0, items.length * this.cols),
      rows: items,
    });
    if (!ok)
      throw new HeadstartError(
        "internal",
        `cache shard ${this.index} of ${backbone.id}/${dataset} was committed by another writer`,
      );
    this.indices.push(this.index++);
    this.written += items.length;
    // writeShard has copied the vectors into the .npy it wrote: the buffer is free again.
    this.items = [];
  }
}
