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
export interface EvaluationRequest {
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

/** The trial point dcstep works from: step, value and derivative there, and the step bounds. */
interface Trial {
  stp: number;
  fp: number;
  dp: number;
  stpmin: number;
  stpmax: number;
}

/**
 * θ and γ of the cubic interpolating (stx, fx, dx) and the trial point; γ = √(θ² − dx·dp) is computed
 * scaled by max(|θ|, |dx|, |dp|) so the squares cannot overflow (0 where rounding makes the radicand
 * negative). Case 4 interpolates (sty, fy, dy) instead, through `cubicGamma` directly.
 */
function cubicThetaX(s: StepState, t: Trial): number {
  return (3 * (s.fx - t.fp)) / (t.stp - s.stx) + s.dx + t.dp;
}

function cubicGamma(theta: number, da: number, db: number): number {
  const sc = Math.max(Math.abs(theta), Math.abs(da), Math.abs(db));
  return sc * Math.sqrt(Math.max(0, (theta / sc) ** 2 - (da / sc) * (db / sc)));
}

/** Case 1: higher function value; the minimum is bracketed. */
function higherValueStep(s: StepState, t: Trial): number {
  const { stx, fx, dx } = s;
  const { stp, fp, dp } = t;
  const theta = cubicThetaX(s, t);
  let gamma = cubicGamma(theta, dx, dp);
  if (stp < stx) gamma = -gamma;
  const p = gamma - dx + theta;
  const q = gamma - dx + gamma + dp;
  const r = p / q;
  const stpc = stx + r * (stp - stx);
  const stpq = stx + (dx / ((fx - fp) / (stp - stx) + dx) / 2) * (stp - stx);
  return Math.abs(stpc - stx) < Math.abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2;
}

/** Case 2: lower value, derivatives of opposite sign; the minimum is bracketed. */
function oppositeSlopeStep(s: StepState, t: Trial): number {
  const { stx, dx } = s;
  const { stp, dp } = t;
  const theta = cubicThetaX(s, t);
  let gamma = cubicGamma(theta, dx, dp);
  if (stp > stx) gamma = -gamma;
  const p = gamma - dp + theta;
  const q = gamma - dp + gamma + dx;
  const r = p / q;
  const stpc = stp + r * (stx - stp);
  const stpq = stp + (dp / (dp - dx)) * (stx - stp);
  return Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
}

/** Case 3: lower value, same-sign derivative that decreases in magnitude. */
function flatteningSlopeStep(s: StepState, t: Trial): number {
  const { stx, dx, sty } = s;
  const { stp, dp, stpmin, stpmax } = t;
  const theta = cubicThetaX(s, t);
  let gamma = cubicGamma(theta, dx, dp);
  if (stp > stx) gamma = -gamma;
  const p = gamma - dp + theta;
  const q = gamma + (dx - dp) + gamma;
  const r = p / q;
  let stpc: number;
  if (r < 0 && gamma !== 0) stpc = stp + r * (stx - stp);
  else if (stp > stx) stpc = stpmax;
  else stpc = stpmin;
  const stpq = stp + (dp / (dp - dx)) * (stx - stp);
  let stpf: number;
  if (s.brackt) {
    stpf = Math.abs(stpc - stp) < Math.abs(stpq - stp) ? stpc : stpq;
    if (stp > stx) stpf = Math.min(stp + 0.66 * (sty - stp), stpf);
    else stpf = Math.max(stp + 0.66 * (sty - stp), stpf);
  } else {
    stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
    stpf = Math.max(stpmin, Math.min(stpmax, stpf));
  }
  return stpf;
}

/** Case 4: lower value, same-sign derivative that does not decrease in magnitude. */
function steepSlopeStep(s: StepState, t: Trial): number {
  const { stx, sty, fy, dy } = s;
  const { stp, fp, dp } = t;
  if (s.brackt) {
    const theta = (3 * (fp - fy)) / (sty - stp) + dy + dp;
    let gamma = cubicGamma(theta, dy, dp);
    if (stp > sty) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dy;
    const r = p / q;
    return stp + r * (sty - stp);
  }
  return stp > stx ? t.stpmax : t.stpmin;
}

/**
 * MINPACK-2 dcstep: computes a safeguarded trial step from the interval endpoints (stx, sty) and the
 * trial point stp, and updates the interval. Returns the new trial step.
 */
function dcstep(s: StepState, stp: number, fp: number, dp: number, stpmin: number, stpmax: number): number {
  const t: Trial = { stp, fp, dp, stpmin, stpmax };
  const sgnd = dp * Math.sign(s.dx);
  let stpf: number;
  if (fp > s.fx) {
    stpf = higherValueStep(s, t);
    s.brackt = true;
  } else if (sgnd < 0) {
    stpf = oppositeSlopeStep(s, t);
    s.brackt = true;
  } else if (Math.abs(dp) < Math.abs(s.dx)) {
    stpf = flatteningSlopeStep(s, t);
  } else {
    stpf = steepSlopeStep(s, t);
  }

  if (fp > s.fx) {
    s.sty = stp;
    s.fy = fp;
    s.dy = dp;
  } else {
    if (sgnd < 0) {
      s.sty = s.stx;
      s.fy = s.fx;
      s.dy = s.dx;
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

type ResolvedOptions = Required<LbfgsOptions>;

function resolveOptions(opts: LbfgsOptions): ResolvedOptions {
  const maxIter = opts.maxIter ?? 1000;
  const m = opts.m ?? 10;
  const gtol = opts.gtol ?? 1e-5;
  const ftol = opts.ftol ?? 2.220446049250313e-9;
  const maxLineSearch = opts.maxLineSearch ?? 40;
  if (!Number.isInteger(maxIter) || maxIter < 0) throw new ValidationError("maxIter must be an integer >= 0");
  if (!Number.isInteger(m) || m < 1) throw new ValidationError("m must be an integer >= 1");
  if (!(gtol >= 0)) throw new ValidationError("gtol must be >= 0");
  if (!(ftol >= 0)) throw new ValidationError("ftol must be >= 0");
  if (!Number.isInteger(maxLineSearch) || maxLineSearch < 1)
    throw new ValidationError("maxLineSearch must be an integer >= 1");
  return { maxIter, m, gtol, ftol, maxLineSearch };
}

/** The iterate and the buffers around it, shared by the main loop and the line search. */
interface Iterate {
  /** The point being evaluated; `request` hands it (and `g`) to the objective. */
  readonly x: Float64Array;
  readonly g: Float64Array;
  readonly request: EvaluationRequest;
  /** Objective value at x (after a line search: at the accepted point). */
  f: number;
  evaluations: number;
  /** Search direction. */
  readonly d: Float64Array;
  /** Start of the current line search. */
  readonly xPrev: Float64Array;
  readonly gPrev: Float64Array;
  // Best point seen in a failed line search, so a search that ends on a warning still makes progress.
  readonly xBest: Float64Array;
  readonly gBest: Float64Array;
}

function newIterate(x0: Float64Array): Iterate {
  const n = x0.length;
  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  const buf = () => new Float64Array(n);
  return {
    x,
    g,
    request: { x, grad: g },
    f: Number.NaN,
    evaluations: 0,
    d: buf(),
    xPrev: buf(),
    gPrev: buf(),
    xBest: buf(),
    gBest: buf(),
  };
}

/** The last m curvature pairs (s, y) in a ring, and the two-loop recursion that applies them. */
class CurvatureMemory {
  private readonly S: Float64Array[];
  private readonly Y: Float64Array[];
  private readonly rho: Float64Array;
  private readonly alpha: Float64Array;
  private head = 0; // index of the oldest pair in the ring
  private stored = 0;
  private sNew: Float64Array;
  private yNew: Float64Array;

  constructor(
    private readonly m: number,
    n: number,
  ) {
    this.S = Array.from({ length: m }, () => new Float64Array(n));
    this.Y = Array.from({ length: m }, () => new Float64Array(n));
    this.rho = new Float64Array(m);
    this.alpha = new Float64Array(m);
    this.sNew = new Float64Array(n);
    this.yNew = new Float64Array(n);
  }

  get empty(): boolean {
    return this.stored === 0;
  }

  /** Forgets every pair (the next direction is steepest descent). */
  clear(): void {
    this.stored = 0;
  }

  /** Stores s = x − xPrev, y = g − gPrev, unless the pair lacks positive curvature. */
  update(it: Iterate): void {
    const { x, g, xPrev, gPrev } = it;
    const { sNew, yNew, m } = this;
    // Built in spare buffers first so a rejected pair cannot clobber the oldest stored one.
    for (let i = 0; i < x.length; i++) {
      sNew[i] = x[i] - xPrev[i];
      yNew[i] = g[i] - gPrev[i];
    }
    const ys = dot(yNew, sNew);
    const yy = dot(yNew, yNew);
    // Skip pairs without positive curvature: they would make the inverse Hessian indefinite.
    if (!(ys > 2.220446049250313e-16 * yy && yy > 0)) return;
    const slot = this.stored < m ? (this.head + this.stored) % m : this.head;
    this.sNew = this.S[slot];
    this.yNew = this.Y[slot];
    this.S[slot] = sNew;
    this.Y[slot] = yNew;
    this.rho[slot] = 1 / ys;
    if (this.stored < m) this.stored++;
    else this.head = (this.head + 1) % m;
  }

  /** Two-loop recursion: d = −H g. */
  direction(g: Float64Array, d: Float64Array): void {
    const { S, Y, rho, alpha, head, stored, m } = this;
    const n = g.length;
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
}

/**
 * The optimizer as a coroutine: it yields each point to evaluate and resumes with the objective
 * value, so one implementation serves synchronous and asynchronous objectives.
 */
export function* lbfgsSteps(
  x0: Float64Array,
  opts: LbfgsOptions,
): Generator<EvaluationRequest, LbfgsResult, number> {
  const { maxIter, m, gtol, ftol, maxLineSearch } = resolveOptions(opts);
  const it = newIterate(x0);
  const { x, g, d } = it;
  it.f = yield it.request;
  it.evaluations = 1;
  if (!Number.isFinite(it.f)) throw new ValidationError("objective is not finite at the starting point");
  const memory = new CurvatureMemory(m, x.length);

  let gnorm = infNorm(g);
  let iterations = 0;
  const result = (reason: LbfgsResult["reason"]): LbfgsResult => ({
    x,
    f: it.f,
    iterations,
    evaluations: it.evaluations,
    converged: reason === "gtol" || reason === "ftol",
    gradNorm: gnorm,
    reason,
  });
  if (gnorm <= gtol) return result("gtol");

  for (let i = 0; i < x.length; i++) d[i] = -g[i];
  while (iterations < maxIter) {
    checkTrainingBudget(); // a training's wall-clock budget and cancellation (no-op outside one)
    const dg0 = descentSlope(it, memory);
    if (!(dg0 < 0)) return result("lineSearch");
    // First step has no curvature information: take a unit-length step along -g instead of a unit
    // multiple of a gradient whose scale is arbitrary.
    const stp0 = memory.empty ? Math.min(1, 1 / Math.sqrt(dot(d, d))) : 1;
    const f0 = it.f;
    if (!(yield* lineSearch(it, dg0, stp0, maxLineSearch))) {
      gnorm = infNorm(g);
      return result("lineSearch");
    }
    iterations++;
    gnorm = infNorm(g);
    if (gnorm <= gtol) return result("gtol");
    if ((f0 - it.f) / Math.max(Math.abs(f0), Math.abs(it.f), 1) <= ftol) return result("ftol");
    memory.update(it);
    memory.direction(g, d);
  }
  return result("maxIter");
}

/**
 * g · d, after restarting from steepest descent when d is not a descent direction (the curvature
 * pairs went stale). Not negative: no descent direction exists.
 */
function descentSlope(it: Iterate, memory: CurvatureMemory): number {
  const { g, d } = it;
  const dg0 = dot(g, d);
  if (dg0 < 0) return dg0;
  memory.clear();
  for (let i = 0; i < g.length; i++) d[i] = -g[i];
  return dot(g, d);
}

/** The state of one More–Thuente search (dcsrch) between trial points. */
interface Search {
  /** Interval endpoints and the bracketing flag, in dcstep's terms. */
  readonly s: StepState;
  readonly f0: number;
  readonly dg0: number;
  /** Sufficient-decrease slope c1 · g·d. */
  readonly gtest: number;
  stage: 1 | 2;
  width: number;
  width1: number;
  stmin: number;
  stmax: number;
  /** The trial step. */
  stp: number;
  /** Steps at or beyond this overflowed the objective. */
  stpCap: number;
}

/**
 * A More–Thuente line search (MINPACK-2 dcsrch) from xPrev along d, yielding each trial point. On
 * success x, g and it.f hold the accepted point; when no point meets the Wolfe conditions the best
 * strictly lower point seen is taken instead. Returns false (x, g, f back at the start) when there is
 * none.
 */
function* lineSearch(
  it: Iterate,
  dg0: number,
  stp0: number,
  maxLs: number,
): Generator<EvaluationRequest, boolean, number> {
  const { x, g, d, xPrev } = it;
  xPrev.set(x);
  it.gPrev.set(g);
  const f0 = it.f;
  const ls: Search = {
    s: { stx: 0, fx: f0, dx: dg0, sty: 0, fy: f0, dy: dg0, brackt: false },
    f0,
    dg0,
    gtest: C1 * dg0,
    stage: 1,
    width: STP_MAX - STP_MIN,
    width1: 2 * (STP_MAX - STP_MIN),
    stmin: 0,
    stmax: stp0 + XTRAPU * stp0,
    stp: stp0,
    stpCap: Number.POSITIVE_INFINITY,
  };
  let fBest = f0;
  let haveBest = false;
  for (let trial = 0; trial < maxLs; trial++) {
    for (let i = 0; i < x.length; i++) x[i] = xPrev[i] + ls.stp * d[i];
    const f = yield it.request;
    it.f = f;
    it.evaluations++;
    const dgs = dot(g, d);
    if (!Number.isFinite(f) || !Number.isFinite(dgs)) {
      // Overflow means the step overshot. The interpolation formulas cannot digest infinities, so
      // back off toward the best endpoint and never step this far again in this search.
      ls.stpCap = ls.stp;
      ls.stp = ls.s.stx + 0.5 * (ls.stp - ls.s.stx);
      continue;
    }
    if (f < fBest) {
      fBest = f;
      it.xBest.set(x);
      it.gBest.set(g);
      haveBest = true;
    }
    const verdict = judgeTrial(ls, f, dgs);
    if (verdict === "wolfe") return true;
    if (verdict === "stop") break;
    nextTrialStep(ls, f, dgs);
  }
  if (haveBest && fBest < f0) {
    // The Wolfe conditions were not met, but a strictly lower point was found; keep it.
    x.set(it.xBest);
    g.set(it.gBest);
    it.f = fBest;
    return true;
  }
  x.set(xPrev);
  g.set(it.gPrev);
  it.f = f0;
  return false;
}

/** The bracket has collapsed or the trial step left it: no further progress is possible. */
function bracketExhausted(ls: Search): boolean {
  const { s, stp, stmin, stmax } = ls;
  return s.brackt && (stp <= stmin || stp >= stmax || stmax - stmin <= XTOL * stmax);
}

/** dcsrch's tests on a finite trial point: the strong Wolfe conditions hold, the search must stop, or go on. */
function judgeTrial(ls: Search, f: number, dgs: number): "wolfe" | "stop" | "continue" {
  const { f0, dg0, gtest, stp } = ls;
  const ftest = f0 + stp * gtest;
  if (ls.stage === 1 && f <= ftest && dgs >= 0) ls.stage = 2;
  if (f <= ftest && Math.abs(dgs) <= C2 * -dg0) return "wolfe";
  if (bracketExhausted(ls)) return "stop";
  if (stp === STP_MAX && f <= ftest && dgs <= gtest) return "stop";
  if (stp === STP_MIN && (f > ftest || dgs >= gtest)) return "stop";
  return "continue";
}

/** dcsrch's next trial step: a dcstep on ψ or f, then the bracket and the step safeguarded. */
function nextTrialStep(ls: Search, f: number, dgs: number): void {
  const { s, gtest } = ls;
  const ftest = ls.f0 + ls.stp * gtest;
  if (ls.stage === 1 && f <= s.fx && f > ftest) {
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
    ls.stp = dcstep(mod, ls.stp, f - ls.stp * gtest, dgs - gtest, ls.stmin, ls.stmax);
    s.stx = mod.stx;
    s.sty = mod.sty;
    s.brackt = mod.brackt;
    s.fx = mod.fx + mod.stx * gtest;
    s.fy = mod.fy + mod.sty * gtest;
    s.dx = mod.dx + gtest;
    s.dy = mod.dy + gtest;
  } else {
    ls.stp = dcstep(s, ls.stp, f, dgs, ls.stmin, ls.stmax);
  }

  if (s.brackt) {
    if (Math.abs(s.sty - s.stx) >= 0.66 * ls.width1) ls.stp = s.stx + 0.5 * (s.sty - s.stx);
    ls.width1 = ls.width;
    ls.width = Math.abs(s.sty - s.stx);
    ls.stmin = Math.min(s.stx, s.sty);
    ls.stmax = Math.max(s.stx, s.sty);
  } else {
    ls.stmin = ls.stp + XTRAPL * (ls.stp - s.stx);
    ls.stmax = ls.stp + XTRAPU * (ls.stp - s.stx);
  }
  ls.stp = Math.max(STP_MIN, Math.min(STP_MAX, ls.stp));
  if (ls.stp >= ls.stpCap) ls.stp = s.stx + 0.5 * (ls.stpCap - s.stx);
  if (bracketExhausted(ls)) ls.stp = s.stx;
}
