/**
 * Confident learning (Northcutt, Jiang & Chuang, JAIR 2021; cleanlab's `find_label_issues` with
 * `filter_by="prune_by_noise_rate"`): which given labels are probably wrong, from out-of-fold
 * predicted probabilities. Pure numerics on an n × k probability matrix and n given class indices.
 *
 * 1. Per-class thresholds: t_j = the mean probability of class j over the rows labelled j (the
 *    model's average self-confidence in that class).
 * 2. The confident joint C[given][true]: a row counts toward the class j whose probability is
 *    highest among those at or above their threshold (no such class: it is not counted).
 * 3. Calibrated to the given labels' counts and normalized, C becomes the joint Q of given and true
 *    labels; its off-diagonal mass is the estimated noise rate.
 * 4. Prune by noise rate: for each off-diagonal cell (i, j), the round(n · Q[i][j]) rows labelled i
 *    with the largest margin p_j − p_i are issues; a row whose most probable class is its given
 *    label is never one. How many are flagged comes from Q, so the count is an estimate too.
 */
import { ValidationError } from "../errors.ts";

/** How issues are ordered: by the probability of the given label, or by its normalized margin. */
export const RANK_BY = ["self-confidence", "normalized-margin"] as const;
export type RankBy = (typeof RANK_BY)[number];

export interface LabelIssueIndex {
  /** Row index into the inputs. */
  row: number;
  given: number;
  /** The most probable class. */
  suggested: number;
  /** 1 − the label's quality under `rankBy`, in [0, 1]: higher is more suspect. */
  score: number;
}

export interface ConfidentLearning {
  /** t_j per class (+Infinity for a class no row is labelled with). */
  thresholds: Float64Array;
  /** The confident joint, k × k row-major: [given][confidently predicted]. */
  joint: Int32Array;
  /** Off-diagonal mass of the calibrated, normalized joint: the estimated share of wrong labels. */
  noiseRate: number;
  /** Flagged rows, most suspect first (ties by row index). */
  issues: LabelIssueIndex[];
}

type Probabilities = Float32Array | Float64Array;

function check(probs: Probabilities, labels: Int32Array, k: number): void {
  if (!Number.isInteger(k) || k < 2) throw new ValidationError("k must be an integer >= 2", { field: "k" });
  if (probs.length !== labels.length * k) {
    throw new ValidationError(`probabilities hold ${probs.length} values, not ${labels.length} rows × ${k}`, {
      field: "probs",
    });
  }
  for (let i = 0; i < labels.length; i++) {
    if (!(labels[i] >= 0 && labels[i] < k))
      throw new ValidationError(`labels[${i}] = ${labels[i]} is outside 0..${k - 1}`, { field: "labels" });
  }
  for (let t = 0; t < probs.length; t++) {
    if (!Number.isFinite(probs[t]))
      throw new ValidationError(`probability of row ${Math.floor(t / k)} is not finite`, { field: "probs" });
  }
}

/** t_j: the mean probability of class j over the rows labelled j. */
export function perClassThresholds(probs: Probabilities, labels: Int32Array, k: number): Float64Array {
  const sum = new Float64Array(k);
  const count = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) {
    sum[labels[i]] += probs[i * k + labels[i]];
    count[labels[i]]++;
  }
  return sum.map((s, j) => (count[j] > 0 ? s / count[j] : Number.POSITIVE_INFINITY));
}

/** The confident joint [given][class], and each row's confident class (−1 when none passes). */
export function confidentJoint(
  probs: Probabilities,
  labels: Int32Array,
  k: number,
  thresholds: Float64Array,
): { joint: Int32Array; confident: Int32Array } {
  const joint = new Int32Array(k * k);
  const confident = new Int32Array(labels.length).fill(-1);
  for (let i = 0; i < labels.length; i++) {
    let best = -1;
    for (let j = 0; j < k; j++) {
      const p = probs[i * k + j];
      // A hair under the threshold still counts: a class whose rows all score alike sits exactly on it.
      if (p >= thresholds[j] - 1e-12 && (best < 0 || p > probs[i * k + best])) best = j;
    }
    confident[i] = best;
    if (best >= 0) joint[labels[i] * k + best]++;
  }
  return { joint, confident };
}

