/**
 * NumPy `.npy` v1.0, float32 little-endian, C order, 2-D: the cache's vector format, chosen so
 * `numpy.load` reads it with no headstart code at all.
 */
import { ValidationError } from "../errors.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

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

export function decodeNpy(bytes: Uint8Array): { data: Float32Array; rows: number; cols: number } {
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new ValidationError("not an .npy file (bad magic)", { field: "npy" });
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape':\s*\((\d+),\s*(\d+)?\s*,?\s*\)/.exec(header);
  if (descr !== "<f4" || fortran !== "False" || !shape) {
    throw new ValidationError(`unsupported .npy header ${header.trim()}: need '<f4', C order, 2-D`, {
      field: "npy",
    });
  }
  const rows = Number(shape[1]);
  const cols = shape[2] === undefined ? 1 : Number(shape[2]);
  const offset = start + headerLen;
  const byteLength = rows * cols * 4;
  if (bytes.byteLength - offset < byteLength)
    throw new ValidationError(".npy file is truncated", { field: "npy" });
  const data = new Float32Array(rows * cols);
  if (littleEndian) {
    // Copy: the payload offset inside the buffer need not be 4-byte aligned.
    new Uint8Array(data.buffer).set(bytes.subarray(offset, offset + byteLength));
  } else {
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(offset + i * 4, true);
  }
  return { data, rows, cols };
}
