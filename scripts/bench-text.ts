/**
 * `npm run bench:text` — which text backbone transfers best: test accuracy of the default head
 * (logistic regression, default parameters) on each text backbone, pooling variant and
 * concatenation, over three tasks (scripts/text-tasks.ts). IMDB uses its official split; the
 * others 5-fold stratified cross-validation (mean ± standard deviation over folds). Embeddings are
 * computed once per (task, backbone model) and kept under `--out`, so reruns only train heads.
 * Then (section `auto`) what `train --type auto` picks among the recommended text backbones and
 * their combination, against each of them with train's default head (scripts/auto-pick.ts).
 * Not a test: nothing is asserted.
 *
 *   npm run bench:text -- [--imdb 12500] [--tasks imdb,spam-subjects,afinn-polarity] [--sections backbones,auto] [--out .headstart-bench/text]
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureGloveBackbone } from "../shared/backbone/glove.ts";
import { builtInEmbedder, createEmbedder } from "../shared/backbone/registry.ts";
import type { BackboneSpec } from "../shared/backbone/spec.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { loadConfig, PACKAGE_ROOT, RECOMMENDED_BACKBONES } from "../shared/config.ts";
import { normalizeConcat } from "../shared/embed/composite.ts";
import { headKind } from "../shared/learn/registry.ts";
import { foldIndices, stratifiedKFold } from "../shared/learn/split.ts";
import { AUTO_TABLE_HEADER, autoTableRow, recommendedSets } from "./auto-pick.ts";
import { afinnTask, imdbTask, spamSubjectsTask, type TextTask } from "./text-tasks.ts";

const { values: args } = parseArgs({
  options: {
    imdb: { type: "string", default: "12500" },
    tasks: { type: "string", default: "imdb,spam-subjects,afinn-polarity" },
    folds: { type: "string", default: "5" },
    sections: { type: "string", default: "backbones,auto" },
    out: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench", "text") },
  },
});
const FOLDS = Number(args.folds);

const modelsDir = loadConfig().modelsDir;
const SINGLE = ["glove-100d", "glove-100d-meanmax", "glove-100d-sif", "use-lite-512", "use-lite-512-int8"];
const COMBOS = [
  ["glove-100d", "use-lite-512"],
  ["glove-100d-meanmax", "use-lite-512"],
  ["glove-100d-sif", "use-lite-512"],
  ["glove-100d", "use-lite-512-int8"],
];

/** SIF pooling did not pay (docs/benchmarks.md), so it is not a built-in; built here to re-measure. */
async function sifEmbedder() {
  const { dir, spec } = await ensureGloveBackbone(modelsDir, { pooling: "sif" });
  const assets = Object.fromEntries(spec.assets.map((a) => [a, join(dir, a)]));
  return createEmbedder(spec, join(dir, spec.model), assets);
}

/** n × dim float32 for every text of the task, cached by the model's sha256. */
async function features(
  t: TextTask,
  id: string,
): Promise<{ X: Float32Array; dim: number; seconds: number; spec: BackboneSpec }> {
  const embedder = id === "glove-100d-sif" ? await sifEmbedder() : await builtInEmbedder(id, modelsDir);
  const file = join(args.out as string, t.name, `${t.texts.length}-${embedder.spec.sha256.slice(0, 16)}.f32`);
  const dim = embedder.spec.dim;
  try {
    const b = await readFile(file);
    const X = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    return { X, dim, seconds: Number.NaN, spec: embedder.spec };
  } catch {}
  const t0 = performance.now();
  const X = new Float32Array(t.texts.length * dim);
  const CHUNK = 2048;
  for (let s = 0; s < t.texts.length; s += CHUNK) {
    const inputs = t.texts.slice(s, s + CHUNK).map((text) => ({ text: normalizeText(text) }));
    X.set(await embedder.embed(inputs), s * dim);
  }
  const seconds = (performance.now() - t0) / 1000;
  await mkdir(join(args.out as string, t.name), { recursive: true });
  await writeFile(`${file}.tmp`, new Uint8Array(X.buffer));
  await rename(`${file}.tmp`, file);
  return { X, dim, seconds, spec: embedder.spec };
}

function rowsOf(X: Float32Array, dim: number, idx: Int32Array): Float32Array {
  const out = new Float32Array(idx.length * dim);
  for (let i = 0; i < idx.length; i++) out.set(X.subarray(idx[i]! * dim, (idx[i]! + 1) * dim), i * dim);
  return out;
}

