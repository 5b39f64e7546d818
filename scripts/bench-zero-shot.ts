/**
 * The zero-shot section of `npm run bench:quality` (`--only zero-shot`): can a head built from label
 * names or short descriptions alone — each class's description embedded with the same backbone, the
 * prediction the nearest description by cosine (a nearest-centroid head whose centroids are the
 * normalized description vectors) — beat the majority class, and how far is it from a 10-shot head?
 *   - tasks (scripts/text-tasks.ts): IMDB reviews (test rows of the official split; the 10-shot
 *     heads draw from its training rows), SpamAssassin subject lines, AFINN-111 words (no split: all
 *     rows are evaluated; the 10-shot heads are evaluated on the rows they did not draw);
 *   - wordings: a small fixed set per task, written before any figure was seen and not tuned on
 *     them (the table shows every one, the worst included);
 *   - `centered`: the same, with the mean of every row's unit vector (IMDB: training and test
 *     reviews) subtracted from every input and description first, as `train --type zero-shot` does
 *     (uses no label; glove's mean-pooled vectors share a large common direction that swamps the
 *     small differences between descriptions);
 *   - baselines: the majority class of the evaluated rows; 10 labelled rows per class drawn at
 *     random from the training pool, logistic regression and nearest centroid, mean of `seeds` draws.
 * Accuracy and macro-F1 in percent. Vectors are embedded once and cached under `outDir`.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { argmaxRows, classificationMetrics } from "../shared/learn/metrics.ts";
import { headKind } from "../shared/learn/registry.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { afinnTask, imdbTask, spamSubjectsTask, type TextTask } from "./text-tasks.ts";

export interface ZeroShotBench {
  /** IMDB reviews per (split, label) block. */
  imdbPerBlock: number;
  backbones: string[];
  shots: number;
  seeds: number;
  seed: number;
  modelsDir: string;
  outDir: string;
}

/** The fixed wordings per task, in the task's label order (sorted label names). */
const WORDINGS: Record<string, Record<string, string[]>> = {
  imdb: {
    "label names": ["neg", "pos"],
    words: ["negative", "positive"],
    "a … review": ["a negative review", "a positive review"],
    descriptions: ["a bad movie, boring and a waste of time", "a great movie, wonderful and moving"],
  },
  "spam-subjects": {
    "label names": ["ham", "spam"],
    words: ["personal", "spam"],
    descriptions: ["a personal or work e-mail to a colleague or friend", "an advertisement, offer or scam"],
  },
  "afinn-polarity": {
    "label names": ["negative", "positive"],
    descriptions: ["a bad, unpleasant word", "a good, pleasant word"],
  },
};

async function embedCached(tag: string, texts: readonly string[], backbone: string, b: ZeroShotBench) {
  const embedder = await builtInEmbedder(backbone, b.modelsDir);
  const dim = embedder.spec.dim;
  const file = join(b.outDir, `zero-shot-${tag}-${texts.length}-${embedder.spec.sha256.slice(0, 16)}.f32`);
  try {
    const buf = await readFile(file);
    return { dim, X: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) };
  } catch {}
  const X = new Float32Array(texts.length * dim);
  for (let s = 0; s < texts.length; s += 512) {
    X.set(await embedder.embed(texts.slice(s, s + 512).map((t) => ({ text: normalizeText(t) }))), s * dim);
  }
  await mkdir(b.outDir, { recursive: true });
  await writeFile(`${file}.tmp`, new Uint8Array(X.buffer));
  await rename(`${file}.tmp`, file);
  return { dim, X };
}

function rowsOf(X: Float32Array, idx: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(idx.length * dim);
  for (let i = 0; i < idx.length; i++) out.set(X.subarray(idx[i] * dim, (idx[i] + 1) * dim), i * dim);
  return out;
}

function unitRows(X: Float32Array, idx: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(idx.length * dim);
  for (let i = 0; i < idx.length; i++) {
    const row = X.subarray(idx[i] * dim, (idx[i] + 1) * dim);
    let ss = 0;
    for (const v of row) ss += v * v;
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < dim; j++) out[i * dim + j] = row[j] * inv;
  }
  return out;
}

function subtractMean(X: Float32Array, n: number, dim: number, mean: Float64Array): Float32Array {
  const out = new Float32Array(X.length);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) out[i * dim + j] = X[i * dim + j] - mean[j];
  return out;
}

function meanRow(X: Float32Array, n: number, dim: number): Float64Array {
  const m = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) m[j] += X[i * dim + j] / n;
  return m;
}

interface Score {
  acc: number;
  f1: number;
  /** Mean top-class probability (NaN for the majority class): how sure the head says it is. */
  top: number;
}

function score(yTrue: Int32Array, proba: Float64Array, labels: string[]): Score {
  const n = yTrue.length;
  const k = labels.length;
  const m = classificationMetrics(yTrue, argmaxRows(proba, n, k), labels);
  let top = 0;
  for (let i = 0; i < n; i++) top += Math.max(...proba.subarray(i * k, (i + 1) * k)) / n;
  return { acc: 100 * m.accuracy, f1: 100 * m.macroF1, top: 100 * top };
}

/** Probabilities of the zero-shot head: softmax over 10 · the cosine to each description. */
async function zeroShot(X: Float32Array, n: number, dim: number, D: Float32Array, k: number) {
  const kind = headKind("centroid");
  const params = kind.resolveParams({}, k, dim);
  const model = await kind.fit(
    D,
    k,
    dim,
    { task: "multiclass", y: Int32Array.from({ length: k }, (_, c) => c), k },
    params,
    { seed: 0 },
  );
  return kind.predict(model, X, n);
}

