/**
 * `headstart import-embeddings`: vectors computed elsewhere (another model, a provider's API)
 * become a dataset version plus its cache under an *external* backbone, so heads train on them
 * like on any other cache. An import is all or nothing: every check runs before the first
 * write, and the dataset switches versions through ingest's compare-and-swap.
 */
import { createHash } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { z } from "zod";
import { BUILT_IN_BACKBONES } from "../backbone/registry.ts";
import { BackboneSpec } from "../backbone/spec.ts";
import { embeddingKey, vectorItemSha } from "../cache/address.ts";
import { cachedShas, nextShardIndex, writeShard } from "../cache/shards.ts";
import { publishVersion, summarizeRows } from "../datasets/ingest.ts";
import { type DatasetRow, Label, MAX_ID_CHARS, MAX_TEXT_CHARS } from "../datasets/manifest.ts";
import { DatasetStatus } from "../datasets/status.ts";
import { HeadstartError, PreconditionFailedError, ValidationError } from "../errors.ts";
import { assertName, keys } from "../layout.ts";
import { getJson, putJson, toJsonl } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { DEFAULT_SHARD_SIZE, type ShardPlan } from "./plan.ts";

const EXTERNAL_SCHEME = "headstart-external-v1";
const MAX_DIM = 65_536;
/** Rows are read and written in chunks of about this many bytes, whatever the file's size. */
const CHUNK_BYTES = 4 * 1024 * 1024;
const MAX_ERRORS_LISTED = 20;
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

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

// --- the matrix ---------------------------------------------------------------------------

interface Matrix {
  rows: number;
  cols: number;
  dtype: string;
  /** Rows [start, start + count) as float32, row-major. */
  read(start: number, count: number): Promise<Float32Array>;
  close(): Promise<void>;
}

const DTYPE_NAMES: Record<string, string> = {
  b: "bool",
  i: "int",
  u: "uint",
  f: "float",
  c: "complex",
  O: "object",
  U: "unicode string",
  S: "bytes",
  V: "void/structured",
  M: "datetime64",
  m: "timedelta64",
};

/** `'<i8'` → `'<i8' (int64)`: users know numpy's names better than its type strings. */
function describeDtype(descr: string): string {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)/.exec(descr);
  if (!m) return `'${descr}'`;
  const base = DTYPE_NAMES[m[2]];
  if (!base) return `'${descr}'`;
  const bits = m[3] && ["i", "u", "f", "c"].includes(m[2]) ? String(Number(m[3]) * 8) : "";
  return `'${descr}' (${base}${bits})`;
}

interface NpyLayout {
  dtype: "float32" | "float64";
  itemBytes: 4 | 8;
  little: boolean;
  fortran: boolean;
  rows: number;
  cols: number;
  dataOffset: number;
}

