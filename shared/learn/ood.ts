/**
 * Out-of-distribution ("unknown input") scorers of a classification head, on its training vectors.
 * Every scorer answers a score per row where higher means less like the training data:
 *
 * - `msp`: 1 − the largest calibrated class probability (Hendrycks & Gimpel, 2017). No state: it
 *   reads the head's own probabilities, so it costs nothing to store or to score.
 * - `mahalanobis`: the smallest squared Mahalanobis distance to a class mean under one shared
 *   within-class covariance (Lee et al., 2018), shrunk towards a multiple of the identity so that it
 *   is invertible when there are fewer rows than dimensions. Stored as the Cholesky factor L
 *   (packed lower triangle) and the class means whitened by it; a row costs one forward
 *   substitution (d²/2) plus k·d.
 * - `knn`: 1 − the cosine similarity of the k-th nearest training vector (Sun et al., 2022), over a
 *   seeded sample of at most `maxRefs` L2-normalized training rows; a row costs refs·d.
 *
 * A threshold is the `keep` quantile of scores on held-out in-distribution rows: a row is unknown
 * when its score is above it, so about `keep` of such rows stay known.
 */
import { ValidationError } from "../errors.ts";
import { choleskyInPlace, forwardSolveRows } from "./cholesky.ts";
import { KernelWorkspace } from "./logistic-kernel-wasm.ts";
import { modelEnvelope, readModelJson } from "./model-json.ts";
import { checkFiniteMatrix, float32ToBase64, normalizeRow } from "./numeric.ts";
import { mulberry32, shuffleInPlace } from "./split.ts";

export const OOD_METHODS = ["msp", "mahalanobis", "knn"] as const;
export type OodMethod = (typeof OOD_METHODS)[number];

export interface MspScorer {
  method: "msp";
}
export interface MahalanobisScorer {
  method: "mahalanobis";
  d: number;
  /** Classes. */
  k: number;
  shrinkage: number;
  /** The Cholesky factor of the shrunk covariance, lower triangle packed row by row (d(d+1)/2). */
  chol: Float32Array;
  /** L⁻¹ μ_c per class, k×d. */
  means: Float32Array;
}
export interface KnnScorer {
  method: "knn";
  d: number;
  /** Which neighbour's similarity is the score (the k-th nearest). */
  k: number;
  /** Reference rows kept. */
  m: number;
  /** m×d unit rows. */
  refs: Float32Array;
}
export type OodScorer = MspScorer | MahalanobisScorer | KnnScorer;

export interface OodFitOptions {
  seed?: number;
  /** kNN: most reference rows kept (default 2,000). Mahalanobis: most rows the covariance is estimated on (twice that). */
  maxRefs?: number;
  /** kNN: which neighbour (default 10, at most the references kept). */
  k?: number;
  /** Mahalanobis: weight of the identity target in the covariance (default 0.1). */
  shrinkage?: number;
}

export const DEFAULT_MAX_REFS = 2000;
export const DEFAULT_KNN_K = 10;
export const DEFAULT_SHRINKAGE = 0.1;

/** Fits `method` on n×d training rows `X` with classes `y` in 0..classes−1 (msp needs neither). */
export function fitOodScorer(
  method: OodMethod,
  X: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  classes: number,
  opts: OodFitOptions = {},
): OodScorer {
  if (method === "msp") return { method };
  checkFiniteMatrix(X, n, d);
  if (n < 1)
    throw new ValidationError("an unknown-input scorer needs at least one training row", { field: "X" });
  if (method === "knn") return fitKnn(X, n, d, opts);
  if (method === "mahalanobis") return fitMahalanobis(X, n, d, y, classes, opts);
  throw new ValidationError(`unknown scorer must be one of ${OOD_METHODS.join(", ")}`, { field: "method" });
}

/** Up to `max` distinct row indices of 0..n−1, a seeded sample in increasing order (all when n ≤ max). */
export function sampleRows(n: number, max: number, seed: number): Int32Array {
  const all = Int32Array.from({ length: n }, (_, i) => i);
  if (n <= max) return all;
  shuffleInPlace(all, mulberry32(seed));
  return all.slice(0, max).sort();
}

