import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { ValidationError } from "../shared/errors.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import type { FeatureTap } from "../shared/onnx/tfjs/feature-tap.ts";
import {
  convertLayersModel,
  type KerasLayer,
  type LayersModelJson,
  parseLayersModelJson,
  samePads,
} from "../shared/onnx/tfjs/layers.ts";
import { decodeWeights, type WeightSpec } from "../shared/onnx/tfjs/model-json.ts";
import { decodeModel } from "../shared/onnx/writer.ts";
import { assertClose } from "./helpers/heads.ts";

/** float32 results of the same arithmetic in a different order (tfjs vs onnxruntime, BN folding). */
const TOL = 1e-4;

const input = (name: string, shape: number[]): KerasLayer => ({
  class_name: "InputLayer",
  name,
  config: { name, batch_input_shape: [null, ...shape], dtype: "float32" },
  inbound_nodes: [],
});
const L = (
  class_name: string,
  name: string,
  config: Record<string, unknown>,
  inputs: string[],
): KerasLayer => ({
  class_name,
  name,
  config: { name, ...config },
  inbound_nodes: [inputs.map((i) => [i, 0, 0, {}])],
});
const conv = (name: string, cfg: Record<string, unknown>, inp: string) =>
  L(
    "Conv2D",
    name,
    {
      strides: [1, 1],
      padding: "valid",
      dilation_rate: [1, 1],
      activation: "linear",
      use_bias: true,
      ...cfg,
    },
    [inp],
  );
const bn = (name: string, inp: string, cfg: Record<string, unknown> = {}) =>
  L("BatchNormalization", name, { axis: -1, epsilon: 1e-3, center: true, scale: true, ...cfg }, [inp]);

interface W {
  name: string;
  shape: number[];
  /** Default: uniform in [-1, 1]; `positive`: in [0.5, 1.5] (BN variances). */
  kind?: "positive";
}

interface Built {
  json: LayersModelJson;
  weightData: Uint8Array;
}

function functional(layers: KerasLayer[], output: string, ws: W[], seed = 1): Built {
  const rnd = mulberry32(seed);
  const specs: WeightSpec[] = ws.map((w) => ({ name: w.name, shape: w.shape, dtype: "float32" }));
  const values = ws.flatMap((w) =>
    Array.from({ length: w.shape.reduce((a, b) => a * b, 1) }, () =>
      w.kind === "positive" ? 0.5 + rnd() : rnd() * 2 - 1,
    ),
  );
  const first = layers[0] as KerasLayer;
  const json = parseLayersModelJson({
    modelTopology: {
      model_config: {
        class_name: "Model",
        config: { name: "m", layers, input_layers: [[first.name, 0, 0]], output_layers: [[output, 0, 0]] },
      },
    },
    weightsManifest: [{ paths: ["w.bin"], weights: specs }],
  });
  return { json, weightData: new Uint8Array(Float32Array.from(values).buffer) };
}

function bnWeights(name: string, c: number, opts: { scale?: boolean } = {}): W[] {
  return [
    ...(opts.scale === false ? [] : [{ name: `${name}/gamma`, shape: [c] }]),
    { name: `${name}/beta`, shape: [c] },
    { name: `${name}/moving_mean`, shape: [c] },
    { name: `${name}/moving_variance`, shape: [c], kind: "positive" as const },
  ];
}

function inputData(shape: number[], seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rnd() * 4 - 2);
}

async function runOnnx(
  onnx: Uint8Array,
  x: Float32Array,
  shape: number[],
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await InferenceSession.create(onnx);
  try {
    const out = await session.run({ pixels: new Tensor("float32", x, shape) });
    const y = out.embeddings as Tensor;
    return { data: y.data as Float32Array, dims: y.dims };
  } finally {
    await session.release();
  }
}

async function runTfjs(
  b: Built,
  x: Float32Array,
  shape: number[],
): Promise<{ data: Float32Array; dims: number[] }> {
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: b.json.modelTopology as never,
      weightSpecs: b.json.weightsManifest.flatMap((g) => g.weights) as never,
      weightData: b.weightData.slice().buffer,
    }),
  );
  const y = model.predict(tf.tensor(x, shape)) as tf.Tensor;
  const out = { data: y.dataSync() as Float32Array, dims: y.shape };
  y.dispose();
  model.dispose();
  return out;
}

