/**
 * Limited-memory BFGS over Float64Array with a More–Thuente line search (strong Wolfe conditions).
 *
 * The line search is a direct port of MINPACK-2's dcsrch/dcstep (the same routine behind scipy's
 * L-BFGS-B and liblbfgs), unrolled from reverse communication into a plain loop. It is chosen over a
 * simpler zoom because its safeguarded cubic/quadratic steps keep the bracket shrinking even when the
 * objective is badly scaled, which is the normal case for un-tuned heads.
 *
 * Everything is deterministic: no randomness, fixed evaluation order, buffers allocated once up front.
 */

import { ValidationError } from "../errors.ts";
import { checkTrainingBudget } from "./budget.ts";

/** Writes the gradient at `x` into `grad` and returns the objective value. Must not keep `x`. */
export type ObjectiveFn = (x: Float64Array, grad: Float64Array) => number;
/** The same, for objectives whose products run asynchronously (onnxruntime). */
export type AsyncObjectiveFn = (x: Float64Array, grad: Float64Array) => Promise<number>;

/** What the optimizer asks for next: the objective at `x`, with the gradient written into `grad`. */
interface EvaluationRequest {
  readonly x: Float64Array;
  readonly grad: Float64Array;
}

export interface LbfgsOptions {
  /** Maximum number of L-BFGS iterations (line searches). Default 1000. */
  maxIter?: number;
  /** Number of correction pairs kept. Default 10. */
  m?: number;
  /** Stop when max_i |g_i| <= gtol (scipy's `pgtol`, scikit-learn's `tol`). Default 1e-5. */
  gtol?: number;
  /**
   * Stop when the relative decrease (f_prev - f) / max(|f_prev|, |f|, 1) <= ftol
   * (scipy's `ftol`). Default 2.220446049250313e-9 (scipy's factr=1e7).
   */
  ftol?: number;
  /** Maximum objective evaluations per line search. Default 40. */
  maxLineSearch?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  iterations: number;
  /** Objective/gradient evaluations, including the initial one. */
  evaluations: number;
  /** True when the gradient or relative-decrease criterion was met (not when iterations ran out). */
  converged: boolean;
  /** Infinity norm of the gradient at `x` (the quantity `gtol` is compared against). */
  gradNorm: number;
  /** Why the loop stopped. */
  reason: "gtol" | "ftol" | "maxIter" | "lineSearch";
}

// Wolfe constants: sufficient decrease (c1) and curvature (c2), the standard quasi-Newton choices.
const C1 = 1e-4;
const C2 = 0.9;
const XTOL = 1e-14;
const STP_MIN = 1e-20;
const STP_MAX = 1e20;
const XTRAPL = 1.1;
const XTRAPU = 4.0;

function dot(a: Float64Array, b: Float64Array): number {
  let s0 = 0;
  let s1 = 0;
  const n = a.length;
  const n2 = n - (n % 2);
  for (let i = 0; i < n2; i += 2) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
  }
  if (n2 < n) s0 += a[n2] * b[n2];
  return s0 + s1;
}

function infNorm(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m || Number.isNaN(v)) m = v;
  }
  return m;
}

/** The interval state that dcstep updates in place. */
interface StepState {
  stx: number;
  fx: number;
  dx: number;
  sty: number;
  fy: number;
  dy: number;
  brackt: boolean;
}

/**
 * MINPACK-2 dcstep: computes a safeguarded trial step from the interval endpoints (stx, sty) and the
 * trial point stp, and updates the interval. Returns the new trial step.
 */
