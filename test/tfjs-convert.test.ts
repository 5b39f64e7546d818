import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { ValidationError } from "../shared/errors.ts";
import { convertGraphModel } from "../shared/onnx/tfjs/convert.ts";
import {
  decodeWeights,
  type GraphModelJson,
  parseGraphModelJson,
  readGraphModel,
  type TfAttr,
  type TfNode,
  type WeightSpec,
} from "../shared/onnx/tfjs/model-json.ts";
import { decodeModel } from "../shared/onnx/writer.ts";
import { assertClose } from "./helpers/heads.ts";

const TOL = 1e-5;
const DT = { float32: 1, int32: 3, int64: 9, bool: 10 } as const;
type T = keyof typeof DT;

interface ConstDef {
  name: string;
  dtype: T;
  shape: number[];
  data: readonly number[];
}

/** A tiny graph model: nodes plus weight-backed Consts, round-tripped through the shard decoder. */
function graph(nodes: TfNode[], consts: ConstDef[] = []) {
  const specs: WeightSpec[] = consts.map((c) => ({ name: c.name, dtype: c.dtype, shape: c.shape }));
  const parts = consts.map((c) => {
    const a =
      c.dtype === "float32"
        ? Float32Array.from(c.data)
        : c.dtype === "int32"
          ? Int32Array.from(c.data)
          : c.dtype === "int64"
            ? BigInt64Array.from(c.data.map(BigInt))
            : Uint8Array.from(c.data);
    return new Uint8Array(a.buffer);
  });
  const buf = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.byteLength;
  }
  const constNodes: TfNode[] = consts.map((c) => ({
    name: c.name,
    op: "Const",
    attr: { dtype: { type: DT[c.dtype] } },
  }));
  const model: GraphModelJson = parseGraphModelJson({
    modelTopology: { node: [...constNodes, ...nodes] },
    weightsManifest: [{ paths: ["w.bin"], weights: specs }],
  });
  return { model, weights: decodeWeights(model.weightsManifest, buf) };
}

const ph = (name: string, dtype: T = "float32"): TfNode => ({
  name,
  op: "Placeholder",
  attr: { dtype: { type: DT[dtype] } },
});
const k = (name: string, dtype: T, shape: number[], data: readonly number[]): ConstDef => ({
  name,
  dtype,
  shape,
  data,
});
const op = (name: string, o: string, input: string[], attr: Record<string, TfAttr> = {}): TfNode => ({
  name,
  op: o,
  input,
  attr,
});
const ints = (i: number[]): TfAttr => ({ list: { i: i.map(String) } });
const bytes = (s: string): TfAttr => ({ s: [...s].map((ch) => ch.charCodeAt(0)) });

interface Feed {
  dtype: T;
  dims: number[];
  data: readonly number[];
}

async function run(
  g: ReturnType<typeof graph>,
  outputs: string[],
  feeds: Record<string, Feed>,
): Promise<Record<string, { dims: readonly number[]; data: number[] }>> {
  const bytesOut = convertGraphModel(g.model, g.weights, { outputs });
  const s = await InferenceSession.create(bytesOut);
  const f: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(feeds)) {
    const data =
      v.dtype === "float32"
        ? Float32Array.from(v.data)
        : v.dtype === "int32"
          ? Int32Array.from(v.data)
          : v.dtype === "int64"
            ? BigInt64Array.from(v.data.map(BigInt))
            : Uint8Array.from(v.data);
    f[name] = new Tensor(v.dtype, data, v.dims);
  }
  const r = await s.run(f);
  const res: Record<string, { dims: readonly number[]; data: number[] }> = {};
  for (const o of outputs) {
    const t = r[o] as Tensor;
    res[o] = { dims: t.dims, data: Array.from(t.data as ArrayLike<number | bigint | boolean>, Number) };
  }
  await s.release();
  return res;
}

const f32 = (dims: number[], data: readonly number[]): Feed => ({ dtype: "float32", dims, data });
const iota = (n: number, scale = 1, shift = 0) => Array.from({ length: n }, (_, i) => i * scale + shift);

/** Runs a one-output graph and checks dims and values. */
async function check(
  g: ReturnType<typeof graph>,
  output: string,
  feeds: Record<string, Feed>,
  dims: number[],
  expected: readonly number[],
  tol = TOL,
) {
  const r = (await run(g, [output], feeds))[output] as { dims: readonly number[]; data: number[] };
  assert.deepEqual([...r.dims], dims, `${output}: dims`);
  assertClose(r.data, expected, tol, output);
}

