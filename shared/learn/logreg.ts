/**
 * Multinomial logistic regression with an L2 penalty on the weights (not the bias), fitted by L-BFGS
 * on standardized inputs.
 *
 * Objective (in standardized space z = (x - mean) / scale):
 *
 *   J(W, b) = Σ_i w_i · CE(softmax(W z_i + b), y_i) / Σ_i w_i  +  (l2 / 2) · ||W||²
 *
 * Mapping to scikit-learn: `StandardScaler() + LogisticRegression(C=C)` (multinomial, lbfgs) minimizes
 * C · Σ_i w_i · CE_i + ½ ||W||², which has the same minimizer as J with `l2 = 1 / (C · Σ_i w_i)`
 * (`1 / (C · n)` without sample weights). For k = 2 scikit-learn fits a single binomial vector instead;
 * the multinomial fit here at `l2` equals sklearn's binary fit at C' = 2 / (l2 · n) with
 * coef = W[1] - W[0], because the optimum has W[0] = -W[1] and so pays half the binomial penalty.
 *
 * The returned model is folded back into the ORIGINAL input space: `weights` (k×d, row-major) and
 * `bias` apply to raw inputs, so prediction is one matmul plus a softmax and needs no scaler. `mean`
 * and `scale` are kept for provenance and diagnostics only.
 */

import { ValidationError } from "../errors.ts";
import { f32, graphSession, runGraph } from "../onnx/ort-graph.ts";
import { GraphBuilder } from "../onnx/writer.ts";
import { type AsyncObjectiveFn, type LbfgsResult, minimizeLbfgs, minimizeLbfgsAsync } from "./lbfgs.ts";
import { argmaxRows } from "./metrics.ts";
import {
  affineRows,
  checkClassLabels,
  checkMatrixShape,
  checkSampleWeights,
  finiteArray,
  finiteNumber,
  softmaxRowsInPlace,
} from "./numeric.ts";
import { standardizationStats, standardizeOnnx } from "./standardize.ts";

export { standardizationStats };

export interface LogRegOptions {
  /** L2 strength on standardized weights; l2 = 1 / (C · Σw) for sklearn's C. Default 1 / Σw (C = 1). */
  l2?: number;
  /** Maximum L-BFGS iterations. Default 1000 (sklearn uses 100, which often stops early). */
  maxIter?: number;
  /**
   * Stop when the gradient's infinity norm of the mean objective falls below this. (scikit-learn
   * applies its `tol` to the summed loss, so it is about n times stricter there.) Default 1e-4.
   */
  tol?: number;
  /** Non-negative per-row weights, length n. */
  sampleWeight?: Float64Array;
}

export interface LogRegModel {
  d: number;
  k: number;
  /** Per-feature mean used for standardization during training (provenance only). */
  mean: Float64Array;
  /** Per-feature standard deviation (population), 1 for constant features (provenance only). */
  scale: Float64Array;
  /** k×d row-major, in the original input space: logits = weights · x + bias. */
  weights: Float64Array;
  bias: Float64Array;
  l2: number;
  iterations: number;
  converged: boolean;
  /** Final value of the penalized objective J. */
  loss: number;
}

/** Plain-array form for head.json; every number is a finite double, so JSON round-trips exactly. */
export interface LogRegJson {
  type: "logreg";
  version: 1;
  /** Which space `weights`/`bias` live in; always "input" (raw features) in version 1. */
  space: "input";
  d: number;
  k: number;
  mean: number[];
  scale: number[];
  weights: number[];
  bias: number[];
  l2: number;
  iterations: number;
  converged: boolean;
  loss: number;
}

type Matrix = Float32Array | Float64Array;

/**
 * The penalized objective J over parameters θ = [W (k×d row-major), b (k)] on already standardized
 * inputs `Z`. Exposed for gradient checks; `fitLogReg` is the normal entry point. The returned
 * function allocates nothing per call.
 */
