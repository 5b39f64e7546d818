/**
 * One head over several backbones (`a+b`): each part's cache joined by row, L2-normalized per part
 * and concatenated in order, for training, serving, neighbours and export alike.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { createApp } from "../shared/api/app.ts";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import { encodeNpy } from "../shared/cache/npy.ts";
import {
  backboneRecord,
  loadBackboneSetDataset,
  normalizeConcat,
  parseBackboneRef,
} from "../shared/embed/composite.ts";
import { loadEmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { HeadstartError, UnsupportedError, ValidationError } from "../shared/errors.ts";
import { headToOnnx } from "../shared/heads/export-onnx.ts";
import { HeadDocument, readHeadVersion } from "../shared/heads/version.ts";
import { makeLogger } from "../shared/log.ts";
import { cli } from "./helpers/cli.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { TINY_DIM, tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const REF = "tiny-text+tiny-b";
const TEXTS = ["great fun wonderful", "awful boring worst", "the movie was a plot", "zzz unknown words"];

/** Per-part unit vectors side by side, written out independently of normalizeConcat. */
function manualConcat(parts: Float32Array[], dims: number[], n: number): number[][] {
  return Array.from({ length: n }, (_, i) =>
    parts.flatMap((v, p) => {
      const row = Array.from(v.subarray(i * dims[p], (i + 1) * dims[p]));
      const norm = Math.hypot(...row);
      return row.map((x) => (norm > 0 ? x / norm : 0));
    }),
  );
}