describe("model.json reader", () => {
  test("decodes every dtype in manifest order", () => {
    const g = graph(
      [],
      [
        k("a", "float32", [2], [1.5, -2]),
        k("b", "int32", [3], [1, -2, 3]),
        k("c", "int64", [1], [7]),
        k("d", "bool", [2], [1, 0]),
      ],
    );
    assert.deepEqual(Array.from(g.weights.get("a")?.data as Float32Array), [1.5, -2]);
    assert.deepEqual(Array.from(g.weights.get("b")?.data as Int32Array), [1, -2, 3]);
    assert.deepEqual(Array.from(g.weights.get("c")?.data as BigInt64Array), [7n]);
    assert.deepEqual(Array.from(g.weights.get("d")?.data as Uint8Array), [1, 0]);
  });

  test("dequantizes uint8 and uint16 with scale and min", () => {
    const buf = new Uint8Array([0, 10, 255, 0, 0, 0xe8, 0x03]);
    const w = decodeWeights(
      [
        {
          paths: [],
          weights: [
            {
              name: "q8",
              dtype: "float32",
              shape: [3],
              quantization: { dtype: "uint8", scale: 0.5, min: -1 },
            },
            { name: "pad", dtype: "bool", shape: [2] },
            {
              name: "q16",
              dtype: "float32",
              shape: [1],
              quantization: { dtype: "uint16", scale: 0.01, min: 2 },
            },
          ],
        },
      ],
      buf,
    );
    assertClose(w.get("q8")?.data as Float32Array, [-1, 4, 126.5], 1e-6, "q8");
    assertClose(w.get("q16")?.data as Float32Array, [12], 1e-5, "q16");
  });

  test("decodes float16-quantized weights", () => {
    // 1.5 = 0x3e00, -2 = 0xc000, 2^-15 (subnormal) = 0x0200, little-endian.
    const buf = new Uint8Array([0x00, 0x3e, 0x00, 0xc0, 0x00, 0x02]);
    const w = decodeWeights(
      [
        {
          paths: [],
          weights: [{ name: "h", dtype: "float32", shape: [3], quantization: { dtype: "float16" } }],
        },
      ],
      buf,
    );
    assertClose(w.get("h")?.data as Float32Array, [1.5, -2, 2 ** -15], 1e-12, "h");
  });

  test("readGraphModel concatenates shards in manifest order, relative to model.json", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tfjs-"));
    try {
      const a = new Float32Array([1, 2, 3]);
      // The first weight straddles the two shards, as TF.js splits at fixed byte sizes.
      const all = new Uint8Array([...new Uint8Array(a.buffer), 9, 0, 0, 0]);
      await writeFile(join(dir, "s1"), all.subarray(0, 6));
      await writeFile(join(dir, "s2"), all.subarray(6));
      const json = {
        modelTopology: { node: [] },
        weightsManifest: [
          {
            paths: ["s1", "s2"],
            weights: [
              { name: "a", dtype: "float32", shape: [3] },
              { name: "b", dtype: "int32", shape: [] },
            ],
          },
        ],
      };
      await writeFile(join(dir, "model.json"), JSON.stringify(json));
      const { weights } = await readGraphModel(join(dir, "model.json"));
      assert.deepEqual(Array.from(weights.get("a")?.data as Float32Array), [1, 2, 3]);
      assert.deepEqual(Array.from(weights.get("b")?.data as Int32Array), [9]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("reads length-prefixed strings", () => {
    const buf = new Uint8Array([2, 0, 0, 0, 104, 105, 0, 0, 0, 0]);
    const w = decodeWeights([{ paths: [], weights: [{ name: "s", dtype: "string", shape: [2] }] }], buf);
    assert.deepEqual(w.get("s")?.data, ["hi", ""]);
  });

  test("a short shard buffer names the weight; a long one is an error too", () => {
    const manifest = [
      {
        paths: [],
        weights: [
          { name: "first", dtype: "float32" as const, shape: [1] },
          { name: "second/w", dtype: "float32" as const, shape: [2] },
        ],
      },
    ];
    assert.throws(
      () => decodeWeights(manifest, new Uint8Array(8)),
      (e: unknown) => e instanceof ValidationError && /second\/w/.test(e.message),
    );
    assert.throws(() => decodeWeights(manifest, new Uint8Array(16)), /12 bytes but the shards hold 16/);
  });

  test("rejects a model.json without a graph topology", () => {
    assert.throws(
      () => parseGraphModelJson({ modelTopology: {}, weightsManifest: [] }),
      /modelTopology.node/,
    );
  });
});

describe("converter framework", () => {
  test("lists every unsupported op with a node name", () => {
    const g = graph([ph("x"), op("a", "Erf", ["x"]), op("b", "Foo", ["a"]), op("c", "Relu", ["b"])]);
    assert.throws(
      () => convertGraphModel(g.model, g.weights, { outputs: ["c"] }),
      (e: unknown) =>
        e instanceof ValidationError &&
        /Erf \(e\.g\. node a\)/.test(e.message) &&
        /Foo \(e\.g\. node b\)/.test(e.message),
    );
  });

  test("ignores control inputs, prunes unneeded nodes, reads name:k outputs, inline Consts", async () => {
    const g = graph(
      [
        ph("x"),
        {
          name: "two",
          op: "Const",
          attr: {
            dtype: { type: 1 },
            value: { tensor: { dtype: 1, tensorShape: { dim: [] }, floatVal: [2] } },
          },
        },
        op("unused", "Bogus", ["x"]),
        op("noop", "NoOp", []),
        op("split", "SplitV", ["x", "sizes", "ax"], { num_split: { i: "2" } }),
        op("y", "Mul", ["split:1", "two", "^noop"]),
      ],
      [k("sizes", "int32", [2], [1, 2]), k("ax", "int32", [], [0])],
    );
    await check(g, "y", { x: f32([3], [1, 2, 3]) }, [2], [4, 6]);
  });

  test("an int64 Const stored as an int32 weight (as TF.js writes them) keeps its int64 type", async () => {
    const g = graph([ph("x", "int64"), op("y", "Less", ["x", "c"])], [k("c", "int32", [], [3])]);
    const c = g.model.modelTopology.node.find((n) => n.name === "c") as TfNode;
    c.attr = { dtype: { type: "DT_INT64" } };
    await check(g, "y", { x: { dtype: "int64", dims: [3], data: [2, 3, 4] } }, [3], [1, 0, 0]);
  });

  test("an inline Const with one value fills its shape", async () => {
    const fill: TfNode = {
      name: "f",
      op: "Const",
      attr: {
        value: { tensor: { dtype: "DT_FLOAT", tensorShape: { dim: [{ size: "3" }] }, floatVal: [1.5] } },
      },
    };
    const g = graph([ph("x"), fill, op("y", "Add", ["x", "f"])]);
    await check(g, "y", { x: f32([3], [1, 2, 3]) }, [3], [2.5, 3.5, 4.5]);
  });

  test("a dynamic value where a Const is needed is an error naming the node", () => {
    const g = graph([ph("x"), ph("perm", "int32"), op("t", "Transpose", ["x", "perm"])]);
    assert.throws(
      () => convertGraphModel(g.model, g.weights, { outputs: ["t"] }),
      /node t \(Transpose\).*perm must be a Const/,
    );
  });
});

describe("elementwise ops", () => {
  const a = [1, -2, 3.5, 0.25, -0.5, 4];
  const b = [2, 0.5, -1, 4, 1, 0.75];
  const binOps: [string, (x: number, y: number) => number][] = [
    ["Add", (x, y) => x + y],
    ["AddV2", (x, y) => x + y],
    ["Sub", (x, y) => x - y],
    ["Mul", (x, y) => x * y],
    ["RealDiv", (x, y) => x / y],
    ["Maximum", Math.max],
  ];
  for (const [name, fn] of binOps) {
    test(`${name} broadcasts like TF`, async () => {
      const g = graph([ph("x"), op("y", name, ["x", "c"])], [k("c", "float32", [3], b.slice(0, 3))]);
      await check(
        g,
        "y",
        { x: f32([2, 3], a) },
        [2, 3],
        a.map((v, i) => fn(v, b[i % 3] as number)),
      );
    });
  }
  const cmp: [string, (x: number, y: number) => boolean][] = [
    ["Less", (x, y) => x < y],
    ["Greater", (x, y) => x > y],
  ];
  for (const [name, fn] of cmp) {
    test(`${name} gives bool`, async () => {
      const g = graph([ph("x"), ph("z"), op("y", name, ["x", "z"])]);
      await check(
        g,
        "y",
        { x: f32([6], a), z: f32([6], b) },
        [6],
        a.map((v, i) => Number(fn(v, b[i] as number))),
      );
    });
  }
  const unary: [string, (x: number) => number, readonly number[]][] = [
    ["Square", (x) => x * x, a],
    ["Rsqrt", (x) => 1 / Math.sqrt(x), [1, 4, 0.25, 9]],
    ["Sin", Math.sin, a],
    ["Cos", Math.cos, a],
    ["Tanh", Math.tanh, a],
    ["Relu", (x) => Math.max(0, x), a],
    ["Identity", (x) => x, a],
  ];
  for (const [name, fn, xs] of unary) {
    test(`${name}`, async () => {
      const g = graph([ph("x"), op("y", name, ["x"])]);
      await check(g, "y", { x: f32([xs.length], xs) }, [xs.length], xs.map(fn));
    });
  }
  test("LogicalNot", async () => {
    const g = graph([ph("x", "bool"), op("y", "LogicalNot", ["x"])]);
    await check(g, "y", { x: { dtype: "bool", dims: [3], data: [1, 0, 1] } }, [3], [0, 1, 0]);
  });
  test("Softmax over the last axis, stable for large logits", async () => {
    const g = graph([ph("x"), op("y", "Softmax", ["x"])]);
    const x = [1000, 1001, 1002, 0, 0, Math.log(3)];
    const sm = (r: number[]) => {
      const m = Math.max(...r);
      const e = r.map((v) => Math.exp(v - m));
      const s = e.reduce((p, q) => p + q, 0);
      return e.map((v) => v / s);
    };
    await check(g, "y", { x: f32([2, 3], x) }, [2, 3], [...sm(x.slice(0, 3)), ...sm(x.slice(3))]);
  });
  test("BiasAdd adds along the last (channel) axis", async () => {
    const g = graph(
      [ph("x"), op("y", "BiasAdd", ["x", "b"], { data_format: bytes("NHWC") })],
      [k("b", "float32", [2], [10, 20])],
    );
    await check(g, "y", { x: f32([1, 2, 2], [1, 2, 3, 4]) }, [1, 2, 2], [11, 22, 13, 24]);
  });
  test("Cast float→int32 truncates toward zero, bool→float", async () => {
    const g = graph([
      ph("x"),
      ph("b", "bool"),
      op("i", "Cast", ["x"], { DstT: { type: 3 } }),
      op("f", "Cast", ["b"], { DstT: { type: "DT_FLOAT" } }),
    ]);
    const r = await run(g, ["i", "f"], {
      x: f32([4], [1.7, -1.7, 2.5, -0.2]),
      b: { dtype: "bool", dims: [2], data: [1, 0] },
    });
    assert.deepEqual(r.i?.data, [1, -1, 2, 0]);
    assert.deepEqual(r.f?.data, [1, 0]);
  });
});

describe("shape ops", () => {
  test("Reshape with -1 and an int32 shape", async () => {
    const g = graph([ph("x"), op("y", "Reshape", ["x", "s"])], [k("s", "int32", [2], [-1, 2])]);
    await check(g, "y", { x: f32([2, 3], iota(6)) }, [3, 2], iota(6));
  });
  test("Shape gives int32 by default and int64 when asked", async () => {
    const g = graph([ph("x"), op("s", "Shape", ["x"]), op("s64", "Shape", ["x"], { out_type: { type: 9 } })]);
    const r = await run(g, ["s", "s64"], { x: f32([2, 3, 1], iota(6)) });
    assert.deepEqual(r.s?.data, [2, 3, 1]);
    assert.deepEqual(r.s64?.data, [2, 3, 1]);
  });
  test("ExpandDims with a negative scalar axis", async () => {
    const g = graph([ph("x"), op("y", "ExpandDims", ["x", "d"])], [k("d", "int32", [], [-1])]);
    await check(g, "y", { x: f32([2, 3], iota(6)) }, [2, 3, 1], iota(6));
  });
  test("Squeeze given dims keeps other size-1 axes; no dims squeezes all", async () => {
    const g = graph([
      ph("x"),
      op("a", "Squeeze", ["x"], { squeeze_dims: ints([2]) }),
      op("b", "Squeeze", ["x"]),
    ]);
    const r = await run(g, ["a", "b"], { x: f32([1, 3, 1], [1, 2, 3]) });
    assert.deepEqual([...(r.a?.dims ?? [])], [1, 3]);
    assert.deepEqual([...(r.b?.dims ?? [])], [3]);
  });
  test("Transpose with a Const perm", async () => {
    const g = graph([ph("x"), op("y", "Transpose", ["x", "p"])], [k("p", "int32", [2], [1, 0])]);
    await check(g, "y", { x: f32([2, 3], iota(6)) }, [3, 2], [0, 3, 1, 4, 2, 5]);
  });
  test("ConcatV2 takes its axis as the last input (negative allowed)", async () => {
    const g = graph(
      [ph("x"), ph("z"), op("y", "ConcatV2", ["x", "z", "ax"], { N: { i: "2" } })],
      [k("ax", "int32", [], [-1])],
    );
    await check(g, "y", { x: f32([2, 1], [1, 2]), z: f32([2, 2], [3, 4, 5, 6]) }, [2, 3], [1, 3, 4, 2, 5, 6]);
  });
  test("Pack stacks along a new axis (axis 1)", async () => {
    const g = graph([ph("x"), ph("z"), op("y", "Pack", ["x", "z"], { axis: { i: "1" }, N: { i: "2" } })]);
    await check(g, "y", { x: f32([3], [1, 2, 3]), z: f32([3], [4, 5, 6]) }, [3, 2], [1, 4, 2, 5, 3, 6]);
  });
  test("Pack of scalars (axis 0) makes a vector", async () => {
    const g = graph(
      [ph("x", "int32"), op("y", "Pack", ["x", "c"], { axis: { i: "0" } })],
      [k("c", "int32", [], [7])],
    );
    await check(g, "y", { x: { dtype: "int32", dims: [], data: [3] } }, [2], [3, 7]);
  });
  test("SplitV with a -1 size takes the rest of the axis", async () => {
    const g = graph(
      [ph("x"), op("s", "SplitV", ["x", "sz", "ax"], { num_split: { i: "3" } })],
      [k("sz", "int32", [3], [1, -1, 2]), k("ax", "int32", [], [1])],
    );
    const r = await run(g, ["s", "s:1", "s:2"], { x: f32([2, 6], iota(12)) });
    assert.deepEqual([...(r.s?.dims ?? [])], [2, 1]);
    assert.deepEqual(r["s:1"]?.data, [1, 2, 3, 7, 8, 9]);
    assert.deepEqual(r["s:2"]?.data, [4, 5, 10, 11]);
  });
  test("Slice with size -1 runs to the end", async () => {
    const g = graph(
      [ph("x"), op("y", "Slice", ["x", "b", "s"])],
      [k("b", "int32", [2], [1, 1]), k("s", "int32", [2], [1, -1])],
    );
    await check(g, "y", { x: f32([3, 4], iota(12)) }, [1, 3], [5, 6, 7]);
  });
  test("Range with int32 and float deltas", async () => {
    const g = graph(
      [
        ph("n", "int32"),
        op("r", "Range", ["z", "n", "one"], { Tidx: { type: 3 } }),
        op("rf", "Range", ["fa", "fb", "fd"]),
      ],
      [
        k("z", "int32", [], [0]),
        k("one", "int32", [], [2]),
        k("fa", "float32", [], [1]),
        k("fb", "float32", [], [2]),
        k("fd", "float32", [], [0.25]),
      ],
    );
    const r = await run(g, ["r", "rf"], { n: { dtype: "int32", dims: [], data: [7] } });
    assert.deepEqual(r.r?.data, [0, 2, 4, 6]);
    assertClose(r.rf?.data ?? [], [1, 1.25, 1.5, 1.75], TOL, "rf");
  });
});

describe("StridedSlice", () => {
  const x = f32([2, 3, 4], iota(24));
  const at = (i: number, j: number, l: number) => i * 12 + j * 4 + l;
  async function ss(
    begin: number[],
    end: number[],
    strides: number[],
    masks: Record<string, number>,
    dims: number[],
    exp: number[],
  ) {
    const attr: Record<string, TfAttr> = {};
    for (const [m, v] of Object.entries(masks)) attr[m] = { i: String(v) };
    const n = begin.length;
    const g = graph(
      [ph("x"), op("y", "StridedSlice", ["x", "b", "e", "s"], attr)],
      [k("b", "int32", [n], begin), k("e", "int32", [n], end), k("s", "int32", [n], strides)],
    );
    await check(g, "y", { x }, dims, exp);
  }
  test("plain ranges with negative indices", async () => {
    await ss(
      [0, 1],
      [2, -1],
      [1, 1],
      {},
      [2, 1, 4],
      [...iota(4, 1, at(0, 1, 0)), ...iota(4, 1, at(1, 1, 0))],
    );
  });
  test("begin/end masks and a negative stride reverse an axis", async () => {
    await ss(
      [0, 0, 0],
      [0, 0, 0],
      [1, 1, -1],
      { begin_mask: 7, end_mask: 7 },
      [2, 3, 4],
      iota(24).map((v) => v - (v % 4) + 3 - (v % 4)),
    );
  });
  test("shrink_axis_mask drops axes, including index -1", async () => {
    // x[1, :, -1]
    await ss(
      [1, 0, -1],
      [2, 0, 0],
      [1, 1, 1],
      { shrink_axis_mask: 5, begin_mask: 2, end_mask: 2 },
      [3],
      [at(1, 0, 3), at(1, 1, 3), at(1, 2, 3)],
    );
  });
  test("ellipsis counts the following axes from the back", async () => {
    // x[..., 1:3]
    const exp: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) exp.push(at(i, j, 1), at(i, j, 2));
    await ss([0, 1], [0, 3], [1, 1], { ellipsis_mask: 1 }, [2, 3, 2], exp);
  });
  test("new_axis_mask inserts size-1 axes", async () => {
    // x[:, tf.newaxis, 0:2, ..., 3]
    const exp: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) exp.push(at(i, j, 3));
    await ss(
      [0, 0, 0, 0, 3],
      [0, 0, 2, 0, 4],
      [1, 1, 1, 1, 1],
      { begin_mask: 1, end_mask: 1, new_axis_mask: 2, ellipsis_mask: 8, shrink_axis_mask: 16 },
      [2, 1, 2],
      exp,
    );
  });
});

describe("gather and scatter", () => {
  test("GatherV2 on axis 1 with int32 indices", async () => {
    const g = graph(
      [ph("x"), op("y", "GatherV2", ["x", "i", "ax"])],
      [k("i", "int32", [2], [2, 0]), k("ax", "int32", [], [1])],
    );
    await check(g, "y", { x: f32([2, 3], iota(6)) }, [2, 2], [2, 0, 5, 3]);
  });
  test("GatherV2 with batch_dims 1", async () => {
    const g = graph(
      [ph("x"), op("y", "GatherV2", ["x", "i", "ax"], { batch_dims: { i: "1" } })],
      [k("i", "int32", [2, 2], [2, 0, 1, 1]), k("ax", "int32", [], [1])],
    );
    await check(g, "y", { x: f32([2, 3], iota(6)) }, [2, 2], [2, 0, 4, 4]);
  });
  test("GatherNd picks elements by full coordinates", async () => {
    const g = graph([ph("x"), op("y", "GatherNd", ["x", "i"])], [k("i", "int32", [2, 2], [1, 2, 0, 1])]);
    await check(g, "y", { x: f32([2, 3], iota(6)) }, [2], [5, 1]);
  });
  test("ScatterNd sums duplicate indices into zeros", async () => {
    const g = graph(
      [ph("u"), op("y", "ScatterNd", ["i", "u", "s"])],
      [k("i", "int32", [3, 1], [1, 3, 1]), k("s", "int32", [1], [5])],
    );
    await check(g, "y", { u: f32([3], [1, 2, 10]) }, [5], [0, 11, 0, 2, 0]);
  });
  test("SparseToDense from [N,2] int64 indices with a default value", async () => {
    const g = graph(
      [ph("idx", "int64"), ph("v", "int64"), op("y", "SparseToDense", ["idx", "s", "v", "d"])],
      [k("s", "int64", [2], [2, 3]), k("d", "int64", [], [-1])],
    );
    await check(
      g,
      "y",
      {
        idx: { dtype: "int64", dims: [2, 2], data: [0, 1, 1, 2] },
        v: { dtype: "int64", dims: [2], data: [5, 6] },
      },
      [2, 3],
      [-1, 5, -1, -1, -1, 6],
    );
  });
  test("SparseToDense from [N] indices and a scalar value", async () => {
    const g = graph(
      [ph("idx", "int32"), op("y", "SparseToDense", ["idx", "s", "v", "d"])],
      [k("s", "int32", [1], [4]), k("v", "float32", [], [2.5]), k("d", "float32", [], [0])],
    );
    await check(g, "y", { idx: { dtype: "int32", dims: [2], data: [0, 3] } }, [4], [2.5, 0, 0, 2.5]);
  });
  test("SelectV2 picks elementwise from two tensors", async () => {
    const g = graph([ph("c", "bool"), ph("x"), ph("z"), op("y", "SelectV2", ["c", "x", "z"])]);
    const feeds = {
      c: { dtype: "bool" as const, dims: [3], data: [1, 0, 1] },
      x: f32([3], [1, 2, 3]),
      z: f32([3], [4, 5, 6]),
    };
    await check(g, "y", feeds, [3], [1, 5, 3]);
  });
  test("GatherV2 with batch_dims other than the axis is refused by name", () => {
    const g = graph(
      [ph("x"), op("y", "GatherV2", ["x", "i", "ax"], { batch_dims: { i: "1" } })],
      [k("i", "int32", [2, 1], [0, 1]), k("ax", "int32", [], [2])],
    );
    assert.throws(
      () => convertGraphModel(g.model, g.weights, { outputs: ["y"] }),
      /node y \(GatherV2\): batch_dims 1 with axis 2/,
    );
  });
  test("Where with one input lists true coordinates as int64 rows", async () => {
    const g = graph([ph("c", "bool"), op("y", "Where", ["c"])]);
    await check(
      g,
      "y",
      { c: { dtype: "bool", dims: [2, 2], data: [0, 1, 1, 1] } },
      [3, 2],
      [0, 1, 1, 0, 1, 1],
    );
  });
});

describe("reductions", () => {
  const x = [1, 2, 3, 4, 5, 6];
  const cases: [string, (v: number[]) => number][] = [
    ["Mean", (v) => v.reduce((a, b) => a + b, 0) / v.length],
    ["Sum", (v) => v.reduce((a, b) => a + b, 0)],
    ["Max", (v) => Math.max(...v)],
    ["Prod", (v) => v.reduce((a, b) => a * b, 1)],
  ];
  for (const [name, fn] of cases) {
    test(`${name} over a Const axis, with and without keep_dims`, async () => {
      const g = graph(
        [ph("x"), op("a", name, ["x", "ax"], { keep_dims: { b: true } }), op("b", name, ["x", "ax0"])],
        [k("ax", "int32", [1], [-1]), k("ax0", "int32", [], [0])],
      );
      const r = await run(g, ["a", "b"], { x: f32([2, 3], x) });
      assert.deepEqual([...(r.a?.dims ?? [])], [2, 1]);
      assertClose(r.a?.data ?? [], [fn(x.slice(0, 3)), fn(x.slice(3))], TOL, `${name} keep`);
      assert.deepEqual([...(r.b?.dims ?? [])], [3]);
      assertClose(
        r.b?.data ?? [],
        [0, 1, 2].map((j) => fn([x[j] as number, x[j + 3] as number])),
        TOL,
        `${name} axis0`,
      );
    });
  }
  test("Prod of an int32 shape (as TF graphs compute sizes)", async () => {
    const g = graph(
      [ph("x"), op("s", "Shape", ["x"]), op("p", "Prod", ["s", "ax"])],
      [k("ax", "int32", [1], [0])],
    );
    await check(g, "p", { x: f32([2, 3, 4], iota(24)) }, [], [24]);
  });
});

describe("matrix ops", () => {
  const A = [1, 2, 3, 4, 5, 6]; // 2x3
  const B = [1, 0, -1, 2, 0.5, 1]; // 3x2
  const mm = (a: number[], b: number[], n: number, kk: number, m: number) => {
    const o: number[] = [];
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let l = 0; l < kk; l++) s += (a[i * kk + l] as number) * (b[l * m + j] as number);
        o.push(s);
      }
    return o;
  };
  const tr = (a: number[], r: number, c: number) =>
    Array.from({ length: r * c }, (_, i) => a[(i % r) * c + Math.floor(i / r)] as number);
  test("MatMul with transpose_a / transpose_b", async () => {
    const g = graph([
      ph("a"),
      ph("b"),
      op("y", "MatMul", ["a", "b"], { transpose_a: { b: true }, transpose_b: { b: true } }),
    ]);
    await check(
      g,
      "y",
      { a: f32([3, 2], tr(A, 2, 3)), b: f32([2, 3], tr(B, 3, 2)) },
      [2, 2],
      mm(A, B, 2, 3, 2),
    );
  });
  test("BatchMatMul with adj_y over a batch", async () => {
    const g = graph([
      ph("a"),
      ph("b"),
      op("y", "BatchMatMul", ["a", "b"], { adj_x: { b: false }, adj_y: { b: true } }),
    ]);
    const A2 = A.map((v) => -v);
    await check(
      g,
      "y",
      { a: f32([2, 2, 3], [...A, ...A2]), b: f32([2, 2, 3], [...tr(B, 3, 2), ...tr(B, 3, 2)]) },
      [2, 2, 2],
      [...mm(A, B, 2, 3, 2), ...mm(A2, B, 2, 3, 2)],
    );
  });
  test("BatchMatMul with adj_x", async () => {
    const g = graph([ph("a"), ph("b"), op("y", "BatchMatMul", ["a", "b"], { adj_x: { b: true } })]);
    await check(
      g,
      "y",
      { a: f32([1, 3, 2], tr(A, 2, 3)), b: f32([1, 3, 2], B) },
      [1, 2, 2],
      mm(A, B, 2, 3, 2),
    );
  });
  test("Conv2D VALID padding with dilation 2 over two input channels", async () => {
    // 1x3x3x2 input, 2x2x2x1 kernel of ones: with dilation 2 the window takes the 4 corners.
    const g = graph(
      [
        ph("x"),
        op("y", "Conv2D", ["x", "w"], {
          strides: ints([1, 1, 1, 1]),
          dilations: ints([1, 2, 2, 1]),
          padding: bytes("VALID"),
        }),
      ],
      [k("w", "float32", [2, 2, 2, 1], [1, 1, 1, 1, 1, 1, 1, 1])],
    );
    const xv = iota(18);
    const corners = [0, 2, 6, 8].reduce((a, p) => a + (xv[2 * p] as number) + (xv[2 * p + 1] as number), 0);
    await check(g, "y", { x: f32([1, 3, 3, 2], xv) }, [1, 1, 1, 1], [corners]);
  });
  test("Conv2D NCHW runs without layout transposes of the data", async () => {
    // 1x2x2x2 input (NCHW), 1x1 kernel mixing channels: out = 2*c0 - c1.
    const g = graph(
      [
        ph("x"),
        op("y", "Conv2D", ["x", "w"], {
          strides: ints([1, 1, 1, 1]),
          padding: bytes("VALID"),
          data_format: bytes("NCHW"),
        }),
      ],
      [k("w", "float32", [1, 1, 2, 1], [2, -1])],
    );
    const xv = [1, 2, 3, 4, 10, 20, 30, 40];
    await check(
      g,
      "y",
      { x: f32([1, 2, 2, 2], xv) },
      [1, 1, 2, 2],
      [0, 1, 2, 3].map((i) => 2 * (xv[i] as number) - (xv[i + 4] as number)),
    );
  });
  test("Conv2D 1x1 NHWC becomes a MatMul over the channel axis", async () => {
    // 1x2x1x3 input, 1x1x3x2 kernel: out[c'] = sum_c x[c] * w[c][c'].
    const w = [1, -1, 2, 0.5, 0, 3];
    const g = graph(
      [
        ph("x"),
        op("y", "Conv2D", ["x", "w"], {
          strides: ints([1, 1, 1, 1]),
          padding: bytes("SAME"),
          data_format: bytes("NHWC"),
        }),
      ],
      [k("w", "float32", [1, 1, 3, 2], w)],
    );
    const ops = decodeModel(convertGraphModel(g.model, g.weights, { outputs: ["y"] })).graph?.node?.map(
      (n) => n.opType,
    );
    assert.ok(ops?.includes("MatMul") && !ops.includes("Conv") && !ops.includes("Transpose"), `${ops}`);
    const xv = [1, 2, 3, -4, 5, 0.5];
    const expect = [0, 1].flatMap((p) =>
      [0, 1].map((o) =>
        [0, 1, 2].reduce((a, c) => a + (xv[3 * p + c] as number) * (w[2 * c + o] as number), 0),
      ),
    );
    await check(g, "y", { x: f32([1, 2, 1, 3], xv) }, [1, 2, 1, 2], expect);
  });
  test("Conv2D NHWC with HWIO kernel, SAME padding and stride 2", async () => {
    // 1x4x4x1 input, 3x3x1x2 kernel: channel 0 sums the window, channel 1 picks the centre.
    const kern: number[] = [];
    for (let t = 0; t < 9; t++) kern.push(1, t === 4 ? 1 : 0);
    const g = graph(
      [
        ph("x"),
        op("y", "Conv2D", ["x", "w"], {
          strides: ints([1, 2, 2, 1]),
          dilations: ints([1, 1, 1, 1]),
          padding: bytes("SAME"),
          data_format: bytes("NHWC"),
        }),
      ],
      [k("w", "float32", [3, 3, 1, 2], kern)],
    );
    const xv = iota(16);
    // TF SAME with stride 2 on 4: pad 0 before, 1 after; output positions at rows/cols 0 and 2.
    const px = (r: number, c: number) => (r < 4 && c < 4 && r >= 0 && c >= 0 ? (xv[r * 4 + c] as number) : 0);
    const exp: number[] = [];
    for (const r of [1, 3])
      for (const c of [1, 3]) {
        let s = 0;
        for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) s += px(r + dr, c + dc);
        exp.push(s, px(r, c));
      }
    await check(g, "y", { x: f32([1, 4, 4, 1], xv) }, [1, 2, 2, 2], exp);
  });
});
