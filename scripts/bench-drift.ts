/**
 * The drift section of `npm run bench:quality`: what `headstart drift` runs (learn/mmd.ts: MMD with
 * an RBF kernel on L2-normalized glove-100d vectors, permutation p-value, drift at p < 0.05) on
 *   - false alarms: `trials` random splits of IMDB reviews into two disjoint samples of one
 *     distribution (reference and current, `perSide` rows each) — the share flagged as drift;
 *   - detection: the same, with a share (`mixIn`, 30% by default) of the current sample replaced by items of another task
 *     (SpamAssassin subject lines: short texts of another domain) — the share flagged.
 * Vectors are embedded once and cached under `outDir`.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { MMD_DEFAULTS, mmdTest } from "../shared/learn/mmd.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { loadImdb } from "../shared/samples/imdb.ts";
import { spamSubjectsTask } from "./text-tasks.ts";

export interface DriftBench {
  /** IMDB reviews read per label block (the pool of same-distribution items is 4× this). */
  perBlock: number;
  /** Rows of each side of a check. */
  perSide: number;
  trials: number;
  /** Shares of the current sample drawn from the other task: one detection row each. */
  mixIn: number[];
  permutations: number;
  seed: number;
  modelsDir: string;
  outDir: string;
}

const BACKBONE = "glove-100d";

async function embedCached(name: string, texts: readonly string[], b: DriftBench) {
  const embedder = await builtInEmbedder(BACKBONE, b.modelsDir);
  const dim = embedder.spec.dim;
  const file = join(b.outDir, `drift-${name}-${texts.length}-${embedder.spec.sha256.slice(0, 16)}.f32`);
  try {
    const buf = await readFile(file);
    return { n: texts.length, dim, X: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) };
  } catch {}
  const X = new Float32Array(texts.length * dim);
  for (let s = 0; s < texts.length; s += 1024) {
    X.set(await embedder.embed(texts.slice(s, s + 1024).map((t) => ({ text: normalizeText(t) }))), s * dim);
  }
  await mkdir(b.outDir, { recursive: true });
  await writeFile(`${file}.tmp`, new Uint8Array(X.buffer));
  await rename(`${file}.tmp`, file);
  return { n: texts.length, dim, X };
}

function rowsOf(X: Float32Array, dim: number, idx: ArrayLike<number>, out: Float32Array, at: number) {
  for (let i = 0; i < idx.length; i++) out.set(X.subarray(idx[i] * dim, (idx[i] + 1) * dim), (at + i) * dim);
}

interface Outcome {
  flagged: number;
  pValues: number[];
  seconds: number[];
}

/** `trials` checks of a reference against a current sample with `mix` of it from `other`. */
function runTrials(
  pool: { n: number; dim: number; X: Float32Array },
  other: { n: number; dim: number; X: Float32Array },
  mix: number,
  b: DriftBench,
): Outcome {
  const { dim } = pool;
  const out: Outcome = { flagged: 0, pValues: [], seconds: [] };
  const fromOther = Math.round(mix * b.perSide);
  for (let t = 0; t < b.trials; t++) {
    const rand = mulberry32(b.seed * 1000 + t);
    const order = Int32Array.from({ length: pool.n }, (_, i) => i);
    shuffleInPlace(order, rand);
    const otherOrder = Int32Array.from({ length: other.n }, (_, i) => i);
    shuffleInPlace(otherOrder, rand);
    const ref = new Float32Array(b.perSide * dim);
    const cur = new Float32Array(b.perSide * dim);
    rowsOf(pool.X, dim, order.subarray(0, b.perSide), ref, 0);
    rowsOf(pool.X, dim, order.subarray(b.perSide, 2 * b.perSide - fromOther), cur, 0);
    rowsOf(other.X, dim, otherOrder.subarray(0, fromOther), cur, b.perSide - fromOther);
    const t0 = performance.now();
    const r = mmdTest(ref, b.perSide, cur, b.perSide, dim, { permutations: b.permutations, seed: t });
    out.seconds.push((performance.now() - t0) / 1000);
    out.pValues.push(r.pValue);
    if (r.pValue < MMD_DEFAULTS.alpha) out.flagged++;
  }
  return out;
}

const median = (v: number[]) => [...v].sort((a, c) => a - c)[Math.floor(v.length / 2)];

/** Prints the section's table; returns its rows for callers that want them. */
export async function driftSection(b: DriftBench) {
  const reviews = (await loadImdb(b.perBlock)).map((r) => r.text.replace(/<br\s*\/?>/g, " "));
  const pool = await embedCached("imdb", reviews, b);
  const spam = spamSubjectsTask();
  const other = await embedCached("spam-subjects", spam.texts, b);
  if (2 * b.perSide > pool.n) throw new Error(`--per-side ${b.perSide}: the IMDB pool has ${pool.n} rows`);
  const rows = [
    { check: "same distribution (false alarms)", target: "≤ 5%", ...runTrials(pool, other, 0, b) },
    ...b.mixIn.map((mix) => ({
      check: `${Math.round(100 * mix)}% SpamAssassin subjects mixed in (detection)`,
      target: mix === 0.3 ? "≥ 95%" : "",
      ...runTrials(pool, other, mix, b),
    })),
  ];
  console.log(
    `\n## Drift: MMD (RBF, median bandwidth) on ${BACKBONE}, ${b.perSide} rows a side, ` +
      `${b.permutations} permutations, drift at p < ${MMD_DEFAULTS.alpha}, ${b.trials} random splits of ${pool.n} IMDB reviews\n`,
  );
  console.log("| check | flagged as drift | target | median p | median s / check |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.check} | ${r.flagged}/${b.trials} (${((100 * r.flagged) / b.trials).toFixed(0)}%) | ${r.target} | ` +
        `${median(r.pValues).toFixed(3)} | ${median(r.seconds).toFixed(2)} |`,
    );
  }
  return rows;
}
