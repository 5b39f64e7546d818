/**
 * `npm run bench:images-stage` — one image backbone on the whole of Fashion-MNIST (Debian `dataset-fashion-mnist`):
 *   1. embedding throughput of the batch stage vs our ImageEmbedder vs raw `session.run` on
 *      pre-decoded batches of the very same planned items;
 *   2. a linear probe (logreg on the 60k train embeddings, test accuracy on the 10k), with C
 *      chosen by k-fold CV over the logreg kind's grid as well as the default;
 *   3. few-shot: `--shots` train images per class, drawn with seeds 0..`--seeds`-1, logreg and
 *      nearest-centroid heads, accuracy on the whole test split (mean ± sd over draws).
 * Prints the machine, then markdown tables for docs/benchmarks.md. Not a test: nothing is asserted.
 *
 *   npm run bench:images-stage -- [--backbone mobilenet-v2-1280] [--limit N] [--reps 1] [--throughput-items 2000] [--throughput-reps 3]
 *                           [--cv-folds 3] [--shots 10] [--seeds 5] [--reuse-embeddings]
 *
 * The images become PNG files of a dataset in the bench store (`fashion-mnist`, or
 * `fashion-mnist-first<N>` with `--limit N`, so a smoke run never shares a cache with the full
 * one); files are written once and reused while the manifest is unchanged.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { Tensor } from "onnxruntime-node";
import type { ImageEmbedder } from "../shared/backbone/image-embedder.ts";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import type { EmbedInput } from "../shared/backbone/spec.ts";
import { isCommitted } from "../shared/cache/shards.ts";
import { loadConfig, PACKAGE_ROOT } from "../shared/config.ts";
import { loadEmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { readShardPlan } from "../shared/embed/plan.ts";
import { DEFAULT_BATCH_SIZE, runEmbedShards } from "../shared/embed/run.ts";
import { ValidationError } from "../shared/errors.ts";
import { decodeImage, pixelsToTensor } from "../shared/images/decode.ts";
import { keys } from "../shared/layout.ts";
import { headKind } from "../shared/learn/registry.ts";
import { foldIndices, mulberry32, shuffleInPlace, stratifiedKFold } from "../shared/learn/split.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { machine } from "./bench-common.ts";
import { FASHION_SOURCE, putFashionMnist } from "./fashion-dataset.ts";
import { FASHION_CLASSES } from "./idx.ts";

const { values: args } = parseArgs({
  options: {
    limit: { type: "string" },
    backbone: { type: "string", default: "mobilenet-v2-1280" },
    reps: { type: "string", default: "1" },
    "throughput-items": { type: "string", default: "2000" },
    "throughput-reps": { type: "string", default: "3" },
    "cv-folds": { type: "string", default: "3" },
    shots: { type: "string", default: "10" },
    seeds: { type: "string", default: "5" },
    "reuse-embeddings": { type: "boolean", default: false },
    source: { type: "string", default: FASHION_SOURCE },
    store: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench", "images") },
  },
});

function intOption(name: keyof typeof args, min: number): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) {
    throw new ValidationError(`--${name} must be an integer ≥ ${min}, got ${args[name]}`, { field: name });
  }
  return v;
}
const LIMIT = args.limit === undefined ? undefined : intOption("limit", 1);
const REPS = intOption("reps", 1);
const THROUGHPUT_ITEMS = intOption("throughput-items", 1);
const THROUGHPUT_REPS = intOption("throughput-reps", 1);
const CV_FOLDS = intOption("cv-folds", 0);
const SHOTS = intOption("shots", 1);
const SEEDS = intOption("seeds", 1);
if (CV_FOLDS === 1)
  throw new ValidationError("--cv-folds must be 0 (no CV) or at least 2", { field: "cv-folds" });

const BACKBONE = String(args.backbone);
const CLASSES: readonly string[] = FASHION_CLASSES;
/** ImageEmbedder's default micro-batch: what each of its `session.run` calls sees. */
const MICRO_BATCH = 32;
/** Published raw-pixel scikit-learn baselines (Xiao et al. 2017, arXiv:1708.07747, benchmark table). */
const PUBLISHED = [
  { head: "logistic regression", accuracy: "≈ 84" },
  { head: "MLP", accuracy: "87.0" },
  { head: "SVC, RBF kernel", accuracy: "89.7" },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const meanSd = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
};
const fmt = (x: number, d = 2) => x.toFixed(d);
const secs = (t0: number) => (performance.now() - t0) / 1000;
const note = (msg: string) => process.stderr.write(`${msg}\n`);