describe("composite backbones", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const rows = tinySentimentRows(120, { withSplit: true });

  before(async () => {
    ctx = await tinyPlatform();
    await writeTinyBackbone(join(ctx.dir, "backbone-b"), "tiny-b", { salt: "b" });
    await ctx.platform.addBackbone(join(ctx.dir, "backbone-b"));
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(rows));
    await ctx.platform.embed("films");
    await ctx.platform.embed("films", { backbone: "tiny-b" });
    // Embedded with one part only.
    await ctx.platform.putManifest("half", "jsonl", toJsonlText(tinySentimentRows(40, { seed: 5 })));
    await ctx.platform.embed("half");
  });
  after(() => ctx.cleanup());

  test("parseBackboneRef: parts in order; repeats, too many parts and bad names are 400s", () => {
    assert.deepEqual(parseBackboneRef("glove-100d"), ["glove-100d"]);
    assert.deepEqual(parseBackboneRef("b+a+c"), ["b", "a", "c"]);
    assert.throws(
      () => parseBackboneRef("a+b+a"),
      (e: unknown) => e instanceof ValidationError && /twice/.test(e.message),
    );
    assert.throws(
      () => parseBackboneRef("a+b+c+d+e"),
      (e: unknown) => e instanceof ValidationError && /at most 4/.test(e.message),
    );
    for (const bad of ["a+", "+a", "a++b", "a+B", "a+b/c"]) {
      assert.throws(
        () => parseBackboneRef(bad),
        (e: unknown) => e instanceof HeadstartError && e.field === "backbone",
        bad,
      );
    }
  });

  test("normalizeConcat: each part unit length in order, a zero part stays zero", () => {
    const a = Float32Array.from([3, 4, 0, 0]); // rows [3,4], [0,0]
    const b = Float32Array.from([0, 0, 2, 1, 2, 2]); // rows [0,0,2], [1,2,2]
    const out = normalizeConcat(
      [
        { vectors: a, dim: 2 },
        { vectors: b, dim: 3 },
      ],
      2,
    );
    const expected = [0.6, 0.8, 0, 0, 1, 0, 0, 1 / 3, 2 / 3, 2 / 3];
    assert.equal(out.length, expected.length);
    for (const [i, e] of expected.entries()) {
      assert.ok(Math.abs(out[i] - e) < 1e-7, `out[${i}] ${out[i]} vs ${e}`);
    }
  });

  test("backboneRecord: total dim, parts in order, an order-sensitive hash of the parts", async () => {
    const [a, b] = await ctx.platform.backboneParts(REF);
    const rec = backboneRecord([a, b]);
    assert.equal(rec.id, REF);
    assert.equal(rec.dim, 2 * TINY_DIM);
    assert.deepEqual(rec.parts, [
      { id: "tiny-text", sha256: a.sha256, dim: TINY_DIM },
      { id: "tiny-b", sha256: b.sha256, dim: TINY_DIM },
    ]);
    assert.equal(rec.sha256, createHash("sha256").update(`${a.sha256}+${b.sha256}`).digest("hex"));
    assert.notEqual(a.sha256, b.sha256, "the second tiny backbone is another model");
    assert.notEqual(backboneRecord([b, a]).sha256, rec.sha256);
    assert.deepEqual(backboneRecord([a]), { id: "tiny-text", sha256: a.sha256, dim: TINY_DIM });
  });

  test("the training matrix is each part's cache joined by row, normalized, concatenated", async () => {
    const specs = await ctx.platform.backboneParts(REF);
    const joined = await loadBackboneSetDataset(ctx.store, "films", specs);
    const a = await loadEmbeddedDataset(ctx.store, "films", specs[0]);
    const b = await loadEmbeddedDataset(ctx.store, "films", specs[1]);
    assert.equal(joined.dim, 2 * TINY_DIM);
    assert.equal(joined.rows.length, 120);
    assert.deepEqual(
      joined.rows.map((r) => r.id),
      a.rows.map((r) => r.id),
    );
    const expected = manualConcat([a.vectors, b.vectors], [TINY_DIM, TINY_DIM], 120).flat();
    let worst = 0;
    expected.forEach((e, i) => {
      worst = Math.max(worst, Math.abs(joined.vectors[i] - e));
    });
    assert.ok(worst < 1e-6, `max deviation ${worst}`);
    // A single backbone keeps its raw vectors.
    const single = await loadBackboneSetDataset(ctx.store, "films", [specs[0]]);
    assert.deepEqual(single.vectors, a.vectors);
  });

  test("rows one part cannot embed (another modality) are left out of every part", async () => {
    const n = 30;
    const dim = 5;
    const vectors = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(i + 1));
    const imported = Array.from({ length: n }, (_, i) => ({ id: `v${i}`, label: i % 2 ? "pos" : "neg" }));
    await ctx.platform.importEmbeddings("vecs", {
      backbone: "ext-v",
      npy: encodeNpy(vectors, n, dim),
      rows: toJsonlText(imported),
    });
    const ext = await ctx.platform.backbone("ext-v");
    const [tiny] = await ctx.platform.backboneParts("tiny-text");
    const alone = await loadBackboneSetDataset(ctx.store, "vecs", [ext]);
    assert.equal(alone.rows.length, n);
    // Imported rows are vectors, not text: the text part embeds none of them, so no row survives.
    await assert.rejects(
      loadBackboneSetDataset(ctx.store, "vecs", [ext, tiny]),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.message.includes(
          `no row of dataset vecs can be embedded by every part of ext-v+tiny-text (ext-v embeds ${n}, tiny-text embeds 0 of ${n};`,
        ),
    );
    // Training refuses the text part up front, before loading anything.
    await assert.rejects(
      ctx.platform.train({ dataset: "vecs", head: "vecs-combo", backbone: "ext-v+tiny-text" }),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.field === "backbone" &&
        e.message.includes(
          `tiny-text embeds text, but dataset vecs holds ${n} embedding rows: use --backbone ext-v`,
        ),
    );
  });

  test("trains on a+b and records the parts in the head version", async () => {
    const r = await ctx.platform.train({ dataset: "films", head: "combo", backbone: REF, seed: 1 });
    assert.equal(r.evaluation, "test-split");
    assert.equal(r.counts.train + r.counts.test, 120);
    assert.equal(r.counts.unsupported, 0);
    assert.ok(r.metrics!.accuracy > 0.9, `accuracy ${r.metrics!.accuracy}`);
    const { head, report } = await readHeadVersion(ctx.store, "combo", r.version);
    const [a, b] = await ctx.platform.backboneParts(REF);
    assert.deepEqual(head.backbone, backboneRecord([a, b]));
    assert.equal(head.backbone.dim, 16);
    assert.deepEqual(
      head.backbone.parts!.map((p) => p.id),
      ["tiny-text", "tiny-b"],
    );
    assert.equal(report?.backbone, REF);
    // Another order is another head input.
    const r2 = await ctx.platform.train({ dataset: "films", head: "combo-ba", backbone: "tiny-b+tiny-text" });
    const doc2 = (await readHeadVersion(ctx.store, "combo-ba", r2.version)).head;
    assert.deepEqual(
      doc2.backbone.parts!.map((p) => p.id),
      ["tiny-b", "tiny-text"],
    );
  });

  /** TEXTS through each part's own embedder, normalized and concatenated by the test's code. */
  async function textsByHand(): Promise<number[][]> {
    const ea = await loadEmbedder(ctx.store, "tiny-text", ctx.config);
    const eb = await loadEmbedder(ctx.store, "tiny-b", ctx.config);
    const items = TEXTS.map((text) => ({ text }));
    return manualConcat([await ea.embed(items), await eb.embed(items)], [TINY_DIM, TINY_DIM], TEXTS.length);
  }

  test("predicting raw texts equals predicting their normalized concatenation", async () => {
    const fromText = await ctx.platform.predict("combo", { inputs: TEXTS });
    const embeddings = await textsByHand();
    // The unknown-words text embeds to zero in both parts, and stays zero.
    assert.ok(embeddings[3].every((x) => x === 0));
    const fromVectors = await ctx.platform.predict("combo", { embeddings });
    assert.equal(fromText.version, fromVectors.version);
    fromText.predictions.forEach((p, i) => {
      const q = fromVectors.predictions[i];
      assert.equal(p.label, q.label);
      for (const label of ["neg", "pos"])
        assert.ok(Math.abs(p.scores![label] - q.scores![label]) < 1e-6, `${i} ${label}`);
    });
    assert.equal(fromText.predictions[0].label, "pos");
    assert.equal(fromText.predictions[1].label, "neg");
    // Ready embeddings must have the concatenated width.
    await assert.rejects(
      ctx.platform.predict("combo", { embeddings: [embeddings[0].slice(0, TINY_DIM)] }),
      (e: unknown) => e instanceof ValidationError && /expects 16/.test(e.message),
    );
  });

  test("neighbours are found in the head's concatenated space", async () => {
    const train = rows.find((r) => r.split === "train")!;
    const out = await ctx.platform.predict("combo", { inputs: [train.text], neighbors: 5 });
    const nb = out.predictions[0].neighbors!;
    assert.equal(nb.length, 5);
    assert.ok(Math.abs(nb[0].similarity - 1) < 1e-5, `top similarity ${nb[0].similarity}`);
    // The row itself is among the exact matches (same words → same vector).
    assert.ok(nb.some((n) => n.id === train.id && Math.abs(n.similarity - 1) < 1e-5));
    for (let i = 1; i < nb.length; i++) assert.ok(nb[i].similarity <= nb[i - 1].similarity + 1e-12);
    assert.ok(nb.every((n) => !rows.find((r) => r.id === n.id)!.split?.startsWith("test")));
  });

  test("ONNX: the head alone takes the concatenation; fusing a composite head is refused", async () => {
    const { head: doc } = await readHeadVersion(ctx.store, "combo");
    const session = await InferenceSession.create(headToOnnx(doc));
    const embeddings = await textsByHand();
    const res = await session.run({
      embedding: new Tensor("float32", Float32Array.from(embeddings.flat()), [TEXTS.length, 16]),
    });
    const proba = res.probabilities.data as Float32Array;
    const served = await ctx.platform.predict("combo", { inputs: TEXTS });
    served.predictions.forEach((p, i) => {
      doc.labels.forEach((label, c) => {
        assert.ok(Math.abs(proba[i * 2 + c] - p.scores![label]) < 1e-5, `${i} ${label}`);
      });
    });
    await assert.rejects(
      ctx.platform.exportHead("combo", { fused: true }),
      (e: unknown) =>
        e instanceof UnsupportedError && /several backbones/.test(e.message) && e.field === "fused",
    );
  });

  test("a part without its cache names the part and the command that fixes it", async () => {
    await assert.rejects(
      ctx.platform.train({ dataset: "half", head: "half-combo", backbone: REF }),
      (e: unknown) =>
        e instanceof ValidationError &&
        /backbone part tiny-b of tiny-text\+tiny-b/.test(e.message) &&
        /headstart embed half --backbone tiny-b/.test(e.message),
    );
  });

  test("unknown or repeated parts are rejected as bad input", async () => {
    await assert.rejects(
      ctx.platform.embed("films", { backbone: REF }),
      (e: unknown) =>
        e instanceof ValidationError &&
        /headstart embed films --backbone tiny-text`, then `headstart embed films --backbone tiny-b/.test(
          e.message,
        ),
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "films", head: "bad", backbone: "tiny-text+nope" }),
      (e: unknown) => e instanceof ValidationError && /part nope does not exist/.test(e.message),
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "films", head: "bad", backbone: "tiny-text+tiny-text" }),
      (e: unknown) => e instanceof ValidationError && e.field === "backbone",
    );
    await assert.rejects(
      ctx.platform.requestTraining({ dataset: "films", head: "bad", backbone: "a+b+c+d+e" }),
      (e: unknown) => e instanceof ValidationError && /at most 4/.test(e.message),
    );
  });

  test("single-backbone head documents (no parts) still parse and serve", async () => {
    const legacy = {
      head: "old",
      version: "v1",
      type: "logreg",
      labels: ["neg", "pos"],
      backbone: { id: "glove-100d", sha256: "ab".repeat(32), dim: 100 },
      dataset: { name: "films", version: "x" },
      params: {},
      model: {},
      createdAt: "2026-01-01T00:00:00Z",
    };
    const parsed = HeadDocument.parse(legacy);
    assert.equal(parsed.backbone.parts, undefined);
    assert.equal(
      HeadDocument.safeParse({ ...legacy, backbone: { ...legacy.backbone, parts: [] } }).success,
      false,
    );
    const r = await ctx.platform.train({ dataset: "films", head: "plain" });
    const { head } = await readHeadVersion(ctx.store, "plain", r.version);
    assert.deepEqual(Object.keys(head.backbone).sort(), ["dim", "id", "sha256"]);
    const out = await ctx.platform.predict("plain", { inputs: TEXTS.slice(0, 2), neighbors: 1 });
    assert.deepEqual(
      out.predictions.map((p) => p.label),
      ["pos", "neg"],
    );
  });

  test("auto searches backbone sets with the same folds and keeps the chosen one", async () => {
    const candidates = ["tiny-text", "tiny-b", REF];
    const r = await ctx.platform.train({
      dataset: "films",
      head: "auto-combo",
      type: "auto",
      candidates: ["centroid"],
      backbones: candidates,
      seed: 2,
    });
    const search = r.search!;
    assert.deepEqual([...new Set(search.candidates.map((c) => c.backbone))], candidates);
    const chosen = search.candidates.filter((c) => c.chosen);
    assert.equal(chosen.length, 1);
    const { head } = await readHeadVersion(ctx.store, "auto-combo", r.version);
    assert.equal(head.backbone.id, chosen[0].backbone);
    // Ties keep the earlier candidate: the chosen score is the first best.
    const best = Math.max(...search.candidates.map((c) => c.score));
    assert.equal(chosen[0].score, best);
    assert.equal(
      search.candidates.find((c) => c.score === best),
      chosen[0],
    );
    // Every row embeds with both parts here, so the tiny-text candidates saw the same rows and folds
    // as a search over tiny-text alone: identical scores.
    const alone = await ctx.platform.train({
      dataset: "films",
      head: "auto-alone",
      type: "auto",
      candidates: ["centroid"],
      backbone: "tiny-text",
      seed: 2,
    });
    assert.deepEqual(
      alone.search!.candidates.map((c) => c.score),
      search.candidates.filter((c) => c.backbone === "tiny-text").map((c) => c.score),
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "films", head: "x", backbones: candidates }),
      (e: unknown) => e instanceof ValidationError && e.field === "backbones",
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "films", head: "x", type: "auto", backbone: REF, backbones: candidates }),
      (e: unknown) => e instanceof ValidationError && e.field === "backbones",
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "films", head: "x", type: "auto", backbones: [REF, "tiny-text", REF] }),
      (e: unknown) => e instanceof ValidationError && /twice/.test(e.message),
    );
  });

  test("CLI: train --backbone a+b, and --backbones adds a backbone column to auto's table", async () => {
    const env = { HEADSTART_STORE: ctx.store.root, HEADSTART_DEFAULT_BACKBONE: "tiny-text" };
    const train = await cli(["train", "films", "--head", "cli-combo", "--backbone", REF, "--json"], env);
    assert.equal(train.code, 0, train.stderr);
    const version = (JSON.parse(train.stdout) as { version: string }).version;
    assert.equal((await readHeadVersion(ctx.store, "cli-combo", version)).head.backbone.id, REF);
    const auto = await cli(
      [
        "train",
        "films",
        "--head",
        "cli-auto",
        "--type",
        "auto",
        "--candidates",
        "centroid",
        "--backbones",
        `tiny-b,${REF}`,
      ],
      env,
    );
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stdout, /^ {2}[* ] tiny-b {11}centroid /m);
    assert.match(auto.stdout, /^ {2}[* ] tiny-text\+tiny-b centroid /m);
    const dup = await cli(["train", "films", "--head", "cli-bad", "--backbone", "tiny-b+tiny-b"], env);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /tiny-b twice/);
  });

  test("API: train with backbone a+b; a repeated part is a 400", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const post = (body: unknown) =>
      app.request("/v1/heads/api-combo/train", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    let res = await post({ dataset: "films", backbone: REF });
    assert.equal(res.status, 200);
    const trained = (await res.json()) as { version: string };
    const { head } = await readHeadVersion(ctx.store, "api-combo", trained.version);
    assert.equal(head.backbone.id, REF);
    res = await post({ dataset: "films", backbone: "tiny-text+tiny-text" });
    assert.equal(res.status, 400);
    res = await post({ dataset: "films", backbone: "tiny-text+" });
    assert.equal(res.status, 400);
    res = await app.request("/v1/heads/api-combo/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: ["great fun wonderful"] }),
    });
    assert.equal(res.status, 200);
    assert.equal(
      ((await res.json()) as { predictions: Array<{ label: string }> }).predictions[0].label,
      "pos",
    );
  });
});
