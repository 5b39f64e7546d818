/**
 * The unknown-input benchmark (`node --import tsx scripts/bench-unknown.ts`, or `unknownSection` from
 * `npm run bench:quality`): two classes held out of a multi-class task, a logistic head (with its
 * temperature) trained on the others, and each scorer of `learn/ood.ts` asked to tell the held-out
 * classes' test items (unknown) from the seen classes' test items (known): AUROC and FPR at 95% TPR
 * (the share of unknown items still accepted when 95% of known ones are).
 *   - text: six classes from three offline sources on glove-100d — IMDB reviews (neg/pos), SpamAssassin
 *     subject lines (spam/ham), AFINN-111 words (negative/positive); held out: `spam` and `positive`
 *     (one class of two sources, so each unseen class has a seen sibling of its own domain);
 *   - image: Fashion-MNIST on mobilenet-v2-1280, 8 classes seen; held out: Bag and Ankle boot.
 * Per task: the seen rows of the training pool are split 80/20 (fit / validation: the temperature
 * and the trained threshold, as training uses held-out rows); `kept` is the share of known test items
 * under the threshold chosen on the validation rows (the 95% a head promises). Vectors are embedded
 * once and cached under `outDir`.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import type { EmbedInput } from "../shared/backbone/spec.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { applyTemperature, fitTemperature } from "../shared/learn/calibration.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import {
  auroc,
  fitOodScorer,
  fprAtTpr,
  OOD_METHODS,
  oodScores,
  unknownThreshold,
} from "../shared/learn/ood.ts";
import { type ProbaFitter, selectOodMethod } from "../shared/learn/ood-select.ts";
import { headKind } from "../shared/learn/registry.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { machine } from "./bench-common.ts";
import { FASHION_SOURCE } from "./fashion-dataset.ts";
import { FASHION_CLASSES, readIdx } from "./idx.ts";
import { afinnTask, imdbTask, spamSubjectsTask } from "./text-tasks.ts";

export interface UnknownBench {
  /** IMDB reviews per label block (the text task's IMDB part is 4× this). */
  imdbPerBlock: number;
  /** Fashion-MNIST images read from each of the train and test files. */
  images: number;
  seed: number;
  modelsDir: string;
  outDir: string;
  source: string;
}

export interface Task {
  name: string;
  backbone: string;
  classes: string[];
  heldOut: string[];
  items: EmbedInput[];
  y: Int32Array;
  /** true: a test item. */
  isTest: Uint8Array;
}

async function textTask(b: UnknownBench): Promise<Task> {
  const sources = [await imdbTask(b.imdbPerBlock), spamSubjectsTask(), afinnTask()];
  const classes = sources.flatMap((t) => t.labels.map((l) => `${t.name}:${l}`));
  const rand = mulberry32(b.seed);
  const items: EmbedInput[] = [];
  const y: number[] = [];
  for (const t of sources) {
    t.texts.forEach((text, i) => {
      items.push({ text: normalizeText(text) });
      y.push(classes.indexOf(`${t.name}:${t.labels[t.y[i]]}`));
    });
  }
  // No common official split: a seeded 70/30 one.
  const isTest = Uint8Array.from(items, () => (rand() < 0.3 ? 1 : 0));
  const heldOut = ["spam-subjects:spam", "afinn-polarity:positive"];
  return { name: "text", backbone: "glove-100d", classes, heldOut, items, y: Int32Array.from(y), isTest };
}

const FASHION: string[] = [...FASHION_CLASSES];

/** Fashion-MNIST's first `b.images` images of each of the train and test files (also bench-label-issues). */
export async function imageTask(b: Pick<UnknownBench, "images" | "source">): Promise<Task> {
  const items: EmbedInput[] = [];
  const y: number[] = [];
  const isTest: number[] = [];
  for (const [prefix, test] of [
    ["train", 0],
    ["t10k", 1],
  ] as const) {
    const images = await readIdx(join(b.source, `${prefix}-images-idx3-ubyte.gz`));
    const labels = await readIdx(join(b.source, `${prefix}-labels-idx1-ubyte.gz`));
    for (let i = 0; i < Math.min(b.images, labels.data.length); i++) {
      const px = Buffer.from(images.data.buffer, images.data.byteOffset + i * 784, 784);
      const png = await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer();
      items.push({ image: new Uint8Array(png) });
      y.push(labels.data[i]);
      isTest.push(test);
    }
  }
  return {
    name: "image",
    backbone: "mobilenet-v2-1280",
    classes: FASHION,
    heldOut: ["Bag", "Ankle boot"],
    items,
    y: Int32Array.from(y),
    isTest: Uint8Array.from(isTest),
  };
}

