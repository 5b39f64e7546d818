/**
 * Nearest-centroid classification by cosine similarity: a few-shot head that works from one or two
 * examples per class.
 *
 * Each class's centroid is the (sample-weighted) mean of its L2-normalized training rows,
 * re-normalized to unit length, so every example counts equally whatever its norm. Prediction is
 *   logits_c = scale · cos(x, centroid_c),   p = softmax(logits)  (max-subtracted)
 * where `scale` is a temperature: cosines live in [-1, 1], so without it the softmax would be nearly
 * uniform. A class with no training rows (or whose unit rows cancel out) has a zero centroid, i.e.
 * logit 0 for every input: it stays possible but below any class the input resembles.
 *
 * With a `center` (`FitContext.center`: zero-shot heads pass the mean unit vector of their dataset's
 * rows), every unit row — training rows and inputs alike — has the center subtracted before it is
 * normalized again: mean-pooled word vectors share one large common direction that otherwise swamps
 * the small differences between classes (docs/benchmarks.md, "Data quality: zero-shot heads").
 */

import type { GraphBuilder } from "../onnx/writer.ts";
import type { HeadKind, Target } from "./estimator.ts";
import { isFiniteNumber, modelEnvelope, readModelJson } from "./model-json.ts";
import {
  checkFiniteMatrix,
  checkMulticlassTarget,
  checkUnitRows,
  float32ToBase64,
  normalizeRow,
  onnxNormalizeRows,
} from "./numeric.ts";
import { numberParam, rejectUnknownParams } from "./params.ts";

export interface CentroidParams {
  [key: string]: number;
  /** Multiplier of the cosine similarities before the softmax (inverse temperature). */
  scale: number;
}

export interface CentroidModel {
  d: number;
  k: number;
  scale: number;
  /** k×d row-major unit centroids (zero for a class without training rows). */
  centroids: Float32Array;
  /** Training rows per class (provenance; not used by predict). */
  counts: number[];
  /** Subtracted from every unit input before the cosine (absent: none). */
  center?: Float32Array;
}

export interface CentroidJson {
  type: "centroid";
  version: 1;
  d: number;
  k: number;
  scale: number;
  /** Base64 of k×d little-endian float32. */
  centroids: string;
  counts: number[];
  /** Base64 of d little-endian float32; absent: no center. */
  center?: string;
}

export function fitCentroid(
  X: Float32Array,
  n: number,
  d: number,
  target: Target,
  params: CentroidParams,
  center?: Float32Array,
): CentroidModel {
  checkFiniteMatrix(X, n, d, { rowField: true });
  if (center) checkFiniteMatrix(center, 1, d);
  const { y, k, sampleWeight } = checkMulticlassTarget(target, n, "centroid");
  const sums = new Float64Array(k * d);
  const counts = new Array<number>(k).fill(0);
  const unit = new Float32Array(d);
  for (let i = 0; i < n; i++) {
    const w = sampleWeight ? sampleWeight[i] : 1;
    counts[y[i]]++;
    if (w === 0) continue;
    normalizeRow(X, i * d, d, unit, 0);
    if (center) centerRow(unit, center);
    const o = y[i] * d;
    for (let j = 0; j < d; j++) sums[o + j] += w * unit[j];
  }
  // The mean's 1/Σw drops out under re-normalization, so the weighted sum is normalized directly.
  const centroids = new Float32Array(k * d);
  for (let c = 0; c < k; c++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += sums[c * d + j] * sums[c * d + j];
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < d; j++) centroids[c * d + j] = sums[c * d + j] * inv;
  }
  return {
    d,
    k,
    scale: params.scale,
    centroids,
    counts,
    ...(center ? { center: Float32Array.from(center) } : {}),
  };
}

/** unit − center, normalized again (in place). */
function centerRow(unit: Float32Array, center: Float32Array): void {
  for (let j = 0; j < unit.length; j++) unit[j] -= center[j];
  normalizeRow(unit, 0, unit.length, unit, 0);
}

