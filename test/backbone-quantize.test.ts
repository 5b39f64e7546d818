import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { SparseTextEmbedder } from "../shared/backbone/use-embedder.ts";
import { buildUseLiteBackbone, USE_LITE_INT8_ID } from "../shared/backbone/use-lite.ts";
import { ValidationError } from "../shared/errors.ts";
import { quantizeMatMuls } from "../shared/onnx/quantize.ts";
import { decodeModel, encodeModel, GraphBuilder } from "../shared/onnx/writer.ts";

const B = 5;
const K = 64;
const N = 16;
const ZERO_COL = 5;

/** A seeded generator, so a failure reproduces. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A [K, N] weight whose columns span four orders of magnitude (a per-tensor scale would round the
 * small ones to zero) with one all-zero column.
 */
function weight(seed: number): Float32Array {
  const r = rng(seed);
  const w = new Float32Array(K * N);
  for (let j = 0; j < N; j++) {
    const mag = 10 ** (-3 + (4 * j) / (N - 1));
    for (let k = 0; k < K; k++) w[k * N + j] = j === ZERO_COL ? 0 : (r() * 2 - 1) * mag;
  }
  return w;
}

function input(seed: number, len: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: len }, () => r() * 4 - 1.5);
}

const W1 = weight(1);
const W3 = weight(3);
const W2 = Float32Array.from({ length: 8 * 4 }, (_, i) => (i % 7) - 3);

/**
 * y1 = x·W1 (constant weight, stored as float_data), y2 = u·W2 (a weight below minElements),
 * y3 = u·v (two runtime inputs), y4 = x·Reshape(W3 [1,1,K,N] → [K,N]) (how the TF.js converter
 * writes a 1×1 convolution).
 */
function model(): Uint8Array {
  const g = new GraphBuilder("q");
  g.input("x", "float32", ["batch", K]);
  g.input("u", "float32", ["batch", 8]);
  g.input("v", "float32", [8, 3]);
  g.initializer("W1", "float32", [K, N], W1);
  g.initializer("W2", "float32", [8, 4], W2);
  g.initializer("W3", "float32", [1, 1, K, N], W3);
  g.initializer("W3_shape", "int64", [2], [K, N]);
  g.node("MatMul", ["x", "W1"], ["y1"], {}, { name: "mm1" });
  g.node("MatMul", ["u", "W2"], ["y2"], {}, { name: "mm2" });
  g.node("MatMul", ["u", "v"], ["y3"], {}, { name: "mm3" });
  const [w3] = g.node("Reshape", ["W3", "W3_shape"], ["W3_2d"], {}, { name: "reshape3" });
  g.node("MatMul", ["x", w3 as string], ["y4"], {}, { name: "mm4" });
  g.output("y1", "float32", ["batch", N]);
  g.output("y2", "float32", ["batch", 4]);
  g.output("y3", "float32", ["batch", 3]);
  g.output("y4", "float32", ["batch", N]);
  const m = g.toModel();
  // The pass must read float_data as well as raw_data.
  const w1 = m.graph?.initializer?.find((t) => t.name === "W1");
  assert.ok(w1);
  w1.floatData = Array.from(W1);
  w1.rawData = null;
  return encodeModel(m);
}

const X = input(7, B * K);
const U = input(8, B * 8);
const V = input(9, 8 * 3);

async function run(bytes: Uint8Array): Promise<Record<string, Float32Array>> {
  const s = await InferenceSession.create(bytes);
  const r = await s.run({
    x: new Tensor("float32", X, [B, K]),
    u: new Tensor("float32", U, [B, 8]),
    v: new Tensor("float32", V, [8, 3]),
  });
  return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.data as Float32Array]));
}

/**
 * The worst-case error of one output of DynamicQuantizeMatMul. It rounds x per tensor to uint8
 * (step sa = range(x ∪ {0}) / 255, error ≤ sa/2 per value) and W per column to int8 (step sw[j],
 * error ≤ sw[j]/2), so |x̂·ŵ − x·w| ≤ sw/2·Σ|x| + sa/2·Σ|w| + K·sa·sw/4; the last term
 * is the product of the two errors. 1e-5 of Σ|x||w| covers float32 accumulation.
 */
function bound(w: Float32Array, b: number, j: number): number {
  let lo = 0;
  let hi = 0;
  for (const v of X) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const sa = (hi - lo) / 255;
  let sw = 0;
  for (let k = 0; k < K; k++) sw = Math.max(sw, Math.abs(w[k * N + j] as number) / 127);
  let sx = 0;
  let sW = 0;
  let sxw = 0;
  for (let k = 0; k < K; k++) {
    const x = Math.abs(X[b * K + k] as number);
    const v = Math.abs(w[k * N + j] as number);
    sx += x;
    sW += v;
    sxw += x * v;
  }
  return (sw / 2) * sx + (sa / 2) * sW + (K * sa * sw) / 4 + 1e-5 * sxw;
}