export function makeLogRegObjective(
  Z: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  l2: number,
  sampleWeight?: Float64Array,
): (theta: Float64Array, grad: Float64Array) => number {
  checkMatrixShape(Z, n, d, "Z");
  const wSum = sampleWeight ? sampleWeight.reduce((a, b) => a + b, 0) : n;
  const invW = wSum > 0 ? 1 / wSum : 0;
  // Logits, then residuals (p - onehot) scaled by w_i / Σw, for a block of up to 4 rows.
  const L = new Float64Array(4 * k);
  const kd = k * d;
  const n4 = n - (n % 4);

  // Softmax + cross-entropy for one row held in L[base..base+k); overwrites it with the residual.
  // CE = log Σ exp(z - zmax) + zmax - z_y is taken from the logit, not log(p_y), so a confidently
  // wrong row costs its true (large) loss instead of underflowing to -log(0).
  const rowLoss = (base: number, yi: number, wi: number): number => {
    let zmax = L[base];
    for (let c = 1; c < k; c++) if (L[base + c] > zmax) zmax = L[base + c];
    const zy = L[base + yi];
    let sumExp = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(L[base + c] - zmax);
      L[base + c] = e;
      sumExp += e;
    }
    const sc = (wi * invW) / sumExp;
    for (let c = 0; c < k; c++) L[base + c] *= sc;
    L[base + yi] -= wi * invW;
    return wi * (Math.log(sumExp) + zmax - zy);
  };

  return (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    // Four rows at a time: each weight (and gradient) element loaded once serves four rows, which
    // roughly halves the time of this memory-bound loop compared with row-at-a-time dot products.
    for (let i = 0; i < n4; i += 4) {
      const o0 = i * d;
      const o1 = o0 + d;
      const o2 = o1 + d;
      const o3 = o2 + d;
      for (let c = 0; c < k; c++) {
        const wo = c * d;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let j = 0; j < d; j++) {
          const w = theta[wo + j];
          s0 += w * Z[o0 + j];
          s1 += w * Z[o1 + j];
          s2 += w * Z[o2 + j];
          s3 += w * Z[o3 + j];
        }
        const b = theta[kd + c];
        L[c] = s0 + b;
        L[k + c] = s1 + b;
        L[2 * k + c] = s2 + b;
        L[3 * k + c] = s3 + b;
      }
      if (sampleWeight) {
        loss += rowLoss(0, y[i], sampleWeight[i]);
        loss += rowLoss(k, y[i + 1], sampleWeight[i + 1]);
        loss += rowLoss(2 * k, y[i + 2], sampleWeight[i + 2]);
        loss += rowLoss(3 * k, y[i + 3], sampleWeight[i + 3]);
      } else {
        loss += rowLoss(0, y[i], 1);
        loss += rowLoss(k, y[i + 1], 1);
        loss += rowLoss(2 * k, y[i + 2], 1);
        loss += rowLoss(3 * k, y[i + 3], 1);
      }
      for (let c = 0; c < k; c++) {
        const r0 = L[c];
        const r1 = L[k + c];
        const r2 = L[2 * k + c];
        const r3 = L[3 * k + c];
        const go = c * d;
        for (let j = 0; j < d; j++) {
          grad[go + j] += r0 * Z[o0 + j] + r1 * Z[o1 + j] + r2 * Z[o2 + j] + r3 * Z[o3 + j];
        }
        grad[kd + c] += r0 + r1 + r2 + r3;
      }
    }
    for (let i = n4; i < n; i++) {
      const off = i * d;
      for (let c = 0; c < k; c++) {
        const wo = c * d;
        let s = 0;
        for (let j = 0; j < d; j++) s += theta[wo + j] * Z[off + j];
        L[c] = s + theta[kd + c];
      }
      loss += rowLoss(0, y[i], sampleWeight ? sampleWeight[i] : 1);
      for (let c = 0; c < k; c++) {
        const r = L[c];
        const go = c * d;
        for (let j = 0; j < d; j++) grad[go + j] += r * Z[off + j];
        grad[kd + c] += r;
      }
    }
    let pen = 0;
    for (let t = 0; t < kd; t++) {
      const w = theta[t];
      pen += w * w;
      grad[t] += l2 * w;
    }
    return loss * invW + 0.5 * l2 * pen;
  };
}

// ---- WebAssembly SIMD kernels --------------------------------------------------------------------
//
// The two passes over the data that dominate a fit (logits = Z·Wᵀ and G += Rᵀ·Z) run in a tiny
// hand-assembled WebAssembly module using 128-bit SIMD: Z is stored as float32 with rows padded to a
// multiple of 4 (zeros), promoted to float64 two lanes at a time, and every product and sum is float64.
// The summation order is fixed (two f64x2 accumulators per dot product, rows in order for G), so
// results are deterministic. Softmax / sigmoid and the loss stay in JS (n·k exps per evaluation).
// When WebAssembly SIMD is unavailable the plain-JS objective above is used instead.

const uleb = (v: number): number[] => {
  const o: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    o.push(b);
  } while (v);
  return o;
};
const sleb = (v: number): number[] => {
  const o: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) {
      o.push(b);
      return o;
    }
    o.push(b | 0x80);
  }
};

