import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import { minimizeLbfgs, minimizeLbfgsAsync } from "../shared/learn/lbfgs.ts";

function rosenbrock(x: Float64Array, g: Float64Array): number {
  const a = 1 - x[0];
  const b = x[1] - x[0] * x[0];
  g[0] = -2 * a - 400 * x[0] * b;
  g[1] = 200 * b;
  return a * a + 100 * b * b;
}

describe("minimizeLbfgs", () => {
  it("solves Rosenbrock from the classic start (-1.2, 1)", () => {
    const x0 = Float64Array.from([-1.2, 1]);
    const r = minimizeLbfgs(rosenbrock, x0, { gtol: 1e-9, ftol: 0 });
    assert.equal(r.converged, true);
    assert.ok(Math.abs(r.x[0] - 1) < 1e-4, `x0=${r.x[0]}`);
    assert.ok(Math.abs(r.x[1] - 1) < 1e-4, `x1=${r.x[1]}`);
    assert.ok(r.f < 1e-10);
    assert.ok(r.gradNorm <= 1e-9);
    assert.deepEqual(Array.from(x0), [-1.2, 1], "x0 must not be modified");
  });

  it("solves Rosenbrock from a far start where a unit first step would overshoot", () => {
    const r = minimizeLbfgs(rosenbrock, Float64Array.from([-120, 100]), { gtol: 1e-8, ftol: 0 });
    assert.equal(r.converged, true);
    assert.ok(Math.abs(r.x[0] - 1) < 1e-4 && Math.abs(r.x[1] - 1) < 1e-4, `x=${Array.from(r.x)}`);
  });

  it("minimizes an ill-conditioned convex quadratic to its known minimizer", () => {
    // f(x) = ½ Σ a_i e_i² + ½ Σ (e_i - e_{i+1})² with e = x - c: positive definite, coupled, condition
    // number ~1e4, and the minimizer is exactly c with f* = 0 (so roundoff in f does not hide progress).
    const n = 50;
    const a = Float64Array.from({ length: n }, (_, i) => 10 ** ((4 * i) / (n - 1)) / 100);
    const c = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
    const e = new Float64Array(n);
    const fg = (x: Float64Array, g: Float64Array): number => {
      let f = 0;
      for (let i = 0; i < n; i++) {
        e[i] = x[i] - c[i];
        f += 0.5 * a[i] * e[i] * e[i];
        g[i] = a[i] * e[i];
      }
      for (let i = 0; i + 1 < n; i++) {
        const t = e[i] - e[i + 1];
        f += 0.5 * t * t;
        g[i] += t;
        g[i + 1] -= t;
      }
      return f;
    };
    const r = minimizeLbfgs(fg, new Float64Array(n), { gtol: 1e-10, ftol: 0, maxIter: 5000 });
    assert.equal(r.converged, true);
    assert.equal(r.reason, "gtol");
    // |x - c| <= |g| / λ_min, and λ_min >= 0.01 here.
    for (let i = 0; i < n; i++) assert.ok(Math.abs(r.x[i] - c[i]) < 1e-7, `x[${i}]=${r.x[i]} vs ${c[i]}`);
  });

  it("returns immediately when the start is already optimal", () => {
    const r = minimizeLbfgs(rosenbrock, Float64Array.from([1, 1]));
    assert.equal(r.iterations, 0);
    assert.equal(r.evaluations, 1);
    assert.equal(r.converged, true);
  });

  it("stops at maxIter and reports not converged", () => {
    const r = minimizeLbfgs(rosenbrock, Float64Array.from([-1.2, 1]), { maxIter: 3, gtol: 0, ftol: 0 });
    assert.equal(r.iterations, 3);
    assert.equal(r.converged, false);
    assert.equal(r.reason, "maxIter");
    assert.ok(r.f < 24.2, "three iterations must decrease f from its start value 24.2");
  });

  it("backs off from steps where the objective overflows", () => {
    // exp(x) + exp(-x) overflows for |x| > ~710; the first step from x=700 heads far past that.
    const fg = (x: Float64Array, g: Float64Array): number => {
      const e = Math.exp(x[0]);
      const f = Math.exp(-x[0]);
      g[0] = e - f;
      return e + f;
    };
    const r = minimizeLbfgs(fg, Float64Array.from([50]), { gtol: 1e-8, ftol: 0 });
    assert.equal(r.converged, true);
    assert.ok(Math.abs(r.x[0]) < 1e-6, `x=${r.x[0]}`);
  });

  it("is deterministic", () => {
    const a = minimizeLbfgs(rosenbrock, Float64Array.from([-1.2, 1]), { gtol: 1e-9 });
    const b = minimizeLbfgs(rosenbrock, Float64Array.from([-1.2, 1]), { gtol: 1e-9 });
    assert.deepEqual(Array.from(a.x), Array.from(b.x));
    assert.equal(a.evaluations, b.evaluations);
  });

  it("rejects bad options and a non-finite start", () => {
    assert.throws(() => minimizeLbfgs(rosenbrock, Float64Array.from([0, 0]), { m: 0 }), ValidationError);
    assert.throws(
      () => minimizeLbfgs(rosenbrock, Float64Array.from([0, 0]), { maxIter: 1.5 }),
      ValidationError,
    );
    assert.throws(
      () => minimizeLbfgs(() => Number.NaN, Float64Array.from([0]), {}),
      (e: unknown) => e instanceof ValidationError && /not finite/.test(e.message),
    );
  });
});

describe("minimizeLbfgsAsync", () => {
  it("takes exactly the synchronous iterates for the same objective", async () => {
    const sync = minimizeLbfgs(rosenbrock, Float64Array.from([-1.2, 1]), { gtol: 1e-9, ftol: 0 });
    const viaAsync = await minimizeLbfgsAsync(
      async (x, g) => rosenbrock(x, g),
      Float64Array.from([-1.2, 1]),
      { gtol: 1e-9, ftol: 0 },
    );
    assert.deepEqual(Array.from(viaAsync.x), Array.from(sync.x));
    assert.equal(viaAsync.evaluations, sync.evaluations);
    assert.equal(viaAsync.reason, sync.reason);
  });

  it("rejects bad options before evaluating anything", async () => {
    let calls = 0;
    await assert.rejects(
      minimizeLbfgsAsync(
        async () => {
          calls++;
          return 0;
        },
        new Float64Array(2),
        { m: 0 },
      ),
      ValidationError,
    );
    assert.equal(calls, 0);
  });
});
