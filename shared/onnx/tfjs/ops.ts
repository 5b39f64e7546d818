/**
 * One handler per TF op: each emits ONNX (opset 17) nodes that reproduce the TF semantics, which
 * differ from ONNX in many small ways (reduction axes as inputs, NHWC layouts, StridedSlice masks,
 * `-1` split sizes, ScatterNd summing duplicates). Attributes that ONNX needs statically (axes,
 * perms, slice bounds) must come from `Const` nodes; a dynamic one is an error naming the node.
 */

import { ValidationError } from "../../errors.ts";
import { attr, type DType, dataType, type GraphBuilder } from "../writer.ts";
import type { TfAttr, TfNode } from "./model-json.ts";

export type TfDType = DType | "string";
export interface TfValue {
  name: string;
  dtype: TfDType;
}

export interface OpContext {
  readonly g: GraphBuilder;
  readonly node: TfNode;
  /** Data inputs (control inputs already dropped). */
  readonly arity: number;
  /** The ONNX value for data input `i` (a constant becomes an initializer the first time). */
  input(i: number): string;
  dtype(i: number): TfDType;
  /** The values of input `i` when it is a `Const` (flattened), else undefined. */
  constant(i: number): number[] | undefined;
  /** The shape of input `i` when it is a `Const`, else undefined. */
  constShape(i: number): readonly number[] | undefined;
  /** Like `constant`, but a dynamic input is an error that names the node and what was needed. */
  needConst(i: number, what: string): number[];
  /** A fresh internal value name (TF names cannot contain `#`, so these never collide). */
  tmp(): string;
  /** An int64/float32/... constant initializer. */
  lit(type: DType, data: readonly number[], dims?: readonly number[]): string;
  /** Emits one ONNX node with fresh output names; returns them. */
  emit(op: string, inputs: readonly string[], attrs?: Record<string, unknown>, nOut?: number): string[];
  fail(message: string): never;
}

export type OpHandler = (c: OpContext) => TfValue[];

const TF_DTYPES: Record<string, TfDType> = {
  "1": "float32",
  "2": "float64",
  "3": "int32",
  "4": "uint8",
  "6": "int8",
  "7": "string",
  "9": "int64",
  "10": "bool",
  DT_FLOAT: "float32",
  DT_DOUBLE: "float64",
  DT_INT32: "int32",
  DT_UINT8: "uint8",
  DT_INT8: "int8",
  DT_STRING: "string",
  DT_INT64: "int64",
  DT_BOOL: "bool",
};

export function tfDType(v: string | number | undefined, where: string): TfDType {
  const t = v === undefined ? undefined : TF_DTYPES[String(v)];
  if (t === undefined)
    throw new ValidationError(`${where}: unsupported TF dtype ${String(v)}`, { field: where });
  return t;
}

function attrOf(c: OpContext, name: string): TfAttr | undefined {
  return c.node.attr?.[name];
}
export function attrInt(c: OpContext, name: string, dflt: number): number {
  const a = attrOf(c, name);
  return a?.i === undefined ? dflt : Number(a.i);
}
export function attrBool(c: OpContext, name: string, dflt: boolean): boolean {
  const a = attrOf(c, name);
  return a?.b === undefined ? dflt : Boolean(a.b);
}
function decodeStr(s: string | number[]): string {
  // Protobuf JSON writes bytes as base64; TF.js converters write them as a byte array.
  if (Array.isArray(s)) return String.fromCharCode(...s);
  return Buffer.from(s, "base64").toString("latin1");
}
export function attrStr(c: OpContext, name: string, dflt: string): string {
  const a = attrOf(c, name);
  return a?.s === undefined ? dflt : decodeStr(a.s);
}
export function attrInts(c: OpContext, name: string): number[] {
  return (attrOf(c, name)?.list?.i ?? []).map(Number);
}
export function attrType(c: OpContext, name: string): TfDType | undefined {
  const a = attrOf(c, name);
  return a?.type === undefined ? undefined : tfDType(a.type, `${c.node.name}.${name}`);
}

const I64_MAX = Number.MAX_SAFE_INTEGER;
const I64_MIN = Number.MIN_SAFE_INTEGER;