function fitKnn(X: Float32Array, n: number, d: number, opts: OodFitOptions): KnnScorer {
  const rows = sampleRows(n, opts.maxRefs ?? DEFAULT_MAX_REFS, opts.seed ?? 0);
  const m = rows.length;
  const refs = new Float32Array(m * d);
  rows.forEach((r, t) => {
    normalizeRow(X, r * d, d, refs, t * d);
  });
  return { method: "knn", d, k: Math.min(opts.k ?? DEFAULT_KNN_K, m), m, refs };
}

/**
 * Rows a kernel scoring pass (knn, mahalanobis) takes at once: short calls, so that the kernels'
 * baseline code is replaced by the optimized tier after the first few (wasm has no on-stack
 * replacement: one long first call would run unoptimized throughout).
 */
const KERNEL_BLOCK = 64;

/** Class means, then the shared within-class covariance on a sample, shrunk, then its Cholesky factor. */
function fitMahalanobis(
  X: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: OodFitOptions,
): MahalanobisScorer {
  const shrinkage = opts.shrinkage ?? DEFAULT_SHRINKAGE;
  if (!(shrinkage > 0 && shrinkage <= 1))
    throw new ValidationError("shrinkage must be in (0, 1]", { field: "shrinkage" });
  const mu = classMeans(X, n, d, y, k);
  const rows = sampleRows(n, 2 * (opts.maxRefs ?? DEFAULT_MAX_REFS), opts.seed ?? 0);
  const cov = withinClassCovarianceKernel(X, d, y, mu, rows) ?? withinClassCovariance(X, d, y, mu, rows);
  let trace = 0;
  for (let a = 0; a < d; a++) trace += cov[a * d + a];
  // A zero-variance embedding (every row equal) still gets a positive-definite identity target.
  const target = trace > 0 ? trace / d : 1;
  for (let a = 0; a < d; a++) {
    for (let b = 0; b <= a; b++) cov[a * d + b] *= 1 - shrinkage;
    cov[a * d + a] += shrinkage * target;
  }
  const L = choleskyInPlace(cov, d);
  const chol = packLower(L, d);
  const means = new Float32Array(k * d);
  const z = new Float64Array(d);
  for (let c = 0; c < k; c++) {
    forwardSolve(chol, d, mu, c * d, z);
    for (let j = 0; j < d; j++) means[c * d + j] = z[j];
  }
  return { method: "mahalanobis", d, k, shrinkage, chol, means };
}

function classMeans(X: Float32Array, n: number, d: number, y: Int32Array, k: number): Float64Array {
  const mu = new Float64Array(k * d);
  const count = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const c = y[i];
    if (!(Number.isInteger(c) && c >= 0 && c < k))
      throw new ValidationError(`y[${i}] = ${c} is outside 0..${k - 1}`, { field: "y" });
    count[c]++;
    for (let j = 0; j < d; j++) mu[c * d + j] += X[i * d + j];
  }
  for (let c = 0; c < k; c++) {
    if (count[c] === 0) continue;
    for (let j = 0; j < d; j++) mu[c * d + j] /= count[c];
  }
  return mu;
}

/** Lower triangle (row-major d×d) of Σ (x − μ_y)(x − μ_y)ᵀ / rows over the sampled rows. */
function withinClassCovariance(
  X: Float32Array,
  d: number,
  y: Int32Array,
  mu: Float64Array,
  rows: Int32Array,
): Float64Array {
  const cov = new Float64Array(d * d);
  // Four rows per pass over the triangle: each entry of cov is loaded and stored once per four
  // rows instead of once per row (the pass is memory-bound at d = 1,280: 6.5 MB of float64).
  const x = Array.from({ length: 4 }, () => new Float64Array(d));
  for (let t = 0; t < rows.length; t += 4) {
    const m = Math.min(4, rows.length - t);
    for (let r = 0; r < 4; r++) {
      const i = rows[t + Math.min(r, m - 1)];
      for (let j = 0; j < d; j++) x[r][j] = r < m ? X[i * d + j] - mu[y[i] * d + j] : 0;
    }
    addOuter4(cov, d, x[0], x[1], x[2], x[3]);
  }
  const inv = 1 / rows.length;
  for (let t = 0; t < cov.length; t++) cov[t] *= inv;
  return cov;
}

