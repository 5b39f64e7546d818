/**
 * Converts a TF.js graph model into an ONNX model (opset 17) so that onnxruntime can run it like
 * every other backbone. Only the nodes the requested outputs depend on are converted; `Const`
 * nodes become initializers, and only when some converted op reads them as a tensor.
 */
import { ValidationError } from "../../errors.ts";
import { type AttrValue, type Dim, encodeModel, GraphBuilder } from "../writer.ts";
import type { GraphModelJson, TfNode, TfTensorJson, WeightTensor } from "./model-json.ts";
import { OPS, type OpContext, type TfDType, type TfValue, tfDType } from "./ops.ts";

export interface ConvertOptions {
  /** Placeholder names to expose, in order; default: every Placeholder the outputs depend on. */
  inputs?: readonly string[];
  /** Tensor names to expose: `node` or `node:k` for a node's k-th output. */
  outputs: readonly string[];
  /** Overrides the symbolic/fixed dims of an input (default: the Placeholder's `shape`, -1 → symbolic). */
  inputShapes?: Record<string, readonly Dim[]>;
  graphName?: string;
}

interface ConstTensor {
  dtype: TfDType;
  shape: number[];
  /** Small inline values, or the weight's typed array (read as numbers only on demand). */
  values?: number[];
  raw?: WeightTensor["data"];
}

function constNumbers(c: ConstTensor): number[] {
  if (c.values) return c.values;
  const r = c.raw;
  if (r === undefined || Array.isArray(r)) return [];
  return r instanceof BigInt64Array ? Array.from(r, Number) : Array.from(r as ArrayLike<number>);
}

/** TF ops with nothing to emit: graph plumbing. */
const STRUCTURAL = new Set(["Const", "Placeholder", "NoOp"]);

function splitRef(ref: string): { node: string; k: number } {
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? { node: m[1] as string, k: Number(m[2]) } : { node: ref, k: 0 };
}
const dataInputs = (n: TfNode) => (n.input ?? []).filter((r) => !r.startsWith("^"));

function inlineTensor(t: TfTensorJson | undefined, name: string): ConstTensor | undefined {
  if (!t) return undefined;
  const dtype = tfDType(t.dtype, `${name}.value.dtype`);
  const shape = (t.tensorShape?.dim ?? []).map((d) => Number(d.size ?? 0));
  const count = shape.reduce((a, b) => a * b, 1);
  const raw: number[] = t.floatVal?.length
    ? t.floatVal
    : t.doubleVal?.length
      ? t.doubleVal
      : t.intVal?.length
        ? t.intVal
        : t.int64Val?.length
          ? t.int64Val.map(Number)
          : t.boolVal?.length
            ? t.boolVal.map((b) => (b ? 1 : 0))
            : [];
  if (raw.length === 0 && count > 0) return undefined;
  // TensorProto may store one value for a tensor filled with it.
  const values = raw.length === count ? raw : Array.from({ length: count }, () => raw[0] as number);
  return { dtype, shape, values };
}

/**
 * Converts `model` (with `weights` from `decodeWeights`/`readGraphModel`) to ONNX bytes. Throws a
 * ValidationError listing every unsupported op type (with a node name for each) before emitting.
 */
export function convertGraphModel(
  model: GraphModelJson,
  weights: ReadonlyMap<string, WeightTensor>,
  opts: ConvertOptions,
): Uint8Array {
  const byName = new Map<string, TfNode>();
  for (const n of model.modelTopology.node) byName.set(n.name, n);
  if (opts.outputs.length === 0)
    throw new ValidationError("convert: no outputs requested", { field: "outputs" });
  const order = neededNodes(byName, opts.outputs);
  assertSupported(order);

  const g = new GraphBuilder(opts.graphName ?? "tfjs");
  const inputs = declareInputs(g, byName, order, opts);
  const s: Conversion = {
    g,
    counter: 0,
    values: inputs.values,
    consts: readConsts(order, weights),
    emittedConst: new Map(),
  };
  for (const n of order) if (!STRUCTURAL.has(n.op)) convertNode(s, n);
  declareOutputs(s, opts.outputs);
  return finishModel(g, inputs.unranked);
}

/** The ONNX graph being built and what each TF tensor became in it. */
interface Conversion {
  g: GraphBuilder;
  /** Numbers internal value names (`#n`) and node names (`<node>#n`) in emission order. */
  counter: number;
  /** TF ref "node:k" → emitted ONNX value. */
  values: Map<string, TfValue>;
  consts: Map<string, ConstTensor>;
  /** Consts some op read as a tensor, emitted as initializers on first read. */
  emittedConst: Map<string, TfValue>;
}

