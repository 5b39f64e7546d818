/**
 * `npm run bench` — figures for docs/benchmarks.md, measured side by side in one run:
 *   0. sentences/s of every text backbone vs raw `session.run` on the same batches (and, for
 *      use-lite-512, vs the package's own runtime);
 *   1. the batch stage against its raw limit on the very same items, per backbone (bench-embed.ts);
 *   2. head training time and test accuracy vs scikit-learn on the same exported embeddings;
 *   3. batch scoring over cached embeddings (what a batch-prediction job does per row) vs the same
 *      affine map and softmax in plain JS loops.
 * Prints the machine and medians of interleaved repetitions. Not a test: nothing is asserted.
 *
 *   npm run bench -- [--items 5000] [--sentences 1000] [--reps 3] [--sections text,embedding,heads]
 *                    [--embed-backbones glove-100d,use-lite-512,mobilenet-v2-taps-384]
 *                    [--store .headstart-bench] [--json]
 *
 * `--sections embed --json` prints, per backbone (`--embed-backbones`, default glove-100d,
 * use-lite-512 and the image default), `{stageDocsPerSec, rawDocsPerSec, ratio, …}`: the batch stage
 * against the raw limit on the same items (scripts/bench-embed.ts says which limit per modality).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { Tensor } from "onnxruntime-node";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import type { TextEmbedder } from "../shared/backbone/text-embedder.ts";
import { packIds } from "../shared/backbone/tokenizer.ts";
import { SparseTextEmbedder } from "../shared/backbone/use-embedder.ts";
import { loadConfig, PACKAGE_ROOT } from "../shared/config.ts";
import { DEMO_HEAD, runDemo } from "../shared/demo.ts";
import { loadEmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { DEFAULT_BATCH_SIZE } from "../shared/embed/run.ts";
import { loadHead, predictVectors } from "../shared/heads/predict.ts";
import { fitLogReg, type LogRegModel, predictLogReg } from "../shared/learn/logreg.ts";
import { classificationMetrics } from "../shared/learn/metrics.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { imdbSentences, machine } from "./bench-common.ts";
import { EMBED_BACKBONES, embedBench } from "./bench-embed.ts";

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    items: { type: "string", default: "5000" },
    reps: { type: "string", default: "3" },
    sentences: { type: "string", default: "1000" },
    /** Comma-separated subset of: text, embedding (or embed), heads, scoring. */
    sections: { type: "string", default: "text,embedding,heads,scoring" },
    /** One JSON document on stdout; the human-readable lines go to stderr. */
    json: { type: "boolean", default: false },
    /** The embed section's backbones (scripts/bench-embed.ts). */
    "embed-backbones": { type: "string", default: EMBED_BACKBONES.join(",") },
    store: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench") },
  },
});
const ITEMS = Number(args.items);
const REPS = Number(args.reps);
const SENTENCES = Number(args.sentences);
const SECTIONS = new Set(String(args.sections).split(","));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x: number, d = 2) => x.toFixed(d);
/** Human-readable lines: stdout, or stderr under --json so stdout holds the JSON document alone. */
const say = (...parts: unknown[]) => (args.json ? console.error : console.log)(...parts);

