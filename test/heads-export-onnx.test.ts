import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { createApp } from "../shared/api/app.ts";
import { maskedMeanModel } from "../shared/backbone/glove.ts";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import type { TextEmbedder } from "../shared/backbone/text-embedder.ts";
import { packIds } from "../shared/backbone/tokenizer.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { ConflictError, UnsupportedError, ValidationError } from "../shared/errors.ts";
import {
  EMBEDDING_INPUT,
  exportFilename,
  fusedToOnnx,
  headToOnnx,
  PROBABILITIES_OUTPUT,
  VALUE_OUTPUT,
} from "../shared/heads/export-onnx.ts";
import {
  type HeadDocument,
  type Report,
  readHeadVersion,
  setAlias,
  writeHeadVersion,
} from "../shared/heads/version.ts";
import { keys } from "../shared/layout.ts";
import type { HeadKind, Target } from "../shared/learn/estimator.ts";
import { HEAD_KINDS } from "../shared/learn/registry.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { makeLogger } from "../shared/log.ts";
import { decodeModel, type GraphBuilder } from "../shared/onnx/writer.ts";
import { putJson } from "../shared/store/json.ts";
import { assertClose } from "./helpers/heads.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { TINY_DIM, TINY_VOCAB, tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const TOL = 1e-5;
// biome-ignore lint/suspicious/noExplicitAny: kinds differ in model and parameter types.
type AnyKind = HeadKind<any, any>;
/** The real registry, captured before the stub kinds below are added to it. */
const REGISTERED = Object.entries(HEAD_KINDS);

function randomMatrix(n: number, d: number, rand: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n * d }, () => gaussian(rand) * scale);
}

/** A small learnable problem of the kind's task: k blobs, k linear labels, or a noisy linear target. */
function toyProblem(task: AnyKind["task"], n: number, d: number, k: number, seed: number) {
  const rand = mulberry32(seed);
  const centers = randomMatrix(k, d, rand, 2);
  const X = new Float32Array(n * d);
  let target: Target;
  if (task === "multiclass") {
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % k;
      for (let j = 0; j < d; j++) X[i * d + j] = centers[y[i] * d + j] + gaussian(rand);
    }
    target = { task, y, k };
  } else {
    X.set(randomMatrix(n, d, rand));
    if (task === "multilabel") {
      const Y = new Uint8Array(n * k);
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < k; c++) {
          let z = 0;
          for (let j = 0; j < d; j++) z += centers[c * d + j] * X[i * d + j];
          // Every label is on for some rows and off for others, whatever the draw.
          Y[i * k + c] = i % 7 === c ? 1 : i % 7 === c + 3 ? 0 : z > 0 ? 1 : 0;
        }
      }
      target = { task, Y, k };
    } else {
      const y = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let z = 0.5;
        for (let j = 0; j < d; j++) z += centers[j] * X[i * d + j];
        y[i] = z + 0.1 * gaussian(rand);
      }
      target = { task, y };
    }
  }
  return { X, target };
}

/** Random rows plus the edge cases: zeros, far out along every axis, and training rows themselves. */
function probeRows(Xtrain: Float32Array, d: number, seed: number): { X: Float32Array; n: number } {
  const rand = mulberry32(seed);
  const random = randomMatrix(20, d, rand, 1.5);
  const far = randomMatrix(2, d, rand, 10);
  const zeros = new Float32Array(d);
  const train = Xtrain.subarray(0, 3 * d);
  const X = new Float32Array(random.length + far.length + zeros.length + train.length);
  let o = 0;
  for (const part of [random, far, zeros, train]) {
    X.set(part, o);
    o += part.length;
  }
  return { X, n: X.length / d };
}

/** softmax(log(max(p, 1e-15)) / T) per row: what temperature calibration means for probabilities. */
function calibrate(p: Float64Array, n: number, k: number, T: number): Float64Array {
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      const z = Math.log(Math.max(p[i * k + c], 1e-15)) / T;
      out[i * k + c] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) {
      out[i * k + c] = Math.exp(out[i * k + c] - max);
      sum += out[i * k + c];
    }
    for (let c = 0; c < k; c++) out[i * k + c] /= sum;
  }
  return out;
}