/** Converts `b`, runs it and tfjs on a batch of 2 random inputs, and compares. */
async function matchesTfjs(b: Built, inShape: number[], tol = TOL): Promise<Uint8Array> {
  const shape = [2, ...inShape];
  const x = inputData(shape, 7);
  const onnx = convertLayersModel(b.json, decodeWeights(b.json.weightsManifest, b.weightData));
  const ours = await runOnnx(onnx, x, shape);
  const ref = await runTfjs(b, x, shape);
  assert.deepEqual([...ours.dims], ref.dims, "output shape");
  assertClose(ours.data, ref.data, tol, "onnx vs tfjs");
  return onnx;
}

const ops = (onnx: Uint8Array) => decodeModel(onnx).graph?.node?.map((n) => n.opType) ?? [];

before(async () => {
  await tf.setBackend("cpu");
});

/** A 1×1 conv "c" on a 4×4×2 input, flattened ("f") into a Dense "head" whose weights are absent. */
function convThenHead(): Built {
  return functional(
    [
      input("in", [4, 4, 2]),
      conv("c", { filters: 3, kernel_size: [1, 1] }, "in"),
      L("Flatten", "f", {}, ["c"]),
      L("Dense", "head", { units: 2 }, ["f"]),
    ],
    "head",
    [
      { name: "c/kernel", shape: [1, 1, 2, 3] },
      { name: "c/bias", shape: [3] },
    ],
  );
}

