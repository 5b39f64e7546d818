import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type onnxProto from "onnx-proto";
import {
  buildGloveBackbone,
  defaultGloveSource,
  ensureGloveBackbone,
  readGloveJson,
} from "../shared/backbone/glove.ts";
import { BackboneSpec, type EmbedInput } from "../shared/backbone/spec.ts";
import { TextEmbedder } from "../shared/backbone/text-embedder.ts";
import { loadConfig } from "../shared/config.ts";
import { ValidationError } from "../shared/errors.ts";
import { getSession, releaseSessions } from "../shared/onnx/session.ts";
import {
  DEFAULT_IR_VERSION,
  DEFAULT_OPSET,
  decodeModel,
  encodeModel,
  GraphBuilder,
} from "../shared/onnx/writer.ts";
import { assertClose } from "./helpers/heads.ts";

const TOL = 1e-6;

/** Deterministic values in [-1, 1) so a failure reproduces. */
function seededMatrix(rows: number, cols: number, seed: number): Float32Array {
  const out = new Float32Array(rows * cols);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function meanOf(matrix: Float32Array, dim: number, ids: number[]): number[] {
  const out = new Array<number>(dim).fill(0);
  for (const id of ids) for (let k = 0; k < dim; k++) out[k] += matrix[id * dim + k];
  return out.map((v) => (ids.length ? v / ids.length : 0));
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "hs-backbone-"));
});
after(async () => {
  await releaseSessions();
  await rm(work, { recursive: true, force: true });
});

describe("onnx writer", () => {
  test("encodes opset, IR version, symbolic dims, raw little-endian initializers and attributes", () => {
    const g = new GraphBuilder("g");
    g.input("x", "float32", ["batch", 3]);
    g.initializer("w", "float32", [3], new Float32Array([1.5, -2, 0.25]));
    g.initializer("i", "int64", [2], [7, -1]);
    const [y] = g.node("Mul", ["x", "w"]);
    g.node("LeakyRelu", [y], ["out"], { alpha: 0.5 });
    g.output("out", "float32", ["batch", 3]);
    const m = decodeModel(encodeModel(g));
    assert.equal(Number(m.irVersion), DEFAULT_IR_VERSION);
    assert.equal(Number(m.opsetImport[0].version), DEFAULT_OPSET);
    const graph = m.graph as onnxProto.onnx.GraphProto;
    const dims = graph.input[0].type?.tensorType?.shape?.dim ?? [];
    assert.equal(dims[0].dimParam, "batch");
    assert.equal(Number(dims[1].dimValue), 3);
    const bytes = (t: onnxProto.onnx.ITensorProto) => {
      const raw = t.rawData ?? new Uint8Array(0);
      return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    };
    assert.deepEqual([...new Float32Array(bytes(graph.initializer[0]))], [1.5, -2, 0.25]);
    assert.deepEqual([...new BigInt64Array(bytes(graph.initializer[1]))], [7n, -1n]);
    assert.equal(graph.node[1].attribute?.[0].f, 0.5);
  });

  test("rejects a tensor whose data does not match its dims, and duplicate names", () => {
    const g = new GraphBuilder();
    assert.throws(() => g.initializer("w", "float32", [2, 2], new Float32Array(3)), ValidationError);
    g.input("x", "int64", [1]);
    assert.throws(() => g.input("x", "int64", [1]), /duplicate/);
  });
});

describe("session factory", () => {
  test("unknown options are a ValidationError naming the valid ones", async () => {
    await assert.rejects(
      getSession("nope.onnx", "k-bad-opt", { threads: 2 } as never),
      (e: unknown) => e instanceof ValidationError && /executionProviders, intraOpNumThreads/.test(e.message),
    );
    await assert.rejects(
      getSession("nope.onnx", "k-bad-ep", { executionProviders: ["tpu" as "cpu"] }),
      /cuda, cpu/,
    );
  });

  test("caches the promise per key and forgets a failed creation", async () => {
    const path = join(work, "late.onnx");
    await assert.rejects(getSession(path, "k-late"));
    const g = new GraphBuilder();
    g.input("x", "float32", ["n"]);
    g.node("Relu", ["x"], ["y"]);
    g.output("y", "float32", ["n"]);
    await writeFile(path, encodeModel(g));
    const a = getSession(path, "k-late", { executionProviders: ["cpu"], intraOpNumThreads: 1 });
    assert.equal(getSession(path, "k-late"), a);
    const s = await a;
    assert.deepEqual([...s.inputNames], ["x"]);
  });
});