async function headBench(platform: Platform) {
  const log = makeLogger("bench", "warn");
  await runDemo(platform, { log }); // full IMDB in the bench store: embedded once, reused later
  const backbone = await platform.backbone("glove-100d");
  const exported = await platform.export("imdb", join(platform.config.store, "export-imdb"), "glove-100d");
  const data = await loadEmbeddedDataset(platform.store, "imdb", backbone);
  const labels = ["neg", "pos"];
  const split = (want: "train" | "test") => {
    const idx = data.rows.flatMap((r, i) => (r.split === want ? [i] : []));
    const X = new Float32Array(idx.length * data.dim);
    idx.forEach((r, i) => {
      X.set(data.vectors.subarray(r * data.dim, (r + 1) * data.dim), i * data.dim);
    });
    return { X, n: idx.length, y: Int32Array.from(idx, (i) => labels.indexOf(String(data.rows[i].label))) };
  };
  const train = split("train");
  const test = split("test");

  const ours: number[] = [];
  const theirs: number[] = [];
  let accuracy = 0;
  let sk: { accuracy: number; sklearn: string; trainSeconds: number } | undefined;
  let sklearnError: string | undefined;
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    const model = fitLogReg(train.X, train.n, data.dim, train.y, 2);
    ours.push((performance.now() - t0) / 1000);
    accuracy = classificationMetrics(test.y, predictLogReg(model, test.X, test.n), labels).accuracy;
    try {
      const { stdout } = await run("/usr/bin/python3", [
        join(PACKAGE_ROOT, "scripts", "sklearn_baseline.py"),
        join(platform.config.store, "export-imdb"),
      ]);
      sk = JSON.parse(stdout.trim().split("\n").pop()!);
      theirs.push(sk!.trainSeconds);
    } catch (err) {
      sklearnError = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    }
  }
  return {
    rows: exported.rows,
    trainRows: train.n,
    testRows: test.n,
    ours: { accuracy, trainSeconds: median(ours) },
    sklearn: sk
      ? { accuracy: sk.accuracy, version: sk.sklearn, trainSeconds: median(theirs) }
      : { unavailable: sklearnError },
  };
}

/**
 * Batch scoring: the demo's logistic head (GloVe-100d, 2 classes) scores all 50,000 IMDB rows as a
 * batch-prediction job does (`predictVectors`: the type's predict, calibration, the decision and
 * one prediction record a row), next to the same map — x·Wᵀ + b, softmax, arg-max — in plain JS.
 * Both run on the calling thread: rows/s is per core.
 */
async function scoringBench(platform: Platform) {
  await runDemo(platform, { log: makeLogger("bench", "warn") });
  const head = await loadHead(platform.store, DEMO_HEAD);
  const model = head.model as LogRegModel;
  const data = await loadEmbeddedDataset(
    platform.store,
    "imdb",
    await platform.backbone(head.doc.backbone.id),
  );
  const n = data.rows.length;
  const ours: number[] = [];
  const raw: number[] = [];
  let agree = 0;
  for (let r = 0; r < REPS; r++) {
    let t0 = performance.now();
    const predictions = await predictVectors(head, data.vectors, n);
    ours.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    const best = rawLogisticArgmax(model, data.vectors, n);
    raw.push((performance.now() - t0) / 1000);
    agree = predictions.filter((p, i) => p.label === head.doc.labels[best[i]]).length;
  }
  return {
    rows: n,
    dim: data.dim,
    classes: model.k,
    oursRowsPerSec: n / median(ours),
    rawRowsPerSec: n / median(raw),
    agreement: agree / n,
    oursSeconds: ours,
    rawSeconds: raw,
  };
}

/** x·Wᵀ + b, a softmax and the arg-max per row, as plain loops (the baseline of `scoringBench`). */
function rawLogisticArgmax(model: LogRegModel, X: Float32Array, n: number): Int32Array {
  const { d, k, weights, bias } = model;
  const best = new Int32Array(n);
  const z = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      let s = bias[c];
      for (let j = 0; j < d; j++) s += weights[c * d + j] * X[i * d + j];
      z[c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) {
      z[c] = Math.exp(z[c] - max);
      sum += z[c];
    }
    let arg = 0;
    for (let c = 0; c < k; c++) {
      z[c] /= sum;
      if (z[c] > z[arg]) arg = c;
    }
    best[i] = arg;
  }
  return best;
}

/** Each text backbone's default micro-batch: the encoder pays for padding quadratically. */
const TEXT_BACKBONES: Record<string, number> = {
  "glove-100d": DEFAULT_BATCH_SIZE,
  "glove-100d-meanmax": DEFAULT_BATCH_SIZE,
  "use-lite-512": 32,
  "use-lite-512-int8": 32,
};

