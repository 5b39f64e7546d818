/**
 * Weight-only int8 quantization of an ONNX graph's large constant matrix products, for CPUs where
 * float32 MatMul is already at the hardware's float peak (the USE-lite encoder): every
 * `MatMul(x, W)` with a constant 2-D float32 `W` becomes onnxruntime's contrib op
 * `com.microsoft.DynamicQuantizeMatMul`, which quantizes `x` to uint8 per call (per tensor,
 * asymmetric) and runs an integer GEMM against `W` stored as int8 with one symmetric scale per
 * output column. Per-column scales keep a column of small weights from being rounded away by a
 * large one elsewhere; symmetric (zero point 0) keeps the integer kernel free of weight offsets.
 *
 * The result only runs on onnxruntime (the op is not standard ONNX), which is what every backbone
 * runs on here.
 */
import onnxProto from "onnx-proto";
import { ValidationError } from "../errors.ts";
import { decodeModel, encodeModel, tensorProto } from "./writer.ts";

type Graph = onnxProto.onnx.IGraphProto;
type Node = onnxProto.onnx.INodeProto;
type Tensor = onnxProto.onnx.ITensorProto;

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;
export const CONTRIB_DOMAIN = "com.microsoft";

/**
 * Below this many weights a product costs less than quantizing its activations each call (the
 * encoder's smallest projection is 256×512 = 131,072).
 */
export const DEFAULT_MIN_ELEMENTS = 65_536;

export interface QuantizeOptions {
  /** Leave products whose weight has fewer values than this in float32. */
  minElements?: number;
}

export interface QuantizeResult {
  model: Uint8Array;
  /** Names of the nodes rewritten to `DynamicQuantizeMatMul`, in graph order. */
  quantized: string[];
}

/** A constant matrix as MatMul reads it, row-major `[k, n]`. */
interface Weight {
  k: number;
  n: number;
  values: Float32Array;
  /** The initializer holding the values, and the Reshape folded away to reach it, if any. */
  source: string;
  reshape?: Node;
}

/**
 * Rewrites the products (see the module comment), folds a `Reshape` of a constant that feeds a
 * rewritten product's weight (the TF.js converter emits 1×1 convolutions as `MatMul(x,
 * Reshape(W, [k, n]))`), drops the float32 weights and Reshapes nothing reads any more, and
 * imports the `com.microsoft` opset. Deterministic: the same model gives the same bytes.
 */
export function quantizeMatMuls(bytes: Uint8Array, opts: QuantizeOptions = {}): QuantizeResult {
  const minElements = opts.minElements ?? DEFAULT_MIN_ELEMENTS;
  if (!Number.isFinite(minElements) || minElements < 0)
    throw new ValidationError(`minElements must be a non-negative number, got ${minElements}`, {
      field: "minElements",
    });
  let model: onnxProto.onnx.ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (cause) {
    throw new ValidationError(`not an ONNX model: ${(cause as Error).message}`, { field: "model", cause });
  }
  const graph = model.graph;
  if (!graph) throw new ValidationError("the ONNX model has no graph", { field: "model.graph" });
  const view = graphView(graph);
  const rewrite = rewriteProducts(view, minElements);
  if (rewrite.quantized.length === 0) return { model: bytes, quantized: rewrite.quantized };
  dropUnread(graph, view, rewrite);
  const imports = model.opsetImport ?? [];
  if (!imports.some((o) => o.domain === CONTRIB_DOMAIN)) {
    model.opsetImport = [...imports, onnx.OperatorSetIdProto.create({ domain: CONTRIB_DOMAIN, version: 1 })];
  }
  return { model: encodeModel(model), quantized: rewrite.quantized };
}

/** The graph as the rewrite reads it. */
interface GraphView {
  nodes: Node[];
  /** The initializer holding a constant value; undefined for anything else. */
  constant: (name: string) => Tensor | undefined;
  producer: Map<string, Node>;
  /** A name nothing in the graph uses yet, `base` if free (then taken). */
  fresh: (base: string) => string;
}

function graphView(graph: Graph): GraphView {
  const nodes = graph.node ?? [];
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? "", t]));
  // An initializer that is also a graph input is a default the caller may override: not constant.
  const overridable = new Set((graph.input ?? []).map((v) => v.name ?? ""));
  const constant = (name: string) => (overridable.has(name) ? undefined : inits.get(name));
  const producer = new Map<string, Node>();
  for (const node of nodes) for (const o of node.output ?? []) producer.set(o, node);

  const taken = new Set<string>();
  collectNames(graph, taken);
  const fresh = (base: string) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
  return { nodes, constant, producer, fresh };
}