/**
 * Module with one memory ("mem") and two functions of (Z, n, dp, A, k, B), byte offsets into mem:
 *   fwd:  B[i·k + c] = Σ_j Z[i, j] · A[c, j]          (A: k×dp float64, B: n×k float64)
 *   grad: B[c, j]   += Σ_i A[i·k + c] · Z[i, j]       (A: n×k float64,  B: k×dp float64)
 * with Z n×dp float32, dp a positive multiple of 4, n ≥ 0, k ≥ 1.
 */
function kernelModuleBytes(): Uint8Array {
  const I32 = 0x7f;
  const V128 = 0x7b;
  // Params 0 Z, 1 n, 2 dp, 3 A, 4 k, 5 B; locals 6 i, 7 c, 8 j, 9 zRow, 10 row, 11 ptr (i32), 12 v, 13 v2 (v128).
  const [Z, N, DP, A, K, B, I, C, J, ZROW, ROW, PTR, V, V2] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const get = (l: number) => [0x20, l];
  const set = (l: number) => [0x21, l];
  const i32 = (v: number) => [0x41, ...sleb(v)];
  const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
  const F64X2_ADD = simd(0xf0);
  const F64X2_MUL = simd(0xf2);
  const zeroV128 = simd(0x0c, ...new Array<number>(16).fill(0));
  const addTo = (l: number, ...expr: number[]) => [...get(l), ...expr, 0x6a, ...set(l)];
  const shl = (l: number, s: number) => [...get(l), ...i32(s), 0x74];
  // promote_low(load64_zero(zRow + 4j + off)): two float32 features as an f64x2.
  const zPair = (off: number) => [...get(ZROW), ...shl(J, 2), 0x6a, ...simd(0x5d, 3, off), ...simd(0x5f)];
  const rowAddr = () => [...get(ROW), ...shl(J, 3), 0x6a];
  // for (zRow = Z, i = n; i != 0; i--, zRow += 4·dp) body
  const rows = (body: number[]) => [
    ...get(Z),
    ...set(ZROW),
    ...get(N),
    ...set(I),
    0x02,
    0x40,
    0x03,
    0x40,
    ...get(I),
    0x45,
    0x0d,
    1,
    ...body,
    ...addTo(ZROW, ...shl(DP, 2)),
    ...get(I),
    ...i32(1),
    0x6b,
    ...set(I),
    0x0c,
    0,
    0x0b,
    0x0b,
  ];
  // do { body; j += 4 } while (j < dp)
  const cols = (body: number[]) => [
    ...i32(0),
    ...set(J),
    0x03,
    0x40,
    ...body,
    ...addTo(J, ...i32(4)),
    ...get(J),
    ...get(DP),
    0x48,
    0x0d,
    0,
    0x0b,
  ];
  // do { body; row += 8·dp; c++ } while (c < k), starting at row = start
  const classes = (start: number, body: number[]) => [
    ...get(start),
    ...set(ROW),
    ...i32(0),
    ...set(C),
    0x03,
    0x40,
    ...body,
    ...addTo(ROW, ...shl(DP, 3)),
    ...addTo(C, ...i32(1)),
    ...get(C),
    ...get(K),
    0x48,
    0x0d,
    0,
    0x0b,
  ];
  const locals = [0x02, 6, I32, 2, V128];
  const fwd = [
    ...locals,
    ...get(B),
    ...set(PTR),
    ...rows(
      classes(A, [
        ...zeroV128,
        ...set(V),
        ...zeroV128,
        ...set(V2),
        ...cols([
          ...get(V),
          ...zPair(0),
          ...rowAddr(),
          ...simd(0x00, 4, 0),
          ...F64X2_MUL,
          ...F64X2_ADD,
          ...set(V),
          ...get(V2),
          ...zPair(8),
          ...rowAddr(),
          ...simd(0x00, 4, 16),
          ...F64X2_MUL,
          ...F64X2_ADD,
          ...set(V2),
        ]),
        // B[ptr] = (v + v2)[0] + (v + v2)[1]; ptr += 8
        ...get(PTR),
        ...get(V),
        ...get(V2),
        ...F64X2_ADD,
        ...set(V),
        ...get(V),
        ...simd(0x21, 0),
        ...get(V),
        ...simd(0x21, 1),
        0xa0,
        0x39,
        3,
        0,
        ...addTo(PTR, ...i32(8)),
      ]),
    ),
    0x0b,
  ];
  // row[j + off/8 ..] += v · z (two lanes)
  const gStep = (off: number) => [
    ...rowAddr(),
    ...rowAddr(),
    ...simd(0x00, 4, off),
    ...get(V),
    ...zPair(off / 2),
    ...F64X2_MUL,
    ...F64X2_ADD,
    ...simd(0x0b, 4, off),
  ];
  const grad = [
    ...locals,
    ...get(A),
    ...set(PTR),
    ...rows(
      classes(B, [
        ...get(PTR),
        0x2b,
        3,
        0,
        ...simd(0x14),
        ...set(V),
        ...addTo(PTR, ...i32(8)),
        ...cols([...gStep(0), ...gStep(16)]),
      ]),
    ),
    0x0b,
  ];
  const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const name = (s: string) => [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
  const fn = (body: number[]) => [...uleb(body.length), ...body];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [1, 0x60, 6, I32, I32, I32, I32, I32, I32, 0]),
    ...section(3, [2, 0, 0]),
    ...section(5, [1, 0, 1]),
    ...section(7, [3, ...name("mem"), 2, 0, ...name("fwd"), 0, 0, ...name("grad"), 0, 1]),
    ...section(10, [2, ...fn(fwd), ...fn(grad)]),
  ]);
}