describe("bring-your-own backbone (writer-made model, custom io names, whitespace tokenizer)", () => {
  const words = ["red", "green", "blue", "cat", "dog", "fish"];
  const dim = 8;
  const matrix = seededMatrix(words.length, dim, 42);
  let embedder: TextEmbedder;

  before(async () => {
    const dir = join(work, "byo");
    await (await import("node:fs/promises")).mkdir(dir);
    // Mul + ReduceSum pooling here (the GloVe converter uses MatMul) so each checks the other.
    const g = new GraphBuilder("byo");
    g.input("tokens", "int64", ["batch", "seq"]);
    g.input("mask", "int64", ["batch", "seq"]);
    g.initializer("table", "float32", [words.length, dim], matrix);
    const [emb] = g.node("Gather", ["table", "tokens"], 1, { axis: 0 });
    const [m] = g.node("Cast", ["mask"], 1, { to: 1 });
    const [m3] = g.node("Unsqueeze", [m, g.constant("int64", [2])]);
    const [prod] = g.node("Mul", [emb, m3]);
    const [sum] = g.node("ReduceSum", [prod, g.constant("int64", [1])], 1, { keepdims: 0 });
    const [cnt] = g.node("ReduceSum", [m, g.constant("int64", [1])], 1, { keepdims: 1 });
    const [den] = g.node("Max", [cnt, g.constant("float32", [1], [])]);
    g.node("Div", [sum, den], ["pooled"]);
    g.output("pooled", "float32", ["batch", dim]);
    const bytes = encodeModel(g);
    await writeFile(join(dir, "net.onnx"), bytes);
    await writeFile(join(dir, "words.txt"), `${words.join("\n")}\n`);
    const spec = BackboneSpec.parse({
      id: "byo-test",
      modality: "text",
      dim,
      model: "net.onnx",
      sha256: sha256(bytes),
      io: { ids: "tokens", mask: "mask", output: "pooled" },
      preprocessing: { type: "text-vocab", tokenizer: "whitespace", vocab: "words.txt", maxTokens: 4 },
      assets: ["words.txt"],
    });
    await writeFile(join(dir, "backbone.json"), JSON.stringify(spec));
    embedder = await TextEmbedder.fromDir(dir, { microBatch: 2 });
  });

  test("matches a hand-computed masked mean, in input order across sorted micro-batches", async () => {
    const texts = [
      "red cat",
      "unknown words only",
      "Blue blue fish dog",
      "green",
      "cat dog red blue green fish",
      "",
    ];
    const expectedIds = [[0, 3], [], [2, 2, 5, 4], [1], [3, 4, 0, 2], []];
    const out = await embedder.embed(texts.map((text) => ({ text })));
    assert.equal(out.length, texts.length * dim);
    texts.forEach((t, r) => {
      assertClose(out.subarray(r * dim, (r + 1) * dim), meanOf(matrix, dim, expectedIds[r]), TOL, t);
    });
    assert.ok(
      out.subarray(dim, 2 * dim).every((v) => v === 0),
      "all-unknown text is exactly zero",
    );
    assert.ok(out.every(Number.isFinite));
  });

  test("empty input gives an empty result; other modalities are rejected by name", async () => {
    assert.equal((await embedder.embed([])).length, 0);
    const bad = [{ text: "red" }, { image: new Uint8Array(3) }] as EmbedInput[];
    await assert.rejects(
      embedder.embed(bad),
      (e: Error) => e.name === "UnsupportedError" && /image/.test(e.message),
    );
  });
});

