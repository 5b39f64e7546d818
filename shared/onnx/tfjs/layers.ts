/**
 * Converts a TF.js **layers** model (a Keras config in `modelTopology` plus the weights manifest)
 * into an ONNX model (opset 17), cut at one layer's output, so image backbones shipped as Keras
 * models run through onnxruntime like every other backbone.
 *
 * The graph takes NHWC float32 as Keras does and transposes once to NCHW, the layout ONNX
 * convolutions and pools use; 4-d values stay NCHW inside and the output is given back in Keras
 * order. Spatial sizes must be fixed (they are for the classifiers this serves) because Keras
 * `same` padding depends on them.
 */
import { ValidationError } from "../../errors.ts";
import { type Dim, encodeModel, GraphBuilder } from "../writer.ts";
import type { FeatureTap } from "./feature-tap.ts";
import type { WeightGroup, WeightTensor } from "./model-json.ts";

export interface KerasLayer {
  class_name: string;
  name?: string;
  config: Record<string, unknown>;
  /** Keras 2: one entry per call, each a list of `[layer, nodeIndex, tensorIndex, kwargs]`. */
  inbound_nodes?: unknown[];
}

export interface KerasModelConfig {
  class_name: string;
  config:
    | { name?: string; layers: KerasLayer[]; input_layers?: unknown; output_layers?: unknown }
    | KerasLayer[];
}

export interface LayersModelJson {
  format?: string;
  modelTopology: { model_config?: KerasModelConfig } & Partial<KerasModelConfig>;
  weightsManifest: WeightGroup[];
}

/** Layer classes the converter emits, each with the config it honours. */
export const SUPPORTED_LAYERS = [
  "InputLayer",
  "Conv2D",
  "DepthwiseConv2D",
  "BatchNormalization",
  "ReLU",
  "Activation",
  "ZeroPadding2D",
  "Add",
  "Multiply",
  "Concatenate",
  "GlobalAveragePooling2D",
  "GlobalMaxPooling2D",
  "AveragePooling2D",
  "MaxPooling2D",
  "Flatten",
  "Dense",
  "Dropout",
  "SpatialDropout2D",
  "Model",
  "Functional",
  "Sequential",
] as const;
const SUPPORTED = new Set<string>(SUPPORTED_LAYERS);
const CONTAINERS = new Set(["Model", "Functional", "Sequential"]);

/** Validates the parts of a layers `model.json` the converter relies on. */
export function parseLayersModelJson(json: unknown): LayersModelJson {
  const m = json as LayersModelJson;
  if (typeof m !== "object" || m === null) throw new ValidationError("model.json: not an object");
  if (typeof m.modelTopology !== "object" || m.modelTopology === null) {
    throw new ValidationError("model.json: modelTopology is missing", { field: "modelTopology" });
  }
  const cfg = m.modelTopology.model_config ?? m.modelTopology;
  if (typeof cfg.class_name !== "string" || !CONTAINERS.has(cfg.class_name)) {
    throw new ValidationError(
      "model.json: modelTopology is not a Keras Model/Sequential config (not a TF.js layers model?)",
      { field: "modelTopology.model_config.class_name" },
    );
  }
  if (!Array.isArray(m.weightsManifest)) {
    throw new ValidationError("model.json: weightsManifest is missing", { field: "weightsManifest" });
  }
  return m;
}

export interface LayersConvertOptions {
  /** Layer whose output becomes the graph output; default: the model's (single) output. */
  outputLayer?: string;
  /**
   * Instead of `outputLayer`: these layers' feature maps, each pooled to one value per channel. One
   * tap is the output as it is; several are each L2-normalized, then concatenated in this order, so
   * no layer outweighs another by its scale or width.
   */
  taps?: readonly FeatureTap[];
  /**
   * An image model's input height and width in place of its `batch_input_shape`'s: convolutional
   * layers accept other sizes, so a small image need not be upscaled to the size the model was
   * trained at. Only for outputs that do not depend on the size (taps, or a pooled layer).
   */
  inputSize?: { height: number; width: number };
  /**
   * Each image and its left-right mirror both go through the model and the two outputs are
   * averaged (flip-averaged features, twice the compute). Needs a vector output.
   */
  mirror?: boolean;
  /** Graph input name; default `pixels`. */
  inputName?: string;
  /** Graph output name; default `embeddings`. */
  outputName?: string;
  graphName?: string;
}

/** A converted value: its ONNX name and Keras shape without the batch axis. */
interface Value {
  name: string;
  shape: number[];
}

/** 4-d Keras values (`[H, W, C]` after the batch) are held as NCHW in the graph. */
const isImage = (v: Value) => v.shape.length === 3;

type Ref = [layer: string, node: number, tensor: number];

function modelConfig(m: LayersModelJson): KerasModelConfig {
  return (m.modelTopology.model_config ?? m.modelTopology) as KerasModelConfig;
}

function layersOf(cfg: KerasModelConfig): KerasLayer[] {
  return Array.isArray(cfg.config) ? cfg.config : cfg.config.layers;
}

function layerName(l: KerasLayer): string {
  return (l.name ?? (l.config.name as string | undefined)) as string;
}