function headDoc(type: string, task: AnyKind["task"], model: Record<string, unknown>, d: number, k: number) {
  const labels = task === "regression" ? ["target"] : Array.from({ length: k }, (_, c) => `label-${c}`);
  const doc: HeadDocument = {
    head: `toy-${type}`,
    version: "v20260101-000000-abcdef",
    type,
    task,
    labels,
    backbone: { id: "toy-backbone", sha256: "ab".repeat(32), dim: d },
    dataset: { name: "toy", version: "1" },
    params: {},
    model,
    createdAt: "2026-01-01T00:00:00.000Z",
  };
  return doc;
}

async function runHead(bytes: Uint8Array, X: Float32Array, n: number, d: number) {
  const session = await InferenceSession.create(bytes);
  assert.deepEqual(session.inputNames, [EMBEDDING_INPUT]);
  const out = await session.run({ [EMBEDDING_INPUT]: new Tensor("float32", X, [n, d]) });
  await session.release();
  return out;
}

function metadataOf(bytes: Uint8Array): Record<string, string> {
  return Object.fromEntries((decodeModel(bytes).metadataProps ?? []).map((p) => [p.key, p.value]));
}

/** Checks one kind's export against its own `predict`, with and without calibration. */
async function checkKind(type: string, kind: AnyKind) {
  const d = 6;
  const k = kind.task === "regression" ? 1 : 3;
  const n = 90;
  const { X, target } = toyProblem(kind.task, n, d, k, 7);
  const model = await kind.fit(X, n, d, target, kind.resolveParams({}, n, d), { seed: 3 });
  const json = kind.toJson(model);
  const doc = headDoc(type, kind.task, json, d, k);
  const probe = probeRows(X, d, 11);
  const expected = await kind.predict(kind.fromJson(json), probe.X, probe.n);

  const bytes = headToOnnx(doc);
  const out = await runHead(bytes, probe.X, probe.n, d);
  const name = kind.task === "regression" ? VALUE_OUTPUT : PROBABILITIES_OUTPUT;
  assert.deepEqual(Object.keys(out), [name]);
  assert.deepEqual(out[name].dims, [probe.n, k]);
  assert.equal(out[name].type, "float32");
  assertClose(out[name].data as Float32Array, expected, TOL, `${type} ${name}`);

  const meta = metadataOf(bytes);
  assert.equal(meta["headstart.head"], doc.head);
  assert.equal(meta["headstart.version"], doc.version);
  assert.equal(meta["headstart.type"], type);
  assert.equal(meta["headstart.task"], kind.task);
  assert.deepEqual(JSON.parse(meta["headstart.labels"]), doc.labels);
  assert.equal(meta["headstart.backbone"], doc.backbone.id);
  assert.equal(meta["headstart.backbone_sha256"], doc.backbone.sha256);
  assert.equal(meta["headstart.output"], name);
  const thresholds = (json as { thresholds?: unknown }).thresholds;
  if (kind.task === "multilabel" && Array.isArray(thresholds)) {
    assert.deepEqual(JSON.parse(meta["headstart.thresholds"]), thresholds);
  } else {
    assert.equal(meta["headstart.thresholds"], undefined);
  }

  if (kind.task === "multiclass") {
    for (const temperature of [0.5, 2.5]) {
      const calibrated = { ...doc, calibration: { method: "temperature" as const, temperature } };
      const cal = await runHead(headToOnnx(calibrated), probe.X, probe.n, d);
      const p = cal[PROBABILITIES_OUTPUT].data as Float32Array;
      assertClose(p, calibrate(expected, probe.n, k, temperature), TOL, `${type} T=${temperature}`);
      for (let i = 0; i < probe.n; i++) {
        const sum = p[i * k] + p[i * k + 1] + p[i * k + 2];
        assert.ok(Math.abs(sum - 1) < 1e-5, `${type} T=${temperature} row ${i} sums to ${sum}`);
      }
      assert.deepEqual(JSON.parse(metadataOf(headToOnnx(calibrated))["headstart.calibration"]), {
        method: "temperature",
        temperature,
      });
    }
  } else {
    assert.throws(
      () => headToOnnx({ ...doc, calibration: { method: "temperature", temperature: 2 } }),
      (err: unknown) => err instanceof UnsupportedError && err.field === "calibration",
    );
  }
}

