/**
 * The `auto` tables of `npm run bench:text` and `npm run bench:images`: on a task, what `train`
 * fits on each backbone set of the recommended backbones (its default head: logistic regression, C
 * chosen by cross-validation on small sets), against what `train --type auto` with no backbone
 * named picks among them — the same code (`chooseEstimator`), on vectors held in memory. Every test
 * row is predicted once (the official test split, or each row by the fold that held it out), so two
 * choices are compared row by row.
 */
import type { BackboneSpec } from "../shared/backbone/spec.ts";
import { normalizeConcat } from "../shared/embed/composite.ts";
import type { EmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { backboneSets } from "../shared/heads/backbone-candidates.ts";
import { chooseEstimator, fitChoice } from "../shared/heads/choose-estimator.ts";
import { buildTrainingSet } from "../shared/heads/problem.ts";
import type { BackboneInput } from "../shared/heads/train-inputs.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { foldIndices, stratifiedKFold } from "../shared/learn/split.ts";

/** A labelled task: a class index per row, and (optionally) which rows are the test split. */
export interface PickTask {
  labels: string[];
  y: Int32Array;
  /** Official split (1 = test); absent: every row is tested once by stratified k-fold CV. */
  isTest?: Uint8Array;
}

/** One backbone set's vectors for every row of a task. */
export interface SetFeatures {
  specs: BackboneSpec[];
  X: Float32Array;
  dim: number;
}

/** Per test row whether the choice was right, in task row order, and what auto picked per fold. */
export interface Outcome {
  correct: Uint8Array;
  picks: string[];
  searchSeconds: number[];
}

/** The rows `train` ∪ `test` of one set as the embedded dataset a training reads (test rows split off). */
function dataset(f: SetFeatures, t: PickTask, train: Int32Array, test: Int32Array): EmbeddedDataset {
  const order = [...train, ...test];
  const vectors = new Float32Array(order.length * f.dim);
  order.forEach((r, i) => {
    vectors.set(f.X.subarray(r * f.dim, (r + 1) * f.dim), i * f.dim);
  });
  return {
    dataset: "bench",
    version: "bench",
    dim: f.dim,
    rows: order.map((r, i) => ({
      id: `r${r}`,
      line: i + 1,
      label: t.labels[t.y[r]!]!,
      ...(i >= train.length ? { split: "test" as const } : {}),
    })),
    vectors,
    unsupported: 0,
    failed: [],
  };
}

/** Fits what train fits (`auto` over every set, or the default head on the one set) and scores `test`. */
async function fitAndScore(
  sets: SetFeatures[],
  t: PickTask,
  train: Int32Array,
  test: Int32Array,
  auto: boolean,
) {
  const inputs: BackboneInput[] = sets.map((f) => ({ specs: f.specs, data: dataset(f, t, train, test) }));
  const backbones = sets.map((f) => f.specs.map((s) => s.id).join("+"));
  const opts = { dataset: "bench", head: "bench", ...(auto ? { type: "auto", backbones } : {}) };
  const set = buildTrainingSet(opts, inputs[0].data);
  const t0 = performance.now();
  const choice = await chooseEstimator(opts, set, inputs, undefined);
  const seconds = (performance.now() - t0) / 1000;
  const model = await fitChoice(choice, set);
  const proba = await choice.kind.predict(model, choice.problem.X(set.testPos), set.testPos.length);
  const predicted = argmaxRows(proba, set.testPos.length, choice.problem.width);
  const labels = choice.problem.labels;
  const correct = Uint8Array.from(test, (r, i) => (labels[predicted[i]!] === t.labels[t.y[r]!] ? 1 : 0));
  const pick = `${choice.input.specs.map((s) => s.id).join("+")} ${choice.kind.type}`;
  return { correct, pick, seconds };
}

/** The task's test rows, each predicted once: the official split, or stratified `folds`-fold CV (seed 0). */
export async function outcome(
  sets: SetFeatures[],
  t: PickTask,
  folds: number,
  auto: boolean,
): Promise<Outcome> {
  const correct = new Uint8Array(t.y.length);
  const picks: string[] = [];
  const searchSeconds: number[] = [];
  const splits = t.isTest
    ? [
        {
          train: Int32Array.from(t.y.keys()).filter((i) => !t.isTest![i]),
          test: Int32Array.from(t.y.keys()).filter((i) => t.isTest![i] === 1),
        },
      ]
    : Array.from({ length: folds }, (_, f) =>
        foldIndices(stratifiedKFold(t.y, t.labels.length, folds, 0), f),
      );
  for (const { train, test } of splits) {
    const r = await fitAndScore(sets, t, train, test, auto);
    test.forEach((row, i) => {
      correct[row] = r.correct[i]!;
    });
    picks.push(r.pick);
    searchSeconds.push(r.seconds);
  }
  const tested = t.isTest ? Int32Array.from(t.y.keys()).filter((i) => t.isTest![i] === 1) : undefined;
  return { correct: tested ? Uint8Array.from(tested, (i) => correct[i]!) : correct, picks, searchSeconds };
}

/** Accuracy in percent. */
export const accuracyOf = (o: Outcome) => (100 * o.correct.reduce((a, b) => a + b, 0)) / o.correct.length;

/** a − b in accuracy points, with the standard error of the paired per-row difference. */
export function pairedDifference(a: Outcome, b: Outcome): { diff: number; se: number } {
  const n = a.correct.length;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const d = a.correct[i]! - b.correct[i]!;
    sum += d;
    sq += d * d;
  }
  const mean = sum / n;
  const variance = (sq - n * mean * mean) / (n - 1);
  return { diff: 100 * mean, se: (100 * Math.sqrt(Math.max(0, variance))) / Math.sqrt(n) };
}