function onnxType(c: OpContext, t: TfDType): DType {
  if (t === "string") c.fail("string tensors are not supported in the ONNX conversion");
  return t;
}

/** `x` as int64 (ONNX wants int64 for shapes, axes and ND indices; TF often uses int32). */
function asInt64(c: OpContext, i: number): string {
  const x = c.input(i);
  return c.dtype(i) === "int64" ? x : (c.emit("Cast", [x], { to: dataType("int64") })[0] as string);
}

const out = (name: string, dtype: TfDType): TfValue[] => [{ name, dtype }];
const same = (c: OpContext, op: string, attrs?: Record<string, unknown>): TfValue[] =>
  out(c.emit(op, [c.input(0)], attrs)[0] as string, c.dtype(0));
const binary =
  (op: string, bool = false): OpHandler =>
  (c) =>
    out(c.emit(op, [c.input(0), c.input(1)])[0] as string, bool ? "bool" : c.dtype(0));

function reduce(op: string): OpHandler {
  return (c) => {
    const axes = c.needConst(1, "reduction axes");
    const keepdims = attrBool(c, "keep_dims", false) ? 1 : 0;
    // TF reduces nothing over empty axes; ONNX would reduce everything.
    if (axes.length === 0) return same(c, "Identity");
    if (op === "ReduceSum") {
      const y = c.emit(op, [c.input(0), c.lit("int64", axes)], { keepdims })[0] as string;
      return out(y, c.dtype(0));
    }
    return same(c, op, { axes: attr.ints(axes), keepdims });
  };
}

function stridedSlice(c: OpContext): TfValue[] {
  const begin = c.needConst(1, "StridedSlice begin");
  const end = c.needConst(2, "StridedSlice end");
  const strides = c.needConst(3, "StridedSlice strides");
  const n = begin.length;
  if (end.length !== n || strides.length !== n) c.fail("begin, end and strides must have the same length");
  const bit = (name: string, i: number) => (attrInt(c, name, 0) >> i) & 1;
  let ellipsis = -1;
  for (let i = 0; i < n; i++) {
    if (bit("ellipsis_mask", i)) {
      if (ellipsis >= 0) c.fail("more than one ellipsis in ellipsis_mask");
      ellipsis = i;
    }
  }
  // Entries before the ellipsis count axes from the front, those after it from the back, so the
  // input rank is never needed. New axes are inserted first, turning them into no-op entries.
  const pos = (i: number) => (ellipsis < 0 || i < ellipsis ? i : i - n);
  const newAxes: number[] = [];
  const squeeze: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const axes: number[] = [];
  const steps: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === ellipsis) continue;
    if (bit("new_axis_mask", i)) {
      newAxes.push(pos(i));
      continue;
    }
    const s = strides[i] as number;
    if (s === 0) c.fail(`stride ${i} is 0`);
    const b = begin[i] as number;
    if (bit("shrink_axis_mask", i)) {
      starts.push(b);
      ends.push(b === -1 ? I64_MAX : b + 1);
      steps.push(1);
      squeeze.push(pos(i));
    } else {
      starts.push(bit("begin_mask", i) ? (s > 0 ? 0 : I64_MAX) : b);
      ends.push(bit("end_mask", i) ? (s > 0 ? I64_MAX : I64_MIN) : (end[i] as number));
      steps.push(s);
    }
    axes.push(pos(i));
  }
  let x = c.input(0);
  if (newAxes.length) x = c.emit("Unsqueeze", [x, c.lit("int64", newAxes)])[0] as string;
  if (axes.length) {
    x = c.emit("Slice", [
      x,
      c.lit("int64", starts),
      c.lit("int64", ends),
      c.lit("int64", axes),
      c.lit("int64", steps),
    ])[0] as string;
  }
  if (squeeze.length) x = c.emit("Squeeze", [x, c.lit("int64", squeeze)])[0] as string;
  if (x === c.input(0)) x = c.emit("Identity", [x])[0] as string;
  return out(x, c.dtype(0));
}

function concatV2(c: OpContext): TfValue[] {
  const n = c.arity - 1;
  const axis = c.needConst(n, "ConcatV2 axis")[0] as number;
  const ins = Array.from({ length: n }, (_, i) => c.input(i));
  return out(c.emit("Concat", ins, { axis })[0] as string, c.dtype(0));
}

