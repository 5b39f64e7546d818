/**
 * Temperature scaling (Guo et al., 2017) and the top-label calibration diagnostics that go with it.
 *
 * Heads hand over probabilities, not logits, so the logits are recovered as log(max(p, 1e-15)): a
 * softmax is invariant to a per-row shift, so these are the original logits up to that shift (and the
 * clamp, which only touches probabilities no one will see again). One scalar T > 0 divides them before
 * the softmax; T > 1 softens over-confident models, T < 1 sharpens timid ones. Dividing by a positive
 * constant keeps every row's ordering, so calibration never changes a prediction.
 */
import { ValidationError } from "../errors.ts";

/** One bin of a reliability diagram (top-label confidence). */
export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  /** Mean top-label probability of the rows in the bin (0 when empty). */
  confidence: number;
  /** Fraction of those rows predicted correctly (0 when empty). */
  accuracy: number;
}

/** Probabilities below this are clamped before the log, so a hard 0 costs a finite (large) loss. */
export const PROBA_FLOOR = 1e-15;
/** The fitted temperature is kept inside this range: beyond it the data (not T) is the problem. */
// Wide on purpose: similarity heads (nearest centroid over word-vector means) produce nearly flat
// probabilities that need sharpening by a factor of tens to hundreds (measured on IMDB).
export const MIN_TEMPERATURE = 1e-3;
export const MAX_TEMPERATURE = 1e3;

function checkShape(proba: Float64Array, y: Int32Array | undefined, n: number, k: number) {
  if (!Number.isInteger(k) || k < 1)
    throw new ValidationError(`k must be a positive integer, got ${k}`, { field: "k" });
  if (proba.length !== n * k) {
    throw new ValidationError(`proba has ${proba.length} entries, expected ${n} rows × ${k} classes`, {
      field: "proba",
    });
  }
  for (let i = 0; i < proba.length; i++) {
    const p = proba[i];
    // NaN fails both comparisons, so this also rejects it.
    if (!(p >= 0 && p <= 1)) {
      throw new ValidationError(`proba[${Math.floor(i / k)}][${i % k}] = ${p} is not a probability`, {
        field: "proba",
      });
    }
  }
  if (y) {
    for (let i = 0; i < n; i++) {
      if (y[i] < 0 || y[i] >= k)
        throw new ValidationError(`y[${i}] = ${y[i]} is outside 0..${k - 1}`, { field: "y" });
    }
  }
}

function rowsOf(proba: Float64Array, y: Int32Array, k: number): number {
  if (!Number.isInteger(k) || k < 1)
    throw new ValidationError(`k must be a positive integer, got ${k}`, { field: "k" });
  const n = y.length;
  checkShape(proba, y, n, k);
  return n;
}

function checkWeights(sampleWeight: Float64Array | undefined, n: number): void {
  if (!sampleWeight) return;
  if (sampleWeight.length !== n) {
    throw new ValidationError(`sampleWeight has ${sampleWeight.length} entries, y has ${n}`, {
      field: "sampleWeight",
    });
  }
  for (let i = 0; i < n; i++) {
    const w = sampleWeight[i];
    if (!(Number.isFinite(w) && w >= 0)) {
      throw new ValidationError(`sampleWeight[${i}] = ${w} must be finite and non-negative`, {
        field: "sampleWeight",
      });
    }
  }
}

function logits(proba: Float64Array): Float64Array {
  const z = new Float64Array(proba.length);
  for (let i = 0; i < proba.length; i++) z[i] = Math.log(Math.max(proba[i], PROBA_FLOOR));
  return z;
}

/** Weighted mean NLL of softmax(z / T) and its first two derivatives with respect to u = log T. */
export interface TemperatureLoss {
  value: number;
  /** d value / d log T. */
  grad: number;
  /** d² value / d (log T)². Not always positive: the loss is convex in 1/T, only unimodal in log T. */
  hess: number;
}

