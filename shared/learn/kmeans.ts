/**
 * k-means over a subset of row-major vectors (Lloyd's iterations from a k-means++ seeding, Arthur &
 * Vassilvitskii 2007), and the medoid of each cluster: the member nearest its centroid. Active
 * learning's hybrid uses the medoids to pick one typical row per group of similar uncertain rows
 * (learn/active.ts). Deterministic for a given seed; no allocation per distance.
 */
import { ValidationError } from "../errors.ts";
import { mulberry32 } from "./split.ts";

export interface KMeansInput {
  /** Row-major vectors, `dim` wide (unit rows when distances should be angles). */
  vectors: Float32Array;
  dim: number;
  /** The rows to cluster (indices into `vectors`), in order of preference: ties go to the earlier. */
  rows: ArrayLike<number>;
  /** How many clusters (at most the number of rows). */
  k: number;
  seed?: number;
  /** Lloyd iterations at most; it stops sooner once no row changes cluster. */
  maxIterations?: number;
  /**
   * Per position in `rows`: how much the row counts (≥ 0; default 1). The objective is
   * Σ weight·‖row − centroid‖², so the centres settle among the heavy rows, and seeding draws ∝
   * weight·D². The first centre is the heaviest row.
   */
  weights?: ArrayLike<number>;
}

export interface KMeansResult {
  /** k × dim, row-major. */
  centroids: Float64Array;
  /** Per position in `rows`: its cluster. */
  assign: Int32Array;
  /** Members per cluster. */
  sizes: Int32Array;
  iterations: number;
}

/** Lloyd iterations at most: on the hybrid's pools they settle in fewer (docs/benchmarks.md). */
export const KMEANS_MAX_ITERATIONS = 10;

export function kMeans(input: KMeansInput): KMeansResult {
  const { vectors, dim, rows } = input;
  const n = rows.length;
  const k = Math.min(input.k, n);
  if (!Number.isInteger(k) || k < 1)
    throw new ValidationError("k-means needs k ≥ 1 and a row", { field: "k" });
  if (
    input.weights &&
    (input.weights.length !== n || Array.from(input.weights).some((w) => !(Number.isFinite(w) && w >= 0)))
  ) {
    throw new ValidationError("k-means weights: one finite weight ≥ 0 per row", { field: "weights" });
  }
  const centroids = seedPlusPlus(input, k);
  const assign = new Int32Array(n).fill(-1);
  let iterations = 0;
  const most = Math.max(1, input.maxIterations ?? KMEANS_MAX_ITERATIONS);
  for (; iterations < most; iterations++) {
    if (!assignNearest(vectors, dim, rows, centroids, k, assign)) break;
    recenter(input, assign, centroids, k);
  }
  const sizes = new Int32Array(k);
  for (let i = 0; i < n; i++) sizes[assign[i]]++;
  return { centroids, assign, sizes, iterations };
}

/**
 * k-means++: the first centre the heaviest row (the seed's draw when unweighted), each next one
 * drawn with probability ∝ weight·D².
 */
function seedPlusPlus({ vectors, dim, rows, seed = 0, weights }: KMeansInput, k: number): Float64Array {
  const rand = mulberry32(seed);
  const n = rows.length;
  const centroids = new Float64Array(k * dim);
  const d2 = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  const draw = new Float64Array(n);
  let pick = weights ? heaviest(weights) : Math.floor(rand() * n);
  for (let c = 0; c < k; c++) {
    if (c > 0) {
      for (let i = 0; i < n; i++) draw[i] = d2[i] * (weights ? weights[i] : 1);
      pick = drawByWeight(draw, rand);
    }
    for (let j = 0; j < dim; j++) centroids[c * dim + j] = vectors[rows[pick] * dim + j];
    for (let i = 0; i < n; i++)
      d2[i] = Math.min(d2[i], squaredDistance(vectors, rows[i] * dim, centroids, c * dim, dim));
  }
  return centroids;
}