type KernelFn = (z: number, n: number, dp: number, a: number, k: number, b: number) => void;
/** The slice of the WebAssembly JS API used here (the project's `lib` has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
let kernelModule: object | null | undefined;

function getKernelModule(): object | null {
  if (kernelModule === undefined) {
    let mod: object | null = null;
    try {
      const bytes = kernelModuleBytes();
      if (wasm?.validate(bytes)) mod = new wasm.Module(bytes);
    } catch {
      mod = null;
    }
    kernelModule = mod;
  }
  return kernelModule;
}

/** Largest wasm memory we ask for; beyond it (or when a grow fails) the plain-JS objective is used. */
const MAX_KERNEL_BYTES = 2 ** 31;

/**
 * Wasm memory holding the standardized data (n×dp float32) and the per-evaluation buffers for `kk`
 * weight rows: weights (kk×dp), logits/residuals (n×kk) and gradient (kk×dp), all float64.
 */
class KernelWorkspace {
  readonly dp: number;
  /** n×dp float32 view of the data; columns d..dp-1 must stay 0. Write rows here before fitting. */
  readonly z: Float32Array;
  readonly w: Float64Array;
  readonly r: Float64Array;
  readonly g: Float64Array;
  private readonly offs: { z: number; w: number; r: number; g: number };
  private readonly fwdFn: KernelFn;
  private readonly gradFn: KernelFn;

  private constructor(
    readonly n: number,
    readonly d: number,
    readonly kk: number,
    mod: object,
  ) {
    this.dp = Math.ceil(d / 4) * 4;
    const z = 0;
    const w = z + n * this.dp * 4;
    const r = w + kk * this.dp * 8;
    const g = r + n * kk * 8;
    const end = g + kk * this.dp * 8;
    this.offs = { z, w, r, g };
    const inst = new (wasm as WasmApi).Instance(mod);
    const mem = inst.exports.mem as WasmMemory;
    const pages = Math.ceil(end / 65536);
    if (pages > 1) mem.grow(pages - 1);
    this.z = new Float32Array(mem.buffer, z, n * this.dp);
    this.w = new Float64Array(mem.buffer, w, kk * this.dp);
    this.r = new Float64Array(mem.buffer, r, n * kk);
    this.g = new Float64Array(mem.buffer, g, kk * this.dp);
    this.fwdFn = inst.exports.fwd as KernelFn;
    this.gradFn = inst.exports.grad as KernelFn;
  }

  /** A workspace, or null when WebAssembly SIMD is unavailable or the data is too large for it. */
  static create(n: number, d: number, kk: number): KernelWorkspace | null {
    const mod = getKernelModule();
    const dp = Math.ceil(d / 4) * 4;
    if (!mod || n * dp * 4 + (2 * kk * dp + n * kk) * 8 > MAX_KERNEL_BYTES) return null;
    try {
      return new KernelWorkspace(n, d, kk, mod);
    } catch {
      return null; // memory.grow refused
    }
  }

  /** r = Z · wᵀ (n×kk) from the weight rows currently in `w`. */
  forward(): void {
    this.fwdFn(this.offs.z, this.n, this.dp, this.offs.w, this.kk, this.offs.r);
  }

  /** g = rᵀ · Z (kk×dp) from the residuals currently in `r`. */
  backward(): void {
    this.g.fill(0);
    this.gradFn(this.offs.z, this.n, this.dp, this.offs.r, this.kk, this.offs.g);
  }
}

