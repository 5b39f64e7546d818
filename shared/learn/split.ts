/**
 * Deterministic randomness and stratified fold assignment. The same seed gives the same folds on every
 * machine and Node version: only 32-bit integer arithmetic (Math.imul) is involved.
 */
import { ValidationError } from "../errors.ts";

/** mulberry32: a tiny 32-bit PRNG, good enough for shuffling; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One standard-normal draw (Box–Muller, cosine branch) from two uniforms of `rand`. `1 - rand()` lies in
 * (0, 1], so the logarithm is finite. Every seeded synthetic data set is built on this exact formula:
 * changing it changes the data behind tests and benchmarks.
 */
export function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** In-place Fisher–Yates shuffle driven by `rand`. */
export function shuffleInPlace(a: Int32Array | number[], rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/**
 * Fold index (0..folds-1) per row. Each class is shuffled and dealt round-robin, and each class starts
 * dealing where the previous one stopped, so per class the fold counts differ by at most one and the
 * overall fold sizes also differ by at most one. A class with fewer rows than folds is simply absent
 * from some folds (callers that need every class in every training fold should check class counts).
 */
export function stratifiedKFold(y: Int32Array, k: number, folds: number, seed: number): Int32Array {
  const n = y.length;
  if (!Number.isInteger(folds) || folds < 2)
    throw new ValidationError("folds must be an integer >= 2", { field: "folds" });
  if (!Number.isInteger(k) || k < 1)
    throw new ValidationError("k must be a positive integer", { field: "k" });
  if (n < folds) {
    throw new ValidationError(`cannot split ${n} rows into ${folds} folds: some fold would be empty`, {
      field: "folds",
    });
  }
  const counts = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    const c = y[i];
    if (c < 0 || c >= k) throw new ValidationError(`y[${i}] = ${c} is outside 0..${k - 1}`, { field: "y" });
    counts[c]++;
  }
  // Group row indices by class (counting sort keeps the grouping itself independent of the seed).
  const start = new Int32Array(k + 1);
  for (let c = 0; c < k; c++) start[c + 1] = start[c] + counts[c];
  const order = new Int32Array(n);
  const fill = start.slice(0, k);
  for (let i = 0; i < n; i++) order[fill[y[i]]++] = i;

  const rand = mulberry32(seed);
  const out = new Int32Array(n);
  let next = 0;
  for (let c = 0; c < k; c++) {
    const members = order.subarray(start[c], start[c + 1]);
    shuffleInPlace(members, rand);
    for (let t = 0; t < members.length; t++) {
      out[members[t]] = next;
      next = next + 1 === folds ? 0 : next + 1;
    }
  }
  return out;
}

/** Row indices of the training and held-out parts for one fold. */
export function foldIndices(foldOf: Int32Array, fold: number): { train: Int32Array; test: Int32Array } {
  let m = 0;
  for (let i = 0; i < foldOf.length; i++) if (foldOf[i] === fold) m++;
  const test = new Int32Array(m);
  const train = new Int32Array(foldOf.length - m);
  let a = 0;
  let b = 0;
  for (let i = 0; i < foldOf.length; i++) {
    if (foldOf[i] === fold) test[a++] = i;
    else train[b++] = i;
  }
  return { train, test };
}

/** Fold index per row for unstratified k-fold (regression and multi-label targets). */
export function kFold(n: number, folds: number, seed: number): Int32Array {
  if (!Number.isInteger(folds) || folds < 2)
    throw new ValidationError("folds must be an integer >= 2", { field: "folds" });
  if (n < folds) {
    throw new ValidationError(`cannot split ${n} rows into ${folds} folds: some fold would be empty`, {
      field: "folds",
    });
  }
  const order = Int32Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(order, mulberry32(seed));
  const out = new Int32Array(n);
  for (let t = 0; t < n; t++) out[order[t]] = t % folds;
  return out;
}