function pack(c: OpContext): TfValue[] {
  const axis = attrInt(c, "axis", 0);
  const ax = c.lit("int64", [axis]);
  const ins = Array.from({ length: c.arity }, (_, i) => c.emit("Unsqueeze", [c.input(i), ax])[0] as string);
  return out(c.emit("Concat", ins, { axis })[0] as string, c.dtype(0));
}

function gatherV2(c: OpContext): TfValue[] {
  const axis = c.needConst(2, "GatherV2 axis")[0] as number;
  const batchDims = attrInt(c, "batch_dims", 0);
  if (batchDims === 0)
    return out(c.emit("Gather", [c.input(0), c.input(1)], { axis })[0] as string, c.dtype(0));
  // With batch_dims == axis, TF's gather is GatherND over one trailing index per batch element.
  if (batchDims !== axis || batchDims < 0)
    c.fail(`batch_dims ${batchDims} with axis ${axis} is not supported`);
  const idx = c.emit("Unsqueeze", [asInt64(c, 1), c.lit("int64", [-1])])[0] as string;
  return out(c.emit("GatherND", [c.input(0), idx], { batch_dims: batchDims })[0] as string, c.dtype(0));
}

function conv2d(c: OpContext): TfValue[] {
  const fmt = attrStr(c, "data_format", "NHWC");
  const nhwc = fmt === "NHWC";
  if (!nhwc && fmt !== "NCHW") c.fail(`data_format ${fmt} is not supported`);
  const hw = (v: number[], d: number) =>
    (v.length === 4 ? (nhwc ? [v[1], v[2]] : [v[2], v[3]]) : [d, d]) as number[];
  const strides = hw(attrInts(c, "strides"), 1);
  const dilations = hw(attrInts(c, "dilations"), 1);
  const padding = attrStr(c, "padding", "VALID");
  const attrs: Record<string, unknown> = { strides: attr.ints(strides), dilations: attr.ints(dilations) };
  if (padding === "SAME") attrs.auto_pad = "SAME_UPPER";
  else if (padding === "VALID") attrs.auto_pad = "VALID";
  else if (padding === "EXPLICIT") {
    const p = attrInts(c, "explicit_paddings");
    const [h0, h1, w0, w1] = (nhwc ? p.slice(2, 6) : p.slice(4, 8)) as number[];
    attrs.pads = attr.ints([h0 as number, w0 as number, h1 as number, w1 as number]);
  } else c.fail(`padding ${padding} is not supported`);
  const k = c.constShape(1);
  if (nhwc && k?.[0] === 1 && k[1] === 1 && [...strides, ...dilations].every((v) => v === 1)) {
    // A 1×1 convolution over NHWC is a product over the channel axis; as MatMul it skips the four
    // layout transposes and the blocked-layout reorders of Conv (the encoder's attention
    // projections are such convolutions).
    const w = c.emit("Reshape", [c.input(1), c.lit("int64", [k[2] as number, k[3] as number])])[0] as string;
    return out(c.emit("MatMul", [c.input(0), w])[0] as string, c.dtype(0));
  }
  let x = c.input(0);
  if (nhwc) x = c.emit("Transpose", [x], { perm: attr.ints([0, 3, 1, 2]) })[0] as string;
  // TF kernels are HWIO; ONNX wants OIHW.
  const w = c.emit("Transpose", [c.input(1)], { perm: attr.ints([3, 2, 0, 1]) })[0] as string;
  let y = c.emit("Conv", [x, w], attrs)[0] as string;
  if (nhwc) y = c.emit("Transpose", [y], { perm: attr.ints([0, 2, 3, 1]) })[0] as string;
  return out(y, c.dtype(0));
}

