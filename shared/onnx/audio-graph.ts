/**
 * An `audio` backbone as one ONNX graph, so a fused export runs without headstart: a clip's samples
 * (`samples` float32 `[1, n]`, mono, at the backbone's rate, already × `sampleScale`, at least
 * `minSamples` long) → the mel model → `× melScale + melOffset` → every `window`-frame window every
 * `stride` frames (Range + Gather) → the embedding model → pooled over the windows (`mean`, or
 * `mean ⊕ max`) → `embeddings` float32 `[1, dim]`. The same steps `AudioEmbedder` runs in code.
 */
import type onnxProto from "onnx-proto";
import { namesIn, renameValues } from "./fuse.ts";
import { DEFAULT_OPSET, GraphBuilder, type ModelProto, valueInfo } from "./writer.ts";

/** What the graph needs of an audio backbone's `backbone.json` (structurally a `BackboneSpec`). */
export interface AudioGraphSpec {
  id: string;
  dim: number;
  io: { output: string };
  preprocessing: AudioPre;
}

interface AudioPre {
  melOutput: string;
  melScale: number;
  melOffset: number;
  input: string;
  window: number;
  stride: number;
  pooling: "mean" | "mean-max";
}
type GraphProto = onnxProto.onnx.IGraphProto;

export const AUDIO_SAMPLES_INPUT = "samples";
export const AUDIO_EMBEDDINGS_OUTPUT = "embeddings";

/** Prefixes every value and node name of `graph` except those in `keep` (renamed as mapped). */
function prefixGraph(graph: GraphProto, prefix: string, keep: ReadonlyMap<string, string>): void {
  const rename = new Map<string, string>();
  for (const n of namesIn(graph)) rename.set(n, keep.get(n) ?? prefix + n);
  renameValues(graph, rename);
  for (const node of graph.node ?? []) node.name = prefix + (node.name ?? node.opType ?? "node");
}

/** `mel` `[1, 1, T, bins]` → `windows` `[W, window, bins, 1]`, scaled. */
function windowNodes(g: GraphBuilder, mel: string, pre: AudioPre): string {
  const [frames] = g.node("Squeeze", [mel, g.constant("int64", [0, 1])]);
  const [scaled] = g.node("Add", [
    g.node("Mul", [frames, g.constant("float32", [pre.melScale], [])])[0],
    g.constant("float32", [pre.melOffset], []),
  ]);
  const [shape] = g.node("Shape", [scaled]);
  const [count] = g.node("Gather", [shape, g.constant("int64", [0], [])], 1, { axis: 0 });
  const [limit] = g.node("Sub", [count, g.constant("int64", [pre.window - 1], [])]);
  const [starts] = g.node("Range", [
    g.constant("int64", [0], []),
    limit,
    g.constant("int64", [pre.stride], []),
  ]);
  const offsets = g.constant(
    "int64",
    Array.from({ length: pre.window }, (_, i) => i),
    [1, pre.window],
  );
  const [column] = g.node("Unsqueeze", [starts, g.constant("int64", [1])]);
  const [index] = g.node("Add", [column, offsets]);
  const [gathered] = g.node("Gather", [scaled, index], 1, { axis: 0 });
  return g.node("Unsqueeze", [gathered, g.constant("int64", [3])])[0];
}

/** Window vectors `[W, 1, 1, d]` → `embeddings` `[1, d]` (mean) or `[1, 2d]` (mean ⊕ max). */
function poolNodes(g: GraphBuilder, vectors: string, pre: AudioPre, windowDim: number): void {
  const [flat] = g.node("Reshape", [vectors, g.constant("int64", [-1, windowDim])]);
  if (pre.pooling === "mean") {
    g.node("ReduceMean", [flat], [AUDIO_EMBEDDINGS_OUTPUT], { axes: [0], keepdims: 1 });
    return;
  }
  const [mean] = g.node("ReduceMean", [flat], 1, { axes: [0], keepdims: 1 });
  const [max] = g.node("ReduceMax", [flat], 1, { axes: [0], keepdims: 1 });
  g.node("Concat", [mean, max], [AUDIO_EMBEDDINGS_OUTPUT], { axis: 1 });
}

/**
 * The two models of `spec` joined into one (the protos are changed in place and their weights
 * reused, not copied). Both must be at opset 13..17, the range whose operators did not change.
 */
export function audioBackboneModel(spec: AudioGraphSpec, mel: ModelProto, embedding: ModelProto): ModelProto {
  const pre = spec.preprocessing;
  const melGraph = mel.graph!;
  const embGraph = embedding.graph!;
  const melIn = melGraph.input![0].name!;
  const melOut = pre.melOutput;
  prefixGraph(melGraph, "mel/", new Map([[melIn, AUDIO_SAMPLES_INPUT]]));
  prefixGraph(embGraph, "embedding/", new Map([[pre.input, "audio/windows"]]));
  const windowDim = spec.dim / (pre.pooling === "mean-max" ? 2 : 1);

  const g = new GraphBuilder(`${spec.id}-samples`);
  const windows = windowNodes(g, `mel/${melOut}`, pre);
  g.node("Identity", [windows], ["audio/windows"]);
  const glue = g.toModel().graph!;
  const p = new GraphBuilder(`${spec.id}-pool`);
  poolNodes(p, `embedding/${spec.io.output}`, pre, windowDim);
  const pool = p.toModel().graph!;
  prefixGraph(
    glue,
    "audio/",
    new Map([
      [`mel/${melOut}`, `mel/${melOut}`],
      ["audio/windows", "audio/windows"],
    ]),
  );
  prefixGraph(
    pool,
    "pool/",
    new Map([
      [`embedding/${spec.io.output}`, `embedding/${spec.io.output}`],
      [AUDIO_EMBEDDINGS_OUTPUT, AUDIO_EMBEDDINGS_OUTPUT],
    ]),
  );

  const domains = new Map<string, number>([["", DEFAULT_OPSET]]);
  for (const o of [...(mel.opsetImport ?? []), ...(embedding.opsetImport ?? [])]) {
    if (o.domain) domains.set(o.domain, Math.max(domains.get(o.domain) ?? 0, Number(o.version ?? 1)));
  }
  const model = new GraphBuilder(spec.id).toModel();
  model.opsetImport = [...domains].map(([domain, version]) => ({ domain, version }));
  model.irVersion = Math.max(
    Number(mel.irVersion ?? 0),
    Number(embedding.irVersion ?? 0),
    Number(model.irVersion ?? 0),
  );
  const graph = model.graph!;
  graph.input = [valueInfo(AUDIO_SAMPLES_INPUT, "float32", [1, "samples"])];
  graph.output = [valueInfo(AUDIO_EMBEDDINGS_OUTPUT, "float32", [1, spec.dim])];
  for (const part of [melGraph, glue, embGraph, pool]) {
    graph.node = [...(graph.node ?? []), ...(part.node ?? [])];
    graph.initializer = [...(graph.initializer ?? []), ...(part.initializer ?? [])];
  }
  return model;
}
