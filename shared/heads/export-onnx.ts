/**
 * Head versions as standalone ONNX models, so a head can be served without headstart.
 *
 * `headToOnnx` — the head alone:
 * - input `embedding`: float32 [N, d], vectors from the head's backbone;
 * - output `probabilities`: float32 [N, k] in `labels` order (multiclass: rows sum to 1, temperature
 *   calibration included as serving applies it; multilabel: independent per-label probabilities),
 *   or `value`: float32 [N, 1] (regression).
 *
 * `fusedToOnnx` — the head's backbone graph with the head appended: the backbone's own inputs (for
 * text backbones `input_ids` and `attention_mask`, int64 [batch, seq], exactly what
 * `TextEmbedder` feeds it; tokenization stays outside the model) map to the same output as above,
 * and the backbone's embedding output is kept as a second output. An audio backbone's two models
 * are joined first (`onnx/audio-graph.ts`): the fused model takes one clip's `samples` float32
 * [1, n] (decoded, mono, resampled and scaled as `headstart.preprocessing` says, padded to its
 * `minSamples`) and answers one row.
 *
 * Both carry `metadata_props` (see `headMetadata`) naming the head, version, type, task, labels,
 * backbone and, for multilabel heads that have them, the decision thresholds.
 *
 * A head over several backbones (`a+b`) exports alone only: its `embedding` input is the parts'
 * vectors, each L2-normalized, concatenated in `headstart.backbone_parts` order.
 */
import { createHash } from "node:crypto";
import { resolveBackbone } from "../backbone/registry.ts";
import type { BackboneSpec } from "../backbone/spec.ts";
import type { Config } from "../config.ts";
import {
  ConflictError,
  HeadstartError,
  NotFoundError,
  UnsupportedError,
  ValidationError,
} from "../errors.ts";
import { keys } from "../layout.ts";
import { PROBA_FLOOR } from "../learn/calibration.ts";
import type { HeadTask } from "../learn/estimator.ts";
import { headKind } from "../learn/registry.ts";
import { AUDIO_EMBEDDINGS_OUTPUT, audioBackboneModel } from "../onnx/audio-graph.ts";
import {
  defaultOpset,
  fuseGraphs,
  MIN_FUSABLE_OPSET,
  namesIn,
  producerOf,
  pruneGraph,
  renameValues,
} from "../onnx/fuse.ts";
import { DEFAULT_OPSET, decodeModel, encodeModel, GraphBuilder, type ModelProto } from "../onnx/writer.ts";
import type { ObjectStore } from "../store/types.ts";
import type { HeadDocument } from "./version.ts";

export const EMBEDDING_INPUT = "embedding";
export const PROBABILITIES_OUTPUT = "probabilities";
export const VALUE_OUTPUT = "value";
function taskOf(doc: HeadDocument): HeadTask {
  const kind = headKind(doc.type);
  const task = doc.task ?? "multiclass";
  if (task !== kind.task) {
    throw new ValidationError(
      `head ${doc.head} version ${doc.version} has task ${task}, but type ${doc.type} is ${kind.task}`,
      { field: "task" },
    );
  }
  return task;
}

export function outputName(task: HeadTask): string {
  return task === "regression" ? VALUE_OUTPUT : PROBABILITIES_OUTPUT;
}

/** Per-label decision thresholds, where a multilabel head stores them (document, else model). */
function thresholdsOf(doc: HeadDocument): number[] | undefined {
  for (const source of [(doc as { thresholds?: unknown }).thresholds, doc.model.thresholds]) {
    if (Array.isArray(source) && source.every((t) => typeof t === "number" && Number.isFinite(t))) {
      if (source.length !== doc.labels.length) {
        throw new ValidationError(
          `head ${doc.head} version ${doc.version} has ${source.length} thresholds for ${doc.labels.length} labels`,
          { field: "thresholds" },
        );
      }
      return source as number[];
    }
  }
  return undefined;
}

/**
 * `metadata_props` of an exported head, all under `headstart.`: head, version, type, task, labels
 * (JSON array, the output's column order), output (its name), backbone, backbone_sha256,
 * backbone_dim, backbone_parts (JSON array of {id, sha256, dim}, heads over several backbones),
 * calibration (JSON, when set) and thresholds (JSON array, multilabel heads that have them).
 */
export function headMetadata(doc: HeadDocument): Record<string, string> {
  const task = taskOf(doc);
  const meta: Record<string, string> = {
    "headstart.head": doc.head,
    "headstart.version": doc.version,
    "headstart.type": doc.type,
    "headstart.task": task,
    "headstart.labels": JSON.stringify(doc.labels),
    "headstart.output": outputName(task),
    "headstart.backbone": doc.backbone.id,
    "headstart.backbone_sha256": doc.backbone.sha256,
    "headstart.backbone_dim": String(doc.backbone.dim),
  };
  if (doc.backbone.parts) meta["headstart.backbone_parts"] = JSON.stringify(doc.backbone.parts);
  if (doc.calibration) meta["headstart.calibration"] = JSON.stringify(doc.calibration);
  const thresholds = task === "multilabel" ? thresholdsOf(doc) : undefined;
  if (thresholds) meta["headstart.thresholds"] = JSON.stringify(thresholds);
  return meta;
}

