/**
 * Ridge regression as a head type: closed form on standardized inputs and a centered target.
 *
 * With z = (x - mean) / scale (population std; constant features get scale 1, so their column is 0)
 * and yc = y - mean(y), the weights solve
 *
 *   (ZᵀZ + α I) w = Zᵀ yc,     bias = mean(y)    (in standardized space)
 *
 * which minimizes ||yc - Z w||² + α ||w||². That is scikit-learn's
 * `make_pipeline(StandardScaler(), Ridge(alpha=α))` exactly: Ridge centers X and y itself, and the
 * intercept is unpenalized. Because the penalty is on a sum (not a mean) of squared errors, a given α
 * regularizes less as n grows. The solution is folded back into input space (w / scale, and the bias
 * absorbs the mean), so prediction is one dot product per row.
 *
 * The Gram matrix ZᵀZ is the only heavy part (n·d² multiply-adds: 7.4·10⁹ for 50k × 384). Large
 * problems compute it in onnxruntime in float64 (the standardization happens in-graph, so raw float32
 * rows are fed without a copy), small ones in a blocked float64 loop here; both accumulate in float64,
 * so they agree to rounding. The d×d system is solved by Cholesky in float64.
 *
 * Measured at 50k × 384 on 2 cores: onnxruntime float64 ~0.8 s, the JS loop ~10 s. A float32 Gemm
 * (standardized rows built in JS) took ~0.9 s and moved the solution by ~6e-5 relative (1.5e-5 of
 * std(y) in predictions), against ~5e-12 for float64: no faster and less exact, so float64 it is.
 */

import { ValidationError } from "../errors.ts";
import { graphSession, tensor } from "../onnx/ort-graph.ts";
import { dataType, GraphBuilder } from "../onnx/writer.ts";
import type { HeadKind } from "./estimator.ts";
import { modelEnvelope, readModelJson } from "./model-json.ts";
import { affineRows, checkFiniteMatrix, checkRowCount, expectTask } from "./numeric.ts";
import { numberParam, rejectUnknownParams } from "./params.ts";
import { standardizationStats } from "./standardize.ts";

export interface RidgeParams {
  [key: string]: number;
  /** L2 strength on standardized weights, scikit-learn's Ridge(alpha) after a StandardScaler. */
  alpha: number;
}

export interface RidgeModel {
  d: number;
  /** Input-space weights: prediction = weights · x + bias. */
  weights: Float64Array;
  bias: number;
  alpha: number;
  /** Standardization used during training (provenance and diagnostics only). */
  mean: Float64Array;
  scale: Float64Array;
  yMean: number;
}

export interface RidgeJson {
  type: "ridge";
  version: 1;
  space: "input";
  d: number;
  weights: number[];
  bias: number;
  alpha: number;
  mean: number[];
  scale: number[];
  yMean: number;
}

/** How ZᵀZ is computed: onnxruntime (float64 Gemm), the JS loop, or chosen by problem size. */
export type GramEngine = "auto" | "ort" | "js";

/**
 * Below this many multiply-adds (n·d²) the JS loop wins: measured on 2 cores, the JS loop does ~0.3–0.5
 * G/s and a first session costs ~20–40 ms to create, while warm onnxruntime runs are 5–10× faster.
 */
const ORT_MIN_WORK = 4e6;
/**
 * Rows per onnxruntime call: bounds the float64 intermediates it allocates (rows·d·8 bytes each, 25 MB
 * at d = 384). 8192 and 16384 measured equally fast; 4096 was ~1.5× slower.
 */
const ORT_CHUNK_ROWS = 8192;