/** `shots` rows per class from `pool`, seeded. */
function draw(y: Int32Array, pool: Int32Array, k: number, shots: number, seed: number): Int32Array {
  const order = Int32Array.from(pool);
  shuffleInPlace(order, mulberry32(seed));
  const taken: number[] = [];
  for (let c = 0; c < k; c++) taken.push(...[...order].filter((i) => y[i] === c).slice(0, shots));
  return Int32Array.from(taken);
}

async function fewShot(
  type: string,
  t: TextTask,
  X: Float32Array,
  dim: number,
  pool: Int32Array,
  test: Int32Array,
  b: ZeroShotBench,
) {
  const k = t.labels.length;
  const runs: Score[] = [];
  for (let s = 0; s < b.seeds; s++) {
    const train = draw(t.y, pool, k, b.shots, b.seed * 100 + s);
    const drawn = new Set(train);
    const evalRows = test.filter((i) => !drawn.has(i));
    const kind = headKind(type);
    const params = kind.resolveParams({}, train.length, dim);
    const y = Int32Array.from(train, (i) => t.y[i]);
    const model = await kind.fit(
      rowsOf(X, train, dim),
      train.length,
      dim,
      { task: "multiclass", y, k },
      params,
      { seed: s },
    );
    const p = await kind.predict(model, rowsOf(X, evalRows, dim), evalRows.length);
    runs.push(
      score(
        Int32Array.from(evalRows, (i) => t.y[i]),
        p,
        t.labels,
      ),
    );
  }
  const mean = (f: (r: Score) => number) => runs.reduce((a, r) => a + f(r), 0) / runs.length;
  return { acc: mean((r) => r.acc), f1: mean((r) => r.f1), top: mean((r) => r.top) };
}

interface Row {
  task: string;
  backbone: string;
  method: string;
  acc: number;
  f1: number;
  top: number;
}

async function taskRows(t: TextTask, backbone: string, b: ZeroShotBench): Promise<Row[]> {
  const k = t.labels.length;
  const all = Int32Array.from(t.texts.keys());
  const test = t.isTest ? all.filter((i) => t.isTest![i] === 1) : all;
  const pool = t.isTest ? all.filter((i) => t.isTest![i] === 0) : all;
  const { X, dim } = await embedCached(t.name, t.texts, backbone, b);
  const yTest = Int32Array.from(test, (i) => t.y[i]);
  const counts = t.labels.map((_, c) => yTest.filter((y) => y === c).length);
  const majority = counts.indexOf(Math.max(...counts));
  const rows: Row[] = [];
  const row = (method: string, r: Score) => rows.push({ task: t.name, backbone, method, ...r });
  row(`majority class (${t.labels[majority]})`, {
    ...score(
      yTest,
      Float64Array.from({ length: test.length * k }, (_, j) => (j % k === majority ? 1 : 0)),
      t.labels,
    ),
    top: Number.NaN,
  });
  const Xt = unitRows(X, test, dim);
  // As `train --type zero-shot` does: the mean over every row of the dataset, labels unread.
  const mean = meanRow(unitRows(X, all, dim), all.length, dim);
  const centered = subtractMean(Xt, test.length, dim, mean);
  for (const [name, texts] of Object.entries(WORDINGS[t.name])) {
    const Draw = await embedCached(`${t.name}-desc-${name.replace(/\W+/g, "_")}`, texts, backbone, b);
    const D = unitRows(Draw.X, Int32Array.from(texts.keys()), dim);
    row(`zero-shot, ${name}`, score(yTest, await zeroShot(Xt, test.length, dim, D, k), t.labels));
    const Dc = subtractMean(D, k, dim, mean);
    row(
      `zero-shot centered, ${name}`,
      score(yTest, await zeroShot(centered, test.length, dim, Dc, k), t.labels),
    );
  }
  row(`${b.shots}-shot logreg`, await fewShot("logreg", t, X, dim, pool, test, b));
  row(`${b.shots}-shot centroid`, await fewShot("centroid", t, X, dim, pool, test, b));
  return rows;
}

/** Prints the section's table; returns its rows. */
export async function zeroShotSection(b: ZeroShotBench) {
  const tasks = [await imdbTask(b.imdbPerBlock), spamSubjectsTask(), afinnTask()];
  const rows: Row[] = [];
  for (const t of tasks) for (const backbone of b.backbones) rows.push(...(await taskRows(t, backbone, b)));
  console.log(
    `\n## Zero-shot: heads from label descriptions alone vs the majority class and a ${b.shots}-shot head ` +
      `(mean of ${b.seeds} draws); IMDB: ${2 * b.imdbPerBlock} test reviews\n`,
  );
  for (const t of tasks) {
    console.log(
      `wordings (${t.name}, labels ${t.labels.join(", ")}): ${Object.entries(WORDINGS[t.name])
        .map(([n, w]) => `${n} = ${w.map((s) => `"${s}"`).join(" / ")}`)
        .join("; ")}`,
    );
  }
  console.log("\n| task | backbone | head | accuracy % | macro-F1 % | mean top probability % |");
  console.log("|---|---|---|---:|---:|---:|");
  for (const r of rows) {
    const top = Number.isNaN(r.top) ? "—" : r.top.toFixed(1);
    console.log(
      `| ${r.task} | ${r.backbone} | ${r.method} | ${r.acc.toFixed(1)} | ${r.f1.toFixed(1)} | ${top} |`,
    );
  }
  return rows;
}