/** The task's vectors, embedded once and kept under outDir by task, size and backbone. */
export async function embed(
  task: Task,
  b: Pick<UnknownBench, "modelsDir" | "outDir">,
): Promise<{ X: Float32Array; dim: number }> {
  const embedder = await builtInEmbedder(task.backbone, b.modelsDir);
  const dim = embedder.spec.dim;
  const file = join(
    b.outDir,
    `unknown-${task.name}-${task.items.length}-${embedder.spec.sha256.slice(0, 16)}.f32`,
  );
  if (existsSync(file)) {
    const buf = await readFile(file);
    return { X: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), dim };
  }
  const X = new Float32Array(task.items.length * dim);
  for (let s = 0; s < task.items.length; s += 256) {
    X.set(await embedder.embed(task.items.slice(s, s + 256)), s * dim);
  }
  await mkdir(b.outDir, { recursive: true });
  await writeFile(`${file}.tmp`, new Uint8Array(X.buffer));
  await rename(`${file}.tmp`, file);
  return { X, dim };
}

function rows(X: Float32Array, dim: number, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((i, t) => {
    out.set(X.subarray(i * dim, (i + 1) * dim), t * dim);
  });
  return out;
}

export interface UnknownRow {
  task: string;
  scorer: string;
  auroc: number;
  fpr95: number;
  kept: number;
  seconds: number;
}

/** Every scorer on one task: the head and the scorers fitted on the seen classes only. */
async function measure(
  task: Task,
  b: UnknownBench,
): Promise<{ rows: UnknownRow[]; accuracy: number; sizes: string }> {
  const { X, dim } = await embed(task, b);
  const unseen = new Set(task.heldOut.map((c) => task.classes.indexOf(c)));
  const seen = task.classes.map((_, c) => c).filter((c) => !unseen.has(c));
  const remap = new Map(seen.map((c, i) => [c, i]));
  const pool: number[] = [];
  const known: number[] = [];
  const unknown: number[] = [];
  task.y.forEach((c, i) => {
    if (task.isTest[i]) (unseen.has(c) ? unknown : known).push(i);
    else if (!unseen.has(c)) pool.push(i);
  });
  shuffleInPlace(pool, mulberry32(b.seed + 1));
  const cut = Math.floor(pool.length * 0.8);
  const [fitIdx, valIdx] = [pool.slice(0, cut), pool.slice(cut)];
  const yOf = (idx: number[]) => Int32Array.from(idx, (i) => remap.get(task.y[i])!);
  const k = seen.length;
  const kind = headKind("logreg");
  const params = kind.resolveParams({}, fitIdx.length, dim);
  const target = { task: "multiclass" as const, y: yOf(fitIdx), k };
  const model = await kind.fit(rows(X, dim, fitIdx), fitIdx.length, dim, target, params, { seed: b.seed });
  const proba = async (idx: number[], T: number) =>
    applyTemperature(await kind.predict(model, rows(X, dim, idx), idx.length), idx.length, k, T);
  const T = fitTemperature(await proba(valIdx, 1), yOf(valIdx), k);
  const pred = argmaxRows(await proba(known, T), known.length, k);
  const accuracy = pred.filter((p, t) => p === remap.get(task.y[known[t]])).length / known.length;
  const out: UnknownRow[] = [];
  for (const method of OOD_METHODS) {
    const t0 = performance.now();
    const scorer = fitOodScorer(method, rows(X, dim, fitIdx), fitIdx.length, dim, target.y, k, {
      seed: b.seed,
    });
    const score = async (idx: number[]) =>
      oodScores(scorer, rows(X, dim, idx), idx.length, await proba(idx, T), k);
    const [val, inS, outS] = [await score(valIdx), await score(known), await score(unknown)];
    const threshold = unknownThreshold(val, 0.95);
    out.push({
      task: task.name,
      scorer: method,
      auroc: auroc(inS, outS),
      fpr95: fprAtTpr(inS, outS, 0.95),
      kept: inS.filter((s) => s <= threshold).length / inS.length,
      seconds: (performance.now() - t0) / 1000,
    });
  }
  out.push(await autoRow(task.name, out, X, dim, [...fitIdx, ...valIdx], yOf, fitIdx.length, k, b.seed));
  const what = `${task.name}: ${task.backbone}, ${fitIdx.length} fit + ${valIdx.length} validation rows of ${k} seen classes, ${known.length} known and ${unknown.length} unknown test items (held out: ${task.heldOut.join(", ")})`;
  return { rows: out, accuracy, sizes: what };
}