describe("TF.js layers model → ONNX", () => {
  test("samePads puts the odd pixel at the end, as TF does", () => {
    assert.deepEqual(samePads(224, 3, 2), [0, 1]);
    assert.deepEqual(samePads(7, 3, 2), [1, 1]);
    assert.deepEqual(samePads(8, 4, 1), [1, 2]);
    assert.deepEqual(samePads(5, 3, 1, 2), [2, 2]);
    assert.deepEqual(samePads(6, 1, 2), [0, 0]);
  });

  test("InputLayer: NHWC in, transposed once, NHWC out", async () => {
    // A model that is only its input: the graph must hand the pixels back unchanged.
    const b = functional([input("in", [3, 4, 2])], "in", []);
    const x = inputData([1, 3, 4, 2], 3);
    const onnx = convertLayersModel(b.json, new Map());
    const out = await runOnnx(onnx, x, [1, 3, 4, 2]);
    assert.deepEqual([...out.dims], [1, 3, 4, 2]);
    assertClose(out.data, x, 0, "identity");
    assert.deepEqual(ops(onnx).filter((o) => o === "Transpose").length, 2);
  });

  test("Conv2D: same padding with stride 2 pads bottom/right (hand-computed)", async () => {
    // 1×4×4×1 input 0..15, a 3×3 kernel of ones, no bias: TF pads 0 before and 1 after, so the
    // windows are rows/cols {0,1,2} and {2,3}.
    const b = functional(
      [
        input("in", [4, 4, 1]),
        conv(
          "c",
          { filters: 1, kernel_size: [3, 3], strides: [2, 2], padding: "same", use_bias: false },
          "in",
        ),
      ],
      "c",
      [],
    );
    const weights = new Map([
      ["c/kernel", { dtype: "float32" as const, shape: [3, 3, 1, 1], data: new Float32Array(9).fill(1) }],
    ]);
    const x = Float32Array.from({ length: 16 }, (_, i) => i);
    const out = await runOnnx(convertLayersModel(b.json, weights), x, [1, 4, 4, 1]);
    const win = (rows: number[], cols: number[]) =>
      rows.reduce((s, r) => s + cols.reduce((t, c) => t + r * 4 + c, 0), 0);
    const expected = [
      win([0, 1, 2], [0, 1, 2]),
      win([0, 1, 2], [2, 3]),
      win([2, 3], [0, 1, 2]),
      win([2, 3], [2, 3]),
    ];
    assert.deepEqual([...out.dims], [1, 2, 2, 1]);
    assertClose(out.data, expected, 0, "same/stride 2");
  });

  for (const [label, cfg, inShape] of [
    ["valid, stride 1, bias, relu", { kernel_size: [3, 3], activation: "relu" }, [6, 5, 3]],
    ["same, stride 2, odd size", { kernel_size: [3, 3], strides: [2, 2], padding: "same" }, [7, 9, 3]],
    ["same, even kernel", { kernel_size: [4, 2], padding: "same" }, [6, 6, 2]],
    ["same, dilation 2", { kernel_size: [3, 3], padding: "same", dilation_rate: [2, 2] }, [8, 7, 2]],
    ["valid, stride 2, no bias", { kernel_size: [1, 1], strides: [2, 2], use_bias: false }, [5, 5, 4]],
  ] as const) {
    test(`Conv2D (${label}) matches tfjs`, async () => {
      const cin = inShape[2];
      const [kh, kw] = cfg.kernel_size;
      const useBias = !("use_bias" in cfg);
      const b = functional([input("in", [...inShape]), conv("c", { filters: 5, ...cfg }, "in")], "c", [
        { name: "c/kernel", shape: [kh, kw, cin, 5] },
        ...(useBias ? [{ name: "c/bias", shape: [5] }] : []),
      ]);
      await matchesTfjs(b, [...inShape]);
    });
  }

  test("DepthwiseConv2D (multiplier 2, same, stride 2, bias) matches tfjs", async () => {
    const layer = L(
      "DepthwiseConv2D",
      "d",
      {
        kernel_size: [3, 3],
        strides: [2, 2],
        padding: "same",
        depth_multiplier: 2,
        use_bias: true,
        activation: "linear",
      },
      ["in"],
    );
    const b = functional([input("in", [7, 8, 3]), layer], "d", [
      { name: "d/depthwise_kernel", shape: [3, 3, 3, 2] },
      { name: "d/bias", shape: [6] },
    ]);
    await matchesTfjs(b, [7, 8, 3]);
  });

  test("BatchNormalization after a conv folds into it and matches tfjs", async () => {
    const b = functional(
      [
        input("in", [5, 5, 3]),
        conv("c", { filters: 4, kernel_size: [3, 3], use_bias: false }, "in"),
        bn("bn", "c"),
      ],
      "bn",
      [{ name: "c/kernel", shape: [3, 3, 3, 4] }, ...bnWeights("bn", 4)],
    );
    const onnx = await matchesTfjs(b, [5, 5, 3]);
    assert.deepEqual(
      ops(onnx).filter((o) => o === "Conv" || o === "Mul" || o === "Add"),
      ["Conv"],
      "folded",
    );
  });

  test("BatchNormalization without gamma, after a depthwise conv with bias, folds and matches tfjs", async () => {
    const dw = L(
      "DepthwiseConv2D",
      "d",
      { kernel_size: [3, 3], padding: "same", depth_multiplier: 1, use_bias: true },
      ["in"],
    );
    const b = functional([input("in", [4, 4, 3]), dw, bn("bn", "d", { scale: false, axis: 3 })], "bn", [
      { name: "d/depthwise_kernel", shape: [3, 3, 3, 1] },
      { name: "d/bias", shape: [3] },
      ...bnWeights("bn", 3, { scale: false }),
    ]);
    const onnx = await matchesTfjs(b, [4, 4, 3]);
    assert.ok(!ops(onnx).includes("Mul"), "folded");
  });

  test("BatchNormalization that cannot fold (conv read twice; after Dense) is Mul/Add and matches tfjs", async () => {
    const b = functional(
      [
        input("in", [4, 4, 2]),
        conv("c", { filters: 3, kernel_size: [1, 1] }, "in"),
        bn("bn", "c"),
        L("Add", "add", {}, ["c", "bn"]),
        L("Flatten", "f", {}, ["add"]),
        L("Dense", "dense", { units: 5, activation: "linear", use_bias: true }, ["f"]),
        bn("bn2", "dense"),
      ],
      "bn2",
      [
        { name: "c/kernel", shape: [1, 1, 2, 3] },
        { name: "c/bias", shape: [3] },
        ...bnWeights("bn", 3),
        { name: "dense/kernel", shape: [48, 5] },
        { name: "dense/bias", shape: [5] },
        ...bnWeights("bn2", 5),
      ],
    );
    const onnx = await matchesTfjs(b, [4, 4, 2]);
    assert.equal(ops(onnx).filter((o) => o === "Mul").length, 2, "two unfolded BNs");
  });

  for (const [label, cfg] of [
    ["max_value 6 (ReLU6)", { max_value: 6, negative_slope: 0, threshold: 0 }],
    ["plain", { max_value: null, negative_slope: 0, threshold: 0 }],
  ] as const) {
    test(`ReLU (${label}) matches tfjs`, async () => {
      const b = functional(
        [
          input("in", [3, 3, 2]),
          conv("c", { filters: 2, kernel_size: [1, 1], use_bias: false }, "in"),
          L("ReLU", "r", cfg, ["c"]),
        ],
        "r",
        [{ name: "c/kernel", shape: [1, 1, 2, 2] }],
      );
      const onnx = await matchesTfjs(b, [3, 3, 2]);
      if (cfg.max_value === 6) assert.ok(ops(onnx).includes("Clip"));
    });
  }

  // tfjs's ReLU layer ignores `negative_slope` and `threshold`, so these follow the Keras formula:
  // `max_value` from there up, `x` from `threshold`, `negative_slope * (x - threshold)` below.
  for (const [label, cfg] of [
    ["max_value 6 (ReLU6)", { max_value: 6 }],
    ["negative_slope", { max_value: null, negative_slope: 0.2, threshold: 0 }],
    ["threshold, slope and max", { max_value: 1.5, negative_slope: 0.1, threshold: 0.5 }],
    ["threshold only", { threshold: -1 }],
  ] as const) {
    test(`ReLU (${label}) follows the Keras formula (hand-computed)`, async () => {
      const xs = [-3, -1, -0.5, 0, 0.25, 0.5, 1, 2.5, 6, 9];
      const max =
        "max_value" in cfg && typeof cfg.max_value === "number" ? cfg.max_value : Number.POSITIVE_INFINITY;
      const slope = "negative_slope" in cfg ? cfg.negative_slope : 0;
      const t = "threshold" in cfg ? cfg.threshold : 0;
      const expected = xs.map((x) => (x >= max ? max : x >= t ? x : slope * (x - t)));
      const b = functional([input("in", [xs.length]), L("ReLU", "r", cfg, ["in"])], "r", []);
      const out = await runOnnx(convertLayersModel(b.json, new Map()), Float32Array.from(xs), [1, xs.length]);
      assertClose(out.data, expected, 1e-6, label);
    });
  }

  for (const act of ["relu", "relu6", "linear", "softmax", "sigmoid", "tanh"]) {
    test(`Activation ${act} on an image and on a vector matches tfjs`, async () => {
      const img = functional(
        [input("in", [3, 2, 4]), L("Activation", "a", { activation: act }, ["in"])],
        "a",
        [],
      );
      await matchesTfjs(img, [3, 2, 4]);
      const vec = functional([input("in", [6]), L("Activation", "a", { activation: act }, ["in"])], "a", []);
      await matchesTfjs(vec, [6]);
    });
  }

  for (const padding of [
    [
      [0, 1],
      [0, 1],
    ],
    [2, 1],
    1,
  ]) {
    test(`ZeroPadding2D ${JSON.stringify(padding)} matches tfjs`, async () => {
      const b = functional([input("in", [3, 4, 2]), L("ZeroPadding2D", "p", { padding }, ["in"])], "p", []);
      await matchesTfjs(b, [3, 4, 2]);
    });
  }

  test("Add and Multiply of three branches match tfjs", async () => {
    const b = functional(
      [
        input("in", [4, 4, 2]),
        conv("c1", { filters: 2, kernel_size: [1, 1] }, "in"),
        conv("c2", { filters: 2, kernel_size: [3, 3], padding: "same" }, "in"),
        L("Add", "add", {}, ["in", "c1", "c2"]),
        L("Multiply", "mul", {}, ["add", "c1"]),
      ],
      "mul",
      [
        { name: "c1/kernel", shape: [1, 1, 2, 2] },
        { name: "c1/bias", shape: [2] },
        { name: "c2/kernel", shape: [3, 3, 2, 2] },
        { name: "c2/bias", shape: [2] },
      ],
    );
    await matchesTfjs(b, [4, 4, 2]);
  });

  test("Concatenate on channels (image) and on features (vector) matches tfjs", async () => {
    const b = functional(
      [
        input("in", [3, 3, 2]),
        conv("c", { filters: 3, kernel_size: [1, 1] }, "in"),
        L("Concatenate", "cat", { axis: -1 }, ["in", "c"]),
        L("GlobalAveragePooling2D", "g1", {}, ["cat"]),
        L("GlobalMaxPooling2D", "g2", {}, ["c"]),
        L("Concatenate", "cat2", { axis: 1 }, ["g1", "g2"]),
      ],
      "cat2",
      [
        { name: "c/kernel", shape: [1, 1, 2, 3] },
        { name: "c/bias", shape: [3] },
      ],
    );
    await matchesTfjs(b, [3, 3, 2]);
  });

  test("GlobalAveragePooling2D and GlobalMaxPooling2D match tfjs", async () => {
    for (const cls of ["GlobalAveragePooling2D", "GlobalMaxPooling2D"]) {
      const b = functional([input("in", [5, 3, 4]), L(cls, "g", {}, ["in"])], "g", []);
      await matchesTfjs(b, [5, 3, 4]);
    }
  });

  for (const [cls, cfg] of [
    ["AveragePooling2D", { pool_size: [3, 3], strides: [1, 1], padding: "same" }],
    ["AveragePooling2D", { pool_size: [2, 2], strides: null, padding: "valid" }],
    ["AveragePooling2D", { pool_size: [7, 7], strides: [7, 7], padding: "valid" }],
    ["MaxPooling2D", { pool_size: [3, 3], strides: [2, 2], padding: "valid" }],
    ["MaxPooling2D", { pool_size: [3, 3], strides: [2, 2], padding: "same" }],
  ] as const) {
    test(`${cls} ${JSON.stringify(cfg)} matches tfjs`, async () => {
      const b = functional([input("in", [7, 8, 3]), L(cls, "p", cfg, ["in"])], "p", []);
      await matchesTfjs(b, [7, 8, 3]);
    });
  }

  test("AveragePooling2D same padding averages the real pixels only (hand-computed)", async () => {
    const b = functional(
      [
        input("in", [2, 2, 1]),
        L("AveragePooling2D", "p", { pool_size: [3, 3], strides: [1, 1], padding: "same" }, ["in"]),
      ],
      "p",
      [],
    );
    const out = await runOnnx(
      convertLayersModel(b.json, new Map()),
      Float32Array.from([1, 2, 3, 4]),
      [1, 2, 2, 1],
    );
    assertClose(out.data, [2.5, 2.5, 2.5, 2.5], 1e-6, "every window holds all 4 pixels");
  });

  test("Flatten keeps Keras's row, column, channel order and Dense/Dropout match tfjs", async () => {
    const b = functional(
      [
        input("in", [3, 2, 4]),
        L("Flatten", "f", {}, ["in"]),
        L("Dropout", "drop", { rate: 0.5 }, ["f"]),
        L("Dense", "d", { units: 3, activation: "softmax", use_bias: true }, ["drop"]),
      ],
      "d",
      [
        { name: "d/kernel", shape: [24, 3] },
        { name: "d/bias", shape: [3] },
      ],
    );
    await matchesTfjs(b, [3, 2, 4]);
    const flat = functional([input("in", [3, 2, 4]), L("Flatten", "f", {}, ["in"])], "f", []);
    const x = inputData([1, 3, 2, 4], 5);
    const out = await runOnnx(convertLayersModel(flat.json, new Map()), x, [1, 3, 2, 4]);
    assertClose(out.data, x, 0, "NHWC order");
  });

  test("Sequential without an InputLayer (batch_input_shape on the first layer) matches tfjs", async () => {
    const b = functional([input("in", [5])], "in", [
      { name: "d1/kernel", shape: [5, 4] },
      { name: "d1/bias", shape: [4] },
      { name: "d2/kernel", shape: [4, 2] },
    ]);
    b.json.modelTopology = {
      model_config: {
        class_name: "Sequential",
        config: {
          name: "seq",
          layers: [
            {
              class_name: "Dense",
              config: { name: "d1", units: 4, activation: "relu", batch_input_shape: [null, 5] },
            },
            { class_name: "Dense", config: { name: "d2", units: 2, activation: "linear", use_bias: false } },
          ],
        },
      },
    };
    await matchesTfjs(b, [5]);
  });

  test("a nested Model layer is inlined and matches the flat model", async () => {
    const w: W[] = [
      { name: "c/kernel", shape: [3, 3, 2, 3] },
      { name: "c/bias", shape: [3] },
      ...bnWeights("bn", 3),
    ];
    const flat = functional(
      [
        input("in", [5, 5, 2]),
        conv("c", { filters: 3, kernel_size: [3, 3] }, "in"),
        bn("bn", "c"),
        L("GlobalAveragePooling2D", "g", {}, ["bn"]),
      ],
      "g",
      w,
    );
    const inner: KerasLayer = {
      class_name: "Model",
      name: "inner",
      config: {
        name: "inner",
        layers: [
          input("inner_in", [5, 5, 2]),
          conv("c", { filters: 3, kernel_size: [3, 3] }, "inner_in"),
          bn("bn", "c"),
        ],
        input_layers: [["inner_in", 0, 0]],
        output_layers: [["bn", 0, 0]],
      },
      inbound_nodes: [[["in", 0, 0, {}]]],
    };
    const nested = functional(
      [input("in", [5, 5, 2]), inner, L("GlobalAveragePooling2D", "g", {}, ["inner"])],
      "g",
      w,
    );
    const weights = decodeWeights(flat.json.weightsManifest, flat.weightData);
    const x = inputData([2, 5, 5, 2], 9);
    const a = await runOnnx(convertLayersModel(flat.json, weights), x, [2, 5, 5, 2]);
    const b = await runOnnx(convertLayersModel(nested.json, weights), x, [2, 5, 5, 2]);
    assertClose(b.data, a.data, 0, "nested vs flat");
    assertClose(a.data, (await runTfjs(flat, x, [2, 5, 5, 2])).data, TOL, "flat vs tfjs");
  });

  test("uint8-quantized weights are dequantized with their min/scale and match tfjs", async () => {
    const b = functional(
      [input("in", [4, 4, 2]), conv("c", { filters: 3, kernel_size: [3, 3], padding: "same" }, "in")],
      "c",
      [],
    );
    const rnd = mulberry32(4);
    const kq = Uint8Array.from({ length: 54 }, () => Math.floor(rnd() * 256));
    const bq = Uint8Array.from({ length: 3 }, () => Math.floor(rnd() * 256));
    b.json.weightsManifest = [
      {
        paths: ["w.bin"],
        weights: [
          {
            name: "c/kernel",
            shape: [3, 3, 2, 3],
            dtype: "float32",
            quantization: { dtype: "uint8", min: -0.8, scale: 0.00625 },
          },
          {
            name: "c/bias",
            shape: [3],
            dtype: "float32",
            quantization: { dtype: "uint8", min: -1, scale: 0.01 },
          },
        ],
      },
    ];
    b.weightData = new Uint8Array([...kq, ...bq]);
    await matchesTfjs(b, [4, 4, 2]);
  });

  test("outputLayer cuts the graph there, and the layers after it need no weights", async () => {
    const b = convThenHead();
    const onnx = convertLayersModel(b.json, decodeWeights(b.json.weightsManifest, b.weightData), {
      outputLayer: "f",
    });
    const out = await runOnnx(onnx, inputData([1, 4, 4, 2], 1), [1, 4, 4, 2]);
    assert.deepEqual([...out.dims], [1, 48]);
    assert.throws(
      () => convertLayersModel(b.json, decodeWeights(b.json.weightsManifest, b.weightData)),
      (e: unknown) => e instanceof ValidationError && /head\/kernel/.test(e.message),
    );
    assert.throws(
      () => convertLayersModel(b.json, new Map(), { outputLayer: "nope" }),
      (e: unknown) => e instanceof ValidationError && e.field === "outputLayer",
    );
  });

  test("taps pool intermediate maps (avg, GeM), and several are L2-normalized and joined in order", async () => {
    const b = convThenHead();
    const weights = decodeWeights(b.json.weightsManifest, b.weightData);
    const x = inputData([2, 4, 4, 2], 3);
    // The maps themselves (NHWC), pooled here by hand.
    const mapOf = async (layer: string, c: number) => {
      const out = await runOnnx(convertLayersModel(b.json, weights, { outputLayer: layer }), x, [2, 4, 4, 2]);
      return (i: number, p: number, k: number) => out.data[(i * 16 + p) * c + k] as number;
    };
    const pool = (at: (i: number, p: number, k: number) => number, c: number, gem: boolean) =>
      Array.from({ length: 2 }, (_, i) =>
        Array.from({ length: c }, (_, k) => {
          let s = 0;
          for (let p = 0; p < 16; p++) s += gem ? Math.max(at(i, p, k), 1e-6) ** 3 : at(i, p, k);
          return gem ? (s / 16) ** (1 / 3) : s / 16;
        }),
      );
    const mapC = await mapOf("c", 3);
    const mapIn = await mapOf("in", 2);
    const run = async (taps: FeatureTap[]) =>
      runOnnx(convertLayersModel(b.json, weights, { taps }), x, [2, 4, 4, 2]);

    const avg = await run([{ layer: "c", pool: "avg" }]);
    assert.deepEqual([...avg.dims], [2, 3]);
    assertClose(avg.data, Float32Array.from(pool(mapC, 3, false).flat()), 1e-5, "avg");
    const gem = await run([{ layer: "c", pool: "gem" }]);
    assertClose(gem.data, Float32Array.from(pool(mapC, 3, true).flat()), 1e-4, "gem");

    const unit = (v: number[]) => v.map((e) => e / Math.hypot(...v));
    const two = await run([
      { layer: "in", pool: "avg" },
      { layer: "c", pool: "avg" },
    ]);
    assert.deepEqual([...two.dims], [2, 5]);
    const [pin, pc] = [pool(mapIn, 2, false), pool(mapC, 3, false)];
    const want = [0, 1].flatMap((i) => [...unit(pin[i] as number[]), ...unit(pc[i] as number[])]);
    assertClose(two.data, Float32Array.from(want), 1e-5, "two taps");

    const field = (opts: Parameters<typeof convertLayersModel>[2]) => {
      try {
        convertLayersModel(b.json, weights, opts);
      } catch (e) {
        assert.ok(e instanceof ValidationError);
        return e.field;
      }
      assert.fail("no error");
    };
    assert.equal(field({ taps: [] }), "taps");
    assert.equal(field({ taps: [{ layer: "c", pool: "avg" }], outputLayer: "c" }), "taps");
    assert.equal(
      field({
        taps: [
          { layer: "c", pool: "avg" },
          { layer: "nope", pool: "avg" },
        ],
      }),
      "taps[1].layer",
    );
    assert.equal(field({ taps: [{ layer: "c", pool: "max" as "avg" }] }), "pool");
    assert.equal(field({ taps: [{ layer: "f", pool: "avg" }] }), "f");
  });

  test("inputSize reads another image size, and mirror averages each image with its left-right mirror", async () => {
    // Same padding, stride 2: a 3×3 conv whose output size follows the input's. Same weights at
    // any input size (they come from the seed).
    const at = (h: number, w: number) =>
      functional(
        [
          input("in", [h, w, 2]),
          conv("c", { filters: 3, kernel_size: [3, 3], strides: [2, 2], padding: "same" }, "in"),
        ],
        "c",
        [
          { name: "c/kernel", shape: [3, 3, 2, 3] },
          { name: "c/bias", shape: [3] },
        ],
      );
    const b = at(8, 8);
    const weights = decodeWeights(b.json.weightsManifest, b.weightData);
    const x = inputData([2, 6, 10, 2], 5);
    const mirrored = new Float32Array(x.length);
    for (let i = 0; i < 2; i++)
      for (let y = 0; y < 6; y++)
        for (let c = 0; c < 10; c++)
          mirrored.set(
            x.subarray(((i * 6 + y) * 10 + c) * 2, ((i * 6 + y) * 10 + c + 1) * 2),
            ((i * 6 + y) * 10 + 9 - c) * 2,
          );
    const inputSize = { height: 6, width: 10 };
    const taps: FeatureTap[] = [
      { layer: "c", pool: "avg" },
      { layer: "in", pool: "avg" },
    ];
    // The map itself at 6×10 is what tfjs computes for a model built at that size.
    const map = await runOnnx(
      convertLayersModel(b.json, weights, { outputLayer: "c", inputSize }),
      x,
      [2, 6, 10, 2],
    );
    const ref = await runTfjs(at(6, 10), x, [2, 6, 10, 2]);
    assert.deepEqual([...map.dims], [2, 3, 5, 3]);
    assertClose(map.data, ref.data, TOL, "6×10 map vs tfjs at that size");

    const plain = await runOnnx(convertLayersModel(b.json, weights, { taps, inputSize }), x, [2, 6, 10, 2]);
    const flipped = await runOnnx(
      convertLayersModel(b.json, weights, { taps, inputSize }),
      mirrored,
      [2, 6, 10, 2],
    );
    const both = await runOnnx(
      convertLayersModel(b.json, weights, { taps, inputSize, mirror: true }),
      x,
      [2, 6, 10, 2],
    );
    assert.deepEqual([...both.dims], [2, 5]);
    const want = Float32Array.from(plain.data, (v, i) => (v + (flipped.data[i] as number)) / 2);
    assertClose(both.data, want, 1e-5, "mirror = mean of the image's and its mirror's features");
    // A mirrored map is not the same map: the check above would pass trivially on symmetric input.
    assert.ok(plain.data.some((v, i) => Math.abs(v - (flipped.data[i] as number)) > 1e-3));

    assert.throws(
      () => convertLayersModel(b.json, weights, { outputLayer: "c", mirror: true }),
      (e: unknown) => e instanceof ValidationError && e.field === "mirror",
    );
    assert.throws(
      () => convertLayersModel(b.json, weights, { taps, inputSize: { height: 0, width: 4 } }),
      (e: unknown) => e instanceof ValidationError && e.field === "inputSize.height",
    );
  });

  test("unsupported layers are all listed in one ValidationError", () => {
    const b = functional(
      [
        input("in", [4, 4, 2]),
        L("SeparableConv2D", "sep", {}, ["in"]),
        L("Lambda", "lam", {}, ["sep"]),
        L("Flatten", "f", {}, ["lam"]),
        L("LSTM", "unused", {}, ["in"]),
      ],
      "f",
      [],
    );
    assert.throws(
      () => convertLayersModel(b.json, new Map()),
      (e: unknown) =>
        e instanceof ValidationError &&
        /SeparableConv2D \(sep\)/.test(e.message) &&
        /Lambda \(lam\)/.test(e.message) &&
        !/LSTM/.test(e.message),
    );
  });

  test("bad topologies are ValidationErrors naming the field", () => {
    assert.throws(
      () => parseLayersModelJson({ modelTopology: { node: [] }, weightsManifest: [] }),
      ValidationError,
    );
    assert.throws(() => parseLayersModelJson(null), ValidationError);
    const dyn = functional(
      [{ ...input("in", [3]), config: { name: "in", batch_input_shape: [null, null, null, 3] } }],
      "in",
      [],
    );
    assert.throws(
      () => convertLayersModel(dyn.json, new Map()),
      (e: unknown) => e instanceof ValidationError && e.field === "in.batch_input_shape",
    );
    const cf = functional(
      [input("in", [4, 4, 2]), L("MaxPooling2D", "p", { data_format: "channels_first" }, ["in"])],
      "p",
      [],
    );
    assert.throws(
      () => convertLayersModel(cf.json, new Map()),
      (e: unknown) => e instanceof ValidationError && e.field === "p.data_format",
    );
    const wrong = functional(
      [input("in", [4, 4, 2]), conv("c", { filters: 3, kernel_size: [1, 1], use_bias: false }, "in")],
      "c",
      [{ name: "c/kernel", shape: [1, 1, 3, 3] }],
    );
    assert.throws(
      () => convertLayersModel(wrong.json, decodeWeights(wrong.json.weightsManifest, wrong.weightData)),
      (e: unknown) => e instanceof ValidationError && e.field === "c/kernel",
    );
  });
});