function lossAt(
  z: Float64Array,
  y: Int32Array,
  k: number,
  logT: number,
  sampleWeight: Float64Array | undefined,
): TemperatureLoss {
  const n = y.length;
  const beta = Math.exp(-logT);
  let value = 0;
  let grad = 0;
  let hess = 0;
  let wSum = 0;
  for (let i = 0; i < n; i++) {
    const w = sampleWeight ? sampleWeight[i] : 1;
    if (w === 0) continue;
    const row = i * k;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) if (z[row + c] > max) max = z[row + c];
    // a_c = z_c / T; shifting by the row max keeps every exponent ≤ 0 (and leaves the softmax alone).
    let s = 0;
    let s1 = 0;
    let s2 = 0;
    for (let c = 0; c < k; c++) {
      const a = (z[row + c] - max) * beta;
      const e = Math.exp(a);
      s += e;
      s1 += e * a;
      s2 += e * a * a;
    }
    const mean = s1 / s;
    const variance = Math.max(0, s2 / s - mean * mean);
    const ay = (z[row + y[i]] - max) * beta;
    // ℓ = lse(a) - a_y;  da/du = -a, so dℓ/du = a_y - E[a] and d²ℓ/du² = -a_y + E[a] + Var[a].
    value += w * (Math.log(s) - ay);
    grad += w * (ay - mean);
    hess += w * (mean - ay + variance);
    wSum += w;
  }
  if (wSum <= 0) return { value: 0, grad: 0, hess: 0 };
  return { value: value / wSum, grad: grad / wSum, hess: hess / wSum };
}

/** The calibration loss at a temperature (exported for derivative checks and diagnostics). */
export function temperatureLoss(
  proba: Float64Array,
  y: Int32Array,
  k: number,
  logT: number,
  sampleWeight?: Float64Array,
): TemperatureLoss {
  rowsOf(proba, y, k);
  checkWeights(sampleWeight, y.length);
  return lossAt(logits(proba), y, k, logT, sampleWeight);
}

/**
 * The temperature T in [MIN_TEMPERATURE, MAX_TEMPERATURE] minimizing the (weighted) mean NLL of
 * softmax(log(max(p, 1e-15)) / T), plus a weak prior on log T (see below). Returns 1 when there is nothing to learn from: fewer than two
 * (positively weighted) rows, a single class among them, or k = 1.
 *
 * The loss is convex in 1/T, hence unimodal in log T, so the sign of its derivative says on which side
 * of the minimum a point lies: bisection on that sign always converges, and Newton steps that stay
 * inside the bracket make it fast.
 */
export function fitTemperature(
  proba: Float64Array,
  y: Int32Array,
  k: number,
  sampleWeight?: Float64Array,
): number {
  const n = rowsOf(proba, y, k);
  checkWeights(sampleWeight, n);
  let rows = 0;
  let weight = 0;
  let first = -1;
  let single = true;
  for (let i = 0; i < n; i++) {
    if (sampleWeight && sampleWeight[i] === 0) continue;
    rows++;
    weight += sampleWeight ? sampleWeight[i] : 1;
    if (first < 0) first = y[i];
    else if (y[i] !== first) single = false;
  }
  if (k < 2 || rows < 2 || single) return 1;

  const z = logits(proba);
  // A standard-normal prior on log T worth one row: negligible when the data disagree with T = 1,
  // but it stops predictions without a single error from driving T to the bound (which would
  // turn every served probability into 0 or 1).
  const f = (u: number): TemperatureLoss => {
    const l = lossAt(z, y, k, u, sampleWeight);
    return { value: l.value + (u * u) / (2 * weight), grad: l.grad + u / weight, hess: l.hess + 1 / weight };
  };
  let lo = Math.log(MIN_TEMPERATURE);
  let hi = Math.log(MAX_TEMPERATURE);
  let u = 0; // T = 1: the model as it is, usually close.
  let cur = f(u);
  // Unimodal: only the bound on the minimum's side of T = 1 can be where it lies.
  if (cur.grad < 0) {
    if (f(hi).grad <= 0) return MAX_TEMPERATURE;
  } else if (cur.grad > 0) {
    if (f(lo).grad >= 0) return MIN_TEMPERATURE;
  } else return 1;

  for (let iter = 0; iter < 100; iter++) {
    if (cur.grad > 0) hi = u;
    else if (cur.grad < 0) lo = u;
    else break;
    if (hi - lo < 1e-10) break;
    const newton = cur.hess > 0 ? u - cur.grad / cur.hess : Number.NaN;
    const next = newton > lo && newton < hi ? newton : 0.5 * (lo + hi);
    if (Math.abs(next - u) < 1e-9) {
      u = next;
      break;
    }
    u = next;
    cur = f(u);
    if (Math.abs(cur.grad) < 1e-12) break;
  }
  return Math.exp(u);
}