const tmpName = (s: Conversion) => `#${s.counter++}`;

/** Post-order DFS from the outputs: topological order over just the needed nodes. */
function neededNodes(byName: ReadonlyMap<string, TfNode>, outputs: readonly string[]): TfNode[] {
  const order: TfNode[] = [];
  const state = new Map<string, 1 | 2>();
  const visit = (root: string, from: string) => {
    const stack: { name: string; from: string; expanded: boolean }[] = [
      { name: root, from, expanded: false },
    ];
    while (stack.length) {
      const top = stack[stack.length - 1] as { name: string; from: string; expanded: boolean };
      const node = byName.get(top.name);
      if (!node) throw new ValidationError(`convert: ${top.from} refers to unknown node ${top.name}`);
      if (top.expanded) {
        stack.pop();
        if (state.get(top.name) !== 2) {
          state.set(top.name, 2);
          order.push(node);
        }
        continue;
      }
      if (state.get(top.name) === 2) {
        stack.pop();
        continue;
      }
      if (state.get(top.name) === 1) throw new ValidationError(`convert: cycle through node ${top.name}`);
      state.set(top.name, 1);
      top.expanded = true;
      for (const ref of dataInputs(node)) {
        const dep = splitRef(ref).node;
        if (state.get(dep) !== 2) stack.push({ name: dep, from: `node ${node.name}`, expanded: false });
      }
    }
  };
  for (const o of outputs) visit(splitRef(o).node, "outputs");
  return order;
}

function assertSupported(order: readonly TfNode[]): void {
  const unsupported = new Map<string, string>();
  for (const n of order)
    if (!STRUCTURAL.has(n.op) && !OPS[n.op] && !unsupported.has(n.op)) unsupported.set(n.op, n.name);
  if (unsupported.size) {
    const list = [...unsupported].map(([op, node]) => `${op} (e.g. node ${node})`).join(", ");
    throw new ValidationError(`convert: unsupported TF ops: ${list}`, { field: "modelTopology.node" });
  }
}

/**
 * Declares the graph inputs, in the requested order (Placeholders come first so the ONNX inputs
 * keep it). Returns their values and the inputs that accept any rank.
 */
function declareInputs(
  g: GraphBuilder,
  byName: ReadonlyMap<string, TfNode>,
  order: readonly TfNode[],
  opts: ConvertOptions,
): { values: Map<string, TfValue>; unranked: Set<string> } {
  const values = new Map<string, TfValue>();
  const placeholders = order.filter((n) => n.op === "Placeholder").map((n) => n.name);
  const inputNames = opts.inputs ?? placeholders;
  const unranked = new Set<string>();
  for (const p of placeholders) {
    if (!inputNames.includes(p))
      throw new ValidationError(`convert: the outputs need Placeholder ${p}`, { field: "inputs" });
  }
  for (const name of inputNames) {
    const n = byName.get(name);
    if (n?.op !== "Placeholder")
      throw new ValidationError(`convert: ${name} is not a Placeholder`, { field: "inputs" });
    const dtype = tfDType(n.attr?.dtype?.type, `${name}.dtype`);
    if (dtype === "string")
      throw new ValidationError(`convert: string input ${name} is not supported`, { field: "inputs" });
    const shape = n.attr?.shape?.shape;
    // A Placeholder without a shape (or with unknownRank) accepts any rank.
    if (!opts.inputShapes?.[name] && (!shape || shape.unknownRank)) unranked.add(name);
    const dims =
      opts.inputShapes?.[name] ??
      (shape?.dim ?? []).map((d, i) => {
        const s = Number(d.size ?? -1);
        return s < 0 ? `${name}_d${i}` : s;
      });
    g.input(name, dtype, dims);
    values.set(`${name}:0`, { name, dtype });
  }
  return { values, unranked };
}

/** Every needed Const's tensor, from its weight or its inline value, by TF ref. */
function readConsts(
  order: readonly TfNode[],
  weights: ReadonlyMap<string, WeightTensor>,
): Map<string, ConstTensor> {
  const consts = new Map<string, ConstTensor>();
  for (const n of order) {
    if (n.op !== "Const") continue;
    const w = weights.get(n.name);
    let c: ConstTensor | undefined;
    if (w) {
      c = { dtype: w.dtype, shape: w.shape, raw: w.data };
      // TF.js has no int64 tensors, so its converter stores int64 Consts as int32 weights; the
      // node's own dtype is what downstream ops were typed against.
      const declared = n.attr?.dtype?.type;
      if (declared !== undefined) {
        const want = tfDType(declared, `${n.name}.dtype`);
        if (want !== w.dtype) c = { dtype: want, shape: w.shape, values: constNumbers(c) };
      }
    } else c = inlineTensor(n.attr?.value?.tensor, n.name);
    if (!c)
      throw new ValidationError(`convert: Const ${n.name} has no weight and no inline value`, {
        field: n.name,
      });
    consts.set(`${n.name}:0`, c);
  }
  return consts;
}