function refs(raw: unknown, field: string): Ref[] {
  // `input_layers`/`output_layers` are `[name, node, tensor]` or a list of them.
  if (!Array.isArray(raw)) throw new ValidationError(`${field}: expected a list`, { field });
  const list = typeof raw[0] === "string" ? [raw] : raw;
  return list.map((r) => toRef(r, field));
}

function toRef(r: unknown, field: string): Ref {
  if (Array.isArray(r) && typeof r[0] === "string") return [r[0], Number(r[1] ?? 0), Number(r[2] ?? 0)];
  // Keras 3 writes tensors as `{class_name: "__keras_tensor__", config: {keras_history: [...]}}`.
  const hist = (r as { config?: { keras_history?: unknown[] } })?.config?.keras_history;
  if (Array.isArray(hist) && typeof hist[0] === "string") return [hist[0], Number(hist[1]), Number(hist[2])];
  throw new ValidationError(`${field}: unreadable tensor reference ${JSON.stringify(r)}`, { field });
}

/** The input refs of one call (inbound node) of a layer. */
function inboundRefs(layer: KerasLayer, node: number): Ref[] {
  const field = `layer ${layerName(layer)}.inbound_nodes[${node}]`;
  const n = layer.inbound_nodes?.[node];
  if (n === undefined) throw new ValidationError(`${field}: no such call`, { field });
  if (Array.isArray(n)) return n.map((r) => toRef(r, field));
  const args = (n as { args?: unknown[] }).args;
  if (Array.isArray(args))
    return args.flatMap((a) => (Array.isArray(a) ? a : [a])).map((r) => toRef(r, field));
  throw new ValidationError(`${field}: unreadable inbound node`, { field });
}

/** Sequential configs have no inbound nodes: each layer takes the previous one's output. */
function asFunctional(
  cfg: KerasModelConfig,
  path: string,
): { layers: KerasLayer[]; inputs: Ref[]; outputs: Ref[] } {
  const layers = layersOf(cfg);
  if (cfg.class_name !== "Sequential") {
    const c = cfg.config as { input_layers?: unknown; output_layers?: unknown };
    return {
      layers,
      inputs: refs(c.input_layers, `${path}.input_layers`),
      outputs: refs(c.output_layers, `${path}.output_layers`),
    };
  }
  if (layers.length === 0)
    throw new ValidationError(`${path}: Sequential model without layers`, { field: path });
  const out: KerasLayer[] = [];
  const hasInput = layers[0]?.class_name === "InputLayer";
  let prev: string;
  if (hasInput) {
    out.push(layers[0]);
    prev = layerName(layers[0]);
  } else {
    const shape = layers[0]?.config.batch_input_shape;
    if (!Array.isArray(shape)) {
      throw new ValidationError(`${path}: the first layer has no batch_input_shape`, { field: path });
    }
    prev = `${layerName(layers[0] as KerasLayer)}_input`;
    out.push({
      class_name: "InputLayer",
      name: prev,
      config: { name: prev, batch_input_shape: shape },
      inbound_nodes: [],
    });
  }
  for (const l of layers.slice(hasInput ? 1 : 0)) {
    out.push({ ...l, inbound_nodes: [[[prev, 0, 0, {}]]] });
    prev = layerName(l);
  }
  return { layers: out, inputs: [[layerName(out[0] as KerasLayer), 0, 0]], outputs: [[prev, 0, 0]] };
}

function num(cfg: Record<string, unknown>, key: string, layer: string): number {
  const v = cfg[key];
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ValidationError(`layer ${layer}: ${key} must be a number`, { field: `${layer}.${key}` });
  }
  return v;
}

function pair(
  cfg: Record<string, unknown>,
  key: string,
  layer: string,
  dflt?: [number, number],
): [number, number] {
  const v = cfg[key] ?? dflt;
  if (typeof v === "number") return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && x >= 0))
    return [v[0], v[1]];
  throw new ValidationError(`layer ${layer}: ${key} must be an integer or a pair`, {
    field: `${layer}.${key}`,
  });
}

/**
 * TF's `same` padding: the output is `ceil(in / stride)` and any odd pixel of padding goes at the
 * end (bottom/right), which ONNX's symmetric-looking `pads` can express explicitly.
 */