/** Upper triangle of G += ZᵀZ for the float64 rows in `Z` (m×d), four rows per pass over G. */
function gramAccumulate(Z: Float64Array, m: number, d: number, G: Float64Array): void {
  const m4 = m - (m % 4);
  for (let i = 0; i < m4; i += 4) {
    const o0 = i * d;
    const o1 = o0 + d;
    const o2 = o1 + d;
    const o3 = o2 + d;
    for (let a = 0; a < d; a++) {
      const z0 = Z[o0 + a];
      const z1 = Z[o1 + a];
      const z2 = Z[o2 + a];
      const z3 = Z[o3 + a];
      const ga = a * d;
      for (let b = a; b < d; b++) {
        G[ga + b] += z0 * Z[o0 + b] + z1 * Z[o1 + b] + z2 * Z[o2 + b] + z3 * Z[o3 + b];
      }
    }
  }
  for (let i = m4; i < m; i++) {
    const o = i * d;
    for (let a = 0; a < d; a++) {
      const za = Z[o + a];
      const ga = a * d;
      for (let b = a; b < d; b++) G[ga + b] += za * Z[o + b];
    }
  }
}

/** The rows X (n×d), their standardization z = (x - mean) · invScale and the centered target yc. */
interface GramRows {
  X: Float32Array;
  n: number;
  d: number;
  mean: Float64Array;
  invScale: Float64Array;
  yc: Float64Array;
}

/** ZᵀZ (d×d, symmetric, row-major) and Zᵀyc, in float64. */
interface Gram {
  G: Float64Array;
  Zty: Float64Array;
}

/** ZᵀZ and Zᵀyc in float64 by the JS loop, standardizing a block of rows at a time. */
function gramJs({ X, n, d, mean, invScale, yc }: GramRows): Gram {
  const G = new Float64Array(d * d);
  const Zty = new Float64Array(d);
  const block = Math.max(4, Math.min(256, Math.floor(65536 / d)));
  const Z = new Float64Array(block * d);
  for (let i0 = 0; i0 < n; i0 += block) {
    const m = Math.min(block, n - i0);
    for (let r = 0; r < m; r++) {
      const xo = (i0 + r) * d;
      const zo = r * d;
      const yv = yc[i0 + r];
      for (let j = 0; j < d; j++) {
        const z = (X[xo + j] - mean[j]) * invScale[j];
        Z[zo + j] = z;
        Zty[j] += z * yv;
      }
    }
    gramAccumulate(Z, m, d, G);
  }
  for (let a = 0; a < d; a++) for (let b = a + 1; b < d; b++) G[b * d + a] = G[a * d + b];
  return { G, Zty };
}

/** x (float32 rows) → z = (x - mean) · invScale in float64 → [ZᵀZ, Zᵀy]. */
function gramGraph(d: number): GraphBuilder {
  const g = new GraphBuilder("ridge_gram");
  g.input("x", "float32", ["N", d]);
  g.input("y", "float64", ["N", 1]);
  g.input("mean", "float64", [d]);
  g.input("inv_scale", "float64", [d]);
  const [x64] = g.node("Cast", ["x"], 1, { to: dataType("float64") });
  const [xc] = g.node("Sub", [x64, "mean"], 1);
  const [z] = g.node("Mul", [xc, "inv_scale"], 1);
  g.node("Gemm", [z, z], ["gram"], { transA: 1 });
  g.node("Gemm", [z, "y"], ["zty"], { transA: 1 });
  g.output("gram", "float64", [d, d]);
  g.output("zty", "float64", [d, 1]);
  return g;
}

async function gramOrt({ X, n, d, mean, invScale, yc }: GramRows): Promise<Gram> {
  const session = await graphSession(`ridge-gram:${d}`, () => gramGraph(d));
  const G = new Float64Array(d * d);
  const Zty = new Float64Array(d);
  const meanT = tensor("float64", mean, [d]);
  const invT = tensor("float64", invScale, [d]);
  for (let i0 = 0; i0 < n; i0 += ORT_CHUNK_ROWS) {
    const m = Math.min(ORT_CHUNK_ROWS, n - i0);
    const out = await session.run({
      x: tensor("float32", X.subarray(i0 * d, (i0 + m) * d), [m, d]),
      y: tensor("float64", yc.subarray(i0, i0 + m), [m, 1]),
      mean: meanT,
      inv_scale: invT,
    });
    const g = out.gram.data as Float64Array;
    const zy = out.zty.data as Float64Array;
    for (let t = 0; t < d * d; t++) G[t] += g[t];
    for (let j = 0; j < d; j++) Zty[j] += zy[j];
  }
  // Gemm's ZᵀZ is symmetric only up to rounding; the Cholesky below reads the lower triangle.
  for (let a = 0; a < d; a++) {
    for (let b = a + 1; b < d; b++) {
      const v = 0.5 * (G[a * d + b] + G[b * d + a]);
      G[a * d + b] = v;
      G[b * d + a] = v;
    }
  }
  return { G, Zty };
}

