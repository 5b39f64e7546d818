/**
 * k-nearest-neighbour classification by cosine similarity, for few-shot and many-shot heads alike.
 *
 * Training rows are stored L2-normalized (as in neighbors.ts: a zero vector stays zero, so its
 * similarity to everything is 0, never NaN). A query's neighbours are the `neighbors` training rows
 * with the highest cosine similarity; on equal similarity the lower training index ranks first.
 *
 * Votes: neighbour j of a query votes for its class with
 *   uniform:     v_j = r_j
 *   similarity:  v_j = r_j · (max(sim_j, 0) + VOTE_EPS)
 *   distance:    v_j = r_j / max(dist_j, DISTANCE_EPS)        (the default)
 * where r_j is the training row's weight (1, or the class-balanced / sample weight of the fit).
 * VOTE_EPS keeps a vote alive when a neighbour is orthogonal or opposite to the query, so a row's
 * total vote is never zero and a query whose neighbours all have sim ≤ 0 still gets their
 * majority (uniform) instead of 0/0.
 *
 * dist_j is the cosine distance 1 − sim_j, as scikit-learn's `metric="cosine", weights="distance"`
 * uses. Text and image embeddings often sit in a narrow cone (GloVe means: every cosine ≈ 0.9–1),
 * where max(sim, 0) barely differs between neighbours and similarity votes are all but uniform;
 * 1/(1 − sim) spreads them out. It is computed as ½‖u − q‖² over the float32 unit vectors u, q
 * (equal to 1 − u·q for unit vectors) plus ½ for each of u, q that is a zero vector (so a zero
 * vector is at distance 1, matching its similarity 0). Forming 1 − sim would cancel catastrophically
 * near sim = 1: the onnxruntime Gemm's float32 similarities are off by ~1e-7, a 10% error in a
 * distance of 1e-6, so the block path and the export would disagree with the JS path. Differences
 * keep their relative precision: the JS and block paths take the same float64 sums over the same
 * unit vectors (identical weights), and the export's weights stay within ~1e-5 relative even for
 * near-duplicates (see knnToOnnx). The distances are recomputed (k · d per query, ~30 µs per query
 * at k = 50, d = 100) for the chosen neighbours only; the ranking is still by similarity.
 *
 * Probabilities: p_c = (1 − PROBA_SMOOTHING) · votes_c / Σ votes + PROBA_SMOOTHING / k, so a class no
 * neighbour voted for keeps a small non-zero probability and log-loss stays finite (≤ −log(1e-6 / k)).
 *
 * Large predictions run similarity + top-k in onnxruntime (Gemm + TopK) in query blocks; small
 * ones stay in JavaScript (float64 dot products of the float32 unit vectors). The two paths agree up
 * to float32 rounding of the similarities, so they can order near-ties (|Δsim| ≲ 1e-7) differently.
 */

import { ValidationError } from "../errors.ts";
import { graphSession, tensor } from "../onnx/ort-graph.ts";
import type { GraphBuilder } from "../onnx/writer.ts";
import { GraphBuilder as Builder, dataType } from "../onnx/writer.ts";
import { CLASS_WEIGHT_MODES, type ClassWeightMode, classSampleWeights } from "./class-weight.ts";
import type { HeadKind, Target } from "./estimator.ts";
import { checkPositive, modelEnvelope, readModelJson } from "./model-json.ts";
import {
  checkFiniteMatrix,
  checkMulticlassTarget,
  checkUnitRows,
  float32ToBase64,
  normalizeRow,
  onnxNormalizeRows,
} from "./numeric.ts";
import { enumParam, numberParam, rejectUnknownParams } from "./params.ts";

/** Added to max(sim, 0) in similarity voting so that no neighbour's vote vanishes. */
export const VOTE_EPS = 1e-6;
/**
 * Floor of the cosine distance in distance voting: an exact duplicate of a training row (distance 0,
 * or ~1e-14 after float32 rounding) gets vote weight 1e6, so it outvotes a neighbour at distance 0.01
 * 1e4 to 1 without a division by zero or a float32 overflow (1e6 · row weight stays far below 3e38).
 * Rounding of the float32 unit vectors moves a distance by ≲1e-14, far below the floor, so duplicates
 * (and rescaled copies) land on the floor on every path.
 */
