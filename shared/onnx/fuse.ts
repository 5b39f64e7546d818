/**
 * Graph surgery for exports: renaming, pruning and appending one ONNX graph to another. Pure
 * functions over decoded protos; what to fuse and the checks around it are `heads/export-onnx.ts`.
 */
import type onnxProto from "onnx-proto";
import { DEFAULT_OPSET, type GraphBuilder, type ModelProto } from "./writer.ts";

type GraphProto = onnxProto.onnx.IGraphProto;
type NodeProto = onnxProto.onnx.INodeProto;

/** Names in the fused graph that came from the head start with this (plus a number if it collides). */
export const FUSED_PREFIX = "head/";
/**
 * Backbone opsets whose graphs stay valid when the model is declared at the heads' opset (17):
 * the operators text encoders use did not change meaning between 13 and 17, while 13 moved the
 * axes of Squeeze/Unsqueeze/ReduceSum to inputs and 18 did the same for the other reductions.
 */
export const MIN_FUSABLE_OPSET = 13;

/** The node that writes `value`, looked up in what the builder holds so far. */
export function producerOf(g: GraphBuilder, value: string): NodeProto | undefined {
  return g.toModel().graph?.node?.find((n) => n.output?.includes(value));
}

/** Renames values in place wherever they appear as node inputs/outputs, initializers or graph I/O. */
export function renameValues(graph: GraphProto, rename: ReadonlyMap<string, string>): void {
  const r = (name: string) => rename.get(name) ?? name;
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map(r);
    node.output = (node.output ?? []).map(r);
  }
  for (const t of graph.initializer ?? []) if (t.name) t.name = r(t.name);
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    if (v.name) v.name = r(v.name);
  }
}

/**
 * Drops nodes and initializers no graph output depends on (nodes are in topological order): a
 * kind may build helper values it ends up not using.
 */
export function pruneGraph(graph: GraphProto): void {
  const needed = new Set((graph.output ?? []).map((o) => o.name ?? ""));
  const kept: NodeProto[] = [];
  for (const node of [...(graph.node ?? [])].reverse()) {
    if (!(node.output ?? []).some((o) => needed.has(o))) continue;
    kept.push(node);
    for (const i of node.input ?? []) if (i) needed.add(i);
  }
  graph.node = kept.reverse();
  graph.initializer = (graph.initializer ?? []).filter((t) => needed.has(t.name ?? ""));
}

export function defaultOpset(model: ModelProto): number | undefined {
  const entry = model.opsetImport?.find((o) => !o.domain || o.domain === "ai.onnx");
  return entry?.version == null ? undefined : Number(entry.version);
}

export function namesIn(graph: GraphProto): Set<string> {
  const names = new Set<string>();
  const add = (n: string | null | undefined) => {
    if (n) names.add(n);
  };
  for (const node of graph.node ?? []) {
    add(node.name);
    for (const v of [...(node.input ?? []), ...(node.output ?? [])]) add(v);
  }
  for (const t of graph.initializer ?? []) add(t.name);
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) add(v.name);
  return names;
}

/**
 * Appends `head`'s graph to `model`'s in place: the head's `input` is fed by the model's value
 * `feed`, its `output` becomes the first graph output (with the model's batch dimension), every
 * other head name gets a prefix no model name uses, and the opset and IR version are raised to
 * what the head needs.
 */
export function fuseGraphs(
  model: ModelProto,
  head: ModelProto,
  io: { input: string; output: string; feed: string },
): void {
  const graph = model.graph!;
  const opset = defaultOpset(model) ?? 1;
  const taken = namesIn(graph);
  const hg = head.graph!;
  const headNames = namesIn(hg);
  let prefix = FUSED_PREFIX;
  for (let i = 2; [...headNames].some((n) => taken.has(prefix + n)); i++) prefix = `head${i}/`;
  const rename = new Map<string, string>();
  for (const n of headNames) rename.set(n, prefix + n);
  rename.set(io.input, io.feed);
  rename.set(io.output, io.output);
  renameValues(hg, rename);
  for (const node of hg.node ?? []) node.name = prefix + (node.name ?? node.opType ?? "node");

  const embeddings = graph.output!.find((o) => o.name === io.feed)!;
  const batchDim = embeddings.type?.tensorType?.shape?.dim?.[0];
  const headOut = hg.output![0];
  const outDims = headOut.type?.tensorType?.shape?.dim;
  if (batchDim && outDims?.length) outDims[0] = batchDim;

  graph.node = [...(graph.node ?? []), ...(hg.node ?? [])];
  graph.initializer = [...(graph.initializer ?? []), ...(hg.initializer ?? [])];
  graph.output = [headOut, ...(graph.output ?? []).filter((o) => o !== headOut)];
  graph.name = `${graph.name || "backbone"}+${hg.name}`;

  if (opset !== DEFAULT_OPSET) {
    model.opsetImport = (model.opsetImport ?? []).map((o) =>
      !o.domain || o.domain === "ai.onnx" ? { domain: o.domain, version: DEFAULT_OPSET } : o,
    );
  }
  if (Number(model.irVersion ?? 0) < Number(head.irVersion ?? 0)) model.irVersion = head.irVersion;
}