function dcstep(s: StepState, stp: number, fp: number, dp: number, stpmin: number, stpmax: number): number {
  const { stx, fx, dx, sty, fy, dy } = s;
  const sgnd = dp * Math.sign(dx);
  let stpf: number;

  if (fp > fx) {
    // Case 1: higher function value; the minimum is bracketed.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const sc = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = sc * Math.sqrt(Math.max(0, (theta / sc) ** 2 - (dx / sc) * (dp / sc)));
    if (stp < stx) gamma = -gamma;
    const p = gamma - dx + theta;
    const q = gamma - dx + gamma + dp;
    const r = p / q;
    const stpc = stx + r * (stp - stx);
    const stpq = stx + (dx / ((fx - fp) / (stp - stx) + dx) / 2) * (stp - stx);
    stpf = Math.abs(stpc - stx) < Math.abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2;
    s.brackt = true;
  } else if (sgnd < 0) {
    // Case 2: lower value, derivatives of opposite sign; the minimum is bracketed.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const sc = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = sc * Math.sqrt(Math.max(0, (theta / sc) ** 2 - (dx / sc) * (dp / sc)));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dx;
    const r = p / q;
    const stpc = stp + r * (stx - stp);
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
    s.brackt = true;
  } else if (Math.abs(dp) < Math.abs(dx)) {
    // Case 3: lower value, same-sign derivative that decreases in magnitude.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const sc = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = sc * Math.sqrt(Math.max(0, (theta / sc) ** 2 - (dx / sc) * (dp / sc)));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma + (dx - dp) + gamma;
    const r = p / q;
    let stpc: number;
    if (r < 0 && gamma !== 0) stpc = stp + r * (stx - stp);
    else if (stp > stx) stpc = stpmax;
    else stpc = stpmin;
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (s.brackt) {
      stpf = Math.abs(stpc - stp) < Math.abs(stpq - stp) ? stpc : stpq;
      if (stp > stx) stpf = Math.min(stp + 0.66 * (sty - stp), stpf);
      else stpf = Math.max(stp + 0.66 * (sty - stp), stpf);
    } else {
      stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
      stpf = Math.max(stpmin, Math.min(stpmax, stpf));
    }
  } else {
    // Case 4: lower value, same-sign derivative that does not decrease in magnitude.
    if (s.brackt) {
      const theta = (3 * (fp - fy)) / (sty - stp) + dy + dp;
      const sc = Math.max(Math.abs(theta), Math.abs(dy), Math.abs(dp));
      let gamma = sc * Math.sqrt(Math.max(0, (theta / sc) ** 2 - (dy / sc) * (dp / sc)));
      if (stp > sty) gamma = -gamma;
      const p = gamma - dp + theta;
      const q = gamma - dp + gamma + dy;
      const r = p / q;
      stpf = stp + r * (sty - stp);
    } else if (stp > stx) {
      stpf = stpmax;
    } else {
      stpf = stpmin;
    }
  }

  if (fp > fx) {
    s.sty = stp;
    s.fy = fp;
    s.dy = dp;
  } else {
    if (sgnd < 0) {
      s.sty = stx;
      s.fy = fx;
      s.dy = dx;
    }
    s.stx = stp;
    s.fx = fp;
    s.dx = dp;
  }
  return stpf;
}

/**
 * Minimizes `fg` starting from `x0` (not modified). Throws ValidationError on bad options or a
 * non-finite starting objective; a non-finite value met during a line search is treated as "too far"
 * and the step shrinks.
 */
export function minimizeLbfgs(fg: ObjectiveFn, x0: Float64Array, opts: LbfgsOptions = {}): LbfgsResult {
  const steps = lbfgsSteps(x0, opts);
  let r = steps.next();
  while (!r.done) r = steps.next(fg(r.value.x, r.value.grad));
  return r.value;
}

/** `minimizeLbfgs` for an asynchronous objective; identical iterates for identical values. */
export async function minimizeLbfgsAsync(
  fg: AsyncObjectiveFn,
  x0: Float64Array,
  opts: LbfgsOptions = {},
): Promise<LbfgsResult> {
  const steps = lbfgsSteps(x0, opts);
  let r = steps.next();
  while (!r.done) r = steps.next(await fg(r.value.x, r.value.grad));
  return r.value;
}

/**
 * The optimizer as a coroutine: it yields each point to evaluate and resumes with the objective
 * value, so one implementation serves synchronous and asynchronous objectives.
 */