/**
 * The joint distribution of given and true labels: each row of the confident joint rescaled to its
 * class's count (a class none of whose rows passed a threshold counts as clean), then normalized.
 */
export function calibratedJoint(joint: Int32Array, labels: Int32Array, k: number): Float64Array {
  const given = new Float64Array(k);
  for (const y of labels) given[y]++;
  const q = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    let row = 0;
    for (let b = 0; b < k; b++) row += joint[a * k + b];
    if (row === 0) q[a * k + a] = given[a];
    else for (let b = 0; b < k; b++) q[a * k + b] = (joint[a * k + b] / row) * given[a];
  }
  const total = labels.length;
  return total > 0 ? q.map((v) => v / total) : q;
}

/** The label's quality in [0, 1] per row: p_given, or (p_given − max other + 1) / 2. */
export function labelQuality(
  probs: Probabilities,
  labels: Int32Array,
  k: number,
  rankBy: RankBy,
): Float64Array {
  const out = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const own = probs[i * k + labels[i]];
    if (rankBy === "self-confidence") {
      out[i] = own;
      continue;
    }
    let other = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < k; j++) if (j !== labels[i] && probs[i * k + j] > other) other = probs[i * k + j];
    out[i] = (own - other + 1) / 2;
  }
  return out;
}

function argmaxRow(probs: Probabilities, k: number, i: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
  return best;
}

/**
 * Rows flagged by pruning: per off-diagonal cell (i, j), the round(n · Q[i][j]) rows labelled i with
 * the largest p_j − p_i, at most all but one of class i's rows (cleanlab keeps one per class).
 */
function pruneByNoiseRate(probs: Probabilities, labels: Int32Array, k: number, q: Float64Array): Uint8Array {
  const n = labels.length;
  const members: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < n; i++) members[labels[i]].push(i);
  const flagged = new Uint8Array(n);
  for (let a = 0; a < k; a++) {
    const rows = members[a];
    for (let b = 0; b < k; b++) {
      if (b === a) continue;
      const m = Math.min(Math.round(n * q[a * k + b]), rows.length - 1);
      if (m <= 0) continue;
      const margin = (i: number) => probs[i * k + b] - probs[i * k + a];
      const ranked = [...rows].sort((x, y) => margin(y) - margin(x) || x - y);
      for (let t = 0; t < m; t++) flagged[ranked[t]] = 1;
    }
  }
  return flagged;
}

/** Confident learning over out-of-fold probabilities: thresholds, joint, noise rate and ranked issues. */
export function confidentLearning(
  probs: Probabilities,
  labels: Int32Array,
  k: number,
  rankBy: RankBy = "self-confidence",
): ConfidentLearning {
  check(probs, labels, k);
  const thresholds = perClassThresholds(probs, labels, k);
  const { joint } = confidentJoint(probs, labels, k, thresholds);
  const q = calibratedJoint(joint, labels, k);
  let diagonal = 0;
  for (let a = 0; a < k; a++) diagonal += q[a * k + a];
  const noiseRate = labels.length > 0 ? Math.max(0, 1 - diagonal) : 0;
  const flagged = pruneByNoiseRate(probs, labels, k, q);
  const quality = labelQuality(probs, labels, k, rankBy);
  const issues: LabelIssueIndex[] = [];
  for (let i = 0; i < labels.length; i++) {
    const suggested = argmaxRow(probs, k, i);
    if (!flagged[i] || suggested === labels[i]) continue;
    issues.push({ row: i, given: labels[i], suggested, score: 1 - quality[i] });
  }
  issues.sort((x, y) => y.score - x.score || x.row - y.row);
  return { thresholds, joint, noiseRate, issues };
}