describe("GloVe converter on a tiny wink-format file", () => {
  const dim = 3;
  // Escaped words, exponents and many digits: the scanner must read exactly what JSON.parse reads.
  const vectors: Record<string, number[]> = {
    the: [0.1, -0.2, 0.3],
    good: [1, 2, 3.5],
    '"': [-1.25e-5, 1e-7, 0.0012345678901234567],
    "back\\slash": [4, 5, 6],
    "well-known": [0.12345678, -9.87654321, 100],
  };
  const words = Object.keys(vectors);
  const wink = {
    precision: 8,
    l2NormIndex: dim,
    wordIndex: dim + 1,
    size: words.length,
    dimensions: dim,
    words,
    vectors: Object.fromEntries(words.map((w, i) => [w, [...vectors[w], Math.hypot(...vectors[w]), i]])),
    unkVector: [0, 0, 0, 0, -1],
  };
  let src: string;
  before(async () => {
    src = join(work, "tiny-wink.json");
    await writeFile(src, JSON.stringify(wink));
  });

  test("writes vocab, model and a valid backbone.json whose sha256 is the model's", async () => {
    const outDir = join(work, "models", "tiny");
    const spec = await buildGloveBackbone({ sourceJson: src, outDir, id: "tiny-glove" });
    const parsed = BackboneSpec.parse(JSON.parse(await readFile(join(outDir, "backbone.json"), "utf8")));
    assert.deepEqual(parsed, spec);
    assert.equal(spec.dim, dim);
    assert.equal(spec.normalized, false);
    assert.equal(spec.sha256, sha256(await readFile(join(outDir, "model.onnx"))));
    assert.deepEqual((await readFile(join(outDir, "vocab.txt"), "utf8")).split("\n"), [...words, ""]);
    assert.deepEqual(await readdir(join(work, "models")), ["tiny"], "no temp directory left behind");

    const parsedVectors = await readGloveJson(src);
    assert.deepEqual(
      [...parsedVectors.matrix],
      words.flatMap((w) => vectors[w].map(Math.fround)),
    );

    const e = await TextEmbedder.fromDir(outDir);
    const out = await e.embed([
      { text: 'The GOOD "well-known"' },
      { text: "nothing here" },
      { text: "good" },
    ]);
    const mean = [0, 1, 2].map(
      (k) => (vectors.the[k] + vectors.good[k] + 2 * vectors['"'][k] + vectors["well-known"][k]) / 5,
    );
    assertClose(out.subarray(0, dim), mean, TOL, "mean");
    assertClose(out.subarray(dim, 2 * dim), [0, 0, 0], 0, "unknown");
    assertClose(out.subarray(2 * dim), vectors.good, TOL, "good");
  });

  test("normalize puts unit vectors in the graph and keeps zero vectors zero", async () => {
    const outDir = join(work, "models-n", "tiny-n");
    const spec = await buildGloveBackbone({ sourceJson: src, outDir, id: "tiny-n", normalize: true });
    assert.equal(spec.normalized, true);
    const e = await TextEmbedder.fromDir(outDir);
    const out = await e.embed([{ text: "the good" }, { text: "zzz" }]);
    assert.ok(Math.abs(Math.hypot(...out.subarray(0, dim)) - 1) < 1e-6);
    assertClose(out.subarray(dim), [0, 0, 0], 0, "unknown");
  });

  test("a truncated file fails without leaving an output directory", async () => {
    const bad = join(work, "truncated.json");
    const text = JSON.stringify(wink);
    await writeFile(bad, text.slice(0, text.indexOf('"well-known":[') + 20));
    const outDir = join(work, "models-bad", "x");
    await assert.rejects(buildGloveBackbone({ sourceJson: bad, outDir }), ValidationError);
    assert.equal(existsSync(outDir), false);
  });
});

describe("glove-100d, the real one", () => {
  test("ensureGloveBackbone builds once; 'good' is GloVe's vector; good~great closer than good~table", async () => {
    const modelsDir = loadConfig().modelsDir;
    const t0 = performance.now();
    const p1 = ensureGloveBackbone(modelsDir);
    assert.equal(ensureGloveBackbone(modelsDir), p1, "concurrent callers share one build");
    const { dir, spec } = await p1;
    console.log(`ensureGloveBackbone: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    assert.equal(spec.id, "glove-100d");
    assert.equal(spec.dim, 100);
    assert.equal(spec.sha256, sha256(readFileSync(join(dir, spec.model))));

    // Independent of the converter: find "good"'s entry in the raw JSON.
    const raw = readFileSync(defaultGloveSource());
    const at = raw.indexOf('"good":[');
    const entry = JSON.parse(
      raw.toString("utf8", at + '"good":'.length, raw.indexOf("]", at) + 1),
    ) as number[];
    assert.equal(entry.length, 102);

    const e = await TextEmbedder.fromDir(dir);
    const out = await e.embed([{ text: "Good" }, { text: "great" }, { text: "table" }]);
    const v = (r: number) => out.subarray(r * 100, (r + 1) * 100);
    assertClose(v(0), entry.slice(0, 100), TOL, "good");
    const cos = (a: Float32Array, b: Float32Array) => {
      let d = 0;
      for (let k = 0; k < a.length; k++) d += a[k] * b[k];
      return d / (Math.hypot(...a) * Math.hypot(...b));
    };
    const great = cos(v(0), v(1));
    const table = cos(v(0), v(2));
    assert.ok(great > table + 0.15, `cos(good, great)=${great} cos(good, table)=${table}`);
  });
});