function splitV(c: OpContext): TfValue[] {
  const sizes = c.needConst(1, "SplitV size_splits");
  const axis = c.needConst(2, "SplitV axis")[0] as number;
  const unknown = sizes.indexOf(-1);
  let split: string;
  if (unknown < 0) split = c.lit("int64", sizes);
  else {
    // The -1 entry takes what is left of the axis, known only at run time.
    const known = sizes.reduce((a, s, i) => (i === unknown ? a : a + s), 0);
    const shape = c.emit("Shape", [c.input(0)])[0] as string;
    const dim = c.emit("Gather", [shape, c.lit("int64", [axis])], { axis: 0 })[0] as string;
    const rest = c.emit("Sub", [dim, c.lit("int64", [known])])[0] as string;
    const parts = [c.lit("int64", sizes.slice(0, unknown)), rest, c.lit("int64", sizes.slice(unknown + 1))];
    split = c.emit("Concat", parts, { axis: 0 })[0] as string;
  }
  const ys = c.emit("Split", [c.input(0), split], { axis }, sizes.length);
  return ys.map((name) => ({ name, dtype: c.dtype(0) }));
}

function scatterNd(c: OpContext): TfValue[] {
  const t = c.dtype(1);
  const shape = asInt64(c, 2);
  const zero = { kind: "tensor", value: { type: onnxType(c, t), dims: [1], data: [0] } };
  const zeros = c.emit("ConstantOfShape", [shape], { value: zero })[0] as string;
  // TF sums updates that land on the same index.
  const y = c.emit("ScatterND", [zeros, asInt64(c, 0), c.input(1)], { reduction: "add" })[0] as string;
  return out(y, t);
}

function sparseToDense(c: OpContext): TfValue[] {
  const t = c.dtype(2);
  const shape = asInt64(c, 1);
  const dense = c.emit("Expand", [c.input(3), shape])[0] as string;
  // Indices may be a scalar, [N] (rank-1 output) or [N, rank]; reshaping to [-1, rank] covers all.
  const rank = c.emit("Shape", [shape])[0] as string;
  const idxShape = c.emit("Concat", [c.lit("int64", [-1]), rank], { axis: 0 })[0] as string;
  const idx = c.emit("Reshape", [asInt64(c, 0), idxShape])[0] as string;
  const n = c.emit("Slice", [
    c.emit("Shape", [idx])[0] as string,
    c.lit("int64", [0]),
    c.lit("int64", [1]),
  ])[0] as string;
  const vals = c.emit("Expand", [c.input(2), n])[0] as string;
  return out(c.emit("ScatterND", [dense, idx, vals])[0] as string, t);
}

function slice(c: OpContext): TfValue[] {
  const begin = asInt64(c, 1);
  const size = asInt64(c, 2);
  const sum = c.emit("Add", [begin, size])[0] as string;
  const isRest = c.emit("Equal", [size, c.lit("int64", [-1])])[0] as string;
  const end = c.emit("Where", [isRest, c.lit("int64", [I64_MAX]), sum])[0] as string;
  return out(c.emit("Slice", [c.input(0), begin, end])[0] as string, c.dtype(0));
}

function matMul(c: OpContext): TfValue[] {
  const ta = attrBool(c, "transpose_a", false);
  const tb = attrBool(c, "transpose_b", false);
  const t = (i: number, flag: boolean) =>
    flag ? (c.emit("Transpose", [c.input(i)], { perm: attr.ints([1, 0]) })[0] as string) : c.input(i);
  return out(c.emit("MatMul", [t(0, ta), t(1, tb)])[0] as string, c.dtype(0));
}

function batchMatMul(c: OpContext): TfValue[] {
  const ax = attrBool(c, "adj_x", false);
  const ay = attrBool(c, "adj_y", false);
  if (!ax && !ay) return out(c.emit("MatMul", [c.input(0), c.input(1)])[0] as string, c.dtype(0));
  // Einsum's ellipsis transposes the last two axes without knowing the rank (real inputs only,
  // so adjoint == transpose).
  const eq = `...${ax ? "ji" : "ij"},...${ay ? "kj" : "jk"}->...ik`;
  return out(c.emit("Einsum", [c.input(0), c.input(1)], { equation: eq })[0] as string, c.dtype(0));
}

function castOp(c: OpContext): TfValue[] {
  const to = attrType(c, "DstT");
  if (to === undefined) c.fail("Cast needs DstT");
  return out(c.emit("Cast", [c.input(0)], { to: dataType(onnxType(c, to)) })[0] as string, to);
}