/** Parses an .npy header (format 1.0–3.0), accepting 2-d float32/float64 in either byte or array order. */
function parseNpyHeader(prefix: Uint8Array, fileSize: number, what: string): NpyLayout {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (prefix.length < 10 || magic.some((b, i) => prefix[i] !== b)) {
    throw new ValidationError(`${what} is not an .npy file (no \\x93NUMPY magic)`, { field: "npy" });
  }
  const major = prefix[6];
  if (major < 1 || major > 3) {
    throw new ValidationError(`${what} has .npy format version ${major}; headstart reads 1.0 to 3.0`, {
      field: "npy",
    });
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const start = major === 1 ? 10 : 12;
  if (prefix.length < start) throw new ValidationError(`${what} is truncated`, { field: "npy" });
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (prefix.length < start + headerLen)
    throw new ValidationError(`${what} is truncated inside its header`, { field: "npy" });
  const header = new TextDecoder().decode(prefix.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  if (descr === undefined) {
    throw new ValidationError(
      `${what} has a structured dtype (${/'descr'\s*:\s*([^\n]*?),\s*'/.exec(header)?.[1] ?? "unknown"}): need a plain float32 [n, dim] array`,
      { field: "npy" },
    );
  }
  const dt = /^([<>|=]?)f([48])$/.exec(descr);
  if (!dt) {
    throw new ValidationError(
      `${what} has dtype ${describeDtype(descr)}: need float32 (or float64, converted)`,
      {
        field: "npy",
      },
    );
  }
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (fortran === undefined || shapeText === undefined) {
    throw new ValidationError(`${what} has an unreadable .npy header: ${header.trim()}`, { field: "npy" });
  }
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  if (shape.length !== 2 || shape.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new ValidationError(
      `${what} has shape (${shapeText.trim()}): need a 2-d array [rows, dim], one row per line of rows.jsonl`,
      { field: "npy" },
    );
  }
  const itemBytes = dt[2] === "4" ? 4 : 8;
  const dataOffset = start + headerLen;
  const expected = dataOffset + shape[0] * shape[1] * itemBytes;
  if (fileSize !== expected) {
    throw new ValidationError(
      `${what} is ${fileSize} bytes; its header (${shape[0]} × ${shape[1]} ${itemBytes === 4 ? "float32" : "float64"}) needs ${expected}` +
        (fileSize < expected ? " (truncated?)" : ""),
      { field: "npy" },
    );
  }
  return {
    dtype: itemBytes === 4 ? "float32" : "float64",
    itemBytes,
    // `|` and `=` only occur where byte order is moot or native; numpy writes `<` on x86 and ARM.
    little: dt[1] === ">" ? false : dt[1] === "<" || littleEndian,
    fortran: fortran === "True",
    rows: shape[0],
    cols: shape[1],
    dataOffset,
  };
}

/**
 * A matrix over any byte reader. Fortran-order files are read column by column, so the logical
 * matrix (row i ↔ line i) is the same whichever order numpy stored it in.
 */
function npyMatrix(
  layout: NpyLayout,
  /** Fills `into` with the bytes at `offset`. */
  readInto: (offset: number, into: Uint8Array) => Promise<void>,
  close: () => Promise<void>,
): Matrix {
  const { rows, cols, itemBytes, little, fortran, dataOffset } = layout;
  const decode = (bytes: Uint8Array, out: Float32Array, at: number, stride: number, n: number) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      out[at + i * stride] =
        itemBytes === 4 ? view.getFloat32(i * 4, little) : view.getFloat64(i * 8, little);
    }
  };
  return {
    rows,
    cols,
    dtype: layout.dtype,
    async read(start, count) {
      const out = new Float32Array(count * cols);
      if (!fortran) {
        const offset = dataOffset + start * cols * itemBytes;
        if (itemBytes === 4 && little && littleEndian) {
          // Straight into the result: no second copy of the chunk.
          await readInto(offset, new Uint8Array(out.buffer));
        } else {
          const bytes = new Uint8Array(count * cols * itemBytes);
          await readInto(offset, bytes);
          decode(bytes, out, 0, 1, count * cols);
        }
      } else {
        const bytes = new Uint8Array(count * itemBytes);
        for (let c = 0; c < cols; c++) {
          await readInto(dataOffset + (c * rows + start) * itemBytes, bytes);
          decode(bytes, out, c, cols, count);
        }
      }
      return out;
    },
    close,
  };
}

async function openNpyFile(path: string): Promise<Matrix> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw new ValidationError(`cannot read ${path}: ${(err as Error).message}`, { field: "npy" });
  }
  try {
    const { size } = await fh.stat();
    const prefix = new Uint8Array(Math.min(size, 65_536 + 12));
    await fh.read(prefix, 0, prefix.length, 0);
    const layout = parseNpyHeader(prefix, size, path);
    return npyMatrix(
      layout,
      async (offset, into) => {
        let done = 0;
        while (done < into.length) {
          const { bytesRead } = await fh.read(into, done, into.length - done, offset + done);
          if (bytesRead === 0)
            throw new ValidationError(`${path} changed while it was being read`, { field: "npy" });
          done += bytesRead;
        }
      },
      () => fh.close(),
    );
  } catch (err) {
    await fh.close();
    throw err;
  }
}

