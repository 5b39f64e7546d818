/**
 * Reader for the IDX files MNIST and Fashion-MNIST ship in (optionally gzipped): a 4-byte magic
 * `00 00 <type> <ndims>`, `ndims` big-endian uint32 sizes, then the values row-major. Only unsigned
 * bytes (type 0x08) are read: that is all both data sets use.
 */
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { ValidationError } from "../shared/errors.ts";

export interface IdxArray {
  /** Sizes, outermost first: `[n]` for labels, `[n, rows, cols]` for images. */
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(bytes: Uint8Array, name = "idx"): IdxArray {
  const fail = (why: string) => new ValidationError(`${name}: ${why}`, { field: name });
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw fail("not an IDX file (bad magic)");
  if (bytes[2] !== 0x08) throw fail(`element type 0x${bytes[2]?.toString(16)} is not unsigned byte (0x08)`);
  const ndims = bytes[3] as number;
  if (ndims < 1 || bytes.length < 4 + 4 * ndims) throw fail(`truncated header (${ndims} dimensions)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndims;
  if (bytes.length - start !== size) {
    throw fail(`header says ${dims.join("×")} = ${size} values, file holds ${bytes.length - start}`);
  }
  return { dims, data: bytes.subarray(start) };
}

/** Reads `path`, gunzipping it first when it starts with the gzip magic. */
export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array = await readFile(path);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  return parseIdx(bytes, path);
}

/** Fashion-MNIST's label order (Xiao et al. 2017): label `i` of its idx files is `FASHION_CLASSES[i]`. */
export const FASHION_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;
