/**
 * A small builder for authoring ONNX models from TypeScript: the GloVe converter uses it, and
 * tests use it to make tiny bring-your-own backbones. It only assembles protobuf messages; shape
 * inference and validation are left to onnxruntime, which rejects a bad graph at session creation.
 */
import { endianness } from "node:os";
import onnxProto from "onnx-proto";
import { ValidationError } from "../errors.ts";

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;

/** opset 17 runs on every onnxruntime since 1.13; IR 8 is the version that introduced it. */
export const DEFAULT_OPSET = 17;
export const DEFAULT_IR_VERSION = 8;

export type DType = "float32" | "float64" | "int64" | "int32" | "uint8" | "int8" | "bool";
/** A fixed size, or a symbolic name such as `batch` / `seq` that callers choose at run time. */
export type Dim = number | string;

const DATA_TYPE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** The ONNX `TensorProto.DataType` number for `t` (the value the `Cast` op's `to` attribute takes). */
export function dataType(t: DType): number {
  return DATA_TYPE[t];
}

type TensorData =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Uint8Array
  | Int8Array
  | readonly number[]
  | readonly bigint[];

export interface TensorInit {
  type: DType;
  dims: readonly number[];
  data: TensorData;
}

/** An attribute with an explicit ONNX type; plain values are inferred (integers → INT). */
export type Attr =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "string"; value: string }
  | { kind: "ints"; value: readonly number[] }
  | { kind: "floats"; value: readonly number[] }
  | { kind: "strings"; value: readonly string[] }
  | { kind: "tensor"; value: TensorInit };
export type AttrValue = Attr | number | string | readonly number[] | readonly string[];

/** Explicit attribute constructors, for the cases inference gets wrong (a float that is integral). */
export const attr = {
  int: (value: number): Attr => ({ kind: "int", value }),
  float: (value: number): Attr => ({ kind: "float", value }),
  string: (value: string): Attr => ({ kind: "string", value }),
  ints: (value: readonly number[]): Attr => ({ kind: "ints", value }),
  floats: (value: readonly number[]): Attr => ({ kind: "floats", value }),
  strings: (value: readonly string[]): Attr => ({ kind: "strings", value }),
  tensor: (value: TensorInit): Attr => ({ kind: "tensor", value }),
};

const BYTES_PER: Record<DType, number> = {
  float32: 4,
  float64: 8,
  int64: 8,
  int32: 4,
  uint8: 1,
  int8: 1,
  bool: 1,
};

/**
 * Tensor bytes as ONNX `raw_data` (little-endian). Typed arrays of the right type are viewed, not
 * copied, because the GloVe matrix alone is 136 MB.
 */
export function rawData(type: DType, data: TensorData): Uint8Array {
  if (endianness() !== "LE") throw new ValidationError("writing ONNX raw_data needs a little-endian host");
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (type) {
    case "float32":
      return view(data instanceof Float32Array ? data : Float32Array.from(data as readonly number[]));
    case "float64":
      return view(data instanceof Float64Array ? data : Float64Array.from(data as readonly number[]));
    case "int32":
      return view(data instanceof Int32Array ? data : Int32Array.from(data as readonly number[]));
    case "int8":
      return view(data instanceof Int8Array ? data : Int8Array.from(data as readonly number[]));
    case "uint8":
    case "bool":
      return view(data instanceof Uint8Array ? data : Uint8Array.from(data as readonly number[]));
    case "int64": {
      if (data instanceof BigInt64Array) return view(data);
      const out = new BigInt64Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = BigInt(data[i] as number | bigint);
      return view(out);
    }
  }
}

export function tensorProto(name: string, t: TensorInit): onnxProto.onnx.TensorProto {
  const count = t.dims.reduce((a, b) => a * b, 1);
  const bytes = rawData(t.type, t.data);
  if (bytes.byteLength !== count * BYTES_PER[t.type]) {
    throw new ValidationError(
      `tensor ${name}: dims [${t.dims.join(", ")}] need ${count} values, got ${bytes.byteLength / BYTES_PER[t.type]}`,
    );
  }
  return onnx.TensorProto.create({ name, dataType: DATA_TYPE[t.type], dims: [...t.dims], rawData: bytes });
}