/**
 * The same sum as one product through the SIMD kernels (logistic-kernel-wasm.ts): Dᵀ·D for the
 * centered rows D, the right factor rounded to float32 (a relative 6e-8 per term, far below the
 * shrinkage), the whole square where the loop fills the lower triangle; null without the kernels.
 */
function withinClassCovarianceKernel(
  X: Float32Array,
  d: number,
  y: Int32Array,
  mu: Float64Array,
  rows: Int32Array,
): Float64Array | null {
  const m = rows.length;
  const ws = KernelWorkspace.create(m, d, d);
  if (!ws) return null;
  const { dp } = ws;
  for (let t = 0; t < m; t++) {
    const i = rows[t];
    const c = y[i];
    for (let j = 0; j < d; j++) {
      const v = X[i * d + j] - mu[c * d + j];
      ws.r[t * d + j] = v;
      ws.z[t * dp + j] = v;
    }
  }
  ws.backward();
  const cov = new Float64Array(d * d);
  const inv = 1 / m;
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a * d + b] = ws.g[a * dp + b] * inv;
  return cov;
}

/** The lower triangle of cov += x0 x0ᵀ + x1 x1ᵀ + x2 x2ᵀ + x3 x3ᵀ. */
function addOuter4(
  cov: Float64Array,
  d: number,
  x0: Float64Array,
  x1: Float64Array,
  x2: Float64Array,
  x3: Float64Array,
): void {
  for (let a = 0; a < d; a++) {
    const [a0, a1, a2, a3] = [x0[a], x1[a], x2[a], x3[a]];
    const o = a * d;
    for (let b = 0; b <= a; b++) cov[o + b] += a0 * x0[b] + a1 * x1[b] + a2 * x2[b] + a3 * x3[b];
  }
}

function packLower(L: Float64Array, d: number): Float32Array {
  const out = new Float32Array((d * (d + 1)) / 2);
  let t = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) out[t++] = L[i * d + j];
  return out;
}

/** z = L⁻¹ v[off..off+d] for the packed lower-triangular L. */
function forwardSolve(
  chol: Float32Array,
  d: number,
  v: ArrayLike<number>,
  off: number,
  z: Float64Array,
): void {
  let t = 0;
  for (let i = 0; i < d; i++) {
    let s = v[off + i];
    for (let j = 0; j < i; j++) s -= chol[t + j] * z[j];
    t += i;
    z[i] = s / chol[t];
    t++;
  }
}

/**
 * Scores of n rows: `proba` (n×classes, the head's calibrated probabilities) for msp, `X` (n×d) for
 * the distance scorers. Higher is less like the training data.
 */
export function oodScores(
  scorer: OodScorer,
  X: Float32Array,
  n: number,
  proba: Float64Array,
  classes: number,
): Float64Array {
  if (scorer.method === "msp") return mspScores(proba, n, classes);
  checkFiniteMatrix(X, n, scorer.d);
  return scorer.method === "knn" ? knnScores(scorer, X, n) : mahalanobisScores(scorer, X, n);
}

function mspScores(proba: Float64Array, n: number, k: number): Float64Array {
  if (proba.length !== n * k)
    throw new ValidationError(`proba has ${proba.length} values, expected ${n * k}`, { field: "proba" });
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 0; c < k; c++) if (proba[i * k + c] > best) best = proba[i * k + c];
    out[i] = 1 - best;
  }
  return out;
}

function mahalanobisScores(s: MahalanobisScorer, X: Float32Array, n: number): Float64Array {
  if (n >= 16) {
    const out = mahalanobisScoresKernel(s, X, n);
    if (out) return out;
  }
  const { d, chol } = s;
  const out = new Float64Array(n);
  const z = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    forwardSolve(chol, d, X, i * d, z);
    out[i] = nearestMean(s, z, 0);
  }
  return out;
}

/** The smallest squared distance from the whitened row z[off..off+d] to a whitened class mean. */
function nearestMean({ d, k, means }: MahalanobisScorer, z: Float64Array, off: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let c = 0; c < k; c++) {
    let dist = 0;
    for (let j = 0; j < d; j++) {
      const diff = z[off + j] - means[c * d + j];
      dist += diff * diff;
    }
    if (dist < best) best = dist;
  }
  return best;
}

