/**
 * NumPy `.npy` v1.0, float32 little-endian, C order, 2-D: the cache's vector format, chosen so
 * `numpy.load` reads it with no headstart code at all. The header parser also serves imports,
 * which read any 1.0–3.0 file a prefix at a time (see embed/import-matrix.ts).
 */
import { ValidationError } from "../errors.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The fields of an .npy header, as written; what a caller accepts is its own decision. */
export interface NpyHeader {
  /** The header's text (a Python dict literal), for messages. */
  text: string;
  /** `'<f4'` and the like; undefined for structured dtypes (a list, not a string). */
  descr?: string;
  fortranOrder?: boolean;
  /** The shape tuple's text, e.g. `60, 6`. */
  shapeText?: string;
  /** The shape, when every entry is a non-negative integer. */
  shape?: number[];
  /** Where the array's bytes start. */
  dataOffset: number;
}

/** What a caller says when the bytes are no .npy it can read; each caller keeps its own wording. */
export interface NpyHeaderMessages {
  badMagic: string;
  badVersion: (major: number) => string;
  /** The prefix ends before the header's length. */
  truncated: string;
  /** The prefix ends inside the header. */
  truncatedHeader: string;
}

const CACHE_MESSAGES: NpyHeaderMessages = {
  badMagic: "not an .npy file (bad magic)",
  badVersion: (major) => `unsupported .npy format version ${major}`,
  truncated: ".npy file is truncated",
  truncatedHeader: ".npy file is truncated",
};

/** Parses the header (format 1.0–3.0) at the start of `prefix`, a prefix of the file or all of it. */
export function parseNpyHeader(prefix: Uint8Array, messages: NpyHeaderMessages): NpyHeader {
  const fail = (message: string) => new ValidationError(message, { field: "npy" });
  if (prefix.length < 10 || MAGIC.some((b, i) => prefix[i] !== b)) throw fail(messages.badMagic);
  const major = prefix[6];
  if (major < 1 || major > 3) throw fail(messages.badVersion(major));
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const start = major === 1 ? 10 : 12;
  if (prefix.length < start) throw fail(messages.truncated);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (prefix.length < start + headerLen) throw fail(messages.truncatedHeader);
  const text = new TextDecoder().decode(prefix.subarray(start, start + headerLen));
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  const shape = shapeText
    ?.split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  return {
    text,
    descr: /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1],
    fortranOrder: fortran === undefined ? undefined : fortran === "True",
    shapeText,
    shape: shape?.every((n) => Number.isSafeInteger(n) && n >= 0) ? shape : undefined,
    dataOffset: start + headerLen,
  };
}

export function encodeNpy(data: Float32Array, rows: number, cols: number): Uint8Array {
  if (data.length !== rows * cols) {
    throw new ValidationError(`npy data has ${data.length} values, shape is ${rows}x${cols}`, {
      field: "vectors",
    });
  }
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  // numpy pads the header so the data starts on a 64-byte boundary; the header ends with \n.
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64);
  header += "\n";
  const headerBytes = new TextEncoder().encode(header);
  const out = new Uint8Array(MAGIC.length + 4 + headerBytes.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerBytes.length, true);
  out.set(headerBytes, 10);
  const offset = 10 + headerBytes.length;
  if (littleEndian) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
  } else {
    const view = new DataView(out.buffer, offset);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  }
  return out;
}

/** Reads what encodeNpy writes: float32 little-endian, C order, 2-D (or 1-D, read as one column). */
export function decodeNpy(bytes: Uint8Array): { data: Float32Array; rows: number; cols: number } {
  const header = parseNpyHeader(bytes, CACHE_MESSAGES);
  const { shape } = header;
  if (
    header.descr !== "<f4" ||
    header.fortranOrder !== false ||
    !shape ||
    shape.length < 1 ||
    shape.length > 2
  ) {
    throw new ValidationError(`unsupported .npy header ${header.text.trim()}: need '<f4', C order, 2-D`, {
      field: "npy",
    });
  }
  const rows = shape[0];
  const cols = shape.length === 1 ? 1 : shape[1];
  const offset = header.dataOffset;
  const byteLength = rows * cols * 4;
  if (bytes.byteLength - offset < byteLength)
    throw new ValidationError(".npy file is truncated", { field: "npy" });
  const data = new Float32Array(rows * cols);
  if (littleEndian) {
    // Copy: the payload offset inside the buffer need not be 4-byte aligned.
    new Uint8Array(data.buffer).set(bytes.subarray(offset, offset + byteLength));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(offset + i * 4, true);
  }
  return { data, rows, cols };
}