function* lbfgsSteps(
  x0: Float64Array,
  opts: LbfgsOptions,
): Generator<EvaluationRequest, LbfgsResult, number> {
  const maxIter = opts.maxIter ?? 1000;
  const m = opts.m ?? 10;
  const gtol = opts.gtol ?? 1e-5;
  const ftol = opts.ftol ?? 2.220446049250313e-9;
  const maxLs = opts.maxLineSearch ?? 40;
  if (!Number.isInteger(maxIter) || maxIter < 0) throw new ValidationError("maxIter must be an integer >= 0");
  if (!Number.isInteger(m) || m < 1) throw new ValidationError("m must be an integer >= 1");
  if (!(gtol >= 0)) throw new ValidationError("gtol must be >= 0");
  if (!(ftol >= 0)) throw new ValidationError("ftol must be >= 0");
  if (!Number.isInteger(maxLs) || maxLs < 1)
    throw new ValidationError("maxLineSearch must be an integer >= 1");

  const n = x0.length;
  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  const request: EvaluationRequest = { x, grad: g };
  let f = yield request;
  let evaluations = 1;
  if (!Number.isFinite(f)) throw new ValidationError("objective is not finite at the starting point");

  const S = Array.from({ length: m }, () => new Float64Array(n));
  const Y = Array.from({ length: m }, () => new Float64Array(n));
  const rho = new Float64Array(m);
  const alpha = new Float64Array(m);
  let head = 0; // index of the oldest pair in the ring
  let stored = 0;

  const d = new Float64Array(n);
  const xPrev = new Float64Array(n);
  const gPrev = new Float64Array(n);
  // Best point seen in a failed line search, so a search that ends on a warning still makes progress.
  const xBest = new Float64Array(n);
  const gBest = new Float64Array(n);
  let sNew = new Float64Array(n);
  let yNew = new Float64Array(n);

  let gnorm = infNorm(g);
  if (gnorm <= gtol) {
    return { x, f, iterations: 0, evaluations, converged: true, gradNorm: gnorm, reason: "gtol" };
  }

  for (let i = 0; i < n; i++) d[i] = -g[i];
  let iterations = 0;
  let reason: LbfgsResult["reason"] = "maxIter";

  while (iterations < maxIter) {
    checkTrainingBudget(); // a training's wall-clock budget and cancellation (no-op outside one)
    let dg0 = dot(g, d);
    if (!(dg0 < 0)) {
      // Not a descent direction (curvature pairs went stale): restart from steepest descent.
      stored = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i];
      dg0 = dot(g, d);
      if (!(dg0 < 0)) {
        reason = "lineSearch";
        break;
      }
    }
    // First step has no curvature information: take a unit-length step along -g instead of a unit
    // multiple of a gradient whose scale is arbitrary.
    const stp0 = stored === 0 ? Math.min(1, 1 / Math.sqrt(dot(d, d))) : 1;

    xPrev.set(x);
    gPrev.set(g);
    const f0 = f;

    // ---- More–Thuente line search (dcsrch) ----
    const s: StepState = { stx: 0, fx: f0, dx: dg0, sty: 0, fy: f0, dy: dg0, brackt: false };
    const gtest = C1 * dg0;
    let stage = 1;
    let width = STP_MAX - STP_MIN;
    let width1 = 2 * width;
    let stmin = 0;
    let stmax = stp0 + XTRAPU * stp0;
    let stp = stp0;
    let lsOk = false;
    let fBest = f0;
    let haveBest = false;
    let stpCap = Number.POSITIVE_INFINITY;

    for (let ls = 0; ls < maxLs; ls++) {
      for (let i = 0; i < n; i++) x[i] = xPrev[i] + stp * d[i];
      f = yield request;
      evaluations++;
      const dgs = dot(g, d);
      if (!Number.isFinite(f) || !Number.isFinite(dgs)) {
        // Overflow means the step overshot. The interpolation formulas cannot digest infinities, so
        // back off toward the best endpoint and never step this far again in this search.
        stpCap = stp;
        stp = s.stx + 0.5 * (stp - s.stx);
        continue;
      }
      if (f < fBest) {
        fBest = f;
        xBest.set(x);
        gBest.set(g);
        haveBest = true;
      }

      const ftest = f0 + stp * gtest;
      if (stage === 1 && f <= ftest && dgs >= 0) stage = 2;
      if (f <= ftest && Math.abs(dgs) <= C2 * -dg0) {
        lsOk = true;
        break;
      }
      if (s.brackt && (stp <= stmin || stp >= stmax)) break;
      if (s.brackt && stmax - stmin <= XTOL * stmax) break;
      if (stp === STP_MAX && f <= ftest && dgs <= gtest) break;
      if (stp === STP_MIN && (f > ftest || dgs >= gtest)) break;

      if (stage === 1 && f <= s.fx && f > ftest) {
        // Work on the modified function psi(a) = f(a) - f0 - a*gtest until a point with sufficient
        // decrease is found; this keeps the bracket from locking onto a non-Armijo point.
        const mod: StepState = {
          stx: s.stx,
          fx: s.fx - s.stx * gtest,
          dx: s.dx - gtest,
          sty: s.sty,
          fy: s.fy - s.sty * gtest,
          dy: s.dy - gtest,
          brackt: s.brackt,
        };
        stp = dcstep(mod, stp, f - stp * gtest, dgs - gtest, stmin, stmax);
        s.stx = mod.stx;
        s.sty = mod.sty;
        s.brackt = mod.brackt;
        s.fx = mod.fx + mod.stx * gtest;
        s.fy = mod.fy + mod.sty * gtest;
        s.dx = mod.dx + gtest;
        s.dy = mod.dy + gtest;
      } else {
        stp = dcstep(s, stp, f, dgs, stmin, stmax);
      }

      if (s.brackt) {
        if (Math.abs(s.sty - s.stx) >= 0.66 * width1) stp = s.stx + 0.5 * (s.sty - s.stx);
        width1 = width;
        width = Math.abs(s.sty - s.stx);
        stmin = Math.min(s.stx, s.sty);
        stmax = Math.max(s.stx, s.sty);
      } else {
        stmin = stp + XTRAPL * (stp - s.stx);
        stmax = stp + XTRAPU * (stp - s.stx);
      }
      stp = Math.max(STP_MIN, Math.min(STP_MAX, stp));
      if (stp >= stpCap) stp = s.stx + 0.5 * (stpCap - s.stx);
      if ((s.brackt && (stp <= stmin || stp >= stmax)) || (s.brackt && stmax - stmin <= XTOL * stmax)) {
        stp = s.stx;
      }
    }

    if (!lsOk) {
      if (haveBest && fBest < f0) {
        // The Wolfe conditions were not met, but a strictly lower point was found; keep it.
        x.set(xBest);
        g.set(gBest);
        f = fBest;
      } else {
        x.set(xPrev);
        g.set(gPrev);
        f = f0;
        gnorm = infNorm(g);
        reason = "lineSearch";
        break;
      }
    }
    iterations++;

    gnorm = infNorm(g);
    if (gnorm <= gtol) {
      reason = "gtol";
      break;
    }
    if ((f0 - f) / Math.max(Math.abs(f0), Math.abs(f), 1) <= ftol) {
      reason = "ftol";
      break;
    }

    // ---- Curvature pair update ----
    // Built in spare buffers first so a rejected pair cannot clobber the oldest stored one.
    for (let i = 0; i < n; i++) {
      sNew[i] = x[i] - xPrev[i];
      yNew[i] = g[i] - gPrev[i];
    }
    const ys = dot(yNew, sNew);
    const yy = dot(yNew, yNew);
    // Skip pairs without positive curvature: they would make the inverse Hessian indefinite.
    if (ys > 2.220446049250313e-16 * yy && yy > 0) {
      const slot = stored < m ? (head + stored) % m : head;
      const sOld = S[slot];
      const yOld = Y[slot];
      S[slot] = sNew;
      Y[slot] = yNew;
      sNew = sOld;
      yNew = yOld;
      rho[slot] = 1 / ys;
      if (stored < m) stored++;
      else head = (head + 1) % m;
    }

    // ---- Two-loop recursion: d = -H g ----
    for (let i = 0; i < n; i++) d[i] = -g[i];
    for (let j = stored - 1; j >= 0; j--) {
      const idx = (head + j) % m;
      const a = rho[idx] * dot(S[idx], d);
      alpha[idx] = a;
      const yj = Y[idx];
      for (let i = 0; i < n; i++) d[i] -= a * yj[i];
    }
    if (stored > 0) {
      const last = (head + stored - 1) % m;
      const yl = Y[last];
      const gamma = 1 / (rho[last] * dot(yl, yl));
      for (let i = 0; i < n; i++) d[i] *= gamma;
    }
    for (let j = 0; j < stored; j++) {
      const idx = (head + j) % m;
      const b = rho[idx] * dot(Y[idx], d);
      const sj = S[idx];
      const c = alpha[idx] - b;
      for (let i = 0; i < n; i++) d[i] += c * sj[i];
    }
  }

  return {
    x,
    f,
    iterations,
    evaluations,
    converged: reason === "gtol" || reason === "ftol",
    gradNorm: gnorm,
    reason,
  };
}