export function samePads(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const eff = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + eff - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function outSize(size: number, kernel: number, stride: number, pads: [number, number], dilation = 1): number {
  return Math.floor((size + pads[0] + pads[1] - ((kernel - 1) * dilation + 1)) / stride) + 1;
}

function f32(w: WeightTensor): Float32Array {
  if (!(w.data instanceof Float32Array)) {
    throw new ValidationError(`weight of dtype ${w.dtype} where float32 is expected`);
  }
  return w.data;
}

/** `[kh, kw, cin, cout]` (Keras) → `[cout, cin, kh, kw]` (ONNX), in float64 so folding adds no rounding. */
function convKernel(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float64Array {
  const out = new Float64Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          out[((o * cin + i) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * cout + o] as number;
  return out;
}

interface BnParams {
  scale: Float64Array;
  shift: Float64Array;
}

export function convertLayersModel(
  model: LayersModelJson,
  weights: ReadonlyMap<string, WeightTensor>,
  opts: LayersConvertOptions = {},
): Uint8Array {
  return new LayersConverter(model, weights, opts).convert();
}

interface Scope {
  /** Prefix of ONNX value names and error messages: the nested models (and calls) this is in. */
  path: string;
  /** The nested models' names, as a TF.js variable scope may carry them. */
  prefix: string;
  layers: Map<string, KerasLayer>;
  /** Outer values bound to this (nested) model's inputs; undefined at the top level. */
  bound?: Map<string, Value>;
  memo: Map<string, Value[]>;
}

class LayersConverter {
  private readonly g: GraphBuilder;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly top: Scope;
  private readonly topIO: { inputs: Ref[]; outputs: Ref[] };
  /** How many times each `scope|layer|node` output is read, to know when a conv can take its BN. */
  private readonly reads = new Map<string, number>();
  private inputs = 0;

  constructor(
    model: LayersModelJson,
    private readonly weights: ReadonlyMap<string, WeightTensor>,
    private readonly opts: LayersConvertOptions,
  ) {
    const cfg = modelConfig(model);
    const fn = asFunctional(cfg, "modelTopology.model_config");
    this.topIO = fn;
    this.top = { path: "", prefix: "", layers: byName(fn.layers), memo: new Map() };
    this.g = new GraphBuilder(
      opts.graphName ?? (Array.isArray(cfg.config) ? "model" : (cfg.config.name ?? "model")),
    );
    this.inputName = opts.inputName ?? "pixels";
    this.outputName = opts.outputName ?? "embeddings";
  }

  convert(): Uint8Array {
    if (this.opts.taps !== undefined) return this.convertTaps(this.opts.taps);
    let target: Ref;
    if (this.opts.outputLayer !== undefined) {
      target = this.layerRef(this.opts.outputLayer, "outputLayer");
    } else {
      if (this.topIO.outputs.length !== 1) {
        throw new ValidationError("the model has several outputs: name one with outputLayer", {
          field: "outputLayer",
        });
      }
      target = this.topIO.outputs[0] as Ref;
    }
    this.check(target);
    const v = this.value(this.top, target);
    if (this.opts.mirror && isImage(v)) {
      throw new ValidationError(`mirror needs a vector output; ${target[0]} is a feature map`, {
        field: "mirror",
      });
    }
    const out = isImage(v) ? this.toNhwc(v) : this.unmirror(v.name, v.shape);
    this.g.node("Identity", [out], [this.outputName]);
    this.g.output(this.outputName, "float32", ["batch", ...v.shape]);
    return encodeModel(this.g, {
      docString: `TF.js layers model cut at ${target[0]}, converted by headstart`,
    });
  }

  private layerRef(layer: string, field: string): Ref {
    if (!this.top.layers.has(layer)) {
      throw new ValidationError(`no layer named ${JSON.stringify(layer)} in the model`, { field });
    }
    return [layer, 0, 0];
  }

  private convertTaps(taps: readonly FeatureTap[]): Uint8Array {
    if (taps.length === 0) throw new ValidationError("taps: name at least one layer", { field: "taps" });
    if (this.opts.outputLayer !== undefined) {
      throw new ValidationError("give outputLayer or taps, not both", { field: "taps" });
    }
    const refs = taps.map((t, i) => this.layerRef(t.layer, `taps[${i}].layer`));
    this.check(...refs);
    const pooled = taps.map((t, i) => this.tapPool(t, this.value(this.top, refs[i] as Ref)));
    const parts =
      pooled.length === 1
        ? pooled
        : pooled.map((v) => ({
            ...v,
            name: this.g.node("LpNormalization", [v.name], 1, { axis: 1, p: 2 })[0] as string,
          }));
    const dim = parts.reduce((n, v) => n + (v.shape[0] as number), 0);
    const out =
      parts.length === 1
        ? (parts[0] as Value).name
        : (this.g.node(
            "Concat",
            parts.map((v) => v.name),
            1,
            { axis: 1 },
          )[0] as string);
    this.g.node("Identity", [this.unmirror(out, [dim])], [this.outputName]);
    this.g.output(this.outputName, "float32", ["batch", dim]);
    return encodeModel(this.g, {
      docString: `TF.js layers model tapped at ${taps.map((t) => `${t.layer} (${t.pool})`).join(", ")}, converted by headstart`,
    });
  }

  /**
   * With `mirror`, rows [0, B) of `name` are the images' outputs and [B, 2B) their mirrors':
   * their mean, `[B, ...shape]`. Without it, `name` as it is.
   */
  private unmirror(name: string, shape: readonly number[]): string {
    if (!this.opts.mirror) return name;
    const halves = this.g.constant("int64", [2, -1, ...shape]);
    const [pairs] = this.g.node("Reshape", [name, halves]);
    return this.g.node("ReduceMean", [pairs as string], 1, { axes: [0], keepdims: 0 })[0] as string;
  }

  /** NCHW `x` followed on the batch axis by its left-right mirror (`mirror`), else `x`. */
  private withMirror(x: string): string {
    if (!this.opts.mirror) return x;
    const int64 = (v: bigint) => this.g.constant("int64", [v]);
    // Width is axis 3 in NCHW; a step of −1 from the last column to before the first.
    const [flipped] = this.g.node("Slice", [x, int64(-1n), int64(-(2n ** 63n)), int64(3n), int64(-1n)]);
    return this.g.node("Concat", [x, flipped as string], 1, { axis: 0 })[0] as string;
  }

  /** `[batch, C]`: the tap's map (NCHW here) pooled over its height and width. */
  private tapPool(tap: FeatureTap, x: Value): Value {
    const [, , c] = this.requireImage(tap.layer, x);
    if (tap.pool === "avg") return this.globalPool(tap.layer, true, {}, x);
    if (tap.pool !== "gem") {
      throw new ValidationError(
        `tap ${tap.layer}: pool must be "avg" or "gem", got ${JSON.stringify(tap.pool)}`,
        {
          field: "pool",
        },
      );
    }
    const eps = this.g.constant("float32", [1e-6], []);
    const p = this.g.constant("float32", [3], []);
    const invP = this.g.constant("float32", [1 / 3], []);
    const [clamped] = this.g.node("Max", [x.name, eps]);
    const [cubed] = this.g.node("Pow", [clamped as string, p]);
    const [mean] = this.g.node("ReduceMean", [cubed as string], 1, { axes: [2, 3], keepdims: 0 });
    const [y] = this.g.node("Pow", [mean as string, invP]);
    return { name: y as string, shape: [c] };
  }

  /**
   * Walks everything the targets depend on before anything is emitted, so a model with
   * unsupported layers fails with all of them listed, and counts reads for BN folding.
   */
  private check(...targets: Ref[]): void {
    const unsupported: string[] = [];
    const seen = new Set<string>();
    const visit = (scope: Scope, ref: Ref): void => {
      const [name, node] = ref;
      const key = `${scope.path}|${name}|${node}`;
      this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
      if (seen.has(key)) return;
      seen.add(key);
      const layer = scope.layers.get(name);
      if (!layer) {
        throw new ValidationError(
          `${scope.path || "model"}: layer ${JSON.stringify(name)} is referenced but not defined`,
          {
            field: name,
          },
        );
      }
      if (!SUPPORTED.has(layer.class_name)) unsupported.push(`${layer.class_name} (${scope.path}${name})`);
      if (layer.class_name === "InputLayer") return;
      if (CONTAINERS.has(layer.class_name)) {
        const inner = this.innerScope(scope, layer, node);
        const fn = asFunctional(layer as KerasModelConfig, `${inner.path}config`);
        for (const o of fn.outputs) visit(inner, o);
      }
      for (const r of inboundRefs(layer, node)) visit(scope, r);
    };
    for (const target of targets) visit(this.top, target);
    if (unsupported.length > 0) {
      throw new ValidationError(`unsupported layers: ${unsupported.join(", ")}`, {
        field: "modelTopology",
        details: { unsupported },
      });
    }
  }

  /** A nested model's scope for one of its calls: calls share weights, not values. */
  private innerScope(outer: Scope, layer: KerasLayer, node: number): Scope {
    const fn = asFunctional(layer as KerasModelConfig, `${outer.path}${layerName(layer)}`);
    return {
      path: `${outer.path}${layerName(layer)}/${node}/`,
      prefix: `${outer.prefix}${layerName(layer)}/`,
      layers: byName(fn.layers),
      memo: new Map(),
    };
  }

  private value(scope: Scope, ref: Ref): Value {
    const [name, node, tensor] = ref;
    const key = `${name}|${node}`;
    let outs = scope.memo.get(key);
    if (!outs) {
      outs = this.emit(scope, scope.layers.get(name) as KerasLayer, node);
      scope.memo.set(key, outs);
    }
    const v = outs[tensor];
    if (!v) throw new ValidationError(`layer ${name} has no output ${tensor}`, { field: name });
    return v;
  }

  private weight(scope: Scope, layer: string, w: string, shape: number[]): Float32Array {
    const full = `${layer}/${w}`;
    // Variables of nested models are named by the layer alone or under the models' scopes.
    let t = this.weights.get(full) ?? this.weights.get(`${scope.prefix}${full}`);
    if (!t) for (const [k, v] of this.weights) if (k.endsWith(`/${full}`)) t = v;
    if (!t) throw new ValidationError(`weight ${full} is missing from the weights manifest`, { field: full });
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ValidationError(
        `weight ${full}: shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
        {
          field: full,
        },
      );
    }
    return f32(t);
  }

  private emit(scope: Scope, layer: KerasLayer, node: number): Value[] {
    const name = layerName(layer);
    const id = `${scope.path}${name}`;
    const cfg = layer.config;
    if (typeof cfg.data_format === "string" && cfg.data_format !== "channels_last") {
      throw new ValidationError(`layer ${id}: data_format ${cfg.data_format} is not supported`, {
        field: `${id}.data_format`,
      });
    }
    if (layer.class_name === "InputLayer") return [this.input(scope, layer)];
    if (CONTAINERS.has(layer.class_name)) return this.nested(scope, layer, node);
    if (layer.class_name === "BatchNormalization") {
      const fold = this.foldTarget(scope, layer, node);
      if (fold) {
        // The conv is emitted here, with the BN in its weights, and never on its own.
        const convIn = inboundRefs(fold.conv, fold.ref[1]).map((r) => this.value(scope, r));
        const x = convIn[0] as Value;
        const bn = this.bnParams(scope, layer, this.convChannels(scope, fold.conv, x));
        return [this.conv(scope, fold.conv, x, bn)];
      }
    }
    const ins = inboundRefs(layer, node).map((r) => this.value(scope, r));
    const x = ins[0] as Value;
    const one = (v: Value) => [v];
    switch (layer.class_name) {
      case "Dropout":
      case "SpatialDropout2D":
        return one(x);
      case "Conv2D":
      case "DepthwiseConv2D":
        return one(this.conv(scope, layer, x));
      case "BatchNormalization":
        return one(this.batchNorm(scope, layer, x));
      case "ReLU":
        return one(this.relu(id, cfg, x));
      case "Activation":
        return one(this.activation(id, cfg.activation, x));
      case "ZeroPadding2D":
        return one(this.zeroPad(id, cfg, x));
      case "Add":
      case "Multiply":
        return one(this.elementwise(id, layer.class_name === "Add" ? "Add" : "Mul", ins));
      case "Concatenate":
        return one(this.concat(id, cfg, ins));
      case "GlobalAveragePooling2D":
      case "GlobalMaxPooling2D":
        return one(this.globalPool(id, layer.class_name === "GlobalAveragePooling2D", cfg, x));
      case "AveragePooling2D":
      case "MaxPooling2D":
        return one(this.pool(id, layer.class_name === "AveragePooling2D", cfg, x));
      case "Flatten":
        return one(this.flatten(x));
      case "Dense":
        return one(this.dense(scope, layer, x));
    }
    throw new ValidationError(`layer ${id}: unsupported class ${layer.class_name}`, { field: id });
  }

  private input(scope: Scope, layer: KerasLayer): Value {
    const name = layerName(layer);
    const bound = scope.bound?.get(name);
    if (bound) return bound;
    if (scope.bound) {
      throw new ValidationError(`nested model ${scope.path}: input ${name} is not connected`, {
        field: name,
      });
    }
    const shape = layer.config.batch_input_shape ?? layer.config.batch_shape;
    const field = `${name}.batch_input_shape`;
    if (!Array.isArray(shape) || shape.length < 2) {
      throw new ValidationError(`input layer ${name}: batch_input_shape is missing`, { field });
    }
    const dims = this.inputDims(name, shape.slice(1));
    if (!dims.every((d) => Number.isInteger(d) && d > 0)) {
      throw new ValidationError(
        `input layer ${name}: every dimension but the batch must be fixed, got [${shape.join(", ")}]`,
        { field },
      );
    }
    if (++this.inputs > 1) {
      throw new ValidationError("models with several inputs are not supported", { field: "input_layers" });
    }
    const dtype = layer.config.dtype ?? "float32";
    if (dtype !== "float32")
      throw new ValidationError(`input layer ${name}: dtype ${dtype} is not supported`, { field });
    this.g.input(this.inputName, "float32", ["batch", ...(dims as number[])] as Dim[]);
    const v: Value = { name: this.inputName, shape: dims as number[] };
    if (!isImage(v)) return v;
    const [t] = this.g.node("Transpose", [this.inputName], 1, { perm: [0, 3, 1, 2] });
    return { name: this.withMirror(t as string), shape: v.shape };
  }

  /** The input's dimensions after the batch, with `inputSize` in place of an image's height and width. */
  private inputDims<T>(name: string, dims: readonly T[]): ReadonlyArray<T | number> {
    const size = this.opts.inputSize;
    if (dims.length !== 3) {
      if (size || this.opts.mirror) {
        throw new ValidationError(`input layer ${name}: inputSize and mirror need an image input`, {
          field: size ? "inputSize" : "mirror",
        });
      }
      return dims;
    }
    if (!size) return dims;
    for (const [key, v] of Object.entries(size)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new ValidationError(`inputSize.${key} must be a positive integer, got ${v}`, {
          field: `inputSize.${key}`,
        });
      }
    }
    return [size.height, size.width, dims[2] as T];
  }

  private nested(outer: Scope, layer: KerasLayer, node: number): Value[] {
    const inner = this.innerScope(outer, layer, node);
    const fn = asFunctional(layer as KerasModelConfig, `${inner.path}config`);
    const args = inboundRefs(layer, node).map((r) => this.value(outer, r));
    if (args.length !== fn.inputs.length) {
      throw new ValidationError(
        `nested model ${inner.path}: ${fn.inputs.length} inputs, called with ${args.length}`,
        {
          field: layerName(layer),
        },
      );
    }
    inner.bound = new Map(fn.inputs.map((r, i) => [r[0], args[i] as Value]));
    return fn.outputs.map((o) => this.value(inner, o));
  }

  private requireImage(id: string, x: Value): [number, number, number] {
    if (!isImage(x)) {
      throw new ValidationError(
        `layer ${id}: needs a [batch, height, width, channels] input, got rank ${x.shape.length + 1}`,
        {
          field: id,
        },
      );
    }
    return x.shape as [number, number, number];
  }

  /**
   * The conv a BN reads, when the BN can be folded into its weights: a linear conv whose output
   * nothing else reads (the check pass counted the reads).
   */
  private foldTarget(scope: Scope, bn: KerasLayer, node: number): { conv: KerasLayer; ref: Ref } | undefined {
    const src = inboundRefs(bn, node);
    const ref = src[0];
    if (src.length !== 1 || !ref) return undefined;
    const conv = scope.layers.get(ref[0]);
    if (!conv || (conv.class_name !== "Conv2D" && conv.class_name !== "DepthwiseConv2D")) return undefined;
    if ((conv.config.activation ?? "linear") !== "linear" || !channelAxis(bn.config.axis, 3))
      return undefined;
    if (this.reads.get(`${scope.path}|${ref[0]}|${ref[1]}`) !== 1 || scope.memo.has(`${ref[0]}|${ref[1]}`)) {
      return undefined;
    }
    return { conv, ref };
  }

  private conv(scope: Scope, layer: KerasLayer, x: Value, bn?: BnParams): Value {
    const name = layerName(layer);
    const id = `${scope.path}${name}`;
    const cfg = layer.config;
    const depthwise = layer.class_name === "DepthwiseConv2D";
    const [h, w, cin] = this.requireImage(id, x);
    const [kh, kw] = pair(cfg, "kernel_size", id);
    const [sh, sw] = pair(cfg, "strides", id, [1, 1]);
    const [dh, dw] = pair(cfg, "dilation_rate", id, [1, 1]);
    if ((sh > 1 || sw > 1) && (dh > 1 || dw > 1)) {
      throw new ValidationError(`layer ${id}: strides and dilation both above 1`, { field: `${id}.strides` });
    }
    const padding = cfg.padding ?? "valid";
    if (padding !== "valid" && padding !== "same") {
      throw new ValidationError(`layer ${id}: padding ${String(padding)} is not supported`, {
        field: `${id}.padding`,
      });
    }
    const ph = padding === "same" ? samePads(h, kh, sh, dh) : ([0, 0] as [number, number]);
    const pw = padding === "same" ? samePads(w, kw, sw, dw) : ([0, 0] as [number, number]);
    const mult = depthwise ? num(cfg, "depth_multiplier", id) : 1;
    const cout = depthwise ? cin * mult : num(cfg, "filters", id);
    if ((cfg.groups ?? 1) !== 1)
      throw new ValidationError(`layer ${id}: grouped convolution`, { field: `${id}.groups` });

    let kernel: Float64Array;
    if (depthwise) {
      // Keras `[kh, kw, cin, mult]`: output channel `c * mult + m`, which is ONNX's group order.
      const k = this.weight(scope, name, "depthwise_kernel", [kh, kw, cin, mult]);
      kernel = convKernel(k, kh, kw, 1, cout);
    } else {
      kernel = convKernel(this.weight(scope, name, "kernel", [kh, kw, cin, cout]), kh, kw, cin, cout);
    }
    const bias = new Float64Array(cout);
    if (cfg.use_bias !== false) bias.set(this.weight(scope, name, "bias", [cout]));
    if (bn) {
      const per = kernel.length / cout;
      for (let o = 0; o < cout; o++) {
        const s = bn.scale[o] as number;
        for (let j = 0; j < per; j++) kernel[o * per + j] = (kernel[o * per + j] as number) * s;
        bias[o] = (bias[o] as number) * s + (bn.shift[o] as number);
      }
    }
    const kName = this.g.initializer(
      this.g.fresh(`${id}/kernel`),
      "float32",
      [cout, depthwise ? 1 : cin, kh, kw],
      Float32Array.from(kernel),
    );
    const inputs = [x.name, kName];
    if (cfg.use_bias !== false || bn) {
      inputs.push(this.g.initializer(this.g.fresh(`${id}/bias`), "float32", [cout], Float32Array.from(bias)));
    }
    const [y] = this.g.node("Conv", inputs, 1, {
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      dilations: [dh, dw],
      pads: [ph[0], pw[0], ph[1], pw[1]],
      group: depthwise ? cin : 1,
    });
    const shape = [outSize(h, kh, sh, ph, dh), outSize(w, kw, sw, pw, dw), cout];
    return this.activation(id, cfg.activation, { name: y as string, shape });
  }

  private convChannels(scope: Scope, conv: KerasLayer, x: Value): number {
    const id = `${scope.path}${layerName(conv)}`;
    const [, , cin] = this.requireImage(id, x);
    return conv.class_name === "DepthwiseConv2D"
      ? cin * num(conv.config, "depth_multiplier", id)
      : num(conv.config, "filters", id);
  }

  private bnParams(scope: Scope, layer: KerasLayer, channels: number): BnParams {
    const name = layerName(layer);
    const cfg = layer.config;
    const eps = typeof cfg.epsilon === "number" ? cfg.epsilon : 1e-3;
    const gamma = cfg.scale === false ? undefined : this.weight(scope, name, "gamma", [channels]);
    const beta = cfg.center === false ? undefined : this.weight(scope, name, "beta", [channels]);
    const mean = this.weight(scope, name, "moving_mean", [channels]);
    const variance = this.weight(scope, name, "moving_variance", [channels]);
    const scale = new Float64Array(channels);
    const shift = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      const s = (gamma?.[c] ?? 1) / Math.sqrt((variance[c] as number) + eps);
      scale[c] = s;
      shift[c] = (beta?.[c] ?? 0) - (mean[c] as number) * s;
    }
    return { scale, shift };
  }

  private batchNorm(scope: Scope, layer: KerasLayer, x: Value): Value {
    const id = `${scope.path}${layerName(layer)}`;
    const rank = x.shape.length + 1;
    if (!channelAxis(layer.config.axis, rank - 1)) {
      throw new ValidationError(
        `layer ${id}: only the last (channel) axis is supported, got ${String(layer.config.axis)}`,
        {
          field: `${id}.axis`,
        },
      );
    }
    const channels = x.shape[x.shape.length - 1] as number;
    const { scale, shift } = this.bnParams(scope, layer, channels);
    const dims = isImage(x) ? [channels, 1, 1] : [channels];
    const s = this.g.initializer(this.g.fresh(`${id}/scale`), "float32", dims, Float32Array.from(scale));
    const b = this.g.initializer(this.g.fresh(`${id}/shift`), "float32", dims, Float32Array.from(shift));
    const [m] = this.g.node("Mul", [x.name, s], 1);
    const [y] = this.g.node("Add", [m as string, b], 1);
    return { name: y as string, shape: x.shape };
  }

  private relu(id: string, cfg: Record<string, unknown>, x: Value): Value {
    const max = cfg.max_value;
    const slope = typeof cfg.negative_slope === "number" ? cfg.negative_slope : 0;
    const threshold = typeof cfg.threshold === "number" ? cfg.threshold : 0;
    if (max !== null && max !== undefined && (typeof max !== "number" || !Number.isFinite(max))) {
      throw new ValidationError(`layer ${id}: max_value must be a number`, { field: `${id}.max_value` });
    }
    let y: string;
    if (threshold === 0 && slope === 0) {
      y =
        typeof max === "number" ? this.clip(x.name, 0, max) : (this.g.node("Relu", [x.name], 1)[0] as string);
      return { name: y, shape: x.shape };
    }
    if (threshold === 0) {
      y = this.g.node("LeakyRelu", [x.name], 1, { alpha: { kind: "float", value: slope } })[0] as string;
    } else {
      // Keras: `x` from the threshold up, `slope * (x - threshold)` below it.
      const t = this.g.constant("float32", [threshold], []);
      const below = this.g.node("Less", [x.name, t], 1)[0] as string;
      const shifted = this.g.node("Sub", [x.name, t], 1)[0] as string;
      const low = this.g.node("Mul", [shifted, this.g.constant("float32", [slope], [])], 1)[0] as string;
      y = this.g.node("Where", [below, low, x.name], 1)[0] as string;
    }
    if (typeof max === "number")
      y = this.g.node("Min", [y, this.g.constant("float32", [max], [])], 1)[0] as string;
    return { name: y, shape: x.shape };
  }

  private clip(x: string, lo: number, hi: number): string {
    return this.g.node(
      "Clip",
      [x, this.g.constant("float32", [lo], []), this.g.constant("float32", [hi], [])],
      1,
    )[0] as string;
  }

  private activation(id: string, act: unknown, x: Value): Value {
    const a = act ?? "linear";
    const unary = (op: string) => ({ name: this.g.node(op, [x.name], 1)[0] as string, shape: x.shape });
    switch (a) {
      case "linear":
        return x;
      case "relu":
        return unary("Relu");
      case "relu6":
        return { name: this.clip(x.name, 0, 6), shape: x.shape };
      case "sigmoid":
        return unary("Sigmoid");
      case "tanh":
        return unary("Tanh");
      case "softmax":
        // Keras applies it over the last (channel) axis, which is axis 1 in NCHW.
        return {
          name: this.g.node("Softmax", [x.name], 1, { axis: isImage(x) ? 1 : -1 })[0] as string,
          shape: x.shape,
        };
    }
    throw new ValidationError(`layer ${id}: activation ${JSON.stringify(a)} is not supported`, {
      field: `${id}.activation`,
    });
  }

  private zeroPad(id: string, cfg: Record<string, unknown>, x: Value): Value {
    const [h, w, c] = this.requireImage(id, x);
    const p = cfg.padding ?? 1;
    let top: number;
    let bottom: number;
    let left: number;
    let right: number;
    if (typeof p === "number") [top, bottom, left, right] = [p, p, p, p];
    else if (Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === "number")) {
      [top, bottom, left, right] = [p[0], p[0], p[1], p[1]];
    } else if (Array.isArray(p) && p.length === 2 && p.every((v) => Array.isArray(v) && v.length === 2)) {
      [[top, bottom], [left, right]] = p as [[number, number], [number, number]];
    } else {
      throw new ValidationError(`layer ${id}: unreadable padding ${JSON.stringify(p)}`, {
        field: `${id}.padding`,
      });
    }
    const pads = this.g.constant("int64", [0, 0, top, left, 0, 0, bottom, right]);
    const [y] = this.g.node("Pad", [x.name, pads], 1, { mode: "constant" });
    return { name: y as string, shape: [h + top + bottom, w + left + right, c] };
  }

  private elementwise(id: string, op: string, ins: Value[]): Value {
    if (ins.length < 2) throw new ValidationError(`layer ${id}: needs at least two inputs`, { field: id });
    const first = ins[0] as Value;
    for (const v of ins) {
      if (v.shape.join() !== first.shape.join()) {
        throw new ValidationError(`layer ${id}: inputs of shapes [${first.shape}] and [${v.shape}]`, {
          field: id,
        });
      }
    }
    let y = first.name;
    for (const v of ins.slice(1)) y = this.g.node(op, [y, v.name], 1)[0] as string;
    return { name: y, shape: first.shape };
  }

  private concat(id: string, cfg: Record<string, unknown>, ins: Value[]): Value {
    const first = ins[0] as Value;
    const rank = first.shape.length + 1;
    let axis = typeof cfg.axis === "number" ? cfg.axis : -1;
    if (axis < 0) axis += rank;
    if (axis <= 0 || axis >= rank)
      throw new ValidationError(`layer ${id}: axis ${cfg.axis} is out of range`, { field: `${id}.axis` });
    // Keras NHWC axis → the NCHW axis it lives on here.
    const onnxAxis = isImage(first) ? ([0, 2, 3, 1][axis] as number) : axis;
    const shape = [...first.shape];
    shape[axis - 1] = 0;
    for (const v of ins) {
      if (
        v.shape.length !== first.shape.length ||
        v.shape.some((d, i) => i !== axis - 1 && d !== first.shape[i])
      ) {
        throw new ValidationError(`layer ${id}: inputs of shapes [${first.shape}] and [${v.shape}]`, {
          field: id,
        });
      }
      shape[axis - 1] = (shape[axis - 1] as number) + (v.shape[axis - 1] as number);
    }
    const [y] = this.g.node(
      "Concat",
      ins.map((v) => v.name),
      1,
      { axis: onnxAxis },
    );
    return { name: y as string, shape };
  }

  private globalPool(id: string, avg: boolean, cfg: Record<string, unknown>, x: Value): Value {
    const [, , c] = this.requireImage(id, x);
    const keep = cfg.keepdims === true;
    const [y] = this.g.node(avg ? "ReduceMean" : "ReduceMax", [x.name], 1, {
      axes: [2, 3],
      keepdims: keep ? 1 : 0,
    });
    return { name: y as string, shape: keep ? [1, 1, c] : [c] };
  }

  private pool(id: string, avg: boolean, cfg: Record<string, unknown>, x: Value): Value {
    const [h, w, c] = this.requireImage(id, x);
    const [kh, kw] = pair(cfg, "pool_size", id, [2, 2]);
    const [sh, sw] = cfg.strides == null ? [kh, kw] : pair(cfg, "strides", id);
    const padding = cfg.padding ?? "valid";
    if (padding !== "valid" && padding !== "same") {
      throw new ValidationError(`layer ${id}: padding ${String(padding)} is not supported`, {
        field: `${id}.padding`,
      });
    }
    const ph = padding === "same" ? samePads(h, kh, sh) : ([0, 0] as [number, number]);
    const pw = padding === "same" ? samePads(w, kw, sw) : ([0, 0] as [number, number]);
    // TF averages over the window's real pixels only, ONNX's `count_include_pad = 0`.
    const [y] = this.g.node(avg ? "AveragePool" : "MaxPool", [x.name], 1, {
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      pads: [ph[0], pw[0], ph[1], pw[1]],
      ...(avg ? { count_include_pad: 0 } : {}),
    });
    return { name: y as string, shape: [outSize(h, kh, sh, ph), outSize(w, kw, sw, pw), c] };
  }

  private toNhwc(x: Value): string {
    return this.g.node("Transpose", [x.name], 1, { perm: [0, 2, 3, 1] })[0] as string;
  }

  private flatten(x: Value): Value {
    const size = x.shape.reduce((a, b) => a * b, 1);
    // Keras flattens in NHWC order; with a 1×1 map that is the NCHW order too.
    const src = isImage(x) && (x.shape[0] !== 1 || x.shape[1] !== 1) ? this.toNhwc(x) : x.name;
    const [y] = this.g.node("Flatten", [src], 1, { axis: 1 });
    return { name: y as string, shape: [size] };
  }

  private dense(scope: Scope, layer: KerasLayer, x: Value): Value {
    const name = layerName(layer);
    const id = `${scope.path}${name}`;
    if (x.shape.length !== 1) {
      throw new ValidationError(`layer ${id}: Dense on a rank-${x.shape.length + 1} input is not supported`, {
        field: id,
      });
    }
    const units = num(layer.config, "units", id);
    const inDim = x.shape[0] as number;
    const k = this.g.initializer(
      this.g.fresh(`${id}/kernel`),
      "float32",
      [inDim, units],
      this.weight(scope, name, "kernel", [inDim, units]),
    );
    const inputs = [x.name, k];
    if (layer.config.use_bias !== false) {
      inputs.push(
        this.g.initializer(
          this.g.fresh(`${id}/bias`),
          "float32",
          [units],
          this.weight(scope, name, "bias", [units]),
        ),
      );
    }
    const [y] = this.g.node("Gemm", inputs, 1);
    return this.activation(id, layer.config.activation, { name: y as string, shape: [units] });
  }
}

function byName(layers: KerasLayer[]): Map<string, KerasLayer> {
  return new Map(layers.map((l) => [layerName(l), l]));
}

/** Whether a Keras BN `axis` is the last axis of a rank-`last + 1` tensor. */
function channelAxis(axis: unknown, last: number): boolean {
  const a = Array.isArray(axis) && axis.length === 1 ? axis[0] : (axis ?? -1);
  return a === -1 || a === last;
}