async function accuracy(X: Float32Array, dim: number, t: TextTask, train: Int32Array, test: Int32Array) {
  const kind = headKind("logreg");
  const params = kind.resolveParams({}, train.length, dim);
  const y = Int32Array.from(train, (i) => t.y[i]!);
  const model = await kind.fit(
    rowsOf(X, dim, train),
    train.length,
    dim,
    { task: "multiclass", y, k: t.labels.length },
    params,
    {
      seed: 0,
    },
  );
  const p = await kind.predict(model, rowsOf(X, dim, test), test.length);
  const k = t.labels.length;
  let right = 0;
  for (let i = 0; i < test.length; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (p[i * k + c]! > p[i * k + best]!) best = c;
    if (best === t.y[test[i]!]) right++;
  }
  return right / test.length;
}

/** Mean and standard deviation (over folds) of test accuracy, in percent. */
async function evaluate(X: Float32Array, dim: number, t: TextTask): Promise<{ mean: number; sd: number }> {
  if (t.isTest) {
    const train = Int32Array.from(t.texts.keys()).filter((i) => !t.isTest![i]);
    const test = Int32Array.from(t.texts.keys()).filter((i) => t.isTest![i] === 1);
    return { mean: 100 * (await accuracy(X, dim, t, train, test)), sd: Number.NaN };
  }
  const foldOf = stratifiedKFold(t.y, t.labels.length, FOLDS, 0);
  const accs: number[] = [];
  for (let f = 0; f < FOLDS; f++) {
    const { train, test } = foldIndices(foldOf, f);
    accs.push(100 * (await accuracy(X, dim, t, train, test)));
  }
  const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
  const sd = Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / (accs.length - 1));
  return { mean, sd };
}

console.log(
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
);
const wanted = new Set(String(args.tasks).split(","));
const tasks: TextTask[] = [];
if (wanted.has("imdb")) tasks.push(await imdbTask(Number(args.imdb)));
if (wanted.has("spam-subjects")) tasks.push(spamSubjectsTask());
if (wanted.has("afinn-polarity")) tasks.push(afinnTask());

const sections = new Set(String(args.sections).split(","));
const results: Record<string, Record<string, { mean: number; sd: number }>> = {};
const autoRows: string[] = [];
for (const t of tasks) {
  const counts = t.labels.map((l, c) => `${l} ${t.y.filter((y) => y === c).length}`).join(", ");
  console.log(`\n${t.name}: ${t.what}; ${t.texts.length} texts (${counts})`);
  const wantedIds = sections.has("backbones") ? SINGLE : [...RECOMMENDED_BACKBONES.text];
  const feats: Record<string, { X: Float32Array; dim: number; spec: BackboneSpec }> = {};
  for (const id of wantedIds) {
    const f = await features(t, id);
    feats[id] = f;
    if (!Number.isNaN(f.seconds)) console.log(`  embedded with ${id} in ${f.seconds.toFixed(1)} s`);
  }
  if (sections.has("backbones")) results[t.name] = await backboneRow(t, feats);
  if (sections.has("auto")) {
    const specs = RECOMMENDED_BACKBONES.text.map((id) => feats[id]!);
    autoRows.push(await autoTableRow(t.name, recommendedSets(specs, t.texts.length), t, FOLDS));
  }
}

/** Test accuracy of the C = 1 head on every backbone and combination. */
async function backboneRow(t: TextTask, feats: Record<string, { X: Float32Array; dim: number }>) {
  const row: Record<string, { mean: number; sd: number }> = {};
  for (const id of SINGLE) row[id] = await evaluate(feats[id]!.X, feats[id]!.dim, t);
  for (const parts of COMBOS) {
    const ps = parts.map((p) => feats[p]!);
    const X = normalizeConcat(
      ps.map((p) => ({ vectors: p.X, dim: p.dim })),
      t.texts.length,
    );
    row[parts.join("+")] = await evaluate(
      X,
      ps.reduce((a, p) => a + p.dim, 0),
      t,
    );
  }
  for (const [id, r] of Object.entries(row)) {
    console.log(
      `  ${id.padEnd(32)} ${r.mean.toFixed(2)}%${Number.isNaN(r.sd) ? "" : ` ± ${r.sd.toFixed(2)}`}`,
    );
  }
  return row;
}

if (sections.has("backbones")) {
  const ids = [...SINGLE, ...COMBOS.map((c) => c.join("+"))];
  console.log(`\n| backbone | ${tasks.map((t) => t.name).join(" | ")} |`);
  console.log(`|---|${tasks.map(() => "---:").join("|")}|`);
  for (const id of ids) {
    const cells = tasks.map((t) => {
      const r = results[t.name]![id]!;
      return `${r.mean.toFixed(2)}${Number.isNaN(r.sd) ? "" : ` ± ${r.sd.toFixed(2)}`}`;
    });
    console.log(`| ${id} | ${cells.join(" | ")} |`);
  }
  console.log(`\n${JSON.stringify(results)}`);
}
if (sections.has("auto")) for (const line of [...AUTO_TABLE_HEADER, ...autoRows]) console.log(line);