/**
 * softmax(log(max(p, 1e-15)) / T), the formula serving applies (learn/calibration.ts
 * `applyTemperature`). Reaching past a head's final softmax for its logits would be exact where
 * the floor is not, but it would disagree with `predict` exactly where the floor bites (confident
 * rows under T > 1), and the exported model must reproduce what the platform serves.
 */
function temperatureScale(g: GraphBuilder, proba: string, temperature: number): string {
  const [safe] = g.node("Max", [proba, g.constant("float32", [PROBA_FLOOR], [])]);
  const [logp] = g.node("Log", [safe]);
  const [scaled] = g.node("Div", [logp, g.constant("float32", [temperature], [])]);
  const [calibrated] = g.node("Softmax", [scaled], 1, { axis: 1 });
  return calibrated;
}

interface HeadGraph {
  model: ModelProto;
  output: string;
  k: number;
  metadata: Record<string, string>;
}

/** The head as a ModelProto from `embedding` to its named output, calibration applied. */
function buildHeadGraph(doc: HeadDocument): HeadGraph {
  const task = taskOf(doc);
  const kind = headKind(doc.type);
  const metadata = headMetadata(doc);
  if (doc.calibration && task !== "multiclass") {
    throw new UnsupportedError(
      `head ${doc.head} version ${doc.version}: temperature calibration is defined for multiclass heads, not ${task}`,
      { field: "calibration" },
    );
  }
  const model = kind.fromJson(doc.model);
  const d = doc.backbone.dim;
  const k = task === "regression" ? 1 : doc.labels.length;
  const g = new GraphBuilder(`headstart_${doc.head}`);
  g.input(EMBEDDING_INPUT, "float32", ["N", d]);
  let out = kind.toOnnx(model, g, EMBEDDING_INPUT);
  if (doc.calibration) out = temperatureScale(g, out, doc.calibration.temperature);
  const name = outputName(task);
  // A head whose output is not computed by a node (an input or a weight) still needs a node to name it.
  if (!producerOf(g, out)) [out] = g.node("Identity", [out], 1);
  g.output(out, "float32", ["N", k]);
  const proto = g.toModel({
    metadata,
    docString: `headstart head ${doc.head}@${doc.version} (${doc.type}, ${task}): ${EMBEDDING_INPUT} → ${name}`,
  });
  const graph = proto.graph!;
  pruneGraph(graph);
  renameValues(graph, new Map([[out, name]]));
  return { model: proto, output: name, k, metadata };
}

/** The head version alone: `embedding` float32 [N, d] → `probabilities` [N, k] or `value` [N, 1]. */
export function headToOnnx(doc: HeadDocument): Uint8Array {
  return encodeModel(buildHeadGraph(doc).model);
}

/** `<head>-<version>.onnx`, or `<head>-<version>-fused.onnx`. */
export function exportFilename(doc: HeadDocument, fused: boolean): string {
  return `${doc.head}-${doc.version}${fused ? "-fused" : ""}.onnx`;
}

/**
 * The backbone model a head was trained on, checked: the store must hold it as ONNX, and its bytes
 * must be the ones the head's vectors came from.
 */