async function embeddingBench(platform: Platform, config: ReturnType<typeof loadConfig>, dataset: string) {
  const store = platform.store;
  const embedder = (await loadEmbedder(store, BACKBONE, config)) as ImageEmbedder;
  const pre = embedder.spec.preprocessing;
  if (pre.type !== "image") throw new Error(`${BACKBONE} is not an image backbone`);
  const job = await platform.planEmbed(dataset, { backbone: BACKBONE });
  const items = job.items.toEmbed;

  // 1. The batch stage, from a fresh cache each rep (the plans are kept: they are the job).
  const clearCache = async () => {
    for (const o of await store.list(keys.cachePrefix(BACKBONE, dataset))) {
      if (!o.key.includes("/_plan-")) await store.delete(o.key);
    }
  };
  const stage: number[] = [];
  // runEmbedShards does not move the job's state (the job runner does), so ask the cache.
  let reuse = args["reuse-embeddings"] as boolean;
  for (const shard of job.shards) reuse &&= await isCommitted(store, BACKBONE, dataset, shard);
  if (reuse) note("stage: reusing the committed embeddings (--reuse-embeddings): not timed");
  for (let r = 0; r < REPS && !reuse; r++) {
    await clearCache();
    const t0 = performance.now();
    const res = await runEmbedShards(store, job, embedder, {
      onProgress: (e) => {
        if (e.type === "shard")
          note(`  stage rep ${r + 1}: shard ${e.shard}, ${e.items} images in ${fmt(e.seconds, 1)} s`);
      },
    });
    if (res.itemsEmbedded !== items || res.itemsFailed !== 0) {
      throw new Error(`stage embedded ${res.itemsEmbedded} of ${items} items, ${res.itemsFailed} failed`);
    }
    stage.push(secs(t0));
  }

  // 2. The same planned items (the first THROUGHPUT_ITEMS, in plan order), bytes read up front.
  const planned = [];
  for (const shard of job.shards) {
    if (planned.length >= THROUGHPUT_ITEMS) break;
    planned.push(...(await readShardPlan(store, BACKBONE, dataset, shard)).items);
  }
  const subset = planned.slice(0, THROUGHPUT_ITEMS);
  const inputs: EmbedInput[] = await Promise.all(
    subset.map(async (it) => ({ image: (await store.get(keys.datasetFile(dataset, it.image!)))!.body })),
  );
  const { width, height, resize, scale, offset } = pre;
  const per = width * height * 3;
  // Pre-decoded outside any timing: raw runs measure the model alone.
  const batches: Array<{ pixels: Float32Array; b: number }> = [];
  for (let s = 0; s < inputs.length; s += MICRO_BATCH) {
    const chunk = inputs.slice(s, s + MICRO_BATCH);
    const decoded = await Promise.all(
      chunk.map((x) => decodeImage((x as { image: Uint8Array }).image, { width, height, resize })),
    );
    const pixels = new Float32Array(chunk.length * per);
    decoded.forEach((d, j) => {
      pixelsToTensor(d, { scale, offset }, pixels, j * per);
    });
    batches.push({ pixels, b: chunk.length });
  }
  const session = await embedder.session();
  const rawRun = async () => {
    const t0 = performance.now();
    for (const x of batches) {
      const out = await session.run({
        [pre.input]: new Tensor("float32", x.pixels, [x.b, height, width, 3]),
      });
      for (const t of Object.values(out)) t.dispose?.();
    }
    return secs(t0);
  };
  const embedRun = async () => {
    const t0 = performance.now();
    for (let s = 0; s < inputs.length; s += DEFAULT_BATCH_SIZE) {
      await embedder.embed(inputs.slice(s, s + DEFAULT_BATCH_SIZE));
    }
    return secs(t0);
  };
  await session.run({
    [pre.input]: new Tensor("float32", batches[0]!.pixels, [batches[0]!.b, height, width, 3]),
  }); // warm-up
  const embed: number[] = [];
  const raw: number[] = [];
  for (let r = 0; r < THROUGHPUT_REPS; r++) {
    embed.push(await embedRun());
    raw.push(await rawRun());
    note(`  throughput rep ${r + 1}: embedder ${fmt(embed[r]!)} s, raw ${fmt(raw[r]!)} s`);
  }
  const rawPerSec = subset.length / median(raw);
  return {
    items,
    stageReused: reuse,
    stageImagesPerSec: stage.length ? items / median(stage) : Number.NaN,
    stageSeconds: stage,
    throughputItems: subset.length,
    embedImagesPerSec: subset.length / median(embed),
    embedSeconds: embed,
    rawImagesPerSec: rawPerSec,
    rawSeconds: raw,
    stageOverRaw: stage.length ? items / median(stage) / rawPerSec : Number.NaN,
    embedOverRaw: subset.length / median(embed) / rawPerSec,
  };
}