function heaviest(weights: ArrayLike<number>): number {
  let at = 0;
  for (let i = 1; i < weights.length; i++) if (weights[i] > weights[at]) at = i;
  return at;
}

/** An index drawn with probability ∝ weight (the first when every weight is 0: all rows taken). */
function drawByWeight(weights: Float64Array, rand: () => number): number {
  let total = 0;
  for (const w of weights) total += w;
  let r = rand() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i];
    if (weights[i] > 0 && r <= 0) return i;
  }
  return weights.findIndex((w) => w > 0) === -1 ? 0 : weights.length - 1;
}

/** Each row to its nearest centroid; true when any row changed cluster. */
function assignNearest(
  vectors: Float32Array,
  dim: number,
  rows: ArrayLike<number>,
  centroids: Float64Array,
  k: number,
  assign: Int32Array,
): boolean {
  let changed = false;
  for (let i = 0; i < rows.length; i++) {
    let best = 0;
    let bestD = Number.POSITIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      const d = squaredDistance(vectors, rows[i] * dim, centroids, c * dim, dim);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    if (assign[i] !== best) changed = true;
    assign[i] = best;
  }
  return changed;
}

/** Each centroid to the (weighted) mean of its members; a cluster of no weight keeps its centroid. */
function recenter(input: KMeansInput, assign: Int32Array, centroids: Float64Array, k: number): void {
  const { vectors, dim, rows, weights } = input;
  const mass = new Float64Array(k);
  for (let i = 0; i < rows.length; i++) mass[assign[i]] += weights ? weights[i] : 1;
  for (let c = 0; c < k; c++) if (mass[c] > 0) centroids.fill(0, c * dim, (c + 1) * dim);
  for (let i = 0; i < rows.length; i++) {
    const c = assign[i];
    if (mass[c] === 0) continue;
    const w = (weights ? weights[i] : 1) / mass[c];
    for (let j = 0; j < dim; j++) centroids[c * dim + j] += vectors[rows[i] * dim + j] * w;
  }
}

function squaredDistance(a: Float32Array, ao: number, b: Float64Array, bo: number, dim: number): number {
  let d = 0;
  for (let j = 0; j < dim; j++) {
    const t = a[ao + j] - b[bo + j];
    d += t * t;
  }
  return d;
}

export interface Medoid {
  /** The row (an entry of `rows`). */
  row: number;
  /** How many rows its cluster holds. */
  clusterSize: number;
}

/**
 * One row per cluster: the member nearest its centroid, largest clusters first (ties: lower
 * cluster). Exactly min(k, rows) of them: where clusters came out empty (duplicate rows), the
 * earliest rows not yet picked fill in, with a cluster size of 1.
 */
export function medoids(input: KMeansInput, result: KMeansResult = kMeans(input)): Medoid[] {
  const { vectors, dim, rows } = input;
  const { centroids, assign, sizes } = result;
  const nearest = new Int32Array(sizes.length).fill(-1);
  const nearestD = new Float64Array(sizes.length).fill(Number.POSITIVE_INFINITY);
  for (let i = 0; i < rows.length; i++) {
    const c = assign[i];
    const d = squaredDistance(vectors, rows[i] * dim, centroids, c * dim, dim);
    if (d < nearestD[c]) {
      nearestD[c] = d;
      nearest[c] = i;
    }
  }
  const order = Array.from(sizes.keys()).filter((c) => nearest[c] >= 0);
  order.sort((a, b) => sizes[b] - sizes[a] || a - b);
  const picks: Medoid[] = order.map((c) => ({ row: rows[nearest[c]], clusterSize: sizes[c] }));
  const taken = new Set(picks.map((p) => p.row));
  const want = Math.min(input.k, rows.length);
  for (let i = 0; picks.length < want && i < rows.length; i++) {
    if (!taken.has(rows[i])) picks.push({ row: rows[i], clusterSize: 1 });
  }
  return picks;
}