async function loadBackboneModel(
  store: ObjectStore,
  doc: HeadDocument,
  config: Pick<Config, "modelsDir">,
): Promise<{ spec: BackboneSpec; model: ModelProto; feed: string }> {
  const id = doc.backbone.id;
  let spec: BackboneSpec;
  try {
    spec = await resolveBackbone(store, id, config);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    throw new UnsupportedError(
      `head ${doc.head} was trained on vectors from backbone ${id}, which has no ONNX model in this store ` +
        "(imported embeddings?); export the head alone and compute its input embeddings yourself",
      { field: "fused" },
    );
  }
  // Imported vectors (`import-embeddings`) came from a model headstart never had.
  if ("kind" in spec && spec.kind === "external") {
    throw new UnsupportedError(
      `head ${doc.head} was trained on embeddings imported under backbone ${id}, which has no ONNX model ` +
        "to fuse; export the head alone and feed it vectors from the model that made them",
      { field: "fused" },
    );
  }
  if (spec.sha256 !== doc.backbone.sha256) {
    throw new ConflictError(
      `head ${doc.head} version ${doc.version} was trained on backbone ${id}@${doc.backbone.sha256.slice(0, 12)}, ` +
        `which has since been replaced (${spec.sha256.slice(0, 12)}); retrain the head or export it alone`,
      { field: "fused" },
    );
  }
  const obj = await store.get(keys.backboneAsset(id, spec.model));
  if (!obj) throw new HeadstartError("internal", `backbone ${id} is missing its file ${spec.model}`);
  const actual = createHash("sha256").update(obj.body).digest("hex");
  if (actual !== doc.backbone.sha256) {
    throw new ConflictError(
      `backbone ${id}: ${spec.model} has sha256 ${actual.slice(0, 12)}, but head ${doc.head} version ` +
        `${doc.version} was trained on ${doc.backbone.sha256.slice(0, 12)}`,
      { field: "fused" },
    );
  }
  let model: ModelProto | undefined;
  try {
    model = decodeModel(obj.body);
  } catch {
    model = undefined;
  }
  const graph = model?.graph;
  if (!model || !graph?.node?.length || !graph.output?.some((o) => o.name === spec.io.output)) {
    throw new UnsupportedError(
      `backbone ${id}'s ${spec.model} is not an ONNX graph with output ${JSON.stringify(spec.io.output)}; ` +
        "only ONNX backbones can be fused, export the head alone",
      { field: "fused" },
    );
  }
  const pre = spec.preprocessing;
  if (pre.type === "audio") {
    const mel = await loadAsset(store, spec, pre.melModel);
    return {
      spec,
      model: audioBackboneModel({ ...spec, preprocessing: pre }, mel, model),
      feed: AUDIO_EMBEDDINGS_OUTPUT,
    };
  }
  return { spec, model, feed: spec.io.output };
}

/** An ONNX asset of a backbone (an audio backbone's mel model), checked against backbone.json. */
async function loadAsset(store: ObjectStore, spec: BackboneSpec, file: string): Promise<ModelProto> {
  const obj = await store.get(keys.backboneAsset(spec.id, file));
  const actual = obj && createHash("sha256").update(obj.body).digest("hex");
  if (!obj || actual !== spec.assetSha256[file]) {
    throw new ConflictError(`backbone ${spec.id}: ${file} is missing or does not match backbone.json`, {
      field: "fused",
    });
  }
  return decodeModel(obj.body);
}

/**
 * The backbone's graph with the head appended: one model from the backbone's inputs to the head's
 * output (first) and the backbone's embeddings (second). The backbone's weights are carried over as
 * the decoded views of its file, so the only full copy made is the encoded result.
 */
export async function fusedToOnnx(
  store: ObjectStore,
  doc: HeadDocument,
  config: Pick<Config, "modelsDir">,
): Promise<Uint8Array> {
  // The head is built first: a malformed head fails before the backbone is read.
  const head = buildHeadGraph(doc);
  if (doc.backbone.parts) {
    // Fusing would mean several backbone graphs (each with its own tokenizer inputs) plus the
    // per-part normalization in one model; not built yet.
    throw new UnsupportedError(
      `head ${doc.head} version ${doc.version} was trained on several backbones (${doc.backbone.id}), ` +
        "which cannot be fused yet; export the head alone and feed it each part's vector, L2-normalized, " +
        "concatenated in order",
      { field: "fused" },
    );
  }
  const { spec, model, feed } = await loadBackboneModel(store, doc, config);
  const graph = model.graph!;
  const opset = defaultOpset(model) ?? 1;
  if (opset < MIN_FUSABLE_OPSET || opset > DEFAULT_OPSET) {
    throw new UnsupportedError(
      `backbone ${spec.id} uses ONNX opset ${opset}; fusing with a head (opset ${DEFAULT_OPSET}) needs ` +
        `${MIN_FUSABLE_OPSET}..${DEFAULT_OPSET}; export the head alone and chain the two models`,
      { field: "fused" },
    );
  }
  const taken = namesIn(graph);
  if (taken.has(head.output)) {
    throw new UnsupportedError(
      `backbone ${spec.id} already has a value named ${JSON.stringify(head.output)}; it cannot be fused`,
      { field: "fused" },
    );
  }

  fuseGraphs(model, head.model, { input: EMBEDDING_INPUT, output: head.output, feed });

  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? "";
  Object.assign(metadata, head.metadata, {
    "headstart.fused": "true",
    "headstart.inputs": JSON.stringify((graph.input ?? []).map((i) => i.name)),
    "headstart.embedding_output": feed,
    // How raw inputs become the model's inputs (tokenizer, vocabulary, truncation).
    "headstart.preprocessing": JSON.stringify(spec.preprocessing),
  });
  model.metadataProps = Object.entries(metadata).map(([key, value]) => ({ key, value }));
  model.docString = `${head.model.docString}; fused with backbone ${spec.id}@${spec.sha256.slice(0, 12)}`;
  return encodeModel(model);
}