describe("headToOnnx matches every registered head kind", () => {
  assert.ok(REGISTERED.length > 0);
  for (const [type, kind] of REGISTERED) {
    test(`${type} (${kind.task})`, () => checkKind(type, kind));
  }
});

// Stub kinds covering each task and a multiclass output that is not a softmax (so calibration has
// no logits to reach): the export's task handling is tested whatever kinds the registry holds.
function gemm(g: GraphBuilder, input: string, W: number[], b: number[], k: number, d: number): string {
  const w = g.initializer(g.fresh("w"), "float32", [k, d], W);
  const bias = g.initializer(g.fresh("b"), "float32", [k], b);
  return g.node("Gemm", [input, w, bias], 1, { transB: 1 })[0];
}
interface Linear {
  W: number[];
  b: number[];
  k: number;
  d: number;
  thresholds?: number[];
}
function linearStub(
  type: string,
  task: AnyKind["task"],
  link: "exp-ratio" | "sigmoid" | "identity",
): AnyKind {
  const scores = (m: Linear, X: Float32Array, n: number) => {
    const z = new Float64Array(n * m.k);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < m.k; c++) {
        let s = m.b[c];
        for (let j = 0; j < m.d; j++) s += m.W[c * m.d + j] * X[i * m.d + j];
        z[i * m.k + c] = s;
      }
    }
    return z;
  };
  return {
    type,
    task,
    description: "test stub",
    resolveParams: () => ({}),
    grid: () => [{}],
    async fit(_X, _n, d, target) {
      const k = target.task === "regression" ? 1 : target.k;
      const rand = mulberry32(k * 31 + d);
      const m: Linear = {
        W: Array.from({ length: k * d }, () => gaussian(rand)),
        b: Array.from({ length: k }, () => gaussian(rand)),
        k,
        d,
      };
      if (task === "multilabel") m.thresholds = Array.from({ length: k }, (_, c) => 0.3 + 0.1 * c);
      return m;
    },
    async predict(m: Linear, X, n) {
      const z = scores(m, X, n);
      if (link === "identity") return z;
      if (link === "sigmoid") return z.map((v) => 1 / (1 + Math.exp(-v)));
      for (let i = 0; i < n; i++) {
        const row = z.subarray(i * m.k, (i + 1) * m.k);
        const max = Math.max(...row);
        let sum = 0;
        for (let c = 0; c < m.k; c++) sum += row[c] = Math.exp(row[c] - max);
        for (let c = 0; c < m.k; c++) row[c] /= sum;
      }
      return z;
    },
    toJson: (m) => ({ ...m }),
    fromJson: (json) => json as Linear,
    toOnnx(m: Linear, g, input) {
      const z = gemm(g, input, m.W, m.b, m.k, m.d);
      if (link === "identity") return z;
      if (link === "sigmoid") return g.node("Sigmoid", [z], 1)[0];
      const [max] = g.node("ReduceMax", [z], 1, { axes: [1], keepdims: 1 });
      const [e] = g.node("Exp", [g.node("Sub", [z, max], 1)[0]], 1);
      const [sum] = g.node("ReduceSum", [e, g.constant("int64", [1])], 1, { keepdims: 1 });
      return g.node("Div", [e, sum], 1)[0];
    },
  };
}