/** The ONNX value for TF ref `ref` that `user` reads, emitting a Const's initializer on first read. */
function lookup(s: Conversion, ref: string, user: string): TfValue {
  const { node, k } = splitRef(ref);
  const key = `${node}:${k}`;
  const v = s.values.get(key) ?? s.emittedConst.get(key);
  if (v) return v;
  const c = s.consts.get(key);
  if (c) {
    if (c.dtype === "string") throw new ValidationError(`convert: ${user} reads string constant ${node}`);
    const data = c.values ?? c.raw;
    const name = s.g.initializer(node, c.dtype, c.shape, data as Float32Array);
    const tv = { name, dtype: c.dtype };
    s.emittedConst.set(key, tv);
    return tv;
  }
  throw new ValidationError(`convert: ${user} reads ${ref}, which no converted node produces`);
}

function convertNode(s: Conversion, n: TfNode): void {
  const handler = OPS[n.op] as (c: OpContext) => TfValue[];
  const outs = handler(opContext(s, n));
  for (const [k, v] of outs.entries()) s.values.set(`${n.name}:${k}`, v);
}

/** What an op handler (ops.ts) sees of the conversion while it converts node `n`. */
function opContext(s: Conversion, n: TfNode): OpContext {
  const { g } = s;
  const refs = dataInputs(n);
  const fail = (message: string): never => {
    throw new ValidationError(`convert: node ${n.name} (${n.op}): ${message}`, { field: n.name });
  };
  const tmp = () => tmpName(s);
  const ctx: OpContext = {
    g,
    node: n,
    arity: refs.length,
    input: (i) => lookup(s, refs[i] ?? fail(`missing input ${i}`), `node ${n.name}`).name,
    dtype: (i) => {
      const ref = refs[i] ?? fail(`missing input ${i}`);
      const { node, k } = splitRef(ref);
      return (s.consts.get(`${node}:${k}`)?.dtype ?? lookup(s, ref, `node ${n.name}`).dtype) as TfDType;
    },
    constant: (i) => {
      const { node, k } = splitRef(refs[i] ?? fail(`missing input ${i}`));
      const c = s.consts.get(`${node}:${k}`);
      return c ? constNumbers(c) : undefined;
    },
    constShape: (i) => {
      const { node, k } = splitRef(refs[i] ?? fail(`missing input ${i}`));
      return s.consts.get(`${node}:${k}`)?.shape;
    },
    needConst: (i, what) => ctx.constant(i) ?? fail(`${what} must be a Const (input ${refs[i]} is computed)`),
    tmp,
    lit: (type, data, dims = [data.length]) => g.initializer(tmp(), type, dims, data),
    emit: (op, inputs, attrs = {}, nOut = 1) =>
      g.node(op, inputs, Array.from({ length: nOut }, tmp), attrs as Record<string, AttrValue>, {
        name: `${n.name}#${s.counter++}`,
      }),
    fail,
  };
  return ctx;
}

function declareOutputs(s: Conversion, outputs: readonly string[]): void {
  for (const o of outputs) {
    const v = lookup(s, o, "outputs");
    if (v.dtype === "string") throw new ValidationError(`convert: string output ${o} is not supported`);
    // Graph outputs carry the TF names callers asked for; internal names are `#n`.
    const name = o;
    if (v.name !== name) s.g.node("Identity", [v.name], [name]);
    s.g.output(name, v.dtype, []);
  }
}

function finishModel(g: GraphBuilder, unranked: ReadonlySet<string>): Uint8Array {
  const proto = g.toModel({ producerName: "headstart-tfjs" });
  // Output shapes are left to onnxruntime's inference; a declared [] would claim scalars.
  for (const o of proto.graph?.output ?? []) {
    if (o.type?.tensorType) o.type.tensorType.shape = undefined;
  }
  for (const i of proto.graph?.input ?? []) {
    if (unranked.has(i.name ?? "") && i.type?.tensorType) i.type.tensorType.shape = undefined;
  }
  return encodeModel(proto);
}