export const DISTANCE_EPS = 1e-6;
/** Share of probability mass spread uniformly over the classes (keeps log-loss finite). */
export const PROBA_SMOOTHING = 1e-6;
/** Below this many multiply-adds (train rows × queries × d), plain JavaScript beats session set-up. */
const JS_MAX_WORK = 1 << 24;
/** Similarities held per onnxruntime block (float32), which bounds its scratch memory to ~32 MB. */
const BLOCK_SIMS = 1 << 23;
/** Caps the normalized query copy per block when there are few training rows. */
const MAX_BLOCK_ROWS = 1 << 14;

export const KNN_WEIGHTS = ["uniform", "similarity", "distance"] as const;
export type KnnWeights = (typeof KNN_WEIGHTS)[number];

export interface KnnParams {
  [key: string]: number | string;
  /** Neighbours per query; clipped to the number of training rows. */
  k: number;
  weights: KnnWeights;
  classWeight: ClassWeightMode;
}

export interface KnnModel {
  d: number;
  /** Number of classes. */
  k: number;
  /** Training rows kept (rows of weight 0 are dropped at fit: they could never vote). */
  n: number;
  /** Neighbours per query, 1 ≤ neighbors ≤ n. */
  neighbors: number;
  weights: KnnWeights;
  classWeight: ClassWeightMode;
  /** n×d row-major unit vectors (zero rows stay zero). */
  vectors: Float32Array;
  /** Class index per training row. */
  labels: Int32Array;
  /** Positive vote weight per training row (class balancing and sample weights folded in). */
  rowWeight: Float32Array;
}

/** head.json form: the model's fields; vectors and rowWeight as base64 float32, labels as numbers. */
export type KnnJson = { type: "knn"; version: 1 } & Omit<KnnModel, "vectors" | "labels" | "rowWeight"> & {
    vectors: string;
    labels: number[];
    rowWeight: string;
  };

// ---- fit / predict ---------------------------------------------------------------------------------

/**
 * A kNN head stores its training vectors in head.json (base64 float32, ~5.3 characters a value);
 * past this many values the document nears what one JavaScript string can hold.
 */
export const MAX_KNN_VALUES = 40_000_000;

export function fitKnn(X: Float32Array, n: number, d: number, target: Target, params: KnnParams): KnnModel {
  if (n * d > MAX_KNN_VALUES) {
    throw new ValidationError(
      `a knn head keeps its training vectors, and ${n} rows × ${d} dims exceeds its limit of ` +
        `${MAX_KNN_VALUES.toLocaleString("en")} values; use centroid, logreg or mlp, or train on fewer rows`,
      { field: "type" },
    );
  }
  checkFiniteMatrix(X, n, d, { rowField: true });
  const { y, k, sampleWeight } = checkMulticlassTarget(target, n, "knn");
  const w = classSampleWeights(y, k, params.classWeight, sampleWeight);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!w || Math.fround(w[i]) > 0) keep.push(i);
  if (keep.length === 0)
    throw new ValidationError("knn needs at least one training row of positive weight", { field: "X" });
  const m = keep.length;
  const vectors = new Float32Array(m * d);
  const labels = new Int32Array(m);
  const rowWeight = new Float32Array(m).fill(1);
  keep.forEach((src, i) => {
    normalizeRow(X, src * d, d, vectors, i * d);
    labels[i] = y[src];
    if (w) rowWeight[i] = w[src];
  });
  return {
    d,
    k,
    n: m,
    neighbors: Math.min(Math.max(1, Math.floor(params.k)), m),
    weights: params.weights,
    classWeight: params.classWeight,
    vectors,
    labels,
    rowWeight,
  };
}

/**
 * Cosine distances (see the header) from the float32 unit query q[qOff..qOff+d) to its kk neighbours
 * idx[idxOff..], written to dist[idxOff..]. Float64 sums, so the JS and block paths agree exactly.
 */