describe("headToOnnx per task (stub kinds)", () => {
  const stubs: Record<string, AnyKind> = {
    "test-ratio": linearStub("test-ratio", "multiclass", "exp-ratio"),
    "test-sigmoid": linearStub("test-sigmoid", "multilabel", "sigmoid"),
    "test-linear": linearStub("test-linear", "regression", "identity"),
  };
  const registry = HEAD_KINDS as Record<string, AnyKind>;
  before(() => Object.assign(registry, stubs));
  after(() => {
    for (const type of Object.keys(stubs)) delete registry[type];
  });
  for (const [type, kind] of Object.entries(stubs)) {
    test(`${type} (${kind.task})`, () => checkKind(type, kind));
  }

  test("a task that contradicts the type, and a malformed model, are refused", async () => {
    const { X, target } = toyProblem("multiclass", 30, 4, 3, 1);
    const logreg = HEAD_KINDS.logreg;
    const model = await logreg.fit(X, 30, 4, target, logreg.resolveParams({}, 30, 4), { seed: 1 });
    const doc = headDoc("logreg", "multiclass", logreg.toJson(model), 4, 3);
    assert.throws(
      () => headToOnnx({ ...doc, task: "regression" }),
      (err: unknown) => err instanceof ValidationError && err.field === "task",
    );
    assert.throws(() => headToOnnx({ ...doc, model: { nonsense: true } }), ValidationError);
    assert.throws(
      () => headToOnnx({ ...doc, type: "no-such-kind" }),
      (err: unknown) => err instanceof ValidationError && err.field === "type",
    );
  });
});

const REPORT = (head: string, version: string): Report => ({
  head,
  version,
  type: "logreg",
  evaluation: "cv",
  counts: { train: 0, test: 0, unlabeled: 0, unsupported: 0 },
  trainSeconds: 0,
  createdAt: "2026-01-01T00:00:00.000Z",
});

const TEXTS = [
  "great fun wonderful",
  "awful boring worst",
  "the movie was a film and it was good but the plot was dull",
  "  The   MOVIE   was brilliant \t love it  ",
  "zzz qqq", // no known token: the zero vector
  "hate hate hate love",
];