/**
 * ZᵀZ (d×d, symmetric, row-major) and Zᵀyc for the standardized rows of X, in float64. Exposed so
 * tests can check the two engines against each other.
 */
export async function ridgeGram(
  X: Float32Array,
  n: number,
  d: number,
  mean: Float64Array,
  invScale: Float64Array,
  yc: Float64Array,
  engine: GramEngine = "auto",
): Promise<Gram> {
  const rows: GramRows = { X, n, d, mean, invScale, yc };
  const useOrt = engine === "ort" || (engine === "auto" && n * d * d >= ORT_MIN_WORK);
  return useOrt ? gramOrt(rows) : gramJs(rows);
}

/**
 * Solves A x = b for symmetric positive definite A (d×d, row-major, float64) by Cholesky. Only the
 * lower triangle of A is read; A is not modified. Throws a ValidationError when a pivot is not
 * clearly positive (singular or indefinite to working precision), naming the offending column.
 */
export function choleskySolve(A: Float64Array, b: Float64Array, d: number): Float64Array {
  const L = new Float64Array(d * d);
  let maxDiag = 0;
  for (let j = 0; j < d; j++) maxDiag = Math.max(maxDiag, Math.abs(A[j * d + j]));
  // A pivot this small relative to the largest diagonal is rounding noise, not information.
  const tiny = d * 2.220446049250313e-16 * maxDiag;
  for (let j = 0; j < d; j++) {
    const lj = j * d;
    let s = A[lj + j];
    for (let p = 0; p < j; p++) s -= L[lj + p] * L[lj + p];
    if (!(s > tiny)) {
      throw new ValidationError(
        `the ridge system is singular at standardized feature ${j} (pivot ${s.toPrecision(3)}); ` +
          "features are constant or collinear: use alpha > 0",
        { field: "params.alpha" },
      );
    }
    const ljj = Math.sqrt(s);
    L[lj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < d; i++) {
      const li = i * d;
      let t = A[li + j];
      for (let p = 0; p < j; p++) t -= L[li + p] * L[lj + p];
      L[li + j] = t * inv;
    }
  }
  const x = Float64Array.from(b);
  for (let i = 0; i < d; i++) {
    const li = i * d;
    let s = x[i];
    for (let p = 0; p < i; p++) s -= L[li + p] * x[p];
    x[i] = s / L[li + i];
  }
  for (let i = d - 1; i >= 0; i--) {
    let s = x[i];
    for (let p = i + 1; p < d; p++) s -= L[p * d + i] * x[p];
    x[i] = s / L[i * d + i];
  }
  return x;
}

