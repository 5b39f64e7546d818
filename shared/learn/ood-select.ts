/**
 * Which unknown-input scorer a head keeps, chosen at training without a single unknown item: each of
 * a few seen classes plays, in turn, the class the head has never seen. The head type is refitted
 * on the other classes (for max-softmax) and each distance scorer too, on the training rows outside
 * the validation fold; the scorers are then asked to tell the stand-in class's rows from the
 * validation rows of the classes they were fitted on, and judged by AUROC averaged over the turns.
 *
 * max-softmax (`msp`) is the fallback and wins near-ties: it costs nothing to store or to score, so a
 * distance scorer is kept only when it is ahead by `margin`. Two classes leave nothing to stand in
 * for an unseen one with a classifier still to train, so a binary head keeps `msp`.
 *
 * Real unknown items are rarely a whole missing class; the turns measure the near-unknown case (a
 * new kind of item close to the seen ones), the one where scorers differ most (docs/benchmarks.md).
 */
import { checkTrainingBudget } from "./budget.ts";
import { auroc, fitOodScorer, OOD_METHODS, type OodMethod, oodScores } from "./ood.ts";
import { mulberry32, shuffleInPlace } from "./split.ts";

/** A head type fitted on rows of `k` classes, answering its class probabilities (n × k) for new rows. */
export type ProbaFitter = (
  X: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
) => Promise<(X: Float32Array, n: number) => Promise<Float64Array>>;

export interface OodSelectOptions {
  seed?: number;
  /** Most classes that take a turn as the stand-in unknown class (default 4). */
  turns?: number;
  /** Most rows each turn fits on (default 1,000). */
  maxFit?: number;
  /** Most known and most unknown rows each turn scores (default 300 each). */
  maxEval?: number;
  /** How far above msp's mean AUROC a distance scorer must be to be kept (default 0.02). */
  margin?: number;
}

export interface OodSelection {
  method: OodMethod;
  /** Why, in one sentence (the report shows it). */
  reason: string;
  /** The classes (indices) that stood in for an unseen one. */
  standIns: number[];
  /** Mean AUROC of each scorer over the turns (absent when no turn could run). */
  auroc?: Record<OodMethod, number>;
}

export const SELECT_DEFAULTS = { turns: 4, maxFit: 1000, maxEval: 300, margin: 0.02 } as const;

interface Rows {
  X: Float32Array;
  n: number;
  d: number;
  /** Classes 0..k−1. */
  y: Int32Array;
  k: number;
  /** 1 = a validation row (never fitted on). */
  validation: Uint8Array;
}

/** The scorer to keep for a head trained on `rows`; `fitProba` refits the head's own type. */
export async function selectOodMethod(
  rows: Rows,
  fitProba: ProbaFitter,
  opts: OodSelectOptions = {},
): Promise<OodSelection> {
  const o = { ...SELECT_DEFAULTS, ...opts, seed: opts.seed ?? 0 };
  if (rows.k < 3) {
    return { method: "msp", standIns: [], reason: "two classes: no class can stand in for an unseen one" };
  }
  const rand = mulberry32(o.seed);
  const classes = Array.from({ length: rows.k }, (_, c) => c);
  shuffleInPlace(classes, rand);
  const sums = Object.fromEntries(OOD_METHODS.map((m) => [m, 0])) as Record<OodMethod, number>;
  const standIns: number[] = [];
  for (const c of classes) {
    if (standIns.length >= o.turns) break;
    checkTrainingBudget();
    const turn = await oneTurn(rows, c, fitProba, o, rand);
    if (!turn) continue;
    standIns.push(c);
    for (const m of OOD_METHODS) sums[m] += turn[m];
  }
  if (standIns.length === 0) {
    return { method: "msp", standIns, reason: "too few rows per class to stand one in for an unseen class" };
  }
  const mean = Object.fromEntries(OOD_METHODS.map((m) => [m, sums[m] / standIns.length])) as Record<
    OodMethod,
    number
  >;
  return { ...decide(mean, o.margin), standIns, auroc: mean };
}

function decide(mean: Record<OodMethod, number>, margin: number): Pick<OodSelection, "method" | "reason"> {
  const best = mean.mahalanobis >= mean.knn ? "mahalanobis" : "knn";
  const f = (v: number) => v.toFixed(3);
  if (mean[best] - mean.msp >= margin) {
    return {
      method: best,
      reason: `${best} separated stand-in classes best (AUROC ${f(mean[best])} vs msp ${f(mean.msp)})`,
    };
  }
  return {
    method: "msp",
    reason: `no distance scorer beat msp by ${margin} AUROC (msp ${f(mean.msp)}, best other ${best} ${f(mean[best])})`,
  };
}

/** Each scorer's AUROC with class `c` unseen, or undefined when too few rows are left for it. */
async function oneTurn(
  rows: Rows,
  c: number,
  fitProba: ProbaFitter,
  o: Required<Omit<OodSelectOptions, "seed">>,
  rand: () => number,
): Promise<Record<OodMethod, number> | undefined> {
  const fitPos: number[] = [];
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < rows.n; i++) {
    if (rows.y[i] === c) unknown.push(i);
    else (rows.validation[i] ? known : fitPos).push(i);
  }
  const fit = sample(fitPos, o.maxFit, rand);
  const [kn, un] = [sample(known, o.maxEval, rand), sample(unknown, o.maxEval, rand)];
  if (kn.length < 5 || un.length < 5 || fit.length < 2) return undefined;
  // Classes above c shift down by one: the fitted models see k − 1 classes, 0..k−2.
  const y = Int32Array.from(fit, (i) => (rows.y[i] > c ? rows.y[i] - 1 : rows.y[i]));
  const k = rows.k - 1;
  const { d } = rows;
  const Xfit = gather(rows.X, d, fit);
  const evalPos = [...kn, ...un];
  const Xeval = gather(rows.X, d, evalPos);
  const proba = await (await fitProba(Xfit, fit.length, d, y, k))(Xeval, evalPos.length);
  const out = {} as Record<OodMethod, number>;
  for (const m of OOD_METHODS) {
    const scorer = fitOodScorer(m, Xfit, fit.length, d, y, k);
    const s = oodScores(scorer, Xeval, evalPos.length, proba, k);
    out[m] = auroc(s.subarray(0, kn.length), s.subarray(kn.length));
  }
  return out;
}

function sample(pos: number[], max: number, rand: () => number): number[] {
  if (pos.length <= max) return pos;
  const copy = pos.slice();
  shuffleInPlace(copy, rand);
  return copy.slice(0, max).sort((a, b) => a - b);
}

function gather(X: Float32Array, d: number, pos: readonly number[]): Float32Array {
  const out = new Float32Array(pos.length * d);
  pos.forEach((i, t) => {
    out.set(X.subarray(i * d, (i + 1) * d), t * d);
  });
  return out;
}