function range(c: OpContext): TfValue[] {
  const t = attrType(c, "Tidx") ?? c.dtype(0);
  return out(c.emit("Range", [c.input(0), c.input(1), c.input(2)])[0] as string, t);
}

function where(c: OpContext): TfValue[] {
  if (c.arity === 3) {
    return out(c.emit("Where", [c.input(0), c.input(1), c.input(2)])[0] as string, c.dtype(1));
  }
  // TF Where(cond) lists true coordinates as rows; ONNX NonZero gives them as columns.
  const nz = c.emit("NonZero", [c.input(0)])[0] as string;
  return out(c.emit("Transpose", [nz], { perm: attr.ints([1, 0]) })[0] as string, "int64");
}

export const OPS: Record<string, OpHandler> = {
  Identity: (c) => same(c, "Identity"),
  StopGradient: (c) => same(c, "Identity"),
  Add: binary("Add"),
  AddV2: binary("Add"),
  Sub: binary("Sub"),
  Mul: binary("Mul"),
  RealDiv: binary("Div"),
  Maximum: binary("Max"),
  Minimum: binary("Min"),
  Less: binary("Less", true),
  Greater: binary("Greater", true),
  Equal: binary("Equal", true),
  LogicalNot: (c) => out(c.emit("Not", [c.input(0)])[0] as string, "bool"),
  Square: (c) => out(c.emit("Mul", [c.input(0), c.input(0)])[0] as string, c.dtype(0)),
  Rsqrt: (c) =>
    out(c.emit("Reciprocal", [c.emit("Sqrt", [c.input(0)])[0] as string])[0] as string, c.dtype(0)),
  Sqrt: (c) => same(c, "Sqrt"),
  Sin: (c) => same(c, "Sin"),
  Cos: (c) => same(c, "Cos"),
  Tanh: (c) => same(c, "Tanh"),
  Relu: (c) => same(c, "Relu"),
  Softmax: (c) => same(c, "Softmax", { axis: -1 }),
  BiasAdd: (c) => {
    if (attrStr(c, "data_format", "NHWC") !== "NHWC")
      c.fail("BiasAdd with data_format NCHW is not supported");
    return binary("Add")(c);
  },
  Reshape: (c) =>
    out(c.emit("Reshape", [c.input(0), asInt64(c, 1)], { allowzero: 1 })[0] as string, c.dtype(0)),
  Shape: (c) => {
    const t = attrType(c, "out_type") ?? "int32";
    const s = c.emit("Shape", [c.input(0)])[0] as string;
    return out(t === "int64" ? s : (c.emit("Cast", [s], { to: dataType(onnxType(c, t)) })[0] as string), t);
  },
  ExpandDims: (c) => {
    const axes = c.emit("Reshape", [asInt64(c, 1), c.lit("int64", [1])])[0] as string;
    return out(c.emit("Unsqueeze", [c.input(0), axes])[0] as string, c.dtype(0));
  },
  Squeeze: (c) => {
    const dims = attrInts(c, "squeeze_dims").length ? attrInts(c, "squeeze_dims") : attrInts(c, "axis");
    const ins = dims.length ? [c.input(0), c.lit("int64", dims)] : [c.input(0)];
    return out(c.emit("Squeeze", ins)[0] as string, c.dtype(0));
  },
  Transpose: (c) => same(c, "Transpose", { perm: attr.ints(c.needConst(1, "Transpose perm")) }),
  ConcatV2: concatV2,
  Pack: pack,
  GatherV2: gatherV2,
  GatherNd: (c) => out(c.emit("GatherND", [c.input(0), asInt64(c, 1)])[0] as string, c.dtype(0)),
  StridedSlice: stridedSlice,
  Slice: slice,
  SplitV: splitV,
  Mean: reduce("ReduceMean"),
  Sum: reduce("ReduceSum"),
  Max: reduce("ReduceMax"),
  Prod: reduce("ReduceProd"),
  Cast: castOp,
  MatMul: matMul,
  BatchMatMul: batchMatMul,
  BatchMatMulV2: batchMatMul,
  Conv2D: conv2d,
  ScatterNd: scatterNd,
  SparseToDense: sparseToDense,
  Where: where,
  Select: where,
  SelectV2: where,
  Range: range,
};