/**
 * Same objective and parameter layout as `makeLogRegObjective`, on the standardized data already in
 * `ws` (kk = k), computed with the SIMD kernels.
 */
function makeKernelMultinomialObjective(
  ws: KernelWorkspace,
  y: Int32Array,
  l2: number,
  sampleWeight?: Float64Array,
): (theta: Float64Array, grad: Float64Array) => number {
  const { n, d, dp, kk: k } = ws;
  const kd = k * d;
  const wSum = sampleWeight ? sampleWeight.reduce((a, b) => a + b, 0) : n;
  const invW = wSum > 0 ? 1 / wSum : 0;
  const { w: W, r: R, g: G } = ws;
  return (theta: Float64Array, grad: Float64Array): number => {
    for (let c = 0; c < k; c++) W.set(theta.subarray(c * d, c * d + d), c * dp);
    ws.forward();
    let loss = 0;
    for (let c = 0; c < k; c++) grad[kd + c] = 0;
    for (let i = 0; i < n; i++) {
      const base = i * k;
      const wi = sampleWeight ? sampleWeight[i] : 1;
      let zmax = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < k; c++) {
        const z = R[base + c] + theta[kd + c];
        R[base + c] = z;
        if (z > zmax) zmax = z;
      }
      const yi = y[i];
      const zy = R[base + yi];
      let sumExp = 0;
      for (let c = 0; c < k; c++) {
        const e = Math.exp(R[base + c] - zmax);
        R[base + c] = e;
        sumExp += e;
      }
      const sc = (wi * invW) / sumExp;
      for (let c = 0; c < k; c++) {
        const res = R[base + c] * sc - (c === yi ? wi * invW : 0);
        R[base + c] = res;
        grad[kd + c] += res;
      }
      loss += wi * (Math.log(sumExp) + zmax - zy);
    }
    ws.backward();
    let pen = 0;
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) {
        const t = c * d + j;
        const w = theta[t];
        pen += w * w;
        grad[t] = G[c * dp + j] + l2 * w;
      }
    }
    return loss * invW + 0.5 * l2 * pen;
  };
}

/**
 * The k = 2 objective in binomial form over θ = [v (d), β]: the multinomial J restricted to
 * W = [-v/2, v/2], b = [-β/2, β/2], i.e.
 *
 *   Jb(v, β) = Σ_i w_i · (softplus(s_i) - y_i s_i) / Σ_i w_i + (l2 / 4) · ||v||²,   s_i = v · z_i + β.
 *
 * The multinomial optimum is antisymmetric (the penalty splits a difference evenly), so it is
 * W = [-v°/2, v°/2] for the minimizer v° of Jb, with the same objective value; at such points
 * ∂J/∂W[1] = ∂Jb/∂v and ∂J/∂b[1] = ∂Jb/∂β, so the gradient tolerance means the same in both forms.
 * Half the parameters and half the work per evaluation of the multinomial form.
 */
function makeKernelBinomialObjective(
  ws: KernelWorkspace,
  y: Int32Array,
  l2: number,
  sampleWeight?: Float64Array,
): (theta: Float64Array, grad: Float64Array) => number {
  const { n, d } = ws;
  const wSum = sampleWeight ? sampleWeight.reduce((a, b) => a + b, 0) : n;
  const invW = wSum > 0 ? 1 / wSum : 0;
  const { w: W, r: R, g: G } = ws;
  const half = 0.5 * l2;
  return (theta: Float64Array, grad: Float64Array): number => {
    W.set(theta.subarray(0, d));
    ws.forward();
    const beta = theta[d];
    let loss = 0;
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const s = R[i] + beta;
      const yi = y[i];
      const wi = sampleWeight ? sampleWeight[i] : 1;
      // softplus(s) - y·s and σ(s) - y without overflow: e = exp(-|s|) ≤ 1.
      const e = Math.exp(-Math.abs(s));
      let l: number;
      let p: number;
      if (s > 0) {
        l = s + Math.log1p(e);
        p = 1 / (1 + e);
      } else {
        l = Math.log1p(e);
        p = e / (1 + e);
      }
      if (yi === 1) l -= s;
      loss += wi * l;
      const res = (p - yi) * wi * invW;
      R[i] = res;
      gb += res;
    }
    ws.backward();
    let pen = 0;
    for (let j = 0; j < d; j++) {
      const v = theta[j];
      pen += v * v;
      grad[j] = G[j] + half * v;
    }
    grad[d] = gb;
    return loss * invW + 0.25 * l2 * pen;
  };
}

