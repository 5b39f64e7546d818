/**
 * A two-sample test on embeddings: maximum mean discrepancy (Gretton et al. 2012) with a Gaussian
 * RBF kernel on L2-normalized rows, its bandwidth from the median heuristic over the pooled sample,
 * and a permutation p-value. The pooled kernel matrix is computed once; a permutation only
 * relabels rows, so each costs one matrix–vector product with a 0/1 mask, not a new kernel.
 * Each side is subsampled (seeded) to `maxPerSide`, which bounds the work at O((2·cap)²·dim) for
 * the kernel and O(permutations·(2·cap)²) for the test: about a second at the defaults.
 */
import { ValidationError } from "../errors.ts";
import { mulberry32 } from "./split.ts";

export const MMD_DEFAULTS = { maxPerSide: 1000, permutations: 200, seed: 0, alpha: 0.05 } as const;

export interface MmdOptions {
  /** Rows drawn (without replacement, seeded) from each side when it has more. */
  maxPerSide?: number;
  permutations?: number;
  seed?: number;
}

export interface MmdResult {
  /** Unbiased estimate of MMD² between the two samples (can be slightly negative when equal). */
  mmd2: number;
  /** (1 + permutations with a statistic ≥ the observed one) / (1 + permutations): in (0, 1]. */
  pValue: number;
  /** σ of k(x, y) = exp(−‖x − y‖² / (2σ²)): the median pairwise distance of the pooled rows. */
  bandwidth: number;
  permutations: number;
  /** Rows each side had, and rows the test used after subsampling. */
  n: { reference: number; current: number };
  used: { reference: number; current: number };
}

/** `k` distinct indices of 0..n−1 in increasing order (all of them when k ≥ n), seeded. */
export function sampleIndices(n: number, k: number, rand: () => number): Int32Array {
  const all = Int32Array.from({ length: n }, (_, i) => i);
  if (k >= n) return all;
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = all[i];
    all[i] = all[j];
    all[j] = t;
  }
  return all.subarray(0, k).sort();
}

/** The chosen rows of a row-major matrix, each divided by its L2 norm (a zero row stays zero). */
function unitRows(x: Float32Array, dim: number, pick: Int32Array, out: Float32Array, at: number): void {
  pick.forEach((r, i) => {
    let sq = 0;
    for (let j = 0; j < dim; j++) sq += x[r * dim + j] * x[r * dim + j];
    const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    const dst = (at + i) * dim;
    for (let j = 0; j < dim; j++) out[dst + j] = x[r * dim + j] * inv;
  });
}

/** Pairwise squared distances of unit rows (2 − 2·cos), N × N, zero on the diagonal. */
function squaredDistances(z: Float32Array, n: number, dim: number): Float64Array {
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = i * dim;
    for (let j = i + 1; j < n; j++) {
      const b = j * dim;
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += z[a + k] * z[b + k];
      const v = Math.max(0, 2 - 2 * dot);
      d[i * n + j] = v;
      d[j * n + i] = v;
    }
  }
  return d;
}

/** The median of the off-diagonal squared distances (upper triangle). */
function medianOffDiagonal(d: Float64Array, n: number): number {
  const vals = new Float64Array((n * (n - 1)) / 2);
  let t = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) vals[t++] = d[i * n + j];
  vals.sort();
  const m = vals.length;
  return m % 2 === 1 ? vals[(m - 1) / 2] : (vals[m / 2 - 1] + vals[m / 2]) / 2;
}

/**
 * Unbiased MMD² of the split `inX` (1 = first sample) of the pooled kernel `k` (zero diagonal),
 * given each row's total `rowSum`. One pass: r_i = Σ_{j∈X} k_ij, then the three block sums.
 */
function mmd2Of(k: Float64Array, rowSum: Float64Array, inX: Float64Array, nx: number, ny: number): number {
  const n = nx + ny;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let r = 0;
    for (let j = 0; j < n; j++) r += k[row + j] * inX[j];
    if (inX[i] === 1) sxx += r;
    else {
      sxy += r;
      syy += rowSum[i] - r;
    }
  }
  return sxx / (nx * (nx - 1)) + syy / (ny * (ny - 1)) - (2 * sxy) / (nx * ny);
}