/**
 * Many rows through the SIMD kernels: L⁻¹ formed once (float64, d³/6), then every block of rows
 * whitened by one product, z = X·L⁻ᵀ; the same values as the forward substitutions up to rounding.
 */
function mahalanobisScoresKernel(s: MahalanobisScorer, X: Float32Array, n: number): Float64Array | null {
  const { d, chol } = s;
  const block = Math.min(n, KERNEL_BLOCK);
  const ws = KernelWorkspace.create(block, d, d);
  if (!ws) return null;
  const { dp } = ws;
  const inverse = lowerInverse(chol, d);
  for (let a = 0; a < d; a++) for (let j = 0; j <= a; j++) ws.w[a * dp + j] = inverse[a * d + j];
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += block) {
    const rows = Math.min(block, n - start);
    for (let i = 0; i < rows; i++) ws.z.set(X.subarray((start + i) * d, (start + i + 1) * d), i * dp);
    ws.forward();
    for (let i = 0; i < rows; i++) out[start + i] = nearestMean(s, ws.r, i * d);
  }
  return out;
}

/** L⁻¹ (row-major d×d, lower) of the packed lower-triangular L: L·Y = I solved row by row, Y = L⁻ᵀ. */
function lowerInverse(chol: Float32Array, d: number): Float64Array {
  const L = new Float64Array(d * d);
  let t = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) L[i * d + j] = chol[t++];
  const Y = new Float64Array(d * d);
  for (let i = 0; i < d; i++) Y[i * d + i] = 1;
  forwardSolveRows(L, d, Y, d); // row i of Y: L⁻¹ eᵢ, the i-th column of L⁻¹
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) inv[j * d + i] = Y[i * d + j];
  return inv;
}

/**
 * Many rows (held-out sets at training) through the SIMD kernels of logistic-kernel-wasm.ts, one
 * block of queries × every reference per call: the same float64 sums of float32 products as the
 * loop below, in another order. A single row (predict) stays in the loop.
 */
function knnScores(s: KnnScorer, X: Float32Array, n: number): Float64Array {
  if (n >= 16) {
    const out = knnScoresKernel(s, X, n);
    if (out) return out;
  }
  return knnScoresLoop(s, X, n);
}

function knnScoresKernel(s: KnnScorer, X: Float32Array, n: number): Float64Array | null {
  const { d, m, refs, k } = s;
  const block = Math.min(n, KERNEL_BLOCK);
  const ws = KernelWorkspace.create(block, d, m);
  if (!ws) return null;
  const { dp } = ws;
  // Fresh kernel memory is zero, so the padding columns d..dp−1 of z and w stay 0 throughout.
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < d; j++) ws.w[r * dp + j] = refs[r * d + j];
  }
  const out = new Float64Array(n);
  const top = new Float64Array(k);
  for (let start = 0; start < n; start += block) {
    const rows = Math.min(block, n - start);
    for (let i = 0; i < rows; i++) normalizeRow(X, (start + i) * d, d, ws.z, i * dp);
    ws.forward();
    for (let i = 0; i < rows; i++) {
      top.fill(Number.NEGATIVE_INFINITY);
      for (let r = 0; r < m; r++) keepLargest(top, ws.r[i * m + r]);
      out[start + i] = 1 - top[0];
    }
  }
  return out;
}

function knnScoresLoop(s: KnnScorer, X: Float32Array, n: number): Float64Array {
  const { d, m, refs, k } = s;
  const out = new Float64Array(n);
  // Four query rows per pass over the references: each reference is read once per four rows.
  const q = Array.from({ length: 4 }, () => new Float32Array(d));
  // Per query, the k largest similarities so far, ascending: top[0] is the k-th nearest's.
  const top = Array.from({ length: 4 }, () => new Float64Array(k));
  for (let i = 0; i < n; i += 4) {
    const rows = Math.min(4, n - i);
    for (let r = 0; r < 4; r++) {
      normalizeRow(X, (i + Math.min(r, rows - 1)) * d, d, q[r], 0);
      top[r].fill(Number.NEGATIVE_INFINITY);
    }
    const [q0, q1, q2, q3] = q;
    for (let r = 0; r < m; r++) {
      const o = r * d;
      let [s0, s1, s2, s3] = [0, 0, 0, 0];
      for (let j = 0; j < d; j++) {
        const v = refs[o + j];
        s0 += q0[j] * v;
        s1 += q1[j] * v;
        s2 += q2[j] * v;
        s3 += q3[j] * v;
      }
      keepLargest(top[0], s0);
      keepLargest(top[1], s1);
      keepLargest(top[2], s2);
      keepLargest(top[3], s3);
    }
    for (let r = 0; r < rows; r++) out[i + r] = 1 - top[r][0];
  }
  return out;
}