function attributeProto(name: string, v: AttrValue): onnxProto.onnx.AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  const a = normalizeAttr(name, v);
  const enc = new TextEncoder();
  switch (a.kind) {
    case "int":
      return onnx.AttributeProto.create({ name, type: T.INT, i: a.value });
    case "float":
      return onnx.AttributeProto.create({ name, type: T.FLOAT, f: a.value });
    case "string":
      return onnx.AttributeProto.create({ name, type: T.STRING, s: enc.encode(a.value) });
    case "ints":
      return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...a.value] });
    case "floats":
      return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: [...a.value] });
    case "strings":
      return onnx.AttributeProto.create({
        name,
        type: T.STRINGS,
        strings: a.value.map((s) => enc.encode(s)),
      });
    case "tensor":
      return onnx.AttributeProto.create({ name, type: T.TENSOR, t: tensorProto("", a.value) });
  }
}

function normalizeAttr(name: string, v: AttrValue): Attr {
  if (typeof v === "number") return Number.isInteger(v) ? attr.int(v) : attr.float(v);
  if (typeof v === "string") return attr.string(v);
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === "string")) return attr.strings(v as string[]);
    if (v.every((x) => typeof x === "number")) {
      return (v as number[]).every(Number.isInteger) ? attr.ints(v as number[]) : attr.floats(v as number[]);
    }
    throw new ValidationError(`attribute ${name}: mixed array`);
  }
  return v as Attr;
}

/** A typed tensor value of a graph (an input or output), `shape` by sizes or symbolic names. */
export function valueInfo(name: string, type: DType, shape: readonly Dim[]): onnxProto.onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: { dim: shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

export interface ModelOptions {
  opset?: number;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** Stored as `metadata_props`; onnxruntime exposes them to callers. */
  metadata?: Record<string, string>;
}

/** Collects inputs, outputs, initializers and nodes in order; `toModel()` assembles the ModelProto. */
export class GraphBuilder {
  private readonly inputs: onnxProto.onnx.ValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.ValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.TensorProto[] = [];
  private readonly nodes: onnxProto.onnx.NodeProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly name = "graph") {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new ValidationError(`duplicate value name ${JSON.stringify(name)}`);
    this.names.add(name);
    return name;
  }

  /** A fresh value name, for intermediate results the caller does not care to name. */
  fresh(hint = "t"): string {
    let n: string;
    do n = `${hint}_${this.counter++}`;
    while (this.names.has(n));
    return n;
  }

  input(name: string, type: DType, shape: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, shape));
    return name;
  }

  /** Declares a graph output; `name` must be produced by some node (or be an input/initializer). */
  output(name: string, type: DType, shape: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, type, shape));
    return name;
  }

  initializer(name: string, type: DType, dims: readonly number[], data: TensorData): string {
    this.initializers.push(tensorProto(this.claim(name), { type, dims, data }));
    return name;
  }

  /** A scalar or 1-d constant stored as an initializer under a fresh name. */
  constant(
    type: DType,
    data: readonly number[] | readonly bigint[],
    dims: readonly number[] = [data.length],
  ): string {
    return this.initializer(this.fresh("const"), type, dims, data);
  }

  /**
   * Adds a node. `outputs` is either names or a count of fresh names; returns the output names so
   * graphs read top-down: `const [y] = g.node("Relu", [x], 1)`.
   */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[] | number = 1,
    attributes: Record<string, AttrValue> = {},
    opts: { name?: string; domain?: string } = {},
  ): string[] {
    const outNames =
      typeof outputs === "number"
        ? Array.from({ length: outputs }, () => this.claim(this.fresh(opType.toLowerCase())))
        : outputs.map((o) => this.claim(o));
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        name: opts.name ?? `${opType}_${this.nodes.length}`,
        domain: opts.domain ?? "",
        input: [...inputs],
        output: outNames,
        attribute: Object.entries(attributes).map(([k, v]) => attributeProto(k, v)),
      }),
    );
    return outNames;
  }

  toModel(opts: ModelOptions = {}): ModelProto {
    return onnx.ModelProto.create({
      irVersion: opts.irVersion ?? DEFAULT_IR_VERSION,
      opsetImport: [{ domain: "", version: opts.opset ?? DEFAULT_OPSET }],
      producerName: opts.producerName ?? "headstart",
      producerVersion: opts.producerVersion ?? "0.1.0",
      docString: opts.docString ?? "",
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
        node: this.nodes,
      },
    });
  }
}

export function encodeModel(model: ModelProto | GraphBuilder, opts?: ModelOptions): Uint8Array {
  const m = model instanceof GraphBuilder ? model.toModel(opts) : model;
  return onnx.ModelProto.encode(m).finish();
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}