function npyBytesMatrix(bytes: Uint8Array, what: string): Matrix {
  const layout = parseNpyHeader(bytes, bytes.byteLength, what);
  return npyMatrix(
    layout,
    async (offset, into) => into.set(bytes.subarray(offset, offset + into.length)),
    async () => {},
  );
}

/** JSON arrays → float32, rejecting ragged rows and non-numbers by position. */
function jsonMatrix(embeddings: readonly (readonly unknown[])[]): Matrix {
  if (!Array.isArray(embeddings))
    throw new ValidationError("embeddings must be an array of number arrays", { field: "embeddings" });
  const rows = embeddings.length;
  const cols = Array.isArray(embeddings[0]) ? embeddings[0].length : 0;
  if (rows > 0 && (cols === 0 || cols > MAX_DIM)) {
    throw new ValidationError(`embeddings[0] has ${cols} values: need 1..${MAX_DIM}`, {
      field: "embeddings[0]",
    });
  }
  const data = new Float32Array(rows * cols);
  embeddings.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== cols) {
      throw new ValidationError(
        `embeddings[${i}] has ${Array.isArray(row) ? row.length : "no"} values; embeddings[0] has ${cols}: every vector needs the same dim`,
        { field: `embeddings[${i}]` },
      );
    }
    for (let j = 0; j < cols; j++) {
      const v = row[j];
      if (typeof v !== "number") {
        throw new ValidationError(`embeddings[${i}][${j}] is not a number`, {
          field: `embeddings[${i}][${j}]`,
        });
      }
      data[i * cols + j] = v;
    }
  });
  return {
    rows,
    cols,
    dtype: "float64",
    read: async (start, count) => data.subarray(start * cols, (start + count) * cols),
    close: async () => {},
  };
}

function vectorSha(data: Float32Array, row: number, cols: number): string {
  let bytes = new Uint8Array(data.buffer, data.byteOffset + row * cols * 4, cols * 4);
  if (!littleEndian) {
    // Addresses are defined over little-endian bytes, as the .npy cache stores them.
    const le = new Uint8Array(cols * 4);
    const view = new DataView(le.buffer);
    for (let j = 0; j < cols; j++) view.setFloat32(j * 4, data[row * cols + j], true);
    bytes = le;
  }
  return createHash("sha256").update(bytes).digest("hex");
}

// --- the rows -----------------------------------------------------------------------------

const ROW_FIELDS = ["id", "label", "split", "text"];

export const ImportRow = z.strictObject({
  id: z.union([z.string().min(1).max(MAX_ID_CHARS), z.number().int()]),
  label: Label.optional(),
  split: z.enum(["train", "test"]).optional(),
  /** Kept in the dataset's rows for people reading them; never embedded. */
  text: z.string().max(MAX_TEXT_CHARS, `text is longer than ${MAX_TEXT_CHARS} characters`).optional(),
});
export type ImportRow = z.infer<typeof ImportRow>;

interface RowEntry {
  /** 1-based line (JSONL) or index + 1 (JSON array): the DatasetRow's `line`. */
  line: number;
  /** `rows.jsonl line 7` or `rows[6]`, for messages. */
  where: string;
  field: string;
  value?: unknown;
  error?: string;
}

