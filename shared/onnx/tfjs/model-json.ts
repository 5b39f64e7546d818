/**
 * Reads a TF.js graph model (`model.json` + binary weight shards) into plain typed arrays. The
 * weights are the graph's `Const` node values; the converter looks them up by node name.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ValidationError } from "../../errors.ts";

/** One TF `AttrValue` as TF.js writes it (protobuf JSON: 64-bit ints may be strings). */
export interface TfAttr {
  s?: string | number[];
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string | number;
  shape?: { dim?: { size?: string | number }[]; unknownRank?: boolean };
  tensor?: TfTensorJson;
  list?: {
    s?: (string | number[])[];
    i?: (string | number)[];
    f?: number[];
    b?: boolean[];
    type?: (string | number)[];
  };
}

export interface TfTensorJson {
  dtype?: string | number;
  tensorShape?: { dim?: { size?: string | number }[] };
  floatVal?: number[];
  doubleVal?: number[];
  intVal?: number[];
  int64Val?: (string | number)[];
  boolVal?: boolean[];
}

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
  device?: string;
}

export interface WeightQuantization {
  dtype: "uint8" | "uint16" | "float16";
  scale?: number;
  min?: number;
  original_dtype?: string;
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "float32" | "int32" | "int64" | "bool" | "string";
  quantization?: WeightQuantization;
}

export interface WeightGroup {
  paths: string[];
  weights: WeightSpec[];
}

export interface GraphModelJson {
  format?: string;
  modelTopology: { node: TfNode[]; library?: unknown; versions?: unknown };
  weightsManifest: WeightGroup[];
}

export type WeightData = Float32Array | Int32Array | BigInt64Array | Uint8Array | string[];

export interface WeightTensor {
  dtype: WeightSpec["dtype"];
  shape: number[];
  data: WeightData;
}

const BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  int64: 8,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/** Validates the parts of `model.json` the converter relies on, so later code can trust them. */
export function parseGraphModelJson(json: unknown): GraphModelJson {
  const m = json as GraphModelJson;
  if (typeof m !== "object" || m === null) throw new ValidationError("model.json: not an object");
  if (!Array.isArray(m.modelTopology?.node)) {
    throw new ValidationError("model.json: modelTopology.node is missing (not a TF.js graph model?)", {
      field: "modelTopology.node",
    });
  }
  if (!Array.isArray(m.weightsManifest)) {
    throw new ValidationError("model.json: weightsManifest is missing", { field: "weightsManifest" });
  }
  m.modelTopology.node.forEach((n, i) => {
    if (typeof n?.name !== "string" || typeof n.op !== "string") {
      throw new ValidationError(`model.json: node ${i} needs a string name and op`, {
        field: `modelTopology.node[${i}]`,
      });
    }
  });
  return m;
}

function float16ToFloat32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function dequantize(w: WeightSpec, bytes: Uint8Array, count: number): WeightData {
  const q = w.quantization as WeightQuantization;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vals = new Float32Array(count);
  if (q.dtype === "float16") {
    for (let i = 0; i < count; i++) vals[i] = float16ToFloat32(dv.getUint16(i * 2, true));
  } else {
    const scale = q.scale ?? 1;
    const min = q.min ?? 0;
    for (let i = 0; i < count; i++) {
      const v = q.dtype === "uint8" ? dv.getUint8(i) : dv.getUint16(i * 2, true);
      vals[i] = v * scale + min;
    }
  }
  if (w.dtype === "int32") return Int32Array.from(vals, Math.round);
  return vals;
}

/**
 * Splits the concatenated shard bytes into one tensor per manifest entry, in manifest order (the
 * order TF.js writes them). The total length is checked up front so a truncated download fails
 * with the weight it would have corrupted rather than with garbage values.
 */
export function decodeWeights(
  manifest: readonly WeightGroup[],
  buffer: Uint8Array,
): Map<string, WeightTensor> {
  const out = new Map<string, WeightTensor>();
  let offset = 0;
  for (const group of manifest) {
    for (const w of group.weights) {
      const count = w.shape.reduce((a, b) => a * b, 1);
      if (!Number.isInteger(count) || count < 0) {
        throw new ValidationError(`weight ${w.name}: bad shape [${w.shape.join(", ")}]`, { field: w.name });
      }
      if (w.dtype === "string") {
        const dv = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
        const strs: string[] = [];
        for (let i = 0; i < count; i++) {
          if (offset + 4 > buffer.byteLength) throw truncated(w.name, offset + 4, buffer.byteLength);
          const len = dv.getUint32(offset, true);
          offset += 4;
          if (offset + len > buffer.byteLength) throw truncated(w.name, offset + len, buffer.byteLength);
          strs.push(new TextDecoder().decode(buffer.subarray(offset, offset + len)));
          offset += len;
        }
        out.set(w.name, { dtype: w.dtype, shape: w.shape, data: strs });
        continue;
      }
      const stored = w.quantization ? w.quantization.dtype : w.dtype;
      const per = BYTES[stored];
      if (per === undefined) {
        throw new ValidationError(`weight ${w.name}: unsupported dtype ${stored}`, { field: w.name });
      }
      const n = count * per;
      if (offset + n > buffer.byteLength) throw truncated(w.name, offset + n, buffer.byteLength);
      // A copy, so every typed array is aligned whatever the weight offsets are.
      const bytes = buffer.slice(offset, offset + n);
      offset += n;
      let data: WeightData;
      if (w.quantization) data = dequantize(w, bytes, count);
      else if (w.dtype === "float32") data = new Float32Array(bytes.buffer);
      else if (w.dtype === "int32") data = new Int32Array(bytes.buffer);
      else if (w.dtype === "int64") data = new BigInt64Array(bytes.buffer);
      else if (w.dtype === "bool") data = bytes;
      else throw new ValidationError(`weight ${w.name}: unsupported dtype ${w.dtype}`, { field: w.name });
      out.set(w.name, { dtype: w.dtype, shape: w.shape, data });
    }
  }
  if (offset !== buffer.byteLength) {
    throw new ValidationError(
      `weights: the manifest describes ${offset} bytes but the shards hold ${buffer.byteLength}`,
      { field: "weightsManifest" },
    );
  }
  return out;
}

function truncated(name: string, need: number, have: number): ValidationError {
  return new ValidationError(
    `weight ${name}: the shards end at byte ${have} but it needs bytes up to ${need}`,
    {
      field: name,
    },
  );
}

/** Reads `model.json` and its shards (paths relative to the JSON file, as TF.js resolves them). */
export async function readGraphModel(
  modelJsonPath: string,
): Promise<{ model: GraphModelJson; weights: Map<string, WeightTensor> }> {
  const model = parseGraphModelJson(JSON.parse(await readFile(modelJsonPath, "utf8")));
  const dir = dirname(modelJsonPath);
  const parts: Uint8Array[] = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) parts.push(new Uint8Array(await readFile(join(dir, p))));
  }
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const buffer = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    buffer.set(p, o);
    o += p.byteLength;
  }
  return { model, weights: decodeWeights(model.weightsManifest, buffer) };
}