/**
 * Sentences/s of every text backbone, side by side on the same sentences: our embedder (tokenize,
 * length-sorted micro-batches, run) and raw `session.run` on the very batches it builds; for
 * the use-lite-512 variants also the package's own TF.js runtime, in a child process (in this one its wasm
 * threads would compete with onnxruntime's).
 */
async function textBackboneBench(config: ReturnType<typeof loadConfig>) {
  const sentences = await imdbSentences(SENTENCES);
  const inputs = sentences.map((text) => ({ text }));
  const rows: Array<{ backbone: string; dim: number; ours: number; raw: number; pkg?: number }> = [];
  // The package runs one model: both use-lite variants are compared with the same timing.
  let packageRate: number | undefined;
  for (const [id, micro] of Object.entries(TEXT_BACKBONES)) {
    const embedder = await builtInEmbedder(id, config.modelsDir, { microBatch: micro });
    const session = await (embedder as TextEmbedder | SparseTextEmbedder).session();
    const batches: Record<string, Tensor>[] = [];
    if (embedder instanceof SparseTextEmbedder) {
      const lists = sentences.map((t) => embedder.tokenIds(t));
      const order = lists.map((_, i) => i).sort((a, b) => lists[a]!.length - lists[b]!.length);
      for (let s = 0; s < order.length; s += micro) {
        batches.push(embedder.feeds(order.slice(s, s + micro).map((i) => lists[i]!)));
      }
    } else {
      const tx = embedder as TextEmbedder;
      const lists = sentences.map((t) => tx.tokenIds(t));
      const order = lists.map((_, i) => i).sort((a, b) => lists[a]!.length - lists[b]!.length);
      const { ids, mask } = tx.spec.io;
      for (let s = 0; s < order.length; s += micro) {
        const rowsOf = order.slice(s, s + micro);
        const enc = packIds(rowsOf.map((i) => lists[i]!));
        batches.push({
          [ids]: new Tensor("int64", enc.ids, [rowsOf.length, enc.seqLen]),
          [mask]: new Tensor("int64", enc.mask, [rowsOf.length, enc.seqLen]),
        });
      }
    }
    await embedder.embed(inputs.slice(0, micro)); // warm-up
    const ours: number[] = [];
    const raw: number[] = [];
    for (let r = 0; r < REPS; r++) {
      let t0 = performance.now();
      await embedder.embed(inputs);
      ours.push((performance.now() - t0) / 1000);
      t0 = performance.now();
      for (const feeds of batches) await session.run(feeds);
      raw.push((performance.now() - t0) / 1000);
    }
    let pkg: number | undefined = id.startsWith("use-lite-512") ? packageRate : undefined;
    if (id.startsWith("use-lite-512") && pkg === undefined) {
      // One repetition: it is two orders of magnitude slower and only sets the scale.
      const { stdout } = await run(process.execPath, [
        ...process.execArgv,
        join(PACKAGE_ROOT, "scripts", "bench-use.ts"),
        "--package-child",
        "--set=sentences",
        `--sentences=${SENTENCES}`,
        "--micro-batch=32",
      ]);
      pkg =
        sentences.length /
        (JSON.parse(stdout.trim().split("\n").pop() as string) as { seconds: number }).seconds;
      packageRate = pkg;
    }
    rows.push({
      backbone: id,
      dim: embedder.spec.dim,
      ours: sentences.length / median(ours),
      raw: sentences.length / median(raw),
      pkg,
    });
  }
  return { sentences: sentences.length, rows };
}

