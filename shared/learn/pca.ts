/**
 * Principal component analysis to a few components, for pictures of embeddings (the console's
 * dataset map). Power iteration with deflation on the covariance, never formed: each step is
 * `Xᵀ(X v)` over the centered rows, O(n·d), so a 3,000 × 1,280 sample takes milliseconds where a
 * d×d eigen decomposition would not. At most 100 steps a component by default (the worst case,
 * 2,000 × 1,280 rows with no structure, ≈ 2 s; embeddings with structure converge in tens of ms).
 * Deterministic: the start vectors come from a seeded PRNG.
 */
import { checkMatrixShape } from "./numeric.ts";
import { gaussian, mulberry32 } from "./split.ts";

export interface PcaResult {
  /** n × k, row-major: each row's coordinates on the components. */
  coords: Float64Array;
  /** k × d, row-major, unit length, mutually orthogonal. */
  components: Float64Array;
  /** Each component's share of the total variance, in [0, 1]. */
  explained: number[];
}

export interface PcaOptions {
  components?: number;
  seed?: number;
  maxIter?: number;
  /** Stop when the direction moves less than this (1 − |cos|). */
  tol?: number;
}

/** The mean of each column and the total variance, over `n` rows of `d`. */
function centerOf(X: ArrayLike<number>, n: number, d: number): { mean: Float64Array; total: number } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += X[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = X[i * d + j] - mean[j];
      total += v * v;
    }
  }
  return { mean, total: total / Math.max(1, n - 1) };
}

/** `C v` for the covariance C of the centered rows `Z`, with the components found so far projected out. */
function covTimes(
  Z: Float64Array,
  n: number,
  d: number,
  v: Float64Array,
  found: Float64Array[],
): Float64Array {
  const out = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    let s = 0;
    for (let j = 0; j < d; j++) s += Z[row + j] * v[j];
    if (s === 0) continue;
    for (let j = 0; j < d; j++) out[j] += s * Z[row + j];
  }
  for (let j = 0; j < d; j++) out[j] /= Math.max(1, n - 1);
  for (const u of found) deflate(out, u);
  return out;
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, j) => s + x * b[j], 0);

function deflate(v: Float64Array, u: Float64Array): void {
  const p = dot(v, u);
  for (let j = 0; j < v.length; j++) v[j] -= p * u[j];
}

/** Scales `v` to unit length in place; returns its former length. */
function normalize(v: Float64Array): number {
  const norm = Math.sqrt(dot(v, v));
  if (norm > 0) for (let j = 0; j < v.length; j++) v[j] /= norm;
  return norm;
}

/**
 * The top `components` (default 2) principal components of the n × d matrix `X`. A component
 * past the data's rank (constant data, or fewer distinct rows than components) is all zeros with
 * an explained share of 0.
 */
export function pca(X: ArrayLike<number>, n: number, d: number, opts: PcaOptions = {}): PcaResult {
  checkMatrixShape(X, n, d);
  const k = opts.components ?? 2;
  // A picture needs directions to about a milliradian; where the top eigenvalues are nearly equal
  // (no structure), any direction among them explains about as much, so the cap costs nothing.
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-7;
  const rand = mulberry32(opts.seed ?? 0);
  const { mean, total } = centerOf(X, n, d);
  const Z = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) Z[i * d + j] = X[i * d + j] - mean[j];
  const found: Float64Array[] = [];
  const explained: number[] = [];
  for (let c = 0; c < k; c++) {
    let v: Float64Array = Float64Array.from({ length: d }, () => gaussian(rand));
    for (const u of found) deflate(v, u);
    normalize(v);
    let eigen = 0;
    for (let it = 0; it < maxIter; it++) {
      const next = covTimes(Z, n, d, v, found);
      eigen = normalize(next);
      if (eigen === 0) break;
      const moved = 1 - Math.abs(dot(next, v));
      v = next;
      if (moved < tol) break;
    }
    if (eigen === 0) v = new Float64Array(d);
    found.push(v);
  }
  const coords = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += Z[i * d + j] * found[c][j];
      coords[i * k + c] = s;
    }
  }
  // Each share from the variance of the projections themselves (the Rayleigh quotient), exact for
  // the direction found, however loosely it converged.
  for (let c = 0; c < k; c++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += coords[i * k + c] ** 2;
    explained.push(total > 0 ? ss / Math.max(1, n - 1) / total : 0);
  }
  const components = new Float64Array(k * d);
  found.forEach((u, c) => {
    components.set(u, c * d);
  });
  return { coords, components, explained };
}