/**
 * The fit objective on standardized `Z` through the SIMD kernels: multinomial over θ = [W (k×d), b (k)]
 * (same as `makeLogRegObjective`), or for k = 2 with `binomial` the binomial form over θ = [v (d), β]
 * described at `makeKernelBinomialObjective`. Null when WebAssembly SIMD is unavailable. For tests.
 */
export function makeFastLogRegObjective(
  Z: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  l2: number,
  opts: { binomial?: boolean; sampleWeight?: Float64Array } = {},
): ((theta: Float64Array, grad: Float64Array) => number) | null {
  checkMatrixShape(Z, n, d, "Z");
  const binomial = opts.binomial === true;
  if (binomial && k !== 2) throw new ValidationError("the binomial form needs k = 2", { field: "k" });
  const ws = KernelWorkspace.create(n, d, binomial ? 1 : k);
  if (!ws) return null;
  for (let i = 0; i < n; i++) ws.z.set(Z.subarray(i * d, i * d + d), i * ws.dp);
  return binomial
    ? makeKernelBinomialObjective(ws, y, l2, opts.sampleWeight)
    : makeKernelMultinomialObjective(ws, y, l2, opts.sampleWeight);
}

interface PreparedFit {
  n: number;
  d: number;
  k: number;
  y: Int32Array;
  l2: number;
  sw?: Float64Array;
  total: number;
  mean: Float64Array;
  scale: Float64Array;
  invScale: Float64Array;
  lbfgsOpts: { maxIter: number; gtol: number; ftol: number };
}

function prepareFit(
  X: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: LogRegOptions,
  /** Precomputed standardization (the onnxruntime path computes it alongside Z). */
  stats?: Pick<PreparedFit, "mean" | "scale" | "invScale">,
): PreparedFit {
  checkMatrixShape(X, n, d);
  if (n < 1) throw new ValidationError("cannot fit on zero rows", { field: "n" });
  checkClassLabels(y, n, k, 2);
  const sw = opts.sampleWeight;
  const total = sw ? checkSampleWeights(sw, n, true) : n;
  const l2 = opts.l2 ?? 1 / total;
  if (!(l2 >= 0) || !Number.isFinite(l2))
    throw new ValidationError("l2 must be finite and >= 0", { field: "l2" });
  let mean: Float64Array;
  let scale: Float64Array;
  let invScale: Float64Array;
  if (stats) ({ mean, scale, invScale } = stats);
  else {
    ({ mean, scale } = standardizationStats(X, n, d));
    invScale = new Float64Array(d);
    for (let j = 0; j < d; j++) invScale[j] = 1 / scale[j];
  }
  // ftol at 64 ulps mirrors sklearn's lbfgs setting, so tol (the gradient norm) is what stops a fit.
  const lbfgsOpts = {
    maxIter: opts.maxIter ?? 1000,
    gtol: opts.tol ?? 1e-4,
    ftol: 64 * 2.220446049250313e-16,
  };
  return { n, d, k, y, l2, sw, total, mean, scale, invScale, lbfgsOpts };
}

/**
 * Standardized float32 copy of X into `Z` (row stride `stride`): half the memory of float64, and the
 * rounding (~1e-7 relative) is far below what the fitted head can resolve. Math runs in float64.
 */
function standardizeInto(X: Matrix, p: PreparedFit, Z: Float32Array, stride: number): void {
  const { n, d, mean, invScale } = p;
  for (let i = 0; i < n; i++) {
    const off = i * d;
    const zo = i * stride;
    for (let j = 0; j < d; j++) {
      const v = (X[off + j] - mean[j]) * invScale[j];
      if (!Number.isFinite(v)) throw new ValidationError(`X[${i}, ${j}] is not finite`, { field: "X" });
      Z[zo + j] = v;
    }
  }
}

/** Folds the standardization into the weights: W_orig = W_std / scale, b_orig = b_std - W_orig · mean. */
function finishFit(p: PreparedFit, thetaStd: Float64Array, res: LbfgsResult): LogRegModel {
  const { d, k, mean, scale, invScale } = p;
  const kd = k * d;
  const weights = new Float64Array(kd);
  const bias = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let shift = 0;
    for (let j = 0; j < d; j++) {
      const w = thetaStd[c * d + j] * invScale[j];
      weights[c * d + j] = w;
      shift += w * mean[j];
    }
    bias[c] = thetaStd[kd + c] - shift;
  }
  return {
    d,
    k,
    mean,
    scale,
    weights,
    bias,
    l2: p.l2,
    iterations: res.iterations,
    converged: res.converged,
    loss: res.f,
  };
}