/** What rewriting the products changed, for the clean-up that follows. */
interface Rewrite {
  /** The int8 weights, scales and zero points. */
  added: Tensor[];
  /** Reshapes of constants that fed a rewritten product's weight. */
  folded: Set<Node>;
  /** Float32 initializers the int8 copies replace: dropped unless something still reads them. */
  replaced: Set<string>;
  /** Names of the rewritten nodes, in graph order. */
  quantized: string[];
}

/** Rewrites every large constant `MatMul(x, W)` in place; products sharing a weight share its int8 copy. */
function rewriteProducts(view: GraphView, minElements: number): Rewrite {
  const rewrite: Rewrite = { added: [], folded: new Set(), replaced: new Set(), quantized: [] };
  const rewritten = new Map<string, string[]>(); // weight value name → [q, scale, zero point]
  for (const [index, node] of view.nodes.entries()) {
    if (node.opType !== "MatMul" || (node.domain ?? "") !== "" || node.input?.length !== 2) continue;
    const [a, b] = node.input as [string, string];
    let names = rewritten.get(b);
    if (!names) {
      names = quantizeWeight(view, b, minElements, rewrite);
      if (!names) continue;
      rewritten.set(b, names);
    }
    node.opType = "DynamicQuantizeMatMul";
    node.domain = CONTRIB_DOMAIN;
    node.input = [a, ...names];
    if (!node.name) node.name = view.fresh(`DynamicQuantizeMatMul_${index}`);
    rewrite.quantized.push(node.name);
  }
  return rewrite;
}

/**
 * Adds the int8 form of weight `b` (quantized values, scales, zero points) and returns their
 * names; undefined when `b` is no constant matrix or too small to be worth it.
 */
function quantizeWeight(
  view: GraphView,
  b: string,
  minElements: number,
  rewrite: Rewrite,
): string[] | undefined {
  const w = weightOf(view, b);
  if (!w || w.k * w.n < minElements || w.k * w.n === 0) return undefined;
  const { q, scale } = quantizeColumns(w.values, w.k, w.n);
  const names = [view.fresh(`${b}_int8`), view.fresh(`${b}_scale`), view.fresh(`${b}_zero_point`)];
  const [qName, sName, zName] = names as [string, string, string];
  rewrite.added.push(
    tensorProto(qName, { type: "int8", dims: [w.k, w.n], data: q }),
    tensorProto(sName, { type: "float32", dims: [w.n], data: scale }),
    tensorProto(zName, { type: "int8", dims: [w.n], data: new Int8Array(w.n) }),
  );
  rewrite.replaced.add(w.source);
  if (w.reshape) rewrite.folded.add(w.reshape);
  else rewrite.replaced.add(b);
  return names;
}

/** Value `name` as a constant float32 matrix: an initializer, or a Reshape of one to 2-D. */
function weightOf(view: GraphView, name: string): Weight | undefined {
  const direct = view.constant(name);
  if (direct) {
    if (direct.dataType !== FLOAT || direct.dims?.length !== 2) return undefined;
    const [k, n] = direct.dims.map(Number) as [number, number];
    const values = floatValues(direct);
    return values && { k, n, values, source: name };
  }
  const reshape = view.producer.get(name);
  if (reshape?.opType !== "Reshape" || (reshape.domain ?? "") !== "") return undefined;
  const data = view.constant(reshape.input?.[0] ?? "");
  const shape = view.constant(reshape.input?.[1] ?? "");
  if (!data || !shape || data.dataType !== FLOAT) return undefined;
  const allowZero = reshape.attribute?.find((a) => a.name === "allowzero")?.i;
  const dims = reshapeDims((data.dims ?? []).map(Number), int64Values(shape), Number(allowZero ?? 0));
  if (dims?.length !== 2) return undefined;
  // Reshape keeps row-major order, so the data are the matrix as they are.
  const values = floatValues(data);
  return values && { k: dims[0] as number, n: dims[1] as number, values, source: data.name ?? "", reshape };
}

