/**
 * The vectors of an import as a matrix read a chunk of rows at a time: an .npy file (never read
 * whole), .npy bytes, or JSON number arrays. Whatever the input's dtype and order, rows come out
 * as float32, row-major.
 */
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { parseNpyHeader } from "../cache/npy.ts";
import { ValidationError } from "../errors.ts";

export const MAX_DIM = 65_536;
/** Rows are read and written in chunks of about this many bytes, whatever the file's size. */
export const CHUNK_BYTES = 4 * 1024 * 1024;
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface Matrix {
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

/** Reads an .npy header (format 1.0–3.0), accepting 2-d float32/float64 in either byte or array order. */
function npyLayout(prefix: Uint8Array, fileSize: number, what: string): NpyLayout {
  const header = parseNpyHeader(prefix, {
    badMagic: `${what} is not an .npy file (no \\x93NUMPY magic)`,
    badVersion: (major) => `${what} has .npy format version ${major}; headstart reads 1.0 to 3.0`,
    truncated: `${what} is truncated`,
    truncatedHeader: `${what} is truncated inside its header`,
  });
  const { descr, text, shape, shapeText } = header;
  if (descr === undefined) {
    throw new ValidationError(
      `${what} has a structured dtype (${/'descr'\s*:\s*([^\n]*?),\s*'/.exec(text)?.[1] ?? "unknown"}): need a plain float32 [n, dim] array`,
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
  if (header.fortranOrder === undefined || shapeText === undefined) {
    throw new ValidationError(`${what} has an unreadable .npy header: ${text.trim()}`, { field: "npy" });
  }
  if (shape?.length !== 2) {
    throw new ValidationError(
      `${what} has shape (${shapeText.trim()}): need a 2-d array [rows, dim], one row per line of rows.jsonl`,
      { field: "npy" },
    );
  }
  const itemBytes = dt[2] === "4" ? 4 : 8;
  const dataOffset = header.dataOffset;
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
    fortran: header.fortranOrder,
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

/** Opens one of the import's local files; a file that cannot be opened is the caller's `field`. */
export async function openInputFile(path: string, field: string): Promise<FileHandle> {
  try {
    return await open(path, "r");
  } catch (err) {
    throw new ValidationError(`cannot read ${path}: ${(err as Error).message}`, { field });
  }
}

export async function openNpyFile(path: string): Promise<Matrix> {
  const fh = await openInputFile(path, "npy");
  try {
    const { size } = await fh.stat();
    const prefix = new Uint8Array(Math.min(size, 65_536 + 12));
    await fh.read(prefix, 0, prefix.length, 0);
    const layout = npyLayout(prefix, size, path);
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

export function npyBytesMatrix(bytes: Uint8Array, what: string): Matrix {
  const layout = npyLayout(bytes, bytes.byteLength, what);
  return npyMatrix(
    layout,
    async (offset, into) => into.set(bytes.subarray(offset, offset + into.length)),
    async () => {},
  );
}

/** JSON arrays → float32, rejecting ragged rows and non-numbers by position. */
export function jsonMatrix(embeddings: readonly (readonly unknown[])[]): Matrix {
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

export function vectorSha(data: Float32Array, row: number, cols: number): string {
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

/** Chunks of whole rows of about CHUNK_BYTES each. */
export async function* chunks(matrix: Matrix): AsyncGenerator<{ start: number; data: Float32Array }> {
  const step = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, matrix.cols * 8)));
  for (let start = 0; start < matrix.rows; start += step) {
    const count = Math.min(step, matrix.rows - start);
    yield { start, data: await matrix.read(start, count) };
  }
}