/** Synchronous fit on this thread (WebAssembly SIMD kernels, or plain JS without them). */
export function fitLogReg(
  X: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: LogRegOptions = {},
): LogRegModel {
  const p = prepareFit(X, n, d, y, k, opts);
  const { l2, sw, lbfgsOpts } = p;
  // The standardized copy lives in the SIMD kernels' memory (rows padded to a multiple of 4) when
  // those are available.
  const binomial = k === 2;
  const ws = KernelWorkspace.create(n, d, binomial ? 1 : k);
  const stride = ws ? ws.dp : d;
  const Z = ws ? ws.z : new Float32Array(n * d);
  standardizeInto(X, p, Z, stride);

  const kd = k * d;
  // θ in standardized space, multinomial layout [W (k×d), b (k)].
  let thetaStd: Float64Array;
  let res: LbfgsResult;
  if (ws && binomial) {
    res = minimizeLbfgs(makeKernelBinomialObjective(ws, y, l2, sw), new Float64Array(d + 1), lbfgsOpts);
    thetaStd = new Float64Array(kd + k);
    for (let j = 0; j < d; j++) {
      thetaStd[j] = 0 - 0.5 * res.x[j]; // 0 - …, not -…: a zero weight stays +0
      thetaStd[d + j] = 0.5 * res.x[j];
    }
    thetaStd[kd] = 0 - 0.5 * res.x[d];
    thetaStd[kd + 1] = 0.5 * res.x[d];
  } else {
    const fg = ws
      ? makeKernelMultinomialObjective(ws, y, l2, sw)
      : makeLogRegObjective(Z, n, d, y, k, l2, sw);
    res = minimizeLbfgs(fg, new Float64Array(kd + k), lbfgsOpts);
    thetaStd = res.x;
  }
  return finishFit(p, thetaStd, res);
}

/**
 * Problems at least this large (n·d·k multiply-adds per product) go to onnxruntime's multi-threaded
 * GEMM when k > 2; below it, session overhead outweighs the gain (measured by `npm run bench:heads`).
 */
export const ONNX_FIT_MIN_WORK = 2 ** 22;

/**
 * The same fit, choosing the engine: multinomial problems of at least `ONNX_FIT_MIN_WORK` run
 * their two products per evaluation in onnxruntime (float32 products, float64 optimizer state and
 * loss sums); everything else uses `fitLogReg`. `engine` forces one for tests and benchmarks.
 */
export async function fitLogRegAsync(
  X: Matrix,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: LogRegOptions & { engine?: "auto" | "onnx" | "wasm" } = {},
): Promise<LogRegModel> {
  const engine = opts.engine ?? "auto";
  const useOnnx = engine === "onnx" || (engine === "auto" && k > 2 && n * d * k >= ONNX_FIT_MIN_WORK);
  if (!useOnnx) return fitLogReg(X, n, d, y, k, opts);
  const std = await standardizeOnnx(X instanceof Float32Array ? X : Float32Array.from(X), n, d);
  const p = prepareFit(X, n, d, y, k, opts, std);
  const fg = await makeOnnxMultinomialObjective(std.Z, p);
  const res = await minimizeLbfgsAsync(fg, new Float64Array(k * d + k), p.lbfgsOpts);
  return finishFit(p, res.x, res);
}

/**
 * One graph computes everything an evaluation needs from Z (n×d), the weighted one-hot targets
 * Yw (n×k, row i holds w_i / Σw at its class) and W (d×k), b (k):
 *   rowloss_i = Σ_c Yw_ic · log softmax(Z W + b)_ic      (summed in float64 by the caller)
 *   gW = Zᵀ R,  gb = Σ_i R_i,   R = softmax(Z W + b) · rowsum(Yw) − Yw
 */
function buildMultinomialGradGraph(): GraphBuilder {
  const g = new GraphBuilder("logreg_grad");
  g.input("Z", "float32", ["n", "d"]);
  g.input("Yw", "float32", ["n", "k"]);
  g.input("W", "float32", ["d", "k"]);
  g.input("b", "float32", ["k"]);
  const [logits] = g.node("Gemm", ["Z", "W", "b"]);
  const [logp] = g.node("LogSoftmax", [logits], 1, { axis: 1 });
  const axis1 = g.constant("int64", [1]);
  const [yl] = g.node("Mul", ["Yw", logp]);
  g.node("ReduceSum", [yl, axis1], ["rowloss"], { keepdims: 0 });
  const [p] = g.node("Exp", [logp]);
  const [rowWeight] = g.node("ReduceSum", ["Yw", axis1], 1, { keepdims: 1 });
  const [pw] = g.node("Mul", [p, rowWeight]);
  const [r] = g.node("Sub", [pw, "Yw"]);
  g.node("Gemm", ["Z", r], ["gW"], { transA: 1 });
  const axis0 = g.constant("int64", [0]);
  g.node("ReduceSum", [r, axis0], ["gb"], { keepdims: 0 });
  g.output("rowloss", "float32", ["n"]);
  g.output("gW", "float32", ["d", "k"]);
  g.output("gb", "float32", ["k"]);
  return g;
}