/**
 * What `unknownScorer: auto` keeps when trained on the seen classes (fit rows, the validation rows as
 * its held-out fold), and that scorer's figures on the real unknown classes.
 */
async function autoRow(
  name: string,
  rowsOf: UnknownRow[],
  X: Float32Array,
  dim: number,
  pool: number[],
  yOf: (idx: number[]) => Int32Array,
  nFit: number,
  k: number,
  seed: number,
): Promise<UnknownRow> {
  const t0 = performance.now();
  const kind = headKind("logreg");
  const fitProba: ProbaFitter = async (Xf, n, d, y, kk) => {
    const model = await kind.fit(Xf, n, d, { task: "multiclass", y, k: kk }, kind.resolveParams({}, n, d), {
      seed,
    });
    return (Xq, m) => kind.predict(model, Xq, m);
  };
  const validation = Uint8Array.from(pool, (_, t) => (t >= nFit ? 1 : 0));
  const s = await selectOodMethod(
    { X: rows(X, dim, pool), n: pool.length, d: dim, y: yOf(pool), k, validation },
    fitProba,
    {
      seed,
    },
  );
  const kept = rowsOf.find((r) => r.scorer === s.method)!;
  const means = s.auroc ? OOD_METHODS.map((m) => `${m} ${s.auroc![m].toFixed(3)}`).join(", ") : "none";
  console.log(`  ${name} auto: ${s.reason}; stand-ins' mean AUROC: ${means}`);
  return { ...kept, scorer: `auto → ${s.method}`, seconds: (performance.now() - t0) / 1000 };
}

export async function unknownSection(b: UnknownBench): Promise<UnknownRow[]> {
  const all: UnknownRow[] = [];
  console.log("\nunknown inputs: two classes held out, logistic head + temperature on the rest");
  for (const make of [textTask, imageTask]) {
    const task = await make(b);
    const r = await measure(task, b);
    console.log(`  ${r.sizes}; seen-class accuracy ${(r.accuracy * 100).toFixed(1)}%`);
    all.push(...r.rows);
  }
  console.log(
    "\n| task | scorer | AUROC | FPR at 95% TPR | known kept at the trained threshold | seconds (fit + score) |",
  );
  console.log("|---|---|---|---|---|---|");
  for (const r of all) {
    console.log(
      `| ${r.task} | ${r.scorer} | ${r.auroc.toFixed(3)} | ${(r.fpr95 * 100).toFixed(1)}% | ${(r.kept * 100).toFixed(1)}% | ${r.seconds.toFixed(2)} |`,
    );
  }
  return all;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: args } = parseArgs({
    options: {
      seed: { type: "string", default: "1" },
      "imdb-per-block": { type: "string", default: "500" },
      images: { type: "string", default: "3000" },
      "models-dir": { type: "string", default: join(PACKAGE_ROOT, ".models") },
      out: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench", "quality") },
      source: { type: "string", default: FASHION_SOURCE },
    },
  });
  const m = await machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}`);
  const rows = await unknownSection({
    imdbPerBlock: Number(args["imdb-per-block"]),
    images: Number(args.images),
    seed: Number(args.seed),
    modelsDir: args["models-dir"]!,
    outDir: args.out!,
    source: args.source!,
  });
  console.log(`\n${JSON.stringify({ machine: m, unknown: rows })}`);
}
