/**
 * Active learning's numerics: which unlabelled rows a person should label next. Uncertainty from a
 * head's calibrated probabilities (margin, entropy), diversity by k-center greedy over unit rows
 * (the coreset of Sener & Savarese, 2018), and the hybrid that keeps the most uncertain rows and
 * picks one typical row from each group of similar ones among them. Pure and allocation-free per
 * row: the callers hand in row-major Float32Array/Float64Array matrices.
 */
import { ValidationError } from "../errors.ts";
import { medoids } from "./kmeans.ts";
import { mulberry32, shuffleInPlace } from "./split.ts";

/** Probabilities per row: rows of a softmax (`exclusive`) or independent per-label ones. */
export interface Probabilities {
  probs: ArrayLike<number>;
  n: number;
  k: number;
  /** true: each row sums to 1 (multiclass); false: each column is its own yes/no (multilabel). */
  exclusive: boolean;
}

/**
 * 1 − (p₁ − p₂) per row: 1 on the decision boundary, 0 when one class holds all the mass. For
 * independent labels, the least decided label counts: 1 − min_c |2p_c − 1|.
 */
export function marginUncertainty({ probs, n, k, exclusive }: Probabilities): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * k;
    if (!exclusive || k === 1) {
      let least = 1;
      for (let c = 0; c < k; c++) least = Math.min(least, Math.abs(2 * probs[base + c] - 1));
      out[i] = 1 - least;
      continue;
    }
    let first = Number.NEGATIVE_INFINITY;
    let second = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      const p = probs[base + c];
      if (p > first) {
        second = first;
        first = p;
      } else if (p > second) second = p;
    }
    out[i] = 1 - (first - second);
  }
  return out;
}

/**
 * Entropy per row divided by its largest possible value, so 1 is "no idea" whatever the number of
 * classes: −Σ p log p / log k for a softmax; for independent labels, the mean binary entropy (in
 * bits, already in [0, 1]).
 */
export function entropyUncertainty({ probs, n, k, exclusive }: Probabilities): Float64Array {
  const out = new Float64Array(n);
  const binary = !exclusive || k === 1;
  const scale = binary ? 1 / (k * Math.LN2) : 1 / Math.log(k);
  for (let i = 0; i < n; i++) {
    const base = i * k;
    let h = 0;
    for (let c = 0; c < k; c++) {
      const p = probs[base + c];
      if (p > 0) h -= p * Math.log(p);
      if (binary && p < 1) h -= (1 - p) * Math.log(1 - p);
    }
    out[i] = h * scale;
  }
  return out;
}

/** `n` rows of `dim` scaled to unit length (a zero row stays zero), into a new matrix. */
export function unitRows(vectors: Float32Array, n: number, dim: number): Float32Array {
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const base = i * dim;
    let sq = 0;
    for (let j = 0; j < dim; j++) sq += vectors[base + j] * vectors[base + j];
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    for (let j = 0; j < dim; j++) out[base + j] = vectors[base + j] * inv;
  }
  return out;
}

export interface KCenterInput {
  /** Candidate rows, row-major, `dim` wide (unit length for distances in [0, 2]). */
  candidates: Float32Array;
  /** Rows already covered (the labelled ones), row-major, `dim` wide; may be empty. */
  covered: Float32Array;
  dim: number;
  /** How many to pick (at most the number of candidates). */
  k: number;
  /** Only these candidate indices may be picked (all when absent). */
  among?: ArrayLike<number>;
  /** With nothing covered, the first pick: this candidate (default: the one nearest the mean). */
  first?: number;
}

export interface KCenterPick {
  /** Candidate index. */
  index: number;
  /** L2 distance to the nearest covered or earlier-picked row when picked; 2 for a first seed. */
  distance: number;
}

/** The largest L2 distance between two unit vectors: a seed's distance to nothing. */
export const SEED_DISTANCE = 2;

/**
 * k-center greedy: each pick is the candidate farthest from everything covered so far (the
 * labelled rows and the earlier picks), so a batch spreads over the space and never holds two
 * near-duplicates while anything far is left. O((covered + k) · candidates · dim).
 */