async function makeOnnxMultinomialObjective(Z: Float32Array, p: PreparedFit): Promise<AsyncObjectiveFn> {
  const { n, d, k, y, l2, sw, total } = p;
  const session = await graphSession("logreg-multinomial-grad", buildMultinomialGradGraph);
  const Yw = new Float32Array(n * k);
  for (let i = 0; i < n; i++) Yw[i * k + y[i]] = (sw ? sw[i] : 1) / total;
  const zTensor = f32(Z, [n, d]);
  const yTensor = f32(Yw, [n, k]);
  const W = new Float32Array(d * k);
  const b = new Float32Array(k);
  const kd = k * d;
  return async (theta, grad) => {
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) W[j * k + c] = theta[c * d + j];
      b[c] = theta[kd + c];
    }
    const out = await runGraph(session, { Z: zTensor, Yw: yTensor, W: f32(W, [d, k]), b: f32(b, [k]) });
    let loss = 0;
    const rowloss = out.rowloss;
    for (let i = 0; i < n; i++) loss -= rowloss[i];
    let penalty = 0;
    const gW = out.gW;
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) {
        const w = theta[c * d + j];
        penalty += w * w;
        grad[c * d + j] = gW[j * k + c] + l2 * w;
      }
      grad[kd + c] = out.gb[c];
    }
    return loss + 0.5 * l2 * penalty;
  };
}

/** Class probabilities, n×k row-major, via a max-subtracted softmax over weights · x + bias. */
export function predictProbaLogReg(
  model: Pick<LogRegModel, "d" | "k" | "weights" | "bias">,
  X: Matrix,
  n: number,
): Float64Array {
  const { d, k, weights, bias } = model;
  checkMatrixShape(X, n, d);
  const out = affineRows(weights, bias, X, n, d, k);
  softmaxRowsInPlace(out, n, k);
  return out;
}

/** Arg-max class per row (ties go to the lowest class index). */
export function predictLogReg(
  model: Pick<LogRegModel, "d" | "k" | "weights" | "bias">,
  X: Matrix,
  n: number,
): Int32Array {
  return argmaxRows(predictProbaLogReg(model, X, n), n, model.k);
}

export function logRegToJson(model: LogRegModel): LogRegJson {
  return {
    type: "logreg",
    version: 1,
    space: "input",
    d: model.d,
    k: model.k,
    mean: Array.from(model.mean),
    scale: Array.from(model.scale),
    weights: Array.from(model.weights),
    bias: Array.from(model.bias),
    l2: model.l2,
    iterations: model.iterations,
    converged: model.converged,
    loss: model.loss,
  };
}

/** Parses and validates a head.json logreg payload (an object or its JSON text). */
export function logRegFromJson(input: unknown): LogRegModel {
  const obj = typeof input === "string" ? (JSON.parse(input) as unknown) : input;
  if (typeof obj !== "object" || obj === null) throw new ValidationError("logreg head must be a JSON object");
  const o = obj as Record<string, unknown>;
  if (o.type !== "logreg") throw new ValidationError('type must be "logreg"', { field: "type" });
  if (o.version !== 1)
    throw new ValidationError(`unsupported logreg version ${String(o.version)}`, { field: "version" });
  if (o.space !== "input") throw new ValidationError('space must be "input"', { field: "space" });
  const d = o.d;
  const k = o.k;
  if (typeof d !== "number" || !Number.isInteger(d) || d < 1) {
    throw new ValidationError("d must be a positive integer", { field: "d" });
  }
  if (typeof k !== "number" || !Number.isInteger(k) || k < 2) {
    throw new ValidationError("k must be an integer >= 2", { field: "k" });
  }
  return {
    d,
    k,
    mean: finiteArray(o.mean, d, "mean"),
    scale: finiteArray(o.scale, d, "scale"),
    weights: finiteArray(o.weights, k * d, "weights"),
    bias: finiteArray(o.bias, k, "bias"),
    l2: finiteNumber(o, "l2"),
    iterations: finiteNumber(o, "iterations"),
    converged: o.converged === true,
    loss: finiteNumber(o, "loss"),
  };
}