export async function fitRidge(
  X: Float32Array,
  n: number,
  d: number,
  y: Float64Array,
  alpha: number,
  opts: { engine?: GramEngine } = {},
): Promise<RidgeModel> {
  checkFiniteMatrix(X, n, d);
  if (n < 1) throw new ValidationError("cannot fit on zero rows", { field: "n" });
  if (y.length !== n)
    throw new ValidationError(`y has ${y.length} values, expected n = ${n}`, { field: "y" });
  if (!(alpha >= 0) || !Number.isFinite(alpha)) {
    throw new ValidationError(`alpha must be finite and >= 0, got ${alpha}`, { field: "params.alpha" });
  }
  // Centering costs one degree of freedom, so ZᵀZ has rank ≤ n - 1 and needs n > d to be invertible.
  if (alpha === 0 && n <= d) {
    throw new ValidationError(
      `alpha = 0 needs more rows than features (n = ${n}, d = ${d}): ZᵀZ is singular; use alpha > 0`,
      { field: "params.alpha" },
    );
  }
  let yMean = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(y[i]))
      throw new ValidationError(`y[${i}] is ${y[i]}; targets must be finite`, { field: "y" });
    yMean += y[i];
  }
  yMean /= n;
  const yc = new Float64Array(n);
  for (let i = 0; i < n; i++) yc[i] = y[i] - yMean;

  const { mean, scale } = standardizationStats(X, n, d);
  const invScale = new Float64Array(d);
  for (let j = 0; j < d; j++) invScale[j] = 1 / scale[j];
  const { G, Zty } = await ridgeGram(X, n, d, mean, invScale, yc, opts.engine);
  for (let j = 0; j < d; j++) G[j * d + j] += alpha;
  const wStd = choleskySolve(G, Zty, d);

  const weights = new Float64Array(d);
  let shift = 0;
  for (let j = 0; j < d; j++) {
    weights[j] = wStd[j] * invScale[j];
    shift += weights[j] * mean[j];
  }
  return { d, weights, bias: yMean - shift, alpha, mean, scale, yMean };
}

export function predictRidge(model: Pick<RidgeModel, "d" | "weights" | "bias">, X: Float32Array, n: number) {
  const { d, weights, bias } = model;
  checkRowCount(X, n, d);
  const out = affineRows(weights, [bias], X, n, d, 1);
  return out;
}

export function ridgeToJson(model: RidgeModel): RidgeJson {
  return {
    ...modelEnvelope("ridge", "input"),
    d: model.d,
    weights: Array.from(model.weights),
    bias: model.bias,
    alpha: model.alpha,
    mean: Array.from(model.mean),
    scale: Array.from(model.scale),
    yMean: model.yMean,
  };
}

/** Parses and validates a head.json ridge payload (an object or its JSON text). */
export function ridgeFromJson(input: unknown): RidgeModel {
  const json = readModelJson(input, { type: "ridge", space: "input" });
  const d = json.positiveInt("d");
  const alpha = json.finite("alpha");
  if (alpha < 0) throw new ValidationError("alpha must be >= 0", { field: "alpha" });
  return {
    d,
    weights: json.floats("weights", d),
    bias: json.finite("bias"),
    alpha,
    mean: json.floats("mean", d),
    scale: json.floats("scale", d),
    yMean: json.finite("yMean"),
  };
}

const PARAMS = ["alpha"] as const;

export const ridgeKind: HeadKind<RidgeModel, RidgeParams> = {
  type: "ridge",
  task: "regression",
  description:
    "ridge regression (closed form on standardized inputs), L2 strength alpha as in scikit-learn's Ridge",
  resolveParams(input) {
    rejectUnknownParams("ridge", input, PARAMS);
    return { alpha: numberParam(input, "alpha", 1, { min: 0 }) };
  },
  grid() {
    // Strongest penalty first: `auto` keeps the earlier candidate on a tie.
    return [100, 10, 1, 0.1].map((alpha) => ({ alpha }));
  },
  async fit(X, n, d, target, params) {
    expectTask(target, "regression", "ridge");
    return fitRidge(X, n, d, target.y, params.alpha);
  },
  async predict(model, X, n) {
    return predictRidge(model, X, n);
  },
  toJson: (model) => ridgeToJson(model) as unknown as Record<string, unknown>,
  fromJson: ridgeFromJson,
  toOnnx(model, g, input) {
    const w = g.initializer(g.fresh("ridge_w"), "float32", [1, model.d], model.weights);
    const b = g.initializer(g.fresh("ridge_b"), "float32", [1], [model.bias]);
    const [out] = g.node("Gemm", [input, w, b], 1, { transB: 1 });
    return out;
  },
};