describe("fused backbone + head models, API and CLI", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let version: string;
  let embedder: TextEmbedder;
  let fusedBytes: Uint8Array;

  /** What TextEmbedder feeds the backbone for these texts, as ONNX feeds. */
  function feeds(texts: readonly string[]) {
    const enc = packIds(texts.map((t) => embedder.tokenIds(normalizeText(t))));
    return {
      input_ids: new Tensor("int64", enc.ids, [texts.length, enc.seqLen]),
      attention_mask: new Tensor("int64", enc.mask, [texts.length, enc.seqLen]),
    };
  }

  async function runFused(bytes: Uint8Array, texts: readonly string[]) {
    const session = await InferenceSession.create(bytes);
    const out = await session.run(feeds(texts));
    const names = session.outputNames;
    await session.release();
    return { out, names };
  }

  async function storeVersion(doc: HeadDocument) {
    await writeHeadVersion(ctx.store, doc, REPORT(doc.head, doc.version));
    await setAlias(ctx.store, doc.head, doc.version);
  }

  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest(
      "films",
      "jsonl",
      toJsonlText(tinySentimentRows(120, { withSplit: true })),
    );
    await ctx.platform.embed("films");
    version = (await ctx.platform.train({ dataset: "films", head: "sentiment" })).version;
    embedder = (await loadEmbedder(ctx.store, "tiny-text", ctx.config)) as TextEmbedder;
    fusedBytes = (await ctx.platform.exportHead("sentiment", { fused: true })).bytes;
    // A version trained on other bytes of the same backbone, for the refusals.
    const { head } = await readHeadVersion(ctx.store, "sentiment", version);
    await storeVersion({ ...head, head: "stale", backbone: { ...head.backbone, sha256: "0".repeat(64) } });
  });
  after(() => ctx.cleanup());

  test("token ids → probabilities reproduces platform.predict on raw texts", async () => {
    const { out, names } = await runFused(fusedBytes, TEXTS);
    assert.deepEqual(names, [PROBABILITIES_OUTPUT, "embeddings"]);
    const { head } = await readHeadVersion(ctx.store, "sentiment", version);
    const predicted = await ctx.platform.predict("sentiment", { inputs: TEXTS });
    assert.equal(predicted.version, version);
    const expected = predicted.predictions.flatMap((p) => head.labels.map((l) => p.scores![l]));
    assert.deepEqual(out[PROBABILITIES_OUTPUT].dims, [TEXTS.length, head.labels.length]);
    assertClose(out[PROBABILITIES_OUTPUT].data as Float32Array, expected, TOL, "fused vs platform.predict");
    // The kept embedding output is the backbone's own.
    const vectors = await embedder.embed(TEXTS.map((t) => ({ text: normalizeText(t) })));
    assertClose(out.embeddings.data as Float32Array, vectors, TOL, "fused embeddings");
    // The head alone on those vectors agrees too.
    const alone = await ctx.platform.exportHead(`sentiment@${version}`);
    const single = await runHead(alone.bytes, vectors, TEXTS.length, TINY_DIM);
    assertClose(single[PROBABILITIES_OUTPUT].data as Float32Array, expected, TOL, "head alone");
    assert.equal(alone.filename, `sentiment-${version}.onnx`);
    assert.equal(alone.fused, false);
  });

  test("the fused model carries the head's metadata, the backbone's inputs and weights", async () => {
    const meta = metadataOf(fusedBytes);
    assert.equal(meta["headstart.head"], "sentiment");
    assert.equal(meta["headstart.version"], version);
    assert.equal(meta["headstart.type"], "logreg");
    assert.equal(meta["headstart.task"], "multiclass");
    assert.deepEqual(JSON.parse(meta["headstart.labels"]), ["neg", "pos"]);
    assert.equal(meta["headstart.backbone"], "tiny-text");
    const spec = await ctx.platform.backbone("tiny-text");
    assert.equal(meta["headstart.backbone_sha256"], spec.sha256);
    assert.equal(meta["headstart.fused"], "true");
    assert.deepEqual(JSON.parse(meta["headstart.inputs"]), ["input_ids", "attention_mask"]);
    assert.deepEqual(JSON.parse(meta["headstart.preprocessing"]), spec.preprocessing);
    const graph = decodeModel(fusedBytes).graph!;
    // Head values are prefixed; the backbone's are untouched.
    const headNodes = graph.node!.filter((n) => n.name?.startsWith("head/"));
    assert.ok(headNodes.length >= 2);
    for (const n of headNodes)
      for (const o of n.output!) assert.ok(o === PROBABILITIES_OUTPUT || o.startsWith("head/"));
    const table = graph.initializer!.find((t) => t.name === "embedding_matrix")!;
    assert.equal(table.rawData!.byteLength, TINY_VOCAB.length * TINY_DIM * 4);
  });

  test("calibrated versions export calibrated probabilities, fused and alone", async () => {
    const { head } = await readHeadVersion(ctx.store, "sentiment", version);
    // Training may have calibrated the head already: the reference is an uncalibrated copy.
    const { calibration: _trained, ...plain } = head;
    const uncalibrated: HeadDocument = { ...plain, version: "v20260101-000000-00ca1b" };
    await writeHeadVersion(ctx.store, uncalibrated, REPORT("sentiment", uncalibrated.version));
    const raw = await ctx.platform.predict(`sentiment@${uncalibrated.version}`, { inputs: TEXTS });
    const p = Float64Array.from(raw.predictions.flatMap((x) => head.labels.map((l) => x.scores![l])));
    const k = head.labels.length;
    const vectors = await embedder.embed(TEXTS.map((t) => ({ text: normalizeText(t) })));
    for (const T of [0.4, 1.7, 20]) {
      const calibrated: HeadDocument = {
        ...plain,
        version: `v20260101-000000-ca1b${String(T * 10).padStart(2, "0")}`,
        calibration: { method: "temperature", temperature: T },
      };
      await writeHeadVersion(ctx.store, calibrated, REPORT("sentiment", calibrated.version));
      const expected = calibrate(p, TEXTS.length, k, T);
      const served = await ctx.platform.predict(`sentiment@${calibrated.version}`, { inputs: TEXTS });
      assertClose(
        served.predictions.flatMap((x) => head.labels.map((l) => x.scores![l])),
        expected,
        1e-9,
        `platform.predict T=${T}`,
      );
      const fused = await ctx.platform.exportHead(`sentiment@${calibrated.version}`, { fused: true });
      assert.equal(fused.filename, `sentiment-${calibrated.version}-fused.onnx`);
      const { out } = await runFused(fused.bytes, TEXTS);
      assertClose(out[PROBABILITIES_OUTPUT].data as Float32Array, expected, TOL, `fused T=${T}`);
      const alone = await ctx.platform.exportHead(`sentiment@${calibrated.version}`);
      const single = await runHead(alone.bytes, vectors, TEXTS.length, TINY_DIM);
      assertClose(single[PROBABILITIES_OUTPUT].data as Float32Array, expected, TOL, `alone T=${T}`);
    }
  });

  test("refuses heads whose backbone was replaced or is not an ONNX model", async () => {
    const { head } = await readHeadVersion(ctx.store, "sentiment", version);
    const isFusedRefusal = (cls: typeof ConflictError | typeof UnsupportedError) => (err: unknown) =>
      err instanceof cls && err.field === "fused";

    const stale = (await readHeadVersion(ctx.store, "stale", version)).head;
    await assert.rejects(ctx.platform.exportHead("stale", { fused: true }), isFusedRefusal(ConflictError));
    await assert.rejects(fusedToOnnx(ctx.store, stale, ctx.config), /has since been replaced/);
    // The head alone needs no backbone.
    assert.ok((await ctx.platform.exportHead("stale")).bytes.byteLength > 0);

    // Vectors imported from outside: no backbone in the store.
    const imported = {
      ...head,
      head: "imported",
      backbone: { id: "imported-768", sha256: "1".repeat(64), dim: 8 },
    };
    await storeVersion(imported);
    await assert.rejects(
      ctx.platform.exportHead("imported", { fused: true }),
      (err: unknown) => isFusedRefusal(UnsupportedError)(err) && /no ONNX model/.test((err as Error).message),
    );

    // Vectors imported under an external backbone (what `headstart import-embeddings` records).
    await putJson(ctx.store, keys.backboneSpec("imported-ext"), {
      id: "imported-ext",
      kind: "external",
      modality: "embedding",
      dim: TINY_DIM,
      sha256: "2".repeat(64),
      io: {},
      preprocessing: { type: "external" },
      pooling: "none",
    });
    const external = {
      ...head,
      head: "external",
      backbone: { id: "imported-ext", sha256: "2".repeat(64), dim: TINY_DIM },
    };
    await storeVersion(external);
    await assert.rejects(
      ctx.platform.exportHead("external", { fused: true }),
      (err: unknown) =>
        isFusedRefusal(UnsupportedError)(err) && /embeddings imported/.test((err as Error).message),
    );

    // A published backbone whose model file is not ONNX.
    const dir = join(ctx.dir, "opaque");
    await mkdir(dir, { recursive: true });
    const garbage = Buffer.from("not an ONNX model, just bytes\n");
    const sha = createHash("sha256").update(garbage).digest("hex");
    await writeFile(join(dir, "model.onnx"), garbage);
    await writeFile(join(dir, "vocab.txt"), `${TINY_VOCAB.join("\n")}\n`);
    const spec = {
      ...(await ctx.platform.backbone("tiny-text")),
      id: "opaque",
      sha256: sha,
      assetSha256: {},
    };
    await writeFile(join(dir, "backbone.json"), JSON.stringify(spec));
    await ctx.platform.addBackbone(dir);
    const opaque = { ...head, head: "opaque-head", backbone: { id: "opaque", sha256: sha, dim: TINY_DIM } };
    await storeVersion(opaque);
    await assert.rejects(
      ctx.platform.exportHead("opaque-head", { fused: true }),
      (err: unknown) =>
        isFusedRefusal(UnsupportedError)(err) && /not an ONNX graph/.test((err as Error).message),
    );
  });

  test("GET /v1/heads/{head}/versions/{version}/model.onnx returns loadable models", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    for (const fused of [false, true]) {
      const res = await app.request(`/v1/heads/sentiment/versions/${version}/model.onnx?fused=${fused}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/octet-stream");
      assert.equal(
        res.headers.get("content-disposition"),
        `attachment; filename="sentiment-${version}${fused ? "-fused" : ""}.onnx"`,
      );
      const bytes = new Uint8Array(await res.arrayBuffer());
      const session = await InferenceSession.create(bytes);
      assert.deepEqual(session.inputNames, fused ? ["input_ids", "attention_mask"] : [EMBEDDING_INPUT]);
      assert.equal(session.outputNames[0], PROBABILITIES_OUTPUT);
      await session.release();
      if (fused) assert.ok(Buffer.from(bytes).equals(fusedBytes), "the API serves the platform's bytes");
    }
    // Default: the head alone.
    const plain = await app.request(`/v1/heads/sentiment/versions/${version}/model.onnx`);
    const alone = headToOnnx((await readHeadVersion(ctx.store, "sentiment", version)).head);
    assert.ok(Buffer.from(await plain.arrayBuffer()).equals(alone), "default: the head alone");
    const missing = await app.request("/v1/heads/sentiment/versions/v-nope/model.onnx");
    assert.equal(missing.status, 404);
    const bad = await app.request(`/v1/heads/sentiment/versions/${version}/model.onnx?fused=yes`);
    assert.equal(bad.status, 400);
    const stale = await app.request(`/v1/heads/stale/versions/${version}/model.onnx?fused=true`);
    assert.equal(stale.status, 409);
  });

  test("headstart export-head writes loadable models", async () => {
    const run = promisify(execFile);
    const env = { ...process.env, HEADSTART_STORE: ctx.store.root, HEADSTART_LOG_LEVEL: "warn" };
    const bin = join(PACKAGE_ROOT, "bin", "headstart.js");
    const out = join(ctx.dir, "cli-fused.onnx");
    const { stdout } = await run(
      process.execPath,
      [bin, "export-head", `sentiment@${version}`, "--out", out, "--fused", "--json"],
      { env },
    );
    const r = JSON.parse(stdout);
    assert.deepEqual(
      { head: r.head, version: r.version, fused: r.fused, out: r.out },
      { head: "sentiment", version, fused: true, out },
    );
    const written = await readFile(out);
    assert.equal(r.bytes, written.byteLength);
    assert.ok(written.equals(fusedBytes), "the CLI writes the platform's bytes");
    const { out: probs } = await runFused(written, TEXTS.slice(0, 2));
    const p = probs[PROBABILITIES_OUTPUT].data as Float32Array;
    assert.ok(p[1] > 0.5 && p[2] > 0.5, `pos then neg: ${Array.from(p)}`);

    const alone = join(ctx.dir, "cli-alone.onnx");
    await run(process.execPath, [bin, "export-head", "sentiment:live", "--out", alone], { env });
    const session = await InferenceSession.create(join(ctx.dir, "cli-alone.onnx"));
    assert.deepEqual(session.inputNames, [EMBEDDING_INPUT]);
    await session.release();

    const refused = await run(process.execPath, [bin, "export-head", "stale", "--out", alone, "--fused"], {
      env,
    }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(refused?.code, 2);
    assert.match(refused?.stderr ?? "", /has since been replaced/);
  });

  test("a backbone file changed after the head was trained is refused", async () => {
    const { head } = await readHeadVersion(ctx.store, "sentiment", version);
    const spec = await ctx.platform.backbone("tiny-text");
    const other = maskedMeanModel({
      matrix: new Float32Array(TINY_VOCAB.length * TINY_DIM).fill(0.5),
      vocabSize: TINY_VOCAB.length,
      dim: TINY_DIM,
    });
    // The file alone changes under an unchanged backbone.json…
    await ctx.store.put(keys.backboneAsset("tiny-text", spec.model), other);
    await assert.rejects(
      fusedToOnnx(ctx.store, head, ctx.config),
      (err: unknown) => err instanceof ConflictError && /was trained on/.test((err as Error).message),
    );
    // …or the backbone is republished with new weights.
    await putJson(ctx.store, keys.backboneSpec("tiny-text"), {
      ...spec,
      sha256: createHash("sha256").update(other).digest("hex"),
    });
    await assert.rejects(fusedToOnnx(ctx.store, head, ctx.config), /has since been replaced/);
    assert.equal(exportFilename(head, true), `sentiment-${version}-fused.onnx`);
  });
});