interface Split {
  X: Float32Array;
  y: Int32Array;
  n: number;
}

function rowsOf(s: Split, d: number, idx: ArrayLike<number>): Split {
  const X = new Float32Array(idx.length * d);
  const y = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    X.set(s.X.subarray(idx[i]! * d, (idx[i]! + 1) * d), i * d);
    y[i] = s.y[idx[i]!]!;
  }
  return { X, y, n: idx.length };
}

async function accuracyOf(
  type: string,
  params: Record<string, unknown>,
  train: Split,
  test: Split,
  d: number,
) {
  const kind = headKind(type);
  const p = kind.resolveParams(params, train.n, d);
  const t0 = performance.now();
  const model = await kind.fit(
    train.X,
    train.n,
    d,
    { task: "multiclass", y: train.y, k: CLASSES.length },
    p,
    {
      seed: 0,
    },
  );
  const fitSeconds = secs(t0);
  const proba = await kind.predict(model, test.X, test.n);
  const k = CLASSES.length;
  let right = 0;
  for (let i = 0; i < test.n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (proba[i * k + c]! > proba[i * k + best]!) best = c;
    if (best === test.y[i]) right++;
  }
  return { accuracy: right / test.n, fitSeconds };
}

async function headBench(platform: Platform, dataset: string) {
  const data = await loadEmbeddedDataset(platform.store, dataset, await platform.backbone(BACKBONE));
  if (data.failed.length > 0) throw new Error(`${data.failed.length} images failed to embed`);
  const d = data.dim;
  const all: Split = {
    X: data.vectors,
    y: Int32Array.from(data.rows, (r) => CLASSES.indexOf(String(r.label))),
    n: data.rows.length,
  };
  const train = rowsOf(
    all,
    d,
    data.rows.flatMap((r, i) => (r.split === "train" ? [i] : [])),
  );
  const test = rowsOf(
    all,
    d,
    data.rows.flatMap((r, i) => (r.split === "test" ? [i] : [])),
  );
  note(`heads: ${train.n} train / ${test.n} test embeddings`);

  const probe = await accuracyOf("logreg", {}, train, test, d);
  note(`  logreg C=1: ${fmt(100 * probe.accuracy)}% (fit ${fmt(probe.fitSeconds, 1)} s)`);

  let cv: { C: number; cvAccuracy: number[]; accuracy: number; seconds: number } | undefined;
  if (CV_FOLDS > 0) {
    const t0 = performance.now();
    const foldOf = stratifiedKFold(train.y, CLASSES.length, CV_FOLDS, 0);
    const grid = headKind("logreg").grid(train.n, d);
    const cvAccuracy: number[] = [];
    for (const params of grid) {
      const accs = [];
      for (let f = 0; f < CV_FOLDS; f++) {
        const { train: tr, test: va } = foldIndices(foldOf, f);
        accs.push(
          (await accuracyOf("logreg", params, rowsOf(train, d, tr), rowsOf(train, d, va), d)).accuracy,
        );
      }
      cvAccuracy.push(meanSd(accs).mean);
      note(`  ${CV_FOLDS}-fold CV C=${params.C}: ${fmt(100 * cvAccuracy.at(-1)!)}%`);
    }
    // Ties go to the earlier (more regularized) candidate, as the grid is ordered simple → complex.
    const best = cvAccuracy.indexOf(Math.max(...cvAccuracy));
    const chosen = grid[best]!;
    const r = chosen.C === 1 ? probe : await accuracyOf("logreg", chosen, train, test, d);
    cv = { C: Number(chosen.C), cvAccuracy, accuracy: r.accuracy, seconds: secs(t0) };
  }

  const byClass = CLASSES.map((_, c) => Array.from(train.y.keys()).filter((i) => train.y[i] === c));
  const short = byClass.findIndex((idx) => idx.length < SHOTS);
  if (short >= 0) {
    throw new ValidationError(
      `few-shot needs ${SHOTS} train images of ${CLASSES[short]}; there are ${byClass[short]!.length}`,
      {
        field: "shots",
      },
    );
  }
  const fewShot: Record<"logreg" | "centroid", number[]> = { logreg: [], centroid: [] };
  for (let seed = 0; seed < SEEDS; seed++) {
    const rand = mulberry32(seed);
    const pick = byClass.flatMap((idx) => {
      const copy = [...idx];
      shuffleInPlace(copy, rand);
      return copy.slice(0, SHOTS);
    });
    const sub = rowsOf(train, d, pick);
    for (const type of ["logreg", "centroid"] as const) {
      fewShot[type].push((await accuracyOf(type, {}, sub, test, d)).accuracy);
    }
  }
  return {
    trainRows: train.n,
    testRows: test.n,
    logreg: probe,
    cv,
    fewShot: { shots: SHOTS, seeds: SEEDS, logreg: fewShot.logreg, centroid: fewShot.centroid },
  };
}