function checkSample(x: Float32Array, n: number, dim: number, field: string): void {
  if (!Number.isInteger(n) || n < 2)
    throw new ValidationError(`${field} needs at least 2 rows, got ${n}`, { field });
  if (x.length !== n * dim)
    throw new ValidationError(`${field} has ${x.length} values for ${n} × ${dim}`, { field });
}

/**
 * The MMD permutation test of `reference` (nr × dim) against `current` (nc × dim). Deterministic
 * for a seed. Small p-values mean the samples differ.
 */
export function mmdTest(
  reference: Float32Array,
  nr: number,
  current: Float32Array,
  nc: number,
  dim: number,
  opts: MmdOptions = {},
): MmdResult {
  checkSample(reference, nr, dim, "reference");
  checkSample(current, nc, dim, "current");
  const cap = opts.maxPerSide ?? MMD_DEFAULTS.maxPerSide;
  const permutations = opts.permutations ?? MMD_DEFAULTS.permutations;
  if (!Number.isInteger(cap) || cap < 2)
    throw new ValidationError("maxPerSide must be an integer ≥ 2", { field: "maxPerSide" });
  if (!Number.isInteger(permutations) || permutations < 1 || permutations > 10_000)
    throw new ValidationError("permutations must be an integer in 1..10000", { field: "permutations" });
  const rand = mulberry32(opts.seed ?? MMD_DEFAULTS.seed);
  const pr = sampleIndices(nr, cap, rand);
  const pc = sampleIndices(nc, cap, rand);
  const nx = pr.length;
  const ny = pc.length;
  const n = nx + ny;
  const z = new Float32Array(n * dim);
  unitRows(reference, dim, pr, z, 0);
  unitRows(current, dim, pc, z, nx);
  const k = squaredDistances(z, n, dim);
  const median = medianOffDiagonal(k, n);
  // All rows equal (median 0): any positive bandwidth gives MMD² 0; keep the kernel finite.
  const twoSigma2 = median > 0 ? 2 * median : 1;
  const rowSum = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const v = Math.exp(-k[i * n + j] / twoSigma2);
      k[i * n + j] = v;
      s += v;
    }
    rowSum[i] = s;
  }
  const inX = new Float64Array(n);
  inX.fill(1, 0, nx);
  const observed = mmd2Of(k, rowSum, inX, nx, ny);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  let atLeast = 0;
  for (let p = 0; p < permutations; p++) {
    // A fresh random split of the pooled rows into nx and ny (partial Fisher–Yates).
    for (let i = 0; i < nx; i++) {
      const j = i + Math.floor(rand() * (n - i));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    inX.fill(0);
    for (let i = 0; i < nx; i++) inX[order[i]] = 1;
    if (mmd2Of(k, rowSum, inX, nx, ny) >= observed) atLeast++;
  }
  return {
    mmd2: observed,
    pValue: (1 + atLeast) / (1 + permutations),
    bandwidth: Math.sqrt(median),
    permutations,
    n: { reference: nr, current: nc },
    used: { reference: nx, current: ny },
  };
}

/** Shares of each label among `labels` (sorted by label), e.g. predicted classes. */
export function labelShares(labels: readonly string[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const out: Record<string, number> = Object.create(null);
  for (const l of [...counts.keys()].sort()) out[l] = counts.get(l)! / Math.max(1, labels.length);
  return out;
}

/** Total variation distance ½·Σ|p − q| between two label distributions (labels absent count 0). */
export function totalVariation(p: Record<string, number>, q: Record<string, number>): number {
  let s = 0;
  for (const l of new Set([...Object.keys(p), ...Object.keys(q)])) s += Math.abs((p[l] ?? 0) - (q[l] ?? 0));
  return s / 2;
}
