/**
 * Dense Cholesky factorization and forward substitution for the Mahalanobis scorer (ood.ts), in
 * float64. Small matrices run in plain loops; from 2·BLOCK dimensions on, the work is cut into
 * column blocks of BLOCK whose products (d³/3 of the d³/3 + O(d²·BLOCK) multiply-adds) go through the
 * SIMD kernels of logistic-kernel-wasm.ts: at 1,280 dimensions (mobilenet) the factor took ≈ 1 s in
 * loops, once per unknown-scorer turn.
 *
 * The kernels multiply a float32 operand by a float64 one. An operand that is float32 already (the
 * stored factor) goes in as it is; a float64 one (a panel being factored) is split into hi =
 * fround(x) and lo = x − hi, both exact in float32, and multiplied twice, so the products keep
 * float64 precision (hi·y + lo·y = x·y up to float64 rounding).
 */
import { ValidationError } from "../errors.ts";
import { KernelWorkspace } from "./logistic-kernel-wasm.ts";

/** Columns a block takes; also the size below which (2·BLOCK) plain loops are used throughout. */
export const BLOCK = 64;

/**
 * Cholesky of the symmetric positive-definite matrix whose lower triangle A holds (row-major d×d),
 * in place: A's lower triangle becomes L, with A = L·Lᵀ. The upper triangle is left as it was.
 */
export function choleskyInPlace(A: Float64Array, d: number): Float64Array {
  if (d < 2 * BLOCK) return factorColumns(A, d, 0, d, d);
  for (let k0 = 0; k0 < d; k0 += BLOCK) {
    const k1 = Math.min(d, k0 + BLOCK);
    factorColumns(A, d, k0, k1, k1);
    if (k1 === d) break;
    solvePanel(A, d, k0, k1);
    if (!subtractPanelProduct(A, d, k0, k1)) subtractPanelLoops(A, d, k0, k1);
  }
  return A;
}

/**
 * Columns k0..k1 of L for rows k0..rowEnd, where every column before k0 has already been subtracted
 * from the trailing matrix (k0 = 0: plain Cholesky). Plain loops.
 */
function factorColumns(A: Float64Array, d: number, k0: number, k1: number, rowEnd: number): Float64Array {
  for (let j = k0; j < k1; j++) {
    const oj = j * d;
    let s = A[oj + j];
    for (let t = k0; t < j; t++) s -= A[oj + t] * A[oj + t];
    if (!(s > 0)) throw new ValidationError(`the covariance is not positive definite (pivot ${j})`);
    const ljj = Math.sqrt(s);
    A[oj + j] = ljj;
    for (let i = j + 1; i < rowEnd; i++) {
      const oi = i * d;
      let v = A[oi + j];
      for (let t = k0; t < j; t++) v -= A[oi + t] * A[oj + t];
      A[oi + j] = v / ljj;
    }
  }
  return A;
}

/** Rows k1..d of block column k0..k1: each row solved against the block's diagonal factor. */
function solvePanel(A: Float64Array, d: number, k0: number, k1: number): void {
  solveBlockRows(A, d, A, k1, d, k0, k1);
}

/**
 * Columns k0..k1 of rows r0..r1 of X (row-major, d wide), each row solved against L's diagonal
 * block k0..k1, every earlier column's contribution already subtracted. X may be L itself.
 */
function solveBlockRows(
  L: Float64Array,
  d: number,
  X: Float64Array,
  r0: number,
  r1: number,
  k0: number,
  k1: number,
): void {
  for (let i = r0; i < r1; i++) {
    const oi = i * d;
    for (let j = k0; j < k1; j++) {
      const oj = j * d;
      let v = X[oi + j];
      for (let t = k0; t < j; t++) v -= L[oj + t] * X[oi + t];
      X[oi + j] = v / L[oj + j];
    }
  }
}

/**
 * The trailing matrix's lower triangle minus P·Pᵀ, P = rows k1..d of block column k0..k1, the
 * product by the kernels (P split into float32 hi and lo parts). False when the kernels are
 * unavailable: then nothing has been subtracted.
 */
function subtractPanelProduct(A: Float64Array, d: number, k0: number, k1: number): boolean {
  const m = d - k1;
  const b = k1 - k0;
  const ws = KernelWorkspace.create(m, b, m);
  if (!ws) return false;
  const { dp } = ws;
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < b; t++) {
      const v = A[(k1 + i) * d + k0 + t];
      ws.w[i * dp + t] = v;
      ws.z[i * dp + t] = v;
    }
  }
  ws.forward();
  const product = Float64Array.from(ws.r);
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < b; t++) ws.z[i * dp + t] = ws.w[i * dp + t] - ws.z[i * dp + t];
  }
  ws.forward();
  for (let i = 0; i < m; i++) {
    const row = (k1 + i) * d + k1;
    for (let j = 0; j <= i; j++) A[row + j] -= product[i * m + j] + ws.r[i * m + j];
  }
  return true;
}

/** `subtractPanelProduct` in plain loops, where the kernels cannot run. */
function subtractPanelLoops(A: Float64Array, d: number, k0: number, k1: number): void {
  for (let i = k1; i < d; i++) {
    for (let j = k1; j <= i; j++) {
      let v = 0;
      for (let t = k0; t < k1; t++) v += A[i * d + t] * A[j * d + t];
      A[i * d + j] -= v;
    }
  }
}

/**
 * Solves L·zᵢ = xᵢ for every row xᵢ of X (n×d, row-major), in place: X's rows become the zᵢ. L is
 * lower triangular, row-major d×d, and its entries must be float32 values (the stored factor):
 * they are the kernels' float32 operand as they are.
 */
export function forwardSolveRows(L: Float64Array, d: number, X: Float64Array, n: number): Float64Array {
  for (let k0 = 0; k0 < d; k0 += BLOCK) {
    const k1 = Math.min(d, k0 + BLOCK);
    if (k0 > 0 && !subtractSolvedProduct(L, d, X, n, k0, k1)) return solveLoops(L, d, X, n, k0);
    solveBlockRows(L, d, X, 0, n, k0, k1);
  }
  return X;
}

/** X[:, k0..k1] −= X[:, 0..k0] · L[k0..k1, 0..k0]ᵀ by the kernels; false without them. */
function subtractSolvedProduct(
  L: Float64Array,
  d: number,
  X: Float64Array,
  n: number,
  k0: number,
  k1: number,
): boolean {
  const b = k1 - k0;
  const ws = KernelWorkspace.create(b, k0, n);
  if (!ws) return false;
  const { dp } = ws;
  for (let j = 0; j < b; j++) for (let t = 0; t < k0; t++) ws.z[j * dp + t] = L[(k0 + j) * d + t];
  for (let i = 0; i < n; i++) for (let t = 0; t < k0; t++) ws.w[i * dp + t] = X[i * d + t];
  ws.forward(); // r[j·n + i] = Σ_t L[k0 + j, t] · X[i, t]
  for (let i = 0; i < n; i++) for (let j = 0; j < b; j++) X[i * d + k0 + j] -= ws.r[j * n + i];
  return true;
}

/** Columns from k0 on by plain forward substitution (columns before k0 already solved). */
function solveLoops(L: Float64Array, d: number, X: Float64Array, n: number, k0: number): Float64Array {
  for (let i = 0; i < n; i++) {
    const oi = i * d;
    for (let j = k0; j < d; j++) {
      const oj = j * d;
      let v = X[oi + j];
      for (let t = 0; t < j; t++) v -= L[oj + t] * X[oi + t];
      X[oi + j] = v / L[oj + j];
    }
  }
  return X;
}