function neighborDistances(
  model: KnnModel,
  q: Float32Array,
  qOff: number,
  idx: ArrayLike<number | bigint>,
  idxOff: number,
  dist: Float64Array,
): void {
  const { d, vectors, neighbors: kk } = model;
  let qq = 0;
  for (let j = 0; j < d; j++) qq += q[qOff + j] * q[qOff + j];
  const qZero = qq === 0 ? 0.5 : 0;
  for (let j = 0; j < kk; j++) {
    const off = Number(idx[idxOff + j]) * d;
    let s0 = 0;
    let s1 = 0;
    let c = 0;
    for (; c + 1 < d; c += 2) {
      const e0 = vectors[off + c] - q[qOff + c];
      const e1 = vectors[off + c + 1] - q[qOff + c + 1];
      s0 += e0 * e0;
      s1 += e1 * e1;
    }
    if (c < d) {
      const e0 = vectors[off + c] - q[qOff + c];
      s0 += e0 * e0;
    }
    // Usually settled by the first component.
    let uZero = 0.5;
    for (let t = 0; t < d; t++) {
      if (vectors[off + t] !== 0) {
        uZero = 0;
        break;
      }
    }
    dist[idxOff + j] = 0.5 * (s0 + s1) + qZero + uZero;
  }
}

/**
 * Turns each query's neighbour list into smoothed vote shares, written into `out` rows. `dist` is
 * read only for distance weighting.
 */
function vote(
  model: KnnModel,
  idx: ArrayLike<number | bigint>,
  sim: ArrayLike<number>,
  dist: ArrayLike<number> | undefined,
  rows: number,
  out: Float64Array,
  outRow: number,
): void {
  const { k, neighbors: kk, labels, rowWeight } = model;
  const bySim = model.weights === "similarity";
  const byDist = model.weights === "distance";
  if (byDist && !dist) throw new Error("knn: distance voting needs the neighbour distances");
  const keepShare = 1 - PROBA_SMOOTHING;
  const floor = PROBA_SMOOTHING / k;
  for (let r = 0; r < rows; r++) {
    const o = (outRow + r) * k;
    let total = 0;
    for (let j = 0; j < kk; j++) {
      const t = Number(idx[r * kk + j]);
      let v = rowWeight[t];
      if (bySim) v *= Math.max(sim[r * kk + j], 0) + VOTE_EPS;
      else if (byDist) v /= Math.max((dist as ArrayLike<number>)[r * kk + j], DISTANCE_EPS);
      out[o + labels[t]] += v;
      total += v;
    }
    // total > 0: every kept row has a positive weight and every vote factor is ≥ VOTE_EPS (or,
    // by distance, ≥ 1/2: a distance is at most 2).
    const sc = keepShare / total;
    for (let c = 0; c < k; c++) out[o + c] = out[o + c] * sc + floor;
  }
}

export interface KnnPredictOptions {
  /** "auto" picks JavaScript for small problems and onnxruntime for large ones. */
  engine?: "auto" | "js" | "ort";
  /** Queries per onnxruntime block (default: enough to hold ~8M similarities). */
  blockRows?: number;
}

/**
 * Top-`kk` (index, similarity, and for distance voting the distance) per query in plain JS; ties keep
 * the lower training index first.
 */
