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
import { z } from "zod";
import { BUILT_IN_BACKBONES } from "../backbone/registry.ts";
import { BackboneSpec } from "../backbone/spec.ts";
import { embeddingKey, vectorItemSha } from "../cache/address.ts";
import { cachedShas, nextShardIndex, writeShard } from "../cache/shards.ts";
import { IdHashes } from "../datasets/id-hashes.ts";
import { publishStatus, RowSummary } from "../datasets/ingest.ts";
import { type DatasetRow, Label, MAX_ID_CHARS, MAX_TEXT_CHARS } from "../datasets/manifest.ts";
import { DatasetStatus } from "../datasets/status.ts";
import { HeadstartError, PreconditionFailedError, ValidationError } from "../errors.ts";
import { assertName, keys } from "../layout.ts";
import { getJson, putJson, toJsonl } from "../store/json.ts";
import type { ObjectInfo, ObjectStore } from "../store/types.ts";
import { DEFAULT_SHARD_SIZE, reserveShardPlan } from "./plan.ts";

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

/** One line of a JSONL file (without its newline), decoded on its own so a bad byte names its line. */
function jsonlEntry(chunk: Uint8Array, line: number, what: string): RowEntry | undefined {
  let end = chunk.length;
  if (end > 0 && chunk[end - 1] === 0x0d) end--;
  const entry: RowEntry = { line, where: `${what} line ${line}`, field: `line ${line}` };
  let text: string;
  try {
    text = fatalUtf8.decode(chunk.subarray(0, end));
  } catch {
    return { ...entry, error: "line is not valid UTF-8" };
  }
  if (text.trim() === "") return undefined;
  try {
    entry.value = JSON.parse(text);
  } catch (err) {
    entry.error = `not valid JSON: ${(err as Error).message}`;
  }
  return entry;
}