export function kCenterGreedy(input: KCenterInput): KCenterPick[] {
  const { candidates, covered, dim } = input;
  const pool = input.among ? Int32Array.from(input.among) : poolOfAll(candidates.length / dim);
  const k = Math.min(input.k, pool.length);
  const nearest = new Float64Array(pool.length).fill(Number.POSITIVE_INFINITY);
  const taken = new Uint8Array(pool.length);
  for (let r = 0; r < covered.length / dim; r++) lowerTo(nearest, pool, candidates, covered, r * dim, dim);
  const picks: KCenterPick[] = [];
  for (let p = 0; p < k; p++) {
    let at = -1;
    if (p === 0 && covered.length === 0) {
      at = input.first !== undefined ? pool.indexOf(input.first) : nearestToMean(pool, candidates, dim);
      if (at < 0) throw new ValidationError(`first pick ${input.first} is not a candidate`);
    } else {
      for (let i = 0; i < pool.length; i++) {
        if (!taken[i] && (at < 0 || nearest[i] > nearest[at])) at = i;
      }
    }
    taken[at] = 1;
    const distance = Number.isFinite(nearest[at]) ? Math.sqrt(nearest[at]) : SEED_DISTANCE;
    picks.push({ index: pool[at], distance });
    lowerTo(nearest, pool, candidates, candidates, pool[at] * dim, dim);
  }
  return picks;
}

function poolOfAll(n: number): Int32Array {
  const pool = new Int32Array(n);
  for (let i = 0; i < n; i++) pool[i] = i;
  return pool;
}

/** nearest[i] = min(nearest[i], ‖candidate_pool[i] − from[offset…]‖²). */
function lowerTo(
  nearest: Float64Array,
  pool: Int32Array,
  candidates: Float32Array,
  from: Float32Array,
  offset: number,
  dim: number,
): void {
  for (let i = 0; i < pool.length; i++) {
    const base = pool[i] * dim;
    let d = 0;
    for (let j = 0; j < dim; j++) {
      const diff = candidates[base + j] - from[offset + j];
      d += diff * diff;
    }
    if (d < nearest[i]) nearest[i] = d;
  }
}

/** The pool position of the candidate nearest the pool's mean: a typical row to seed with. */
function nearestToMean(pool: Int32Array, candidates: Float32Array, dim: number): number {
  const mean = new Float64Array(dim);
  for (let i = 0; i < pool.length; i++) {
    for (let j = 0; j < dim; j++) mean[j] += candidates[pool[i] * dim + j] / pool.length;
  }
  let best = 0;
  let bestD = Number.POSITIVE_INFINITY;
  for (let i = 0; i < pool.length; i++) {
    let d = 0;
    for (let j = 0; j < dim; j++) d += (candidates[pool[i] * dim + j] - mean[j]) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

/** Indices of the `m` largest scores, largest first (ties: lower index first). */
export function topIndices(scores: ArrayLike<number>, m: number): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, Math.max(0, Math.min(m, order.length)));
}

/**
 * How many of the most uncertain rows the hybrid keeps before grouping: HYBRID_POOL × k. With
 * k-means medoids, 5 had the best learning curves on `npm run bench:active`'s two tasks among 2 and
 * 5, and was confirmed on fresh seeds (docs/benchmarks.md): a wider pool buys typical rows with
 * less uncertain ones.
 */
export const HYBRID_POOL = 5;

export interface HybridPick {
  /** Candidate index. */
  index: number;
  uncertainty: number;
  /** How many of the pool's rows its group holds (the row is the one nearest their mean). */
  groupSize: number;
  /** How many rows the pool held. */
  pool: number;
}

/**
 * The hybrid's pool: poolFactor·k rows, but at most half of the `n` candidates (and at least k), so
 * that uncertainty still rules out the other half when k is large against them.
 */
export function hybridPoolSize(n: number, k: number, poolFactor = HYBRID_POOL): number {
  return Math.min(n, Math.max(1, Math.round(poolFactor * k)), Math.max(k, Math.floor(n / 2)));
}

/**
 * The hybrid batch: the most uncertain candidates (hybridPoolSize, less those under half the top
 * uncertainty beyond the first k), grouped by k-means weighted by
 * their uncertainty into k groups of similar rows (Zhdanov, 2019), and from each group its medoid
 * (the member nearest the group's centre), largest groups first. A batch thus holds no two
 * near-duplicates, and each pick is a typical row of a region the head is unsure about rather than
 * an outlier at its edge, which k-center greedy, the hybrid before, tended to pick
 * (docs/benchmarks.md). Deterministic for a given `seed`.
 */