interface RowProblem {
  line: number;
  id?: string;
  field: string;
  reason: string;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Non-blank lines of a JSONL file, each decoded on its own so a bad byte names its line. */
function jsonlEntries(bytes: Uint8Array, what: string): RowEntry[] {
  const out: RowEntry[] = [];
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let line = 0;
  for (let i = start; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    line++;
    let end = i;
    if (end > start && bytes[end - 1] === 0x0d) end--;
    const chunk = bytes.subarray(start, end);
    start = i + 1;
    const entry: RowEntry = { line, where: `${what} line ${line}`, field: `line ${line}` };
    let text: string;
    try {
      text = fatalUtf8.decode(chunk);
    } catch {
      out.push({ ...entry, error: "line is not valid UTF-8" });
      continue;
    }
    if (text.trim() === "") continue;
    try {
      entry.value = JSON.parse(text);
    } catch (err) {
      entry.error = `not valid JSON: ${(err as Error).message}`;
    }
    out.push(entry);
  }
  return out;
}

function describeIssue(error: z.ZodError): { field?: string; reason: string } {
  const issue = error.issues[0];
  if (issue.code === "unrecognized_keys") {
    return {
      field: issue.keys[0],
      reason: `unknown field ${issue.keys.map((k) => `'${k}'`).join(", ")} (valid: ${ROW_FIELDS.join(", ")})`,
    };
  }
  const field = issue.path.length ? issue.path.join(".") : undefined;
  return { field, reason: field ? `${field}: ${issue.message}` : issue.message };
}

/** Validates every row, collecting problems so one error message can list several. */
function validateRows(entries: RowEntry[]): {
  rows: Array<ImportRow & { id: string; line: number }>;
  problems: RowProblem[];
} {
  const rows: Array<ImportRow & { id: string; line: number }> = [];
  const problems: RowProblem[] = [];
  const seen = new Map<string, string>();
  for (const e of entries) {
    const fail = (reason: string, sub?: string, id?: string) =>
      problems.push({
        line: e.line,
        id,
        field: sub ? `${e.field}.${sub}` : e.field,
        reason: `${e.where}: ${reason}`,
      });
    if (e.error !== undefined) {
      fail(e.error);
      continue;
    }
    const v = e.value;
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      fail("each row must be a JSON object");
      continue;
    }
    if ((v as { id?: unknown }).id === undefined) {
      fail("id is required (rows are matched to vectors by position and named by id)", "id");
      continue;
    }
    const parsed = ImportRow.safeParse(v);
    if (!parsed.success) {
      const { field, reason } = describeIssue(parsed.error);
      const rawId = (v as { id?: unknown }).id;
      fail(reason, field, typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : undefined);
      continue;
    }
    const id = String(parsed.data.id);
    const first = seen.get(id);
    if (first !== undefined) {
      fail(`duplicate id ${JSON.stringify(id)} (first seen at ${first})`, "id", id);
      continue;
    }
    seen.set(id, e.where);
    rows.push({ ...parsed.data, id, line: e.line });
  }
  return { rows, problems };
}

// --- the import ---------------------------------------------------------------------------

function rowsBytes(rows: Uint8Array | string): Uint8Array {
  return typeof rows === "string" ? new TextEncoder().encode(rows) : rows;
}

async function readLocalFile(path: string, field: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ValidationError(`cannot read ${path}: ${(err as Error).message}`, { field });
  }
}

/** The inputs as a matrix and row entries, with the names messages use for them. */
async function openInput(input: ImportInput): Promise<{
  matrix: Matrix;
  entries: RowEntry[];
  vectorsName: string;
  /** Where errors about single values point: `npy[i][j]` or `embeddings[i][j]`. */
  vectorsField: "npy" | "embeddings";
  rowsName: string;
}> {
  if ("npyPath" in input) {
    const entries = jsonlEntries(await readLocalFile(input.rowsPath, "rows"), input.rowsPath);
    return {
      matrix: await openNpyFile(input.npyPath),
      entries,
      vectorsName: input.npyPath,
      vectorsField: "npy",
      rowsName: input.rowsPath,
    };
  }
  if ("npy" in input) {
    return {
      matrix: npyBytesMatrix(input.npy, "embeddings.npy"),
      entries: jsonlEntries(rowsBytes(input.rows), "rows.jsonl"),
      vectorsName: "embeddings.npy",
      vectorsField: "npy",
      rowsName: "rows.jsonl",
    };
  }
  if (!Array.isArray(input.rows))
    throw new ValidationError("rows must be an array of objects", { field: "rows" });
  const entries = input.rows.map((value, i) => ({
    line: i + 1,
    where: `rows[${i}]`,
    field: `rows[${i}]`,
    value,
  }));
  return {
    matrix: jsonMatrix(input.embeddings),
    entries,
    vectorsName: "embeddings",
    vectorsField: "embeddings",
    rowsName: "rows",
  };
}