describe("quantizeMatMuls", () => {
  test("rewrites constant-weight MatMuls (direct and through a Reshape) and leaves the rest", () => {
    const { model: out, quantized } = quantizeMatMuls(model(), { minElements: 1000 });
    assert.deepEqual(quantized, ["mm1", "mm4"]);
    const m = decodeModel(out);
    const ops = Object.fromEntries((m.graph?.node ?? []).map((n) => [n.name, [n.opType, n.domain]]));
    assert.deepEqual(ops, {
      mm1: ["DynamicQuantizeMatMul", "com.microsoft"],
      mm2: ["MatMul", ""],
      mm3: ["MatMul", ""],
      mm4: ["DynamicQuantizeMatMul", "com.microsoft"],
    });
    // The float weights of rewritten products and the folded Reshape's shape are gone.
    const inits = (m.graph?.initializer ?? []).map((t) => t.name).sort();
    assert.deepEqual(inits, [
      "W1_int8",
      "W1_scale",
      "W1_zero_point",
      "W2",
      "W3_2d_int8",
      "W3_2d_scale",
      "W3_2d_zero_point",
    ]);
    const contrib = (m.opsetImport ?? []).filter((o) => o.domain === "com.microsoft");
    assert.equal(contrib.length, 1);
    assert.equal(Number(contrib[0]?.version), 1);
  });

  test("outputs match float32 within the quantization bound; a zero column stays exactly zero", async () => {
    const bytes = model();
    const ref = await run(bytes);
    const out = quantizeMatMuls(bytes, { minElements: 1000 }).model;
    const q = await run(out);
    const scales = decodeModel(out).graph?.initializer?.filter((t) => t.name?.endsWith("_scale"));
    assert.equal(scales?.length, 2);
    for (const t of scales ?? []) {
      const raw = t.rawData as Uint8Array;
      const scale = new Float32Array(new Uint8Array(raw).buffer);
      // Any scale reproduces a zero column; 1 keeps the op away from dividing by zero.
      assert.equal(scale[ZERO_COL], 1);
    }
    for (const [name, w] of [
      ["y1", W1],
      ["y4", W3],
    ] as const) {
      let changed = 0;
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < N; j++) {
          const i = b * N + j;
          const got = q[name]?.[i] as number;
          const want = ref[name]?.[i] as number;
          if (j === ZERO_COL) assert.equal(got, 0, `${name}[${b},${j}]`);
          const err = Math.abs(got - want);
          assert.ok(err <= bound(w, b, j), `${name}[${b},${j}]: |${got} - ${want}| > bound`);
          if (err > 0) changed++;
        }
      }
      // It really ran quantized: float32 would reproduce the reference exactly.
      assert.ok(changed > 0, `${name} is unchanged`);
    }
    // Untouched products give the very same numbers.
    assert.deepEqual(q.y2, ref.y2);
    assert.deepEqual(q.y3, ref.y3);
  });

  test("the default minElements leaves small products alone", () => {
    const bytes = model();
    const { model: out, quantized } = quantizeMatMuls(bytes);
    assert.deepEqual(quantized, []);
    assert.deepEqual(out, bytes);
  });

  test("shrinks the file and is deterministic", () => {
    const g = new GraphBuilder("big");
    g.input("x", "float32", ["batch", 256]);
    g.initializer("W", "float32", [256, 512], bigWeight());
    g.node("MatMul", ["x", "W"], ["y"]);
    g.output("y", "float32", ["batch", 512]);
    const bytes = encodeModel(g);
    const a = quantizeMatMuls(bytes);
    const b = quantizeMatMuls(bytes);
    assert.deepEqual(a.quantized, ["MatMul_0"]);
    assert.deepEqual(a.model, b.model);
    // int8 weights plus 2 × 512 scales/zero points against 4 bytes a weight.
    assert.ok(a.model.byteLength < bytes.byteLength * 0.3, `${a.model.byteLength} of ${bytes.byteLength}`);
  });

  test("a Reshape or weight something else still reads is kept; an overridable weight is not constant", async () => {
    const g = new GraphBuilder("shared");
    g.input("x", "float32", ["batch", K]);
    g.initializer("W1", "float32", [K, N], W1);
    g.initializer("W3", "float32", [1, 1, K, N], W3);
    g.initializer("W3_shape", "int64", [2], [K, N]);
    g.node("MatMul", ["x", "W1"], ["y1"], {}, { name: "mm1" });
    g.node("Reshape", ["W3", "W3_shape"], ["W3_2d"], {}, { name: "reshape3" });
    g.node("MatMul", ["x", "W3_2d"], ["y4"], {}, { name: "mm4" });
    g.node("Identity", ["W3_2d"], ["w_out"]);
    g.output("y1", "float32", ["batch", N]);
    g.output("y4", "float32", ["batch", N]);
    g.output("w_out", "float32", [K, N]);
    const built = g.toModel();
    // W1 listed as a graph input too: its initializer is only a default a caller may replace.
    built.graph?.input?.push({
      name: "W1",
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: K }, { dimValue: N }] } } },
    });
    const { model: out, quantized } = quantizeMatMuls(encodeModel(built), { minElements: 1 });
    assert.deepEqual(quantized, ["mm4"]);
    const m = decodeModel(out);
    assert.ok(m.graph?.node?.some((n) => n.name === "reshape3"));
    const inits = new Set((m.graph?.initializer ?? []).map((t) => t.name));
    for (const name of ["W1", "W3", "W3_shape", "W3_2d_int8"]) assert.ok(inits.has(name), name);
    const s = await InferenceSession.create(out);
    const r = await s.run({ x: new Tensor("float32", X, [B, K]), W1: new Tensor("float32", W1, [K, N]) });
    assert.deepEqual(r.w_out?.data, W3);
  });

  test("new names do not collide with existing ones", () => {
    const g = new GraphBuilder("names");
    g.input("x", "float32", ["batch", K]);
    g.initializer("W", "float32", [K, N], W1);
    g.initializer("W_int8", "float32", [1], [0]);
    g.node("MatMul", ["x", "W"], ["y"]);
    g.node("Identity", ["W_int8"], ["z"]);
    g.output("y", "float32", ["batch", N]);
    g.output("z", "float32", [1]);
    const m = decodeModel(quantizeMatMuls(encodeModel(g), { minElements: 1 }).model);
    const names = (m.graph?.initializer ?? []).map((t) => t.name);
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(m.graph?.node?.[0]?.input, ["x", "W_int8_1", "W_scale", "W_zero_point"]);
  });

  test("bad bytes are a ValidationError naming the model", () => {
    assert.throws(
      () => quantizeMatMuls(new Uint8Array([0xff, 0xff, 0xff, 0xff])),
      (e: unknown) => e instanceof ValidationError && e.field === "model",
    );
  });
});