function neighborsJs(
  model: KnnModel,
  X: Float32Array,
  m: number,
): { idx: Int32Array; sim: Float64Array; dist?: Float64Array } {
  const { d, n, vectors, neighbors: kk } = model;
  const idx = new Int32Array(m * kk);
  const sim = new Float64Array(m * kk);
  const dist = model.weights === "distance" ? new Float64Array(m * kk) : undefined;
  // The unit query is rounded to float32 as on the onnxruntime path, so both see the same vector.
  const q32 = new Float32Array(d);
  const q = new Float64Array(d);
  for (let r = 0; r < m; r++) {
    normalizeRow(X, r * d, d, q32, 0);
    for (let j = 0; j < d; j++) q[j] = q32[j];
    const bi = idx.subarray(r * kk, (r + 1) * kk);
    const bs = sim.subarray(r * kk, (r + 1) * kk);
    let filled = 0;
    for (let i = 0; i < n; i++) {
      const off = i * d;
      let s0 = 0;
      let s1 = 0;
      let j = 0;
      for (; j + 1 < d; j += 2) {
        s0 += vectors[off + j] * q[j];
        s1 += vectors[off + j + 1] * q[j + 1];
      }
      if (j < d) s0 += vectors[off + j] * q[j];
      const s = s0 + s1;
      // Strict comparisons: a later row never displaces an equal earlier one.
      if (filled === kk && !(s > bs[kk - 1])) continue;
      let pos = filled === kk ? kk - 1 : filled++;
      while (pos > 0 && bs[pos - 1] < s) {
        bs[pos] = bs[pos - 1];
        bi[pos] = bi[pos - 1];
        pos--;
      }
      bs[pos] = s;
      bi[pos] = i;
    }
    if (dist) neighborDistances(model, q32, 0, idx, r * kk, dist);
  }
  return { idx, sim, ...(dist ? { dist } : {}) };
}

function topkGraph(d: number): Builder {
  const g = new Builder("knn_topk");
  g.input("q", "float32", ["B", d]);
  g.input("u", "float32", ["M", d]);
  g.input("kk", "int64", [1]);
  const [sims] = g.node("Gemm", ["q", "u"], 1, { transB: 1 });
  g.node("TopK", [sims, "kk"], ["values", "indices"], { axis: 1, largest: 1, sorted: 1 });
  g.output("values", "float32", ["B", "K"]);
  g.output("indices", "int64", ["B", "K"]);
  return g;
}

/** Class probabilities, m×k row-major. */
export async function predictKnn(
  model: KnnModel,
  X: Float32Array,
  m: number,
  opts: KnnPredictOptions = {},
): Promise<Float64Array> {
  const { d, k, n, neighbors: kk } = model;
  checkFiniteMatrix(X, m, d, { rowField: true });
  const out = new Float64Array(m * k);
  if (m === 0) return out;
  const engine = opts.engine ?? "auto";
  if (engine === "js" || (engine === "auto" && n * m * d < JS_MAX_WORK)) {
    const { idx, sim, dist } = neighborsJs(model, X, m);
    vote(model, idx, sim, dist, m, out, 0);
    return out;
  }
  const block = Math.max(
    1,
    Math.min(
      m,
      Math.floor(opts.blockRows ?? Math.min(MAX_BLOCK_ROWS, Math.max(1, Math.floor(BLOCK_SIMS / n)))),
    ),
  );
  const session = await graphSession(`knn-topk:${d}`, () => topkGraph(d));
  const u = tensor("float32", model.vectors, [n, d]);
  const kt = tensor("int64", BigInt64Array.from([BigInt(kk)]), [1]);
  const Q = new Float32Array(block * d);
  const dist = model.weights === "distance" ? new Float64Array(block * kk) : undefined;
  for (let r0 = 0; r0 < m; r0 += block) {
    const rows = Math.min(block, m - r0);
    for (let r = 0; r < rows; r++) normalizeRow(X, (r0 + r) * d, d, Q, r * d);
    const q = tensor("float32", Q.subarray(0, rows * d), [rows, d]);
    const res = await session.run({ q, u, kk: kt });
    const indices = res.indices.data as BigInt64Array;
    // Same float64 distances from the same float32 unit vectors as the JS path (k · d per query,
    // negligible next to the block's n · d Gemm).
    if (dist) for (let r = 0; r < rows; r++) neighborDistances(model, Q, r * d, indices, r * kk, dist);
    vote(model, indices, res.values.data as Float32Array, dist, rows, out, r0);
  }
  return out;
}

/**
 * ONNX export: normalize → Gemm against the unit training rows → TopK → gather each neighbour's
 * one-hot class row (scaled by its row weight) → weight → sum → smoothed shares. TopK breaks ties by
 * lower index, as predict does, but float32 similarities can order near-ties differently from the
 * float64 JS path; away from ties the outputs agree to ~1e-6. Distance weights gather the neighbour
 * vectors ([N, kk, d]) and take ½‖u − q‖² from their differences, as predict does (see the header).
 * Float32 sums suffice there: what remains is the graph's float32 normalization of the query, up to
 * an ulp per component off normalizeRow's, which for two near-twin training rows of different classes
 * (distances ~1e-5) moves the class shares by ~3e-6 (the tests hold it to 1e-5).
 */