/** Lines of JSONL bytes arriving in pieces: one line at a time is held, never the file. */
async function* jsonlEntries(pieces: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<RowEntry> {
  let carry: Uint8Array = new Uint8Array(0);
  let line = 0;
  let first = true;
  const emit = (bytes: Uint8Array) => jsonlEntry(bytes, ++line, what);
  for await (let piece of pieces) {
    if (first && piece.length > 0) {
      first = false;
      if (piece[0] === 0xef && piece[1] === 0xbb && piece[2] === 0xbf) piece = piece.subarray(3);
    }
    let from = 0;
    for (let i = piece.indexOf(0x0a); i !== -1; i = piece.indexOf(0x0a, from)) {
      const part = piece.subarray(from, i);
      const e = emit(carry.length ? concatBytes(carry, part) : part);
      carry = new Uint8Array(0);
      if (e) yield e;
      from = i + 1;
    }
    carry = concatBytes(carry, piece.subarray(from));
  }
  const e = emit(carry);
  if (e) yield e;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function* filePieces(path: string): AsyncGenerator<Uint8Array> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw new ValidationError(`cannot read ${path}: ${(err as Error).message}`, { field: "rows" });
  }
  try {
    const buf = new Uint8Array(CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
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

type ValidRow = ImportRow & { id: string; line: number };

/** One row checked on its own: the row, or the problem that rejects it. */
function validateRow(e: RowEntry): { row: ValidRow } | { problem: RowProblem } {
  const fail = (reason: string, sub?: string, id?: string) => ({
    problem: {
      line: e.line,
      id,
      field: sub ? `${e.field}.${sub}` : e.field,
      reason: `${e.where}: ${reason}`,
    },
  });
  if (e.error !== undefined) return fail(e.error);
  const v = e.value;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return fail("each row must be a JSON object");
  if ((v as { id?: unknown }).id === undefined) {
    return fail("id is required (rows are matched to vectors by position and named by id)", "id");
  }
  const parsed = ImportRow.safeParse(v);
  if (!parsed.success) {
    const { field, reason } = describeIssue(parsed.error);
    const rawId = (v as { id?: unknown }).id;
    return fail(
      reason,
      field,
      typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : undefined,
    );
  }
  return { row: { ...parsed.data, id: String(parsed.data.id), line: e.line } };
}

/**
 * A set of sha256 hex digests in 16 bytes each (their first 104 bits, in an open-addressing table),
 * rather than a Set of 64-character strings: a million cached items cost 32 MB, not 150.
 */
class ShaSet {
  private table = new Float64Array(2 * 1024);
  private size = 0;

  constructor(initial: Iterable<string> = []) {
    for (const sha of initial) this.add(sha);
  }

  private static keys(sha: string): [number, number] {
    // 52 bits each, and never 0 (the empty slot).
    return [Number.parseInt(sha.slice(0, 13), 16) + 1, Number.parseInt(sha.slice(13, 26), 16) + 1];
  }

  /** Adds `sha`; false when it was already there. */
  add(sha: string): boolean {
    if (2 * (this.size + 1) > this.table.length / 2) this.grow();
    const [a, b] = ShaSet.keys(sha);
    if (!this.insert(this.table, a, b)) return false;
    this.size++;
    return true;
  }

  private insert(table: Float64Array, a: number, b: number): boolean {
    const slots = table.length / 2;
    for (let i = a % slots; ; i = (i + 1) % slots) {
      if (table[2 * i] === 0) {
        table[2 * i] = a;
        table[2 * i + 1] = b;
        return true;
      }
      if (table[2 * i] === a && table[2 * i + 1] === b) return false;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Float64Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0) this.insert(this.table, old[i], old[i + 1]);
  }
}

/** The rows of an import, readable more than once (a validating pass, then a writing pass). */
interface RowSource {
  name: string;
  entries(): AsyncIterable<RowEntry>;
}

// --- the import ---------------------------------------------------------------------------

function rowsBytes(rows: Uint8Array | string): Uint8Array {
  return typeof rows === "string" ? new TextEncoder().encode(rows) : rows;
}

/** The inputs as a matrix and rows, with the names messages use for them. */
async function openInput(input: ImportInput): Promise<{
  matrix: Matrix;
  rows: RowSource;
  vectorsName: string;
  /** Where errors about single values point: `npy[i][j]` or `embeddings[i][j]`. */
  vectorsField: "npy" | "embeddings";
}> {
  if ("npyPath" in input) {
    const { rowsPath } = input;
    const matrix = await openNpyFile(input.npyPath);
    return {
      matrix,
      rows: { name: rowsPath, entries: () => jsonlEntries(filePieces(rowsPath), rowsPath) },
      vectorsName: input.npyPath,
      vectorsField: "npy",
    };
  }
  if ("npy" in input) {
    const bytes = rowsBytes(input.rows);
    return {
      matrix: npyBytesMatrix(input.npy, "embeddings.npy"),
      rows: {
        name: "rows.jsonl",
        entries: () =>
          jsonlEntries(
            (async function* () {
              yield bytes;
            })(),
            "rows.jsonl",
          ),
      },
      vectorsName: "embeddings.npy",
      vectorsField: "npy",
    };
  }
  if (!Array.isArray(input.rows))
    throw new ValidationError("rows must be an array of objects", { field: "rows" });
  const list = input.rows;
  return {
    matrix: jsonMatrix(input.embeddings),
    rows: {
      name: "rows",
      async *entries() {
        for (let i = 0; i < list.length; i++) {
          yield { line: i + 1, where: `rows[${i}]`, field: `rows[${i}]`, value: list[i] };
        }
      },
    },
    vectorsName: "embeddings",
    vectorsField: "embeddings",
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

function datasetRow(row: ValidRow, sha: string): DatasetRow {
  return {
    id: row.id,
    line: row.line,
    ...(row.text === undefined ? {} : { text: row.text }),
    vector: sha,
    ...(row.label === undefined ? {} : { label: row.label }),
    ...(row.split === undefined ? {} : { split: row.split }),
  };
}

/** Adds one batch's label, split and modality counts to `into`. */
/**
 * Pass 1, before any write: every row and value checked, ids unique, and the digest of the
 * version's rows. Holds one chunk of vectors and 8 bytes per row, whatever the import's size.
 */
async function validateImport(
  matrix: Matrix,
  source: RowSource,
  vectorsName: string,
  vectorsField: string,
  dataset: string,
  backbone: string,
): Promise<{ count: number; rowsDigest: string; job: string }> {
  const problems: RowProblem[] = [];
  let problemCount = 0;
  const ids = new IdHashes();
  const digest = createHash("sha256");
  const jobHash = createHash("sha256").update(`${dataset}\0${backbone}`);
  const pairs = pairRows(matrix, source, vectorsName, vectorsField, (p) => {
    if (problemCount++ < MAX_ERRORS_LISTED) problems.push(p);
  });
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
    // Rare: find the repeated ids' lines (and drop hash collisions of distinct ids).
    const firstSeen = new Map<string, string>();
    for await (const e of source.entries()) {
      const checked = validateRow(e);
      if ("problem" in checked || !repeated.has(IdHashes.of(checked.row.id))) continue;
      const { id } = checked.row;
      const first = firstSeen.get(id);
      if (first === undefined) firstSeen.set(id, e.where);
      else {
        problemCount++;
        if (problems.length < MAX_ERRORS_LISTED) {
          problems.push({
            line: e.line,
            id,
            field: `${e.field}.id`,
            reason: `${e.where}: duplicate id ${JSON.stringify(id)} (first seen at ${first})`,
          });
        }
      }
    }
    problems.sort((a, b) => a.line - b.line);
  }
  if (problemCount > 0) {
    const more = problemCount > 1 ? ` (and ${problemCount - 1} more invalid rows)` : "";
    throw new ValidationError(`${problems[0].reason}${more}`, {
      field: problems[0].field,
      details: { rejected: problems },
    });
  }
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
  const { matrix, rows: source, vectorsName, vectorsField } = await openInput(input);
  const spoolDir = await mkdtemp(join(tmpdir(), "headstart-import-"));
  const spool = {
    versionRows: await openSpool(join(spoolDir, "rows.jsonl")),
    record: await openSpool(join(spoolDir, "import.jsonl")),
  };
  try {
    if (matrix.rows > 0 && (matrix.cols < 1 || matrix.cols > MAX_DIM)) {
      throw new ValidationError(`${vectorsName} has dim ${matrix.cols}: need 1..${MAX_DIM}`, {
        field: "npy",
      });
    }
    // Everything is validated before anything is written.
    const { count, rowsDigest, job } = await validateImport(
      matrix,
      source,
      vectorsName,
      vectorsField,
      dataset,
      name,
    );
    if (existing && existing.dim !== matrix.cols) {
      throw new ValidationError(
        `backbone ${name} holds ${existing.dim}-d imported embeddings; ${vectorsName} has ${matrix.cols} columns: ` +
          "import vectors of another model under another name",
        { field: "backbone" },
      );
    }
    const spec = existing ?? externalBackboneSpec(name, matrix.cols);
    const previous = await getJson(store, keys.datasetStatus(dataset), DatasetStatus);

    // Writes: backbone, cache, the import record, then the version switch.
    const backbone = existing ?? (await registerExternal(store, spec));
    const out = await writeVectors(
      store,
      dataset,
      backbone,
      matrix,
      source,
      vectorsName,
      job,
      shardSize,
      spool,
    );
    if (out.rowsDigest !== rowsDigest) {
      throw new ValidationError(`${vectorsName} or ${source.name} changed while they were being imported`, {
        field: "npy",
      });
    }
    const ndjson = { contentType: "application/x-ndjson" };
    const info = await putSpooled(store, keys.datasetImport(dataset), spool.record, ndjson);
    const status: DatasetStatus = {
      dataset,
      state: "ingested",
      manifest: { key: info.key, format: "jsonl", etag: info.etag, bytes: info.size },
      rows: { total: count, accepted: count, rejected: 0 },
      rejected: [],
      ...out.summary,
      imported: { backbone: backbone.id, dim: backbone.dim },
      ingestedAt: new Date().toISOString(),
    };
    // Rows first (content-addressed, so rewriting them is harmless), status last.
    await putSpooled(store, keys.datasetRows(dataset, rowsDigest), spool.versionRows, ndjson);
    await publishStatus(store, status, rowsDigest, previous?.etag, { etag: info.etag });
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
    await spool.versionRows.close();
    await spool.record.close();
    await rm(spoolDir, { recursive: true, force: true });
  }
}

const spoolPaths = new WeakMap<FileHandle, string>();

async function openSpool(path: string): Promise<FileHandle> {
  const fh = await open(path, "w+");
  spoolPaths.set(fh, path);
  return fh;
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

/**
 * Pass 2: writes the vectors the cache lacks, in shards like an embedding job's (each index is
 * reserved with a create-only plan first, so concurrent imports never share a shard file), and
 * builds the two row documents. Holds one chunk and one shard of vectors at a time.
 */
async function writeVectors(
  store: ObjectStore,
  dataset: string,
  backbone: BackboneSpec,
  matrix: Matrix,
  source: RowSource,
  vectorsName: string,
  job: string,
  shardSize: number,
  spool: { versionRows: FileHandle; record: FileHandle },
) {
  const embedding = embeddingKey(backbone);
  const cached = new ShaSet(await cachedShas(store, backbone.id, dataset));
  const cols = matrix.cols;
  const shards: number[] = [];
  let written = 0;
  let index = await nextShardIndex(store, backbone.id, dataset);
  const buffer = new Float32Array(Math.min(shardSize, matrix.rows) * cols);
  let items: Array<{ sha: string; id: string; label?: DatasetRow["label"]; split?: DatasetRow["split"] }> =
    [];
  const digest = createHash("sha256");
  const summary = new RowSummary();
  // The two row documents grow with the import: spooled to local files a batch at a time.
  let batch: DatasetRow[] = [];
  let records = "";
  const endBatch = async () => {
    await spool.versionRows.write(toJsonl(batch));
    await spool.record.write(records);
    batch = [];
    records = "";
  };

  const flush = async () => {
    if (items.length === 0) return;
    index = await reserveShardPlan(store, { job, dataset, backbone: backbone.id, items }, index);
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
    const r = datasetRow(row, vectorHash);
    digest.update(`${JSON.stringify(r)}\n`);
    const { line: _line, ...record } = row;
    records += `${JSON.stringify(record)}\n`;
    batch.push(r);
    summary.add(r);
    if (batch.length === shardSize) await endBatch();
    const sha = vectorItemSha(embedding, vectorHash);
    if (!cached.add(sha)) continue; // cached already, or an earlier row's vector
    buffer.set(vector, items.length * cols);
    items.push({
      sha,
      id: row.id,
      ...(row.label === undefined ? {} : { label: row.label }),
      ...(row.split === undefined ? {} : { split: row.split }),
    });
    if (items.length === shardSize) await flush();
  }
  await flush();
  await endBatch();
  return { written, shards, summary: summary.result(), rowsDigest: digest.digest("hex") };
}