/** The largest double below x (x > 0, finite). */
function nextDown(x: number): number {
  const buf = new Float64Array([x]);
  const bits = new BigInt64Array(buf.buffer);
  bits[0] -= 1n;
  return buf[0];
}

/**
 * softmax(log(max(p, 1e-15)) / T) row by row, as a new array. T = 1 returns an exact copy. The arg-max
 * (first index among ties, as `argmaxRows`) is preserved even where rounding would merge two nearly
 * equal probabilities: such a runner-up is set just below the winner.
 */
export function applyTemperature(proba: Float64Array, n: number, k: number, T: number): Float64Array {
  if (!(Number.isFinite(T) && T > 0))
    throw new ValidationError(`temperature must be finite and positive, got ${T}`, { field: "temperature" });
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError(`n must be a non-negative integer, got ${n}`, { field: "n" });
  checkShape(proba, undefined, n, k);
  if (T === 1) return proba.slice();
  const out = new Float64Array(n * k);
  const beta = 1 / T;
  for (let i = 0; i < n; i++) {
    const row = i * k;
    let best = 0;
    for (let c = 1; c < k; c++) if (proba[row + c] > proba[row + best]) best = c;
    const max = Math.log(Math.max(proba[row + best], PROBA_FLOOR));
    let s = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp((Math.log(Math.max(proba[row + c], PROBA_FLOOR)) - max) * beta);
      out[row + c] = e;
      s += e;
    }
    for (let c = 0; c < k; c++) out[row + c] /= s;
    const top = out[row + best];
    for (let c = 0; c < k; c++) {
      if (c === best || proba[row + c] === proba[row + best]) continue;
      // Strictly smaller before, so it must lose now: strictly below the winner (and not tied ahead of it).
      if (out[row + c] >= top) out[row + c] = nextDown(top);
    }
  }
  return out;
}

/**
 * Equal-width bins over the top-label confidence: bin b holds confidences in [b/B, (b+1)/B), and the
 * last bin also holds 1.0. Empty bins are kept (count 0, confidence and accuracy 0) so diagrams line up.
 */
export function reliabilityBins(proba: Float64Array, y: Int32Array, k: number, bins = 15): ReliabilityBin[] {
  if (!Number.isInteger(bins) || bins < 1)
    throw new ValidationError(`bins must be a positive integer, got ${bins}`, { field: "bins" });
  const n = rowsOf(proba, y, k);
  const count = new Array<number>(bins).fill(0);
  const confSum = new Array<number>(bins).fill(0);
  const correct = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const row = i * k;
    let best = 0;
    for (let c = 1; c < k; c++) if (proba[row + c] > proba[row + best]) best = c;
    const conf = proba[row + best];
    const b = Math.min(bins - 1, Math.floor(conf * bins));
    count[b]++;
    confSum[b] += conf;
    if (best === y[i]) correct[b]++;
  }
  return count.map((m, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: m,
    confidence: m > 0 ? confSum[b] / m : 0,
    accuracy: m > 0 ? correct[b] / m : 0,
  }));
}

/** Top-label expected calibration error: Σ_b (n_b / n) · |accuracy_b − confidence_b|; 0 for no rows. */
export function expectedCalibrationError(proba: Float64Array, y: Int32Array, k: number, bins = 15): number {
  return eceFromBins(reliabilityBins(proba, y, k, bins));
}

/** ECE from already computed bins (the report stores bins; this keeps both numbers consistent). */
export function eceFromBins(bins: ReliabilityBin[]): number {
  let n = 0;
  let sum = 0;
  for (const b of bins) {
    n += b.count;
    sum += b.count * Math.abs(b.accuracy - b.confidence);
  }
  return n > 0 ? sum / n : 0;
}