const config = loadConfig(process.env, { store: args.store, logLevel: "warn" });
const platform = new Platform(new FsStore(config.store), config);
const dataset = LIMIT === undefined ? "fashion-mnist" : `fashion-mnist-first${LIMIT}`;
const command = [
  "npm run bench:images-stage",
  ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : []),
].join(" ");
const m = await machine();
const machineLine = `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, onnxruntime ${m.onnxruntime}`;
console.log(`machine: ${machineLine}`);
console.log(`store: ${config.store}, dataset: ${dataset}, backbone: ${BACKBONE}`);
if (LIMIT !== undefined)
  console.log(`SMOKE RUN: --limit ${LIMIT} (first ${LIMIT} of each split), not the benchmark`);

const rows = await putFashionMnist(platform, dataset, {
  source: args.source as string,
  limit: LIMIT,
  log: note,
});
const e = await embeddingBench(platform, config, dataset);
const h = await headBench(platform, dataset);

const pct = (x: number) => fmt(100 * x);
const pm = (xs: number[]) => {
  const { mean, sd } = meanSd(xs.map((x) => 100 * x));
  return `${fmt(mean)} ± ${fmt(sd)}`;
};
const stageCell = e.stageReused ? "reused (not timed)" : fmt(e.stageImagesPerSec, 1);
console.log(`\nembedding (${BACKBONE}, ${rows} rows, ${e.items} distinct images planned):`);
console.log(
  e.stageReused
    ? "  batch stage               reused committed embeddings (--reuse-embeddings): not timed"
    : `  batch stage               ${stageCell} images/s  (runs over ${e.items}: ${e.stageSeconds.map((s) => fmt(s)).join(", ")} s)`,
);
console.log(
  `  ImageEmbedder.embed       ${fmt(e.embedImagesPerSec, 1)} images/s  (runs over ${e.throughputItems}: ${e.embedSeconds.map((s) => fmt(s)).join(", ")} s)`,
);
console.log(
  `  raw session.run           ${fmt(e.rawImagesPerSec, 1)} images/s  (runs over ${e.throughputItems}: ${e.rawSeconds.map((s) => fmt(s)).join(", ")} s)`,
);
console.log(`  stage / raw: ${fmt(e.stageOverRaw, 3)}, embedder / raw: ${fmt(e.embedOverRaw, 3)}`);
if (!e.stageReused) console.log(`  embed time per image (stage): ${fmt(1000 / e.stageImagesPerSec, 1)} ms`);

