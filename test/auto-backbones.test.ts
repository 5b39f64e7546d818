/**
 * `train --type auto` with no backbone named: it searches every backbone cached for the dataset's
 * current rows and their `+` sets, keeps a single backbone unless a set wins by more than the folds'
 * noise, screens out hopeless inputs, stops at its time budget, and what it picked is what
 * predict, export and batch predictions use.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { recommendedBackbonesFor } from "../shared/backbone/defaults.ts";
import type { BackboneSpec } from "../shared/backbone/spec.ts";
import { loadConfig, parseBackboneList, RECOMMENDED_BACKBONES } from "../shared/config.ts";
import { readJob } from "../shared/embed/job.ts";
import { ValidationError } from "../shared/errors.ts";
import { backboneSets } from "../shared/heads/backbone-candidates.ts";
import { withinOneSe } from "../shared/heads/cv-search.ts";
import { headToOnnx } from "../shared/heads/export-onnx.ts";
import { searchMatrix } from "../shared/heads/search-matrix.ts";
import { readHeadVersion } from "../shared/heads/version.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { decodeUtf8 } from "../shared/store/json.ts";
import { cli } from "./helpers/cli.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { TINY_DIM, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

/** Two independent factors: the weather (a) and the temperature (b), two words for each value. */
const WORDS = {
  sun: ["sunny", "bright"],
  rain: ["rainy", "grey"],
  hot: ["hot", "warm"],
  cold: ["cold", "icy"],
};
const FILLER = ["the", "day", "was", "and", "it", "felt"];
const VOCAB = [...Object.values(WORDS).flat(), ...FILLER];

/**
 * A backbone that sees one factor: its words one way or the other along axis 0, every other word
 * the same vector, so the other factor is invisible to it (as a sentence encoder may miss what
 * word vectors catch). Words of one value differ a little, by `salt`.
 */
function factorVector(plus: readonly string[], minus: readonly string[], salt: string) {
  return (word: string) => {
    const v = Float32Array.from({ length: TINY_DIM }, (_, j) => (j === 1 ? 0.5 : 0));
    if (!plus.includes(word) && !minus.includes(word)) return v;
    const h = createHash("sha256").update(`${salt}\0${word}`).digest();
    for (let j = 2; j < TINY_DIM; j++) v[j] = (h[j] / 255 - 0.5) * 0.2;
    v[0] = plus.includes(word) ? 1 : -1;
    return v;
  };
}

/**
 * `n` rows, each with one weather and one temperature word. `label`: both factors (four classes,
 * which needs both backbones) or the weather alone; `flip` of the weather labels are wrong, so
 * scores sit below 1 and differ by fold.
 */
function rows(n: number, label: "both" | "weather", flip = 0) {
  let s = 7;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const pick = (ws: readonly string[]) => ws[Math.floor(rand() * ws.length)];
  return Array.from({ length: n }, (_, i) => {
    const sun = i % 2 === 0;
    const hot = i % 4 < 2;
    const text = `${pick(FILLER)} ${pick(sun ? WORDS.sun : WORDS.rain)} ${pick(FILLER)} ${pick(hot ? WORDS.hot : WORDS.cold)} #${i}`;
    const weather = (rand() < flip ? !sun : sun) ? "sun" : "rain";
    return { id: `r${i}`, text, label: label === "both" ? `${weather}-${hot ? "hot" : "cold"}` : weather };
  });
}

const spec = (id: string, dim: number) => ({ id, dim }) as BackboneSpec;