/** Chunks of whole rows of about CHUNK_BYTES each. */
async function* chunks(matrix: Matrix): AsyncGenerator<{ start: number; data: Float32Array }> {
  const step = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, matrix.cols * 8)));
  for (let start = 0; start < matrix.rows; start += step) {
    const count = Math.min(step, matrix.rows - start);
    yield { start, data: await matrix.read(start, count) };
  }
}

export async function importEmbeddings(
  store: ObjectStore,
  dataset: string,
  input: ImportInput,
  opts: { shardSize?: number } = {},
): Promise<ImportResult> {
  assertName("dataset", dataset, "dataset");
  const name = assertName("backbone", input.backbone, "backbone");
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
  const shardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
  const opened = await openInput(input);
  const { matrix, vectorsName, vectorsField, rowsName } = opened;
  try {
    // Everything is validated before anything is written.
    const { rows: parsedRows, problems } = validateRows(opened.entries);
    // The raw parsed lines are not needed again; on a big import they are worth freeing.
    opened.entries.length = 0;
    if (problems.length > 0) {
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more invalid rows)` : "";
      throw new ValidationError(`${problems[0].reason}${more}`, {
        field: problems[0].field,
        details: { rejected: problems.slice(0, MAX_ERRORS_LISTED) },
      });
    }
    if (matrix.rows !== parsedRows.length) {
      throw new ValidationError(
        `${vectorsName} has ${matrix.rows} rows but ${rowsName} has ${parsedRows.length}: row i of the vectors must describe line i of the rows`,
        { field: "rows" },
      );
    }
    if (matrix.rows === 0)
      throw new ValidationError(`${vectorsName} has no rows: nothing to import`, { field: "rows" });
    if (matrix.cols < 1 || matrix.cols > MAX_DIM) {
      throw new ValidationError(`${vectorsName} has dim ${matrix.cols}: need 1..${MAX_DIM}`, {
        field: "npy",
      });
    }
    if (existing && existing.dim !== matrix.cols) {
      throw new ValidationError(
        `backbone ${name} holds ${existing.dim}-d imported embeddings; ${vectorsName} has ${matrix.cols} columns: ` +
          "import vectors of another model under another name",
        { field: "backbone" },
      );
    }
    const spec = existing ?? externalBackboneSpec(name, matrix.cols);
    const cols = matrix.cols;
    const shas: string[] = new Array(matrix.rows);
    for await (const { start, data } of chunks(matrix)) {
      const count = data.length / cols;
      for (let r = 0; r < count; r++) {
        for (let j = 0; j < cols; j++) {
          const v = data[r * cols + j];
          if (!Number.isFinite(v)) {
            const i = start + r;
            const overflow =
              matrix.dtype === "float64" && !Number.isNaN(v) ? " (beyond float32's ±3.4e38)" : "";
            throw new ValidationError(
              `${vectorsName} row ${i} (id ${JSON.stringify(parsedRows[i].id)}), column ${j} is ${v}${overflow}: every value must be finite`,
              { field: `${vectorsField}[${i}][${j}]` },
            );
          }
        }
        shas[start + r] = vectorSha(data, r, cols);
      }
    }
    const rows: DatasetRow[] = parsedRows.map((r, i) => ({
      id: r.id,
      line: r.line,
      ...(r.text === undefined ? {} : { text: r.text }),
      vector: shas[i],
      ...(r.label === undefined ? {} : { label: r.label }),
      ...(r.split === undefined ? {} : { split: r.split }),
    }));
    const previous = await getJson(store, keys.datasetStatus(dataset), DatasetStatus);

    // Writes: backbone, cache, the import record, then the version switch.
    const backbone = existing ?? (await registerExternal(store, spec));
    const jobHash = createHash("sha256").update(`${dataset}\0${backbone.id}`);
    for (const r of rows) jobHash.update(`\0${r.id}\0${r.vector}`);
    const job = `import-${jobHash.digest("hex").slice(0, 16)}`;
    const { written, shards } = await writeVectors(store, dataset, backbone, matrix, rows, job, shardSize);
    const record = toJsonl(parsedRows.map(({ line: _line, ...r }) => r));
    const info = await store.put(keys.datasetImport(dataset), record, {
      contentType: "application/x-ndjson",
    });
    const status: DatasetStatus = {
      dataset,
      state: "ingested",
      manifest: { key: info.key, format: "jsonl", etag: info.etag, bytes: info.size },
      rows: { total: rows.length, accepted: rows.length, rejected: 0 },
      rejected: [],
      ...summarizeRows(rows),
      imported: { backbone: backbone.id, dim: backbone.dim },
      ingestedAt: new Date().toISOString(),
    };
    await publishVersion(store, status, rows, previous?.etag, { etag: info.etag });
    return {
      dataset,
      backbone,
      status,
      rows: rows.length,
      dim: cols,
      dtype: matrix.dtype,
      vectors: { written, reused: rows.length - written },
      shards,
    };
  } finally {
    await matrix.close();
  }
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

/**
 * Writes the vectors the cache lacks, in shards like an embedding job's: each index is
 * reserved with a create-only plan first, so concurrent imports never share a shard file.
 */
async function writeVectors(
  store: ObjectStore,
  dataset: string,
  backbone: BackboneSpec,
  matrix: Matrix,
  rows: DatasetRow[],
  job: string,
  shardSize: number,
): Promise<{ written: number; shards: number[] }> {
  const embedding = embeddingKey(backbone);
  const cached = await cachedShas(store, backbone.id, dataset);
  const cols = matrix.cols;
  const shards: number[] = [];
  let written = 0;
  let index = await nextShardIndex(store, backbone.id, dataset);
  const buffer = new Float32Array(Math.min(shardSize, rows.length) * cols);
  let items: Array<{ sha: string; id: string; label?: DatasetRow["label"]; split?: DatasetRow["split"] }> =
    [];

  const flush = async () => {
    if (items.length === 0) return;
    const plan: ShardPlan = { job, shard: index, dataset, backbone: backbone.id, items };
    for (;;) {
      try {
        await putJson(store, keys.shardPlan(backbone.id, dataset, index), plan, { ifNoneMatch: "*" });
        break;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        plan.shard = ++index;
      }
    }
    const ok = await writeShard(store, {
      backbone: backbone.id,
      backboneSha: backbone.sha256,
      dataset,
      shard: index,
      job,
      dim: cols,
      vectors: buffer.subarray(0, items.length * cols),
      rows: items,
    });
    if (!ok)
      throw new HeadstartError(
        "internal",
        `cache shard ${index} of ${backbone.id}/${dataset} was committed by another writer`,
      );
    shards.push(index++);
    written += items.length;
    // writeShard has copied the vectors into the .npy it wrote: the buffer is free again.
    items = [];
  };

  for await (const { start, data } of chunks(matrix)) {
    const count = data.length / cols;
    for (let r = 0; r < count; r++) {
      const row = rows[start + r];
      // The bytes are hashed again: a file rewritten since validation must not slip through.
      if (vectorSha(data, r, cols) !== row.vector) {
        throw new ValidationError(`${row.id}: the vectors changed while they were being imported`, {
          field: "npy",
        });
      }
      const sha = vectorItemSha(embedding, row.vector!);
      if (cached.has(sha)) continue;
      cached.add(sha);
      buffer.set(data.subarray(r * cols, (r + 1) * cols), items.length * cols);
      items.push({
        sha,
        id: row.id,
        ...(row.label === undefined ? {} : { label: row.label }),
        ...(row.split === undefined ? {} : { split: row.split }),
      });
      if (items.length === shardSize) await flush();
    }
  }
  await flush();
  return { written, shards };
}