console.log(`\nheads (${h.trainRows} train / ${h.testRows} test):`);
console.log(
  `  logreg C=1 (default)          ${pct(h.logreg.accuracy)}%  fit ${fmt(h.logreg.fitSeconds, 1)} s`,
);
if (h.cv) {
  console.log(
    `  logreg C=${h.cv.C} (${CV_FOLDS}-fold CV)      ${pct(h.cv.accuracy)}%  (CV means ${h.cv.cvAccuracy.map(pct).join(", ")}; ${fmt(h.cv.seconds, 1)} s in all)`,
  );
}
console.log(`  ${SHOTS}-shot logreg (${SEEDS} draws)    ${pm(h.fewShot.logreg)}%`);
console.log(`  ${SHOTS}-shot centroid (${SEEDS} draws)  ${pm(h.fewShot.centroid)}%`);

const trainN = `${h.trainRows}`;
console.log(`\n${LIMIT === undefined ? "" : "<!-- SMOKE RUN, --limit: not for the docs -->\n"}`);
console.log(`Machine: ${machineLine}. Command: \`${command}\`.\n`);
console.log(`| Fashion-MNIST embedding (${BACKBONE}) | images/s | vs raw |`);
console.log("|---|---:|---:|");
console.log(
  `| batch stage (store read, decode, run, cache write) | ${stageCell} | ${fmt(e.stageOverRaw, 2)} |`,
);
console.log(
  `| ImageEmbedder.embed (decode + run) | ${fmt(e.embedImagesPerSec, 1)} | ${fmt(e.embedOverRaw, 2)} |`,
);
console.log(
  `| raw session.run (pre-decoded, batches of ${MICRO_BATCH}) | ${fmt(e.rawImagesPerSec, 1)} | 1.00 |`,
);
console.log(
  `\nStage: median of ${e.stageSeconds.length} run(s) over ${e.items} images; embedder and raw: median of ${THROUGHPUT_REPS} over the first ${e.throughputItems} planned images.\n`,
);
console.log("| features | head | train images | test accuracy (%) | source |");
console.log("|---|---|---:|---:|---|");
console.log(
  `| ${BACKBONE} | logistic regression, C = 1 (default) | ${trainN} | ${pct(h.logreg.accuracy)} | measured |`,
);
if (h.cv) {
  console.log(
    `| ${BACKBONE} | logistic regression, C = ${h.cv.C} (${CV_FOLDS}-fold CV) | ${trainN} | ${pct(h.cv.accuracy)} | measured |`,
  );
}
console.log(
  `| ${BACKBONE} | logistic regression, ${SHOTS} per class | ${SHOTS * CLASSES.length} | ${pm(h.fewShot.logreg)} | measured, ${SEEDS} draws |`,
);
console.log(
  `| ${BACKBONE} | nearest centroid, ${SHOTS} per class | ${SHOTS * CLASSES.length} | ${pm(h.fewShot.centroid)} | measured, ${SEEDS} draws |`,
);
for (const p of PUBLISHED) {
  console.log(
    `| raw pixels (784) | ${p.head} | 60000 | ${p.accuracy} | published (Xiao et al. 2017), not measured here |`,
  );
}
console.log(`\n${JSON.stringify({ machine: m, command, dataset, rows, embedding: e, heads: h })}`);