/** One backbone's vectors for every row of a task, with its spec. */
export interface BackboneFeatures {
  X: Float32Array;
  dim: number;
  spec: BackboneSpec;
}

/** Every set of `parts` as the platform searches them (`backboneSets`: cheapest first), with vectors. */
export function recommendedSets(parts: readonly BackboneFeatures[], n: number): SetFeatures[] {
  const byId = new Map(parts.map((p) => [p.spec.id, p]));
  return backboneSets(parts.map((p) => p.spec)).map((ref): SetFeatures => {
    const chosen = ref.split("+").map((id) => byId.get(id)!);
    const dim = chosen.reduce((a, p) => a + p.dim, 0);
    const X =
      chosen.length === 1
        ? chosen[0]!.X
        : normalizeConcat(
            chosen.map((p) => ({ vectors: p.X, dim: p.dim })),
            n,
          );
    return { specs: chosen.map((p) => p.spec), X, dim };
  });
}

export const AUTO_TABLE_HEADER = [
  "\n| task | best single backbone (default head) | best combination | auto picked (backbone, head) | auto | auto − best fixed (± SE, paired by row) | within noise (≥ −2 SE) | search time |",
  "|---|---|---|---|---:|---:|:---:|---:|",
];

/**
 * Each set with train's default head, then auto over all of them, logged as it goes; the table row:
 * best single set, best combination, auto's pick(s) and its paired difference from the best fixed.
 */
export async function autoTableRow(
  name: string,
  sets: SetFeatures[],
  t: PickTask,
  folds: number,
): Promise<string> {
  const id = (f: SetFeatures) => f.specs.map((s) => s.id).join("+");
  const fixed: Array<{ name: string; parts: number; o: Outcome; acc: number }> = [];
  for (const f of sets) {
    const o = await outcome([f], t, folds, false);
    fixed.push({ name: id(f), parts: f.specs.length, o, acc: accuracyOf(o) });
    console.log(`  fixed ${id(f).padEnd(40)} ${accuracyOf(o).toFixed(2)}%  (${o.picks[0]!.split(" ")[1]})`);
  }
  const auto = await outcome(sets, t, folds, true);
  const best = (xs: typeof fixed) => xs.reduce((a, b) => (b.acc > a.acc ? b : a));
  const single = best(fixed.filter((f) => f.parts === 1));
  const combos = fixed.filter((f) => f.parts > 1);
  const combo = combos.length ? best(combos) : undefined;
  const top = best(fixed);
  const { diff, se } = pairedDifference(auto, top.o);
  const tally = new Map<string, number>();
  for (const p of auto.picks) tally.set(p, (tally.get(p) ?? 0) + 1);
  const picks = [...tally].map(([p, n]) => (auto.picks.length > 1 ? `${p} ×${n}` : p)).join(", ");
  const seconds = [...auto.searchSeconds].sort((a, b) => a - b)[Math.floor(auto.searchSeconds.length / 2)]!;
  const signed = `${diff >= 0 ? "+" : ""}${diff.toFixed(2)} ± ${se.toFixed(2)}`;
  console.log(
    `  auto: ${picks}; ${accuracyOf(auto).toFixed(2)}%, ${signed} vs ${top.name}; search ${seconds.toFixed(1)} s (median)`,
  );
  const comboCell = combo ? `${combo.name} ${combo.acc.toFixed(2)}` : "–";
  const verdict = diff >= -2 * se ? "yes" : "**no**";
  return `| ${name} | ${single.name} ${single.acc.toFixed(2)} | ${comboCell} | ${picks} | ${accuracyOf(auto).toFixed(2)} | ${signed} | ${verdict} | ${seconds.toFixed(1)} s |`;
}