const config = loadConfig(process.env, { store: args.store, logLevel: "warn" });
const platform = new Platform(new FsStore(config.store), config);
const m = await machine();
say(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, onnxruntime ${m.onnxruntime}`);
say(`reps: ${REPS} (medians), store: ${config.store}\n`);

const tb = SECTIONS.has("text") ? await textBackboneBench(config) : undefined;
if (tb) {
  say(`text backbones: sentences/s on the first ${tb.sentences} IMDB sentences (medians of ${REPS}):`);
  say("| backbone | dim | headstart | raw session.run | package runtime | headstart / package |");
  say("|---|---:|---:|---:|---:|---:|");
  for (const r of tb.rows) {
    const pkg = r.pkg === undefined ? "–" : fmt(r.pkg, 1);
    const ratio = r.pkg === undefined ? "–" : `${fmt(r.ours / r.pkg, 1)}×`;
    say(`| ${r.backbone} | ${r.dim} | ${fmt(r.ours, 0)} | ${fmt(r.raw, 0)} | ${pkg} | ${ratio} |`);
  }
  say("");
}

const e =
  SECTIONS.has("embedding") || SECTIONS.has("embed")
    ? await embedBench(platform, config, {
        backbones: String(args["embed-backbones"]).split(","),
        items: ITEMS,
        reps: REPS,
        log: (line) => console.error(line),
      })
    : undefined;
for (const f of e ?? []) {
  const runs = (xs: number[]) => xs.map((s) => fmt(s)).join(", ");
  say(`embedding (${f.backbone}, ${f.docs} items, stage batches of ${DEFAULT_BATCH_SIZE}):`);
  say(`  batch stage      ${fmt(f.stageDocsPerSec, 1)} items/s  (runs: ${runs(f.stageSeconds)} s)`);
  say(`  embedder         ${fmt(f.embedDocsPerSec, 1)} items/s  (runs: ${runs(f.embedSeconds)} s)`);
  say(`  session.run      ${fmt(f.sessionRunDocsPerSec, 1)} items/s  (runs: ${runs(f.sessionRunSeconds)} s)`);
  if (f.decode) {
    const d = f.decode;
    say(
      `  per image, one at a time: decode + resize ${fmt(d.decodeResizeMs)} ms (decode alone ${fmt(d.decodeNativeMs)} ms), to float32 ${fmt(d.toTensorMs)} ms`,
    );
  }
  say(`  stage / raw (${f.raw === "embed" ? "embedder" : "session.run"}): ${fmt(f.ratio, 3)}\n`);
}

const h = SECTIONS.has("heads") ? await headBench(platform) : undefined;
if (h) {
  say(`logistic regression on exported IMDB embeddings (${h.trainRows} train / ${h.testRows} test, 100-d):`);
  say(`  headstart   accuracy ${fmt(100 * h.ours.accuracy)}%  fit ${fmt(h.ours.trainSeconds, 3)} s`);
  if ("accuracy" in h.sklearn) {
    say(
      `  sklearn ${h.sklearn.version} accuracy ${fmt(100 * (h.sklearn.accuracy ?? 0))}%  fit ${fmt(h.sklearn.trainSeconds ?? 0, 3)} s`,
    );
    say(
      `  fit time ratio headstart / sklearn: ${fmt(h.ours.trainSeconds / (h.sklearn.trainSeconds ?? 1), 2)}`,
    );
  } else {
    say(`  sklearn: not available (${h.sklearn.unavailable})`);
  }
}
const sc = SECTIONS.has("scoring") ? await scoringBench(platform) : undefined;
if (sc) {
  say(
    `\nbatch scoring over cached embeddings (${sc.rows} rows × ${sc.dim}, logistic head, ${sc.classes} classes, one thread):`,
  );
  say(`  headstart (predictVectors)  ${fmt(sc.oursRowsPerSec, 0)} rows/s`);
  say(`  raw JS affine + softmax     ${fmt(sc.rawRowsPerSec, 0)} rows/s`);
  say(
    `  ratio ${fmt(sc.oursRowsPerSec / sc.rawRowsPerSec, 2)}, same labels on ${fmt(100 * sc.agreement)}% of rows`,
  );
}
const embed = e ? Object.fromEntries(e.map(({ backbone, ...figures }) => [backbone, figures])) : undefined;
const all = { machine: m, textBackbones: tb, embed, heads: h, scoring: sc };
if (args.json) console.log(JSON.stringify(all, null, 2));
else say(`\n${JSON.stringify(all)}`);