/** Inserts `v` into the ascending `top` if it is larger than its smallest entry (dropping that one). */
function keepLargest(top: Float64Array, v: number): void {
  if (v <= top[0]) return;
  let p = 0;
  while (p + 1 < top.length && top[p + 1] < v) {
    top[p] = top[p + 1];
    p++;
  }
  top[p] = v;
}

/**
 * The threshold above which a score is unknown: the smallest held-out score with at least `keep`
 * of the held-out scores at or below it.
 */
export function unknownThreshold(heldOut: ArrayLike<number>, keep: number): number {
  if (!(keep > 0 && keep < 1))
    throw new ValidationError("the kept rate must be in (0, 1)", { field: "keep" });
  if (heldOut.length === 0)
    throw new ValidationError("no held-out rows to choose a threshold on", { field: "heldOut" });
  const sorted = Float64Array.from(heldOut).sort();
  return sorted[Math.max(0, Math.ceil(keep * sorted.length) - 1)];
}

/** Area under the ROC curve of telling `unknown` scores (positives) from `known` ones; ties count half. */
export function auroc(known: ArrayLike<number>, unknown: ArrayLike<number>): number {
  const all = [
    ...Array.from(known, (s) => ({ s, pos: 0 })),
    ...Array.from(unknown, (s) => ({ s, pos: 1 })),
  ].sort((a, b) => a.s - b.s);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].s === all[i].s) j++;
    const mid = (i + j + 1) / 2; // mean 1-based rank of the tie group
    for (let t = i; t < j; t++) if (all[t].pos) rankSum += mid;
    i = j;
  }
  const p = unknown.length;
  const q = known.length;
  if (p === 0 || q === 0) return Number.NaN;
  return (rankSum - (p * (p + 1)) / 2) / (p * q);
}

/** Fraction of `unknown` scores still accepted when the threshold keeps `keep` (e.g. 0.95) of `known`. */
export function fprAtTpr(known: ArrayLike<number>, unknown: ArrayLike<number>, keep = 0.95): number {
  const t = unknownThreshold(known, keep);
  let accepted = 0;
  for (let i = 0; i < unknown.length; i++) if (unknown[i] <= t) accepted++;
  return unknown.length ? accepted / unknown.length : Number.NaN;
}

/** The scorer as head.json stores it (float arrays as base64 float32). */
export function oodToJson(s: OodScorer): Record<string, unknown> {
  const env = modelEnvelope("ood");
  if (s.method === "msp") return { ...env, method: "msp" };
  if (s.method === "knn")
    return { ...env, method: "knn", d: s.d, k: s.k, m: s.m, refs: float32ToBase64(s.refs) };
  return {
    ...env,
    method: "mahalanobis",
    d: s.d,
    k: s.k,
    shrinkage: s.shrinkage,
    chol: float32ToBase64(s.chol),
    means: float32ToBase64(s.means),
  };
}

export function oodFromJson(input: unknown): OodScorer {
  const j = readModelJson(input, { type: "ood" });
  const method = j.oneOf("method", OOD_METHODS);
  if (method === "msp") return { method };
  const d = j.positiveInt("d");
  if (method === "knn") {
    const m = j.positiveInt("m");
    const k = j.integerIn("k", 1, m);
    return { method, d, k, m, refs: j.float32("refs", m * d) };
  }
  const k = j.positiveInt("k");
  const shrinkage = j.finite("shrinkage");
  const chol = j.float32("chol", (d * (d + 1)) / 2);
  for (let i = 0; i < d; i++) {
    if (!(chol[(i * (i + 1)) / 2 + i] > 0))
      throw new ValidationError("chol must have a positive diagonal", { field: "chol" });
  }
  return { method, d, k, shrinkage, chol, means: j.float32("means", k * d) };
}