describe("use-lite-512-int8", () => {
  test("builds, quantizes every large product, and embeds like the float32 encoder", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "use-int8-"));
    try {
      const f32Dir = join(tmp, "f32");
      const q8Dir = join(tmp, "int8");
      await buildUseLiteBackbone({ outDir: f32Dir });
      const spec = await buildUseLiteBackbone({ outDir: q8Dir, id: USE_LITE_INT8_ID, quantize: true });
      assert.equal(spec.id, USE_LITE_INT8_ID);
      assert.match(spec.description ?? "", /int8 weights/);
      const nodes = decodeModel(await readFile(join(q8Dir, "model.onnx"))).graph?.node ?? [];
      const count = (op: string) => nodes.filter((n) => n.opType === op).length;
      // 2 layers × (2 attention projections + 2 FFN) + the input adapter + the tanh layer; the two
      // left are attention's products of two activations.
      assert.equal(count("DynamicQuantizeMatMul"), 10);
      assert.equal(count("MatMul"), 2);
      const texts = [
        "The movie was great.",
        "I want my two hours back.",
        "A slow start, but the last act is superb and the cast is excellent throughout.",
        "ok",
      ].map((text) => ({ text }));
      const a = await (await SparseTextEmbedder.fromDir(f32Dir)).embed(texts);
      const b = await (await SparseTextEmbedder.fromDir(q8Dir)).embed(texts);
      for (let i = 0; i < texts.length; i++) {
        let cos = 0;
        for (let k = i * 512; k < (i + 1) * 512; k++) cos += (a[k] as number) * (b[k] as number);
        // Both are L2-normalized; on 1000 IMDB sentences the minimum measured was 0.997.
        assert.ok(cos > 0.99, `text ${i}: cosine ${cos}`);
        assert.ok(cos < 1 - 1e-7, `text ${i}: identical to float32, so not quantized`);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

function bigWeight(): Float32Array {
  const r = rng(12);
  return Float32Array.from({ length: 256 * 512 }, () => r() * 2 - 1);
}