describe("auto over the dataset's cached backbones", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;

  before(async () => {
    ctx = await tinyPlatform();
    for (const [id, plus, minus] of [
      ["tiny-a", WORDS.sun, WORDS.rain],
      ["tiny-b", WORDS.hot, WORDS.cold],
    ] as const) {
      await writeTinyBackbone(join(ctx.dir, id), id, { vocab: VOCAB, vector: factorVector(plus, minus, id) });
      await ctx.platform.addBackbone(join(ctx.dir, id));
    }
    for (const [dataset, data] of [
      ["both", rows(160, "both")],
      ["weather", rows(160, "weather", 0.1)],
    ] as const) {
      await ctx.platform.putManifest(dataset, "jsonl", toJsonlText(data));
      for (const backbone of ["tiny-a", "tiny-b"]) await ctx.platform.embed(dataset, { backbone });
    }
  });
  after(() => ctx.cleanup());

  test("backboneSets: every set of up to 4 parts, cheapest first, parts by dimension, at most 8", () => {
    assert.deepEqual(backboneSets([spec("use", 512), spec("glove", 100)]), ["glove", "use", "glove+use"]);
    const four = backboneSets([spec("d", 400), spec("c", 300), spec("b", 200), spec("a", 100)]);
    assert.deepEqual(four, ["a", "b", "c", "a+b", "d", "a+c", "a+d", "b+c"]);
    assert.deepEqual(backboneSets([]), []);
  });

  test("withinOneSe: paired fold differences against one standard error", () => {
    assert.equal(withinOneSe([0.9, 0.9, 0.9], [0.9, 0.9, 0.9]), true); // a tie
    assert.equal(withinOneSe([0.91, 0.89, 0.93, 0.87], [0.9, 0.9, 0.9, 0.9]), true); // noise
    assert.equal(withinOneSe([0.95, 0.96, 0.94, 0.95], [0.9, 0.91, 0.9, 0.89]), false); // a clear gain
  });

  test("a set is chosen where each backbone sees half the signal", async () => {
    const r = await ctx.platform.train({
      dataset: "both",
      head: "both",
      type: "auto",
      candidates: ["logreg", "centroid"],
    });
    const search = r.search!;
    assert.deepEqual(
      [...new Set(search.candidates.map((c) => c.backbone))],
      ["tiny-a", "tiny-b", "tiny-a+tiny-b"],
    );
    const chosen = search.candidates.find((c) => c.chosen)!;
    assert.equal(chosen.backbone, "tiny-a+tiny-b");
    assert.ok(r.metrics!.accuracy > 0.9, `accuracy ${r.metrics!.accuracy}`);
    // Each single backbone tells only two of the four classes apart: screened out of the full grids.
    const screened = (search.skipped ?? []).filter((s) => /screened out/.test(s.reason));
    assert.deepEqual([...new Set(screened.map((s) => s.backbone))].sort(), ["tiny-a", "tiny-b"]);
    const { head } = await readHeadVersion(ctx.store, "both", r.version);
    assert.equal(head.backbone.id, "tiny-a+tiny-b");
    assert.deepEqual(
      head.backbone.parts!.map((p) => p.id),
      ["tiny-a", "tiny-b"],
    );
    const matrix = searchMatrix(search)!;
    assert.deepEqual(matrix.backbones, ["tiny-a", "tiny-b", "tiny-a+tiny-b"]);
    assert.equal(matrix.backbones[matrix.chosen!.backbone], "tiny-a+tiny-b");
  });

  test("the chosen set serves: predict embeds with each part, export takes the concatenation", async () => {
    const p = await ctx.platform.predict("both", { inputs: ["the sunny day hot #1", "it grey was icy #2"] });
    assert.deepEqual(
      p.predictions.map((x) => x.label),
      ["sun-hot", "rain-cold"],
    );
    const { head } = await readHeadVersion(ctx.store, "both", p.version);
    const onnx = await headToOnnx(head);
    assert.ok(onnx.byteLength > 0);
    // A batch job over rows never embedded embeds them with each part, then scores as predict does.
    const unseen = rows(12, "both").map((r) => ({ ...r, id: `u${r.id}` }));
    await ctx.platform.putManifest("unseen", "jsonl", toJsonlText(unseen));
    const { job } = await ctx.platform.startBatchPrediction({ head: "both", dataset: "unseen" });
    const done = await ctx.platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded", done.error);
    assert.equal(done.counts?.succeeded, unseen.length);
    const lines = (
      await Promise.all(done.outputs.map(async (k) => decodeUtf8((await ctx.store.get(k))!.body)))
    )
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; label: string });
    const online = await ctx.platform.predict("both", { inputs: unseen.map((r) => r.text) });
    assert.deepEqual(
      lines.map((l) => l.label),
      online.predictions.map((x) => x.label),
    );
  });

  test("a single backbone is kept where a set does not pay", async () => {
    const r = await ctx.platform.train({
      dataset: "weather",
      head: "weather",
      type: "auto",
      candidates: ["logreg", "centroid"],
    });
    const chosen = r.search!.candidates.find((c) => c.chosen)!;
    assert.equal(chosen.backbone, "tiny-a");
    const set = r.search!.candidates.filter((c) => c.backbone === "tiny-a+tiny-b");
    assert.ok(set.length > 0, "the set was tried");
    const { head } = await readHeadVersion(ctx.store, "weather", r.version);
    assert.equal(head.backbone.id, "tiny-a");
    assert.equal(head.backbone.parts, undefined);
  });

  test("the budget stops the search after its first candidate; what was not tried is listed", async () => {
    const r = await ctx.platform.train({
      dataset: "both",
      head: "budget",
      type: "auto",
      candidates: ["logreg", "centroid"],
      budgetSeconds: 1e-6,
    });
    const search = r.search!;
    assert.equal(search.candidates.length, 1);
    assert.equal(search.budgetSeconds, 1e-6);
    assert.ok((search.skipped ?? []).length >= 2);
    assert.ok(search.skipped!.every((s) => /budget/.test(s.reason)));
    await assert.rejects(
      ctx.platform.train({ dataset: "both", head: "x", type: "logreg", budgetSeconds: 10 }),
      (e: unknown) => e instanceof ValidationError && e.field === "budgetSeconds",
    );
    await assert.rejects(
      ctx.platform.train({ dataset: "both", head: "x", type: "auto", budgetSeconds: -1 }),
      (e: unknown) => e instanceof ValidationError && e.field === "budgetSeconds",
    );
  });

  test("a backbone that has not embedded the current rows is left out of the search", async () => {
    await ctx.platform.putManifest("newer", "jsonl", toJsonlText(rows(80, "weather")));
    for (const backbone of ["tiny-a", "tiny-b"]) await ctx.platform.embed("newer", { backbone });
    await ctx.platform.putManifest("newer", "jsonl", toJsonlText(rows(100, "weather")));
    await ctx.platform.embed("newer", { backbone: "tiny-b" });
    const r = await ctx.platform.train({
      dataset: "newer",
      head: "newer",
      type: "auto",
      candidates: ["centroid"],
    });
    const { head } = await readHeadVersion(ctx.store, "newer", r.version);
    assert.equal(head.backbone.id, "tiny-b");
    assert.ok(r.search!.candidates.every((c) => c.backbone === undefined));
  });

  test("CLI: the search prints backbone × head type with the choice starred", async () => {
    const env = { HEADSTART_STORE: ctx.store.root, HEADSTART_DEFAULT_BACKBONE: "tiny-text" };
    const r = await cli(
      [
        "train",
        "both",
        "--head",
        "cli-both",
        "--type",
        "auto",
        "--candidates",
        "logreg,centroid",
        "--budget-seconds",
        "600",
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model selection \(5-fold CV, macroF1\): [\d.]+ s \(budget 600 s\)/);
    assert.match(r.stdout, /^ {2} +logreg +centroid$/m);
    assert.match(r.stdout, /^ {2}tiny-a\+tiny-b +[\d.]+\*? +[\d.]+\*?$/m);
    assert.match(r.stdout, /^ {2}tiny-a +[\d.]+ +[–\d.]+$/m);
    assert.match(r.stdout, /^ {2}not searched:\n {4}tiny-[ab] \(logreg, centroid\): screened out: scored /m);
    const bad = await cli(
      ["train", "both", "--head", "x", "--type", "auto", "--budget-seconds", "soon"],
      env,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--budget-seconds takes a number/);
  });

  test("ingest --backbones embeds with each backbone in one run; auto then searches them", async () => {
    const env = { HEADSTART_STORE: ctx.store.root, HEADSTART_DEFAULT_BACKBONE: "tiny-text" };
    const manifest = join(ctx.dir, "cli-both.jsonl");
    await writeFile(manifest, toJsonlText(rows(80, "both")));
    const r = await cli(
      ["ingest", manifest, "--dataset", "cli-both", "--backbones", "tiny-a,tiny-b", "--json"],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { embeddings: Array<{ job: { backbone: string; state: string } }> };
    assert.deepEqual(
      out.embeddings.map((e) => [e.job.backbone, e.job.state]),
      [
        ["tiny-a", "succeeded"],
        ["tiny-b", "succeeded"],
      ],
    );
    const t = await ctx.platform.train({
      dataset: "cli-both",
      head: "cli-both",
      type: "auto",
      candidates: ["logreg"],
    });
    assert.deepEqual([...new Set(t.search!.candidates.map((c) => c.backbone))].sort(), [
      "tiny-a",
      "tiny-a+tiny-b",
      "tiny-b",
    ]);
    for (const args of [
      ["--backbones", "tiny-a,tiny-a"],
      ["--backbones", "tiny-a", "--backbone", "tiny-b"],
      ["--backbones", "tiny-a,,tiny-b"],
    ]) {
      const bad = await cli(["ingest", manifest, "--dataset", "cli-bad", ...args], env);
      assert.equal(bad.code, 2, args.join(" "));
      assert.match(bad.stderr, /backbones/);
    }
  });

  test("recommended: the set of the rows' modality; none for imported or mixed rows", () => {
    const sets = { text: ["t1", "t2"], image: ["i1"] };
    const status = (modalities: Record<string, number>, imported?: { backbone: string }) =>
      ({ dataset: "d", modalities, ...(imported ? { imported } : {}) }) as never;
    assert.deepEqual(recommendedBackbonesFor(status({ text: 3 }), sets), ["t1", "t2"]);
    assert.deepEqual(recommendedBackbonesFor(status({ image: 2, text: 0 }), sets), ["i1"]);
    for (const s of [
      status({ text: 1, image: 1 }),
      status({ text: 2 }, { backbone: "x" }),
      status({ audio: 1 }),
    ])
      assert.throws(
        () => recommendedBackbonesFor(s, sets),
        (e: unknown) => e instanceof ValidationError && e.field === "backbones",
      );
    assert.equal(parseBackboneList(" recommended"), "recommended");
    assert.deepEqual(RECOMMENDED_BACKBONES.text.slice(0, 2), ["glove-100d", "use-lite-512"]);
  });

  test("API: ingest with backbones= answers one job per backbone", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/datasets/api-both/manifest?backbones=tiny-a,tiny-b", {
      method: "PUT",
      headers: { "content-type": "application/x-ndjson" },
      body: toJsonlText(rows(40, "both")),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { jobs: Array<{ backbone: string }>; job?: unknown };
    assert.deepEqual(
      body.jobs.map((j) => j.backbone),
      ["tiny-a", "tiny-b"],
    );
    assert.equal(body.job, undefined);
    await ctx.platform.local.idle();
    const bad = await app.request("/v1/datasets/api-bad/manifest?backbones=tiny-a,nope", {
      method: "PUT",
      headers: { "content-type": "application/x-ndjson" },
      body: toJsonlText(rows(8, "both")),
    });
    assert.equal(bad.status, 404);
    // Refused before anything was stored.
    assert.equal((await ctx.store.list("datasets/api-bad/")).length, 0);
  });

  test("uploads (HEADSTART_UPLOAD_BACKBONES): one job per backbone, run as one batch job", async () => {
    const config = loadConfig(
      { HEADSTART_UPLOAD_BACKBONES: "tiny-a,tiny-b" },
      { store: ctx.store.root, defaultBackbone: "tiny-text", modelsDir: join(ctx.dir, "models") },
    );
    assert.deepEqual(config.uploadBackbones, ["tiny-a", "tiny-b"]);
    const platform = new Platform(ctx.store, config);
    await platform.putManifest("dropped", "jsonl", toJsonlText(rows(24, "both")));
    const jobs = await platform.submitUploadEmbedding("dropped");
    assert.deepEqual(
      jobs.map((j) => j.backbone),
      ["tiny-a", "tiny-b"],
    );
    await platform.local.idle();
    for (const j of jobs) assert.equal((await readJob(ctx.store, j.job))?.value.state, "succeeded");
    // Without the setting: the default backbone's job alone.
    const [only] = await ctx.platform.submitUploadEmbedding("dropped");
    assert.equal(only.backbone, "tiny-text");
    await ctx.platform.local.idle();
    assert.throws(
      () => loadConfig({ HEADSTART_UPLOAD_BACKBONES: "tiny-a,tiny-a" }),
      (e: unknown) => e instanceof ValidationError && e.field === "HEADSTART_UPLOAD_BACKBONES",
    );
  });
});