export function knnToOnnx(model: KnnModel, g: GraphBuilder, input: string): string {
  const { d, k, n, neighbors: kk } = model;
  const unit = onnxNormalizeRows(g, input, "knn");
  const u = g.initializer(g.fresh("knn_vectors"), "float32", [n, d], model.vectors);
  const votesTable = new Float32Array(n * k);
  for (let i = 0; i < n; i++) votesTable[i * k + model.labels[i]] = model.rowWeight[i];
  const table = g.initializer(g.fresh("knn_votes"), "float32", [n, k], votesTable);
  const [sims] = g.node("Gemm", [unit, u], 1, { transB: 1 });
  const kkName = g.constant("int64", [kk]);
  const [values, indices] = g.node("TopK", [sims, kkName], 2, { axis: 1, largest: 1, sorted: 1 });
  let [gathered] = g.node("Gather", [table, indices], 1, { axis: 0 }); // [N, kk, k]
  if (model.weights === "similarity") {
    const [pos] = g.node("Max", [values, g.constant("float32", [0], [])], 1);
    const [w] = g.node("Add", [pos, g.constant("float32", [VOTE_EPS], [])], 1);
    const [w3] = g.node("Unsqueeze", [w, g.constant("int64", [2])], 1);
    [gathered] = g.node("Mul", [gathered, w3], 1);
  } else if (model.weights === "distance") {
    // ½ per zero training row, looked up per neighbour like the vote table.
    const zeroTable = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let zero = true;
      for (let j = 0; j < d && zero; j++) zero = model.vectors[i * d + j] === 0;
      if (zero) zeroTable[i] = 0.5;
    }
    const zt = g.initializer(g.fresh("knn_zero_rows"), "float32", [n], zeroTable);
    const [uZero] = g.node("Gather", [zt, indices], 1, { axis: 0 }); // [N, kk]
    const [qq] = g.node("ReduceSumSquare", [unit], 1, { axes: [1], keepdims: 1 }); // [N, 1]
    const [qIsZero] = g.node("Equal", [qq, g.constant("float32", [0], [])], 1);
    const [qZeroF] = g.node("Cast", [qIsZero], 1, { to: dataType("float32") });
    const [qZero] = g.node("Mul", [qZeroF, g.constant("float32", [0.5], [])], 1);
    const [nbrs] = g.node("Gather", [u, indices], 1, { axis: 0 }); // [N, kk, d]
    const [q3] = g.node("Unsqueeze", [unit, g.constant("int64", [1])], 1); // [N, 1, d]
    const [diff] = g.node("Sub", [nbrs, q3], 1);
    const [ss] = g.node("ReduceSumSquare", [diff], 1, { axes: [2], keepdims: 0 }); // [N, kk]
    const [half] = g.node("Mul", [ss, g.constant("float32", [0.5], [])], 1);
    const [withU] = g.node("Add", [half, uZero], 1);
    const [dist] = g.node("Add", [withU, qZero], 1);
    const [floored] = g.node("Max", [dist, g.constant("float32", [DISTANCE_EPS], [])], 1);
    const [w] = g.node("Reciprocal", [floored], 1);
    const [w3] = g.node("Unsqueeze", [w, g.constant("int64", [2])], 1);
    [gathered] = g.node("Mul", [gathered, w3], 1);
  }
  const [votes] = g.node("ReduceSum", [gathered, g.constant("int64", [1])], 1, { keepdims: 0 });
  const [total] = g.node("ReduceSum", [votes, g.constant("int64", [1])], 1, { keepdims: 1 });
  const [share] = g.node("Div", [votes, total], 1);
  const [kept] = g.node("Mul", [share, g.constant("float32", [1 - PROBA_SMOOTHING], [])], 1);
  const [proba] = g.node("Add", [kept, g.constant("float32", [PROBA_SMOOTHING / k], [])], 1);
  return proba;
}