export function hybridPicks(
  uncertainty: Float64Array,
  input: { candidates: Float32Array; dim: number; k: number },
  poolFactor = HYBRID_POOL,
  seed = 0,
): HybridPick[] {
  const top = topIndices(uncertainty, hybridPoolSize(uncertainty.length, input.k, poolFactor));
  if (top.length === 0) return [];
  // Rows less than half as uncertain as the most uncertain one would group into clusters of their
  // own and spend picks on what the head already knows; they stay out unless k needs them.
  const sure = (r: number) => uncertainty[r] < uncertainty[top[0]] / 2;
  const rows = top.filter((r, i) => i < input.k || !sure(r));
  const weights = rows.map((r) => uncertainty[r]);
  const picks = medoids({ vectors: input.candidates, dim: input.dim, rows, k: input.k, seed, weights });
  return picks.map((p) => ({
    index: p.row,
    uncertainty: uncertainty[p.row],
    groupSize: p.clusterSize,
    pool: rows.length,
  }));
}

/** How many rows a cold start's k-means groups at most: a seeded sample of them beyond. */
export const TYPICAL_SAMPLE = 10_000;

export interface TypicalPick {
  /** Candidate index. */
  index: number;
  /** How many of the grouped rows its group holds. */
  groupSize: number;
  /** How many rows were grouped (all candidates, or a sample of TYPICAL_SAMPLE). */
  grouped: number;
}

/**
 * A seed set for a cold start (nothing labelled, no head): the candidates (a seeded sample of at
 * most `sample` of them) grouped by k-means into k, and each group's medoid, largest groups
 * first. Typical rows of every region, where k-center greedy seeds with outliers
 * (docs/benchmarks.md: a logreg head on 20 such rows of Fashion-MNIST scores 52.9%, on 20 random
 * rows 47.2%, on k-center's 28.3%). Deterministic for a given `seed`.
 */
export function typicalPicks(
  input: { candidates: Float32Array; dim: number; k: number },
  sample = TYPICAL_SAMPLE,
  seed = 0,
): TypicalPick[] {
  const n = input.candidates.length / input.dim;
  if (n === 0) return [];
  const all = Array.from({ length: n }, (_, i) => i);
  if (n > sample) shuffleInPlace(all, mulberry32(seed));
  const rows = n > sample ? all.slice(0, sample) : all;
  return medoids({ vectors: input.candidates, dim: input.dim, rows, k: input.k, seed }).map((m) => ({
    index: m.row,
    groupSize: m.clusterSize,
    grouped: rows.length,
  }));
}

/**
 * How many heads the hybrid's committee holds, and from how many labelled rows on it is asked
 * (below, the head's own probabilities): bootstrap resamples of a few dozen rows are too noisy to
 * help. Both were chosen on `npm run bench:active`'s two tasks and confirmed on fresh seeds
 * (docs/benchmarks.md).
 */
export const COMMITTEE_SIZE = 10;
export const COMMITTEE_MIN_ROWS = 100;

/**
 * Query by bagging (Abe & Mamitsuka, 1998): the mean class probabilities over the candidates of
 * `members` heads, each fitted by `fitPredict` on a bootstrap resample of the labelled rows (n draws
 * with replacement, drawn again while it holds fewer than two classes). A head fitted on a few
 * hundred rows is sure of itself on rows it has never seen the like of; its resamples disagree
 * there, so the mean's margin marks them uncertain where the head alone would not. Deterministic
 * for a given `seed`. `y`: the labelled rows' classes (at least two distinct).
 */
export async function committeeProbabilities(
  y: ArrayLike<number>,
  fitPredict: (rows: Int32Array) => Promise<Float64Array>,
  members = COMMITTEE_SIZE,
  seed = 0,
): Promise<Float64Array> {
  const n = y.length;
  if (new Set(Array.from(y)).size < 2) {
    throw new ValidationError("a committee needs labelled rows of at least two classes", { field: "label" });
  }
  const rand = mulberry32(seed);
  let sum: Float64Array | undefined;
  for (let m = 0; m < members; m++) {
    const rows = new Int32Array(n);
    do {
      for (let i = 0; i < n; i++) rows[i] = Math.floor(rand() * n);
    } while (!twoClasses(y, rows));
    const probs = await fitPredict(rows);
    if (!sum) sum = new Float64Array(probs.length);
    for (let i = 0; i < probs.length; i++) sum[i] += probs[i] / members;
  }
  return sum!;
}

function twoClasses(y: ArrayLike<number>, rows: Int32Array): boolean {
  for (let i = 1; i < rows.length; i++) if (y[rows[i]] !== y[rows[0]]) return true;
  return false;
}
