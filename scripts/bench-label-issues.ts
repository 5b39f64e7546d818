/**
 * The label-issue section of `npm run bench:quality`: flip a share of training labels at random
 * (seeded; to a uniformly drawn other class), run what `headstart label-issues` runs (out-of-fold
 * logreg probabilities, then confident learning), and score the flagged set against the flipped ids.
 * Tasks: IMDB training reviews on glove-100d (two classes), and Fashion-MNIST on mobilenet-v2-1280
 * (ten classes: the images of the unknown-input benchmark, its cached vectors). Baselines: the plain
 * ranking by the lowest out-of-fold probability of the given label, cut at the same number flagged
 * and at the true number of flips (which a user does not know). Vectors are cached under `outDir`.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import { normalizeText } from "../shared/cache/address.ts";
import type { EmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { confidentLearning, labelQuality } from "../shared/learn/confident-learning.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { classificationProblem, outOfFold } from "../shared/quality/label-issues.ts";
import { loadImdb } from "../shared/samples/imdb.ts";
import { embed, imageTask } from "./bench-unknown.ts";

export interface LabelIssueBench {
  /** IMDB training reviews per class (≤ 12,500). */
  perClass: number;
  /** Share of training labels flipped. */
  noise: number;
  seed: number;
  folds: number;
  modelsDir: string;
  outDir: string;
  /** Which tasks: `imdb`, `fashion` or both. */
  tasks: readonly string[];
  /** Fashion-MNIST images read from each of the train and test files. */
  images: number;
  /** Where Fashion-MNIST's IDX files are. */
  source: string;
}

interface NoisyTask {
  what: string;
  /** Clean labels by row, and every class name. */
  labels: string[];
  classes: string[];
  dim: number;
  X: Float32Array;
}

const BACKBONE = "glove-100d";

async function imdbTask(b: LabelIssueBench): Promise<NoisyTask> {
  const { rows, dim, X } = await imdbTrainVectors(b);
  const what = `IMDB train (${rows.length} reviews, ${BACKBONE})`;
  return { what, labels: rows.map((r) => r.label), classes: ["neg", "pos"], dim, X };
}

async function fashionTask(b: LabelIssueBench): Promise<NoisyTask> {
  const task = await imageTask(b);
  const { X, dim } = await embed(task, b);
  const what = `Fashion-MNIST (${task.y.length} images: the first ${b.images} of each file, ${task.backbone})`;
  return { what, labels: Array.from(task.y, (c) => task.classes[c]), classes: task.classes, dim, X };
}

async function imdbTrainVectors(b: LabelIssueBench) {
  const rows = (await loadImdb(b.perClass)).filter((r) => r.split === "train");
  const embedder = await builtInEmbedder(BACKBONE, b.modelsDir);
  const dim = embedder.spec.dim;
  const file = join(b.outDir, `imdb-train-${rows.length}-${embedder.spec.sha256.slice(0, 16)}.f32`);
  try {
    const buf = await readFile(file);
    return { rows, dim, X: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) };
  } catch {}
  const X = new Float32Array(rows.length * dim);
  for (let s = 0; s < rows.length; s += 1024) {
    const inputs = rows
      .slice(s, s + 1024)
      .map((r) => ({ text: normalizeText(r.text.replace(/<br\s*\/?>/g, " ")) }));
    X.set(await embedder.embed(inputs), s * dim);
  }
  await mkdir(b.outDir, { recursive: true });
  await writeFile(`${file}.tmp`, new Uint8Array(X.buffer));
  await rename(`${file}.tmp`, file);
  return { rows, dim, X };
}

/** Precision, recall and F1 of `flagged` against the `truth` set. */
function prf(flagged: readonly number[], truth: ReadonlySet<number>) {
  const hits = flagged.filter((i) => truth.has(i)).length;
  const precision = flagged.length ? hits / flagged.length : 0;
  const recall = truth.size ? hits / truth.size : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { flagged: flagged.length, precision, recall, f1 };
}

/** Detection AUROC of a most-suspect-first ranking: the share of (flipped, clean) pairs it orders right. */
function auroc(ranked: readonly number[], truth: ReadonlySet<number>): number {
  let flippedSoFar = 0;
  let right = 0;
  for (const i of ranked) {
    if (truth.has(i)) flippedSoFar++;
    else right += flippedSoFar;
  }
  return right / (truth.size * (ranked.length - truth.size));
}

/** Prints each task's table; returns their rows for callers that want them. */
export async function labelIssuesSection(b: LabelIssueBench) {
  const out = [];
  for (const name of b.tasks) {
    const make = { imdb: imdbTask, fashion: fashionTask }[name];
    if (!make) throw new Error(`--labels-tasks: unknown task ${name}; valid: imdb, fashion`);
    out.push({ task: name, ...(await oneTask(await make(b), b)) });
  }
  return out;
}

async function oneTask(task: NoisyTask, b: LabelIssueBench) {
  const n = task.labels.length;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(b.seed);
  shuffleInPlace(order, rand);
  const flipped = new Set(Array.from(order.subarray(0, Math.round(b.noise * n))));
  const other = (l: string) => {
    const rest = task.classes.filter((c) => c !== l);
    return rest[Math.floor(rand() * rest.length)];
  };
  const data: EmbeddedDataset = {
    dataset: "noisy",
    version: "bench",
    dim: task.dim,
    vectors: task.X,
    unsupported: 0,
    failed: [],
    rows: task.labels.map((l, i) => ({ id: `r${i}`, line: i + 1, label: flipped.has(i) ? other(l) : l })),
  };
  const t0 = performance.now();
  const problem = classificationProblem(data.dataset, data);
  const oof = await outOfFold(problem, { folds: b.folds, seed: b.seed });
  const y = Int32Array.from(data.rows, (r) => problem.labels.indexOf(r.label as string));
  const k = problem.labels.length;
  const cl = confidentLearning(oof.probs, y, k, "self-confidence");
  const seconds = (performance.now() - t0) / 1000;
  const quality = labelQuality(oof.probs, y, k, "self-confidence");
  const ranked = Array.from(order).sort((a, c) => quality[a] - quality[c] || a - c);
  const table = [
    {
      method: "confident learning (prune by noise rate)",
      ...prf(
        cl.issues.map((i) => i.row),
        flipped,
      ),
    },
    { method: "lowest p(given), same number flagged", ...prf(ranked.slice(0, cl.issues.length), flipped) },
    { method: "lowest p(given), true number flagged", ...prf(ranked.slice(0, flipped.size), flipped) },
  ];
  console.log(
    `\nLabel issues — ${task.what}, ${flipped.size} labels flipped (${(100 * b.noise).toFixed(0)}%, seed ${b.seed}), ` +
      `logreg ${JSON.stringify(oof.params)}, ${oof.folds} folds, ${seconds.toFixed(1)} s; ` +
      `estimated noise rate ${(100 * cl.noiseRate).toFixed(1)}%; detection AUROC of the ranking ${auroc(ranked, flipped).toFixed(3)}`,
  );
  console.log("| method | flagged | precision | recall | F1 |\n|---|---:|---:|---:|---:|");
  for (const r of table) {
    const pct = (x: number) => (100 * x).toFixed(1);
    console.log(`| ${r.method} | ${r.flagged} | ${pct(r.precision)} | ${pct(r.recall)} | ${pct(r.f1)} |`);
  }
  return {
    n,
    flipped: flipped.size,
    estimatedNoiseRate: cl.noiseRate,
    auroc: auroc(ranked, flipped),
    seconds,
    table,
  };
}