// ---- JSON -----------------------------------------------------------------------------------------

export function knnToJson(model: KnnModel): KnnJson {
  return {
    ...modelEnvelope("knn"),
    d: model.d,
    k: model.k,
    n: model.n,
    neighbors: model.neighbors,
    weights: model.weights,
    classWeight: model.classWeight,
    vectors: float32ToBase64(model.vectors),
    labels: Array.from(model.labels),
    rowWeight: float32ToBase64(model.rowWeight),
  };
}

export function knnFromJson(input: unknown): KnnModel {
  const json = readModelJson(input, { type: "knn", allowArray: true });
  const d = json.integerAtLeast("d", 1);
  const k = json.integerAtLeast("k", 1);
  const n = json.integerAtLeast("n", 1);
  const neighbors = json.integerAtLeast("neighbors", 1);
  if (neighbors > n) throw new ValidationError(`neighbors must be <= n = ${n}`, { field: "neighbors" });
  const weights = json.oneOf("weights", KNN_WEIGHTS);
  const classWeight = json.oneOf("classWeight", CLASS_WEIGHT_MODES);
  const vectors = json.float32("vectors", n * d);
  checkUnitRows(vectors, n, d, "vectors");
  const labels = classIndices(json.get("labels"), n, k);
  const rowWeight = json.float32("rowWeight", n);
  checkPositive(rowWeight, "rowWeight");
  return { d, k, n, neighbors, weights, classWeight, vectors, labels, rowWeight };
}

/** head.json `labels`: n class indices in 0..k-1. */
function classIndices(v: unknown, n: number, k: number): Int32Array {
  if (!Array.isArray(v) || v.length !== n) {
    throw new ValidationError(`labels must be an array of ${n} class indices`, { field: "labels" });
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = v[i];
    if (typeof c !== "number" || !Number.isInteger(c) || c < 0 || c >= k) {
      throw new ValidationError(`labels[${i}] must be a class index in 0..${k - 1}`, { field: "labels" });
    }
    labels[i] = c;
  }
  return labels;
}

// ---- the head kind --------------------------------------------------------------------------------

const PARAMS = ["k", "weights", "classWeight"] as const;
const DEFAULT_K = 15;

export const knnKind: HeadKind<KnnModel, KnnParams> = {
  type: "knn",
  task: "multiclass",
  description:
    "k-nearest neighbours by cosine similarity (k; votes weighted by 1/cosine distance, by similarity, or uniform), optional balanced class weights",
  resolveParams(input, n) {
    rejectUnknownParams("knn", input, PARAMS);
    const k = numberParam(input, "k", DEFAULT_K, { min: 1, integer: true });
    return {
      // Clipped again at fit, where a cross-validation fold can have fewer rows than n.
      k: n >= 1 ? Math.min(k, n) : k,
      // Distance votes: 58.3% vs 52.9% (similarity) few-shot on IMDB GloVe means; see the header.
      weights: enumParam(input, "weights", KNN_WEIGHTS, "distance"),
      classWeight: enumParam(input, "classWeight", CLASS_WEIGHT_MODES, "none"),
    };
  },
  grid(n, d) {
    // Too large to store: `auto` passes knn by rather than failing the whole search.
    if (n * d > MAX_KNN_VALUES) return [];
    // Larger k is the smoother (simpler) model, so it comes first.
    const ks = [...new Set([50, 15, 5].map((k) => Math.max(1, Math.min(k, n))))];
    return ks.flatMap((k) =>
      KNN_WEIGHTS.map((weights) => ({ k, weights, classWeight: "none" as ClassWeightMode })),
    );
  },
  async fit(X, n, d, target, params) {
    return fitKnn(X, n, d, target, params);
  },
  predict: (model, X, n) => predictKnn(model, X, n),
  toJson: (model) => knnToJson(model) as unknown as Record<string, unknown>,
  fromJson: knnFromJson,
  toOnnx: knnToOnnx,
};