/** Drops the folded Reshapes and replaced float32 weights nothing reads any more; adds the int8 ones. */
function dropUnread(graph: Graph, view: GraphView, rewrite: Rewrite): void {
  const { replaced } = rewrite;
  // A folded Reshape (and then its inputs) may still feed something else; only what nothing
  // reads any more goes.
  const readsAfter = (g: Graph) => {
    const read = new Set<string>();
    collectReads(g, read);
    return read;
  };
  let read = readsAfter(graph);
  const dead = [...rewrite.folded].filter((r) => !(r.output ?? []).some((o) => read.has(o)));
  if (dead.length > 0) {
    const gone = new Set(dead);
    graph.node = view.nodes.filter((n) => !gone.has(n));
    const outs = new Set(dead.flatMap((r) => r.output ?? []));
    graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !outs.has(v.name ?? ""));
    for (const r of dead) for (const i of r.input ?? []) if (view.constant(i)) replaced.add(i);
    read = readsAfter(graph);
  }
  graph.initializer = [
    ...(graph.initializer ?? []).filter((t) => !replaced.has(t.name ?? "") || read.has(t.name ?? "")),
    ...rewrite.added,
  ];
}

/**
 * Symmetric int8 per output column: `scale[j] = max_k |w[k, j]| / 127` so the largest weight of
 * each column lands on ±127; an all-zero column gets scale 1 (any scale reproduces zeros, and the
 * op must not divide by 0).
 */
export function quantizeColumns(
  w: Float32Array,
  k: number,
  n: number,
): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let max = 0;
    for (let r = 0; r < k; r++) max = Math.max(max, Math.abs(w[r * n + j] as number));
    scale[j] = max > 0 ? max / 127 : 1;
  }
  const q = new Int8Array(k * n);
  for (let r = 0; r < k; r++) {
    for (let j = 0; j < n; j++) {
      const v = Math.round((w[r * n + j] as number) / (scale[j] as number));
      // float32 rounding of the scale can put the column's maximum a hair above 127.
      q[r * n + j] = Math.max(-127, Math.min(127, v));
    }
  }
  return { q, scale };
}

/** The float32 values of `t` (from `raw_data` or `float_data`), or undefined if stored outside. */
function floatValues(t: Tensor): Float32Array | undefined {
  if (t.dataLocation === EXTERNAL) return undefined;
  const count = (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1);
  const raw = t.rawData;
  let out: Float32Array;
  if (raw && raw.byteLength > 0) {
    if (raw.byteLength !== count * 4) throw badSize(t, count, raw.byteLength / 4);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else {
    const data = t.floatData ?? [];
    if (data.length !== count) throw badSize(t, count, data.length);
    out = Float32Array.from(data);
  }
  return out;
}

function int64Values(t: Tensor): number[] | undefined {
  if (t.dataType !== INT64 || t.dataLocation === EXTERNAL) return undefined;
  const raw = t.rawData;
  if (raw && raw.byteLength > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Array.from({ length: raw.byteLength / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)));
  }
  return (t.int64Data ?? []).map((v) => (typeof v === "number" ? v : v.toNumber()));
}

function badSize(t: Tensor, want: number, got: number): ValidationError {
  return new ValidationError(
    `initializer ${t.name}: dims [${(t.dims ?? []).join(", ")}] need ${want} values, it holds ${got}`,
    { field: `initializer.${t.name}` },
  );
}

/** ONNX Reshape's output shape (0 copies the input's dim unless allowzero, one -1 is inferred). */
function reshapeDims(input: number[], target: number[] | undefined, allowZero: number): number[] | undefined {
  if (!target) return undefined;
  const total = input.reduce((a, b) => a * b, 1);
  const dims = target.map((d, i) => (d === 0 && !allowZero ? input[i] : d));
  if (dims.some((d) => d === undefined || d < -1) || dims.filter((d) => d === -1).length > 1)
    return undefined;
  const known = (dims as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = (dims as number[]).map((d) => (d === -1 ? (known === 0 ? 0 : total / known) : d));
  const count = resolved.reduce((a, b) => a * b, 1);
  return count === total && resolved.every(Number.isInteger) ? resolved : undefined;
}

/** Every value name a graph (and its subgraphs) defines or reads, so new names stay unique. */
function collectNames(g: Graph, names: Set<string>): void {
  for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) names.add(v.name ?? "");
  for (const t of g.initializer ?? []) names.add(t.name ?? "");
  for (const n of g.node ?? []) {
    for (const v of [...(n.input ?? []), ...(n.output ?? [])]) names.add(v);
    if (n.name) names.add(n.name);
    for (const sub of subgraphs(n)) collectNames(sub, names);
  }
}

/** Names read by nodes (subgraphs included: they may read outer-scope values) or graph outputs. */
function collectReads(g: Graph, read: Set<string>): void {
  for (const v of g.output ?? []) read.add(v.name ?? "");
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) read.add(i);
    for (const sub of subgraphs(n)) collectReads(sub, read);
  }
}

function subgraphs(n: Node): Graph[] {
  return (n.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);
}