/** Class probabilities, n×k row-major. */
export function predictCentroid(model: CentroidModel, X: Float32Array, n: number): Float64Array {
  const { d, k, scale, centroids, center } = model;
  checkFiniteMatrix(X, n, d, { rowField: true });
  const out = new Float64Array(n * k);
  const q = new Float64Array(d);
  const unit = new Float32Array(d);
  for (let i = 0; i < n; i++) {
    if (center) {
      normalizeRow(X, i * d, d, unit, 0);
      centerRow(unit, center);
      q.set(unit);
    } else {
      let ss = 0;
      for (let j = 0; j < d; j++) ss += X[i * d + j] * X[i * d + j];
      const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
      for (let j = 0; j < d; j++) q[j] = X[i * d + j] * inv;
    }
    const o = i * k;
    let zmax = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += centroids[c * d + j] * q[j];
      const z = scale * s;
      out[o + c] = z;
      if (z > zmax) zmax = z;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(out[o + c] - zmax);
      out[o + c] = e;
      sum += e;
    }
    for (let c = 0; c < k; c++) out[o + c] /= sum;
  }
  return out;
}

/** normalize [→ − center → normalize] → Gemm against the centroids → × scale → Softmax. */
export function centroidToOnnx(model: CentroidModel, g: GraphBuilder, input: string): string {
  let unit = onnxNormalizeRows(g, input, "centroid");
  if (model.center) {
    const center = g.initializer(g.fresh("centroid_center"), "float32", [1, model.d], model.center);
    const [shifted] = g.node("Sub", [unit, center], 1);
    unit = onnxNormalizeRows(g, shifted, "centroid_centered");
  }
  const c = g.initializer(g.fresh("centroid_c"), "float32", [model.k, model.d], model.centroids);
  const [cos] = g.node("Gemm", [unit, c], 1, { transB: 1 });
  const [logits] = g.node("Mul", [cos, g.constant("float32", [model.scale], [])], 1);
  const [proba] = g.node("Softmax", [logits], 1, { axis: 1 });
  return proba;
}

export function centroidToJson(model: CentroidModel): CentroidJson {
  return {
    ...modelEnvelope("centroid"),
    d: model.d,
    k: model.k,
    scale: model.scale,
    centroids: float32ToBase64(model.centroids),
    counts: [...model.counts],
    ...(model.center ? { center: float32ToBase64(model.center) } : {}),
  };
}

export function centroidFromJson(input: unknown): CentroidModel {
  const json = readModelJson(input, { type: "centroid", allowArray: true });
  const d = json.integerAtLeast("d", 1);
  const k = json.integerAtLeast("k", 1);
  const scale = json.check(
    "scale",
    (v): v is number => isFiniteNumber(v) && v > 0,
    "scale must be a finite number > 0",
  );
  const centroids = json.float32("centroids", k * d);
  checkUnitRows(centroids, k, d, "centroids");
  const counts = json.check(
    "counts",
    (v): v is number[] =>
      Array.isArray(v) &&
      v.length === k &&
      v.every((c) => typeof c === "number" && Number.isInteger(c) && c >= 0),
    `counts must be an array of ${k} non-negative integers`,
  );
  const center = json.get("center") === undefined ? undefined : json.float32("center", d);
  return { d, k, scale, centroids, counts: [...counts], ...(center ? { center } : {}) };
}

const PARAMS = ["scale"] as const;

export const centroidKind: HeadKind<CentroidModel, CentroidParams> = {
  type: "centroid",
  task: "multiclass",
  description: "nearest class centroid by cosine similarity, softmax over scale · cosine (few-shot)",
  resolveParams(input) {
    rejectUnknownParams("centroid", input, PARAMS);
    return { scale: numberParam(input, "scale", 10, { exclusiveMin: 0 }) };
  },
  grid() {
    // `scale` never changes which class wins (it multiplies every cosine), so macro-F1 cannot choose
    // between scales; calibration's temperature sets the sharpness instead. One candidate.
    return [{ scale: 10 }];
  },
  async fit(X, n, d, target, params, ctx) {
    return fitCentroid(X, n, d, target, params, ctx.center);
  },
  async predict(model, X, n) {
    return predictCentroid(model, X, n);
  },
  toJson: (model) => centroidToJson(model) as unknown as Record<string, unknown>,
  fromJson: centroidFromJson,
  toOnnx: centroidToOnnx,
};
