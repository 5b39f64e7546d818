/** PCA by power iteration (shared/learn/pca.ts) against answers known in closed form. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pca } from "../shared/learn/pca.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

describe("pca", () => {
  test("a 2-D cloud stretched along known axes: those axes, their variances, shares of the total", () => {
    // Points a·u + b·w with u = (3,4)/5, w = (−4,3)/5, a ~ N(0, 3²), b ~ N(0, 1): the
    // covariance is 9·uuᵀ + 1·wwᵀ (up to sampling), so the components are ±u, ±w.
    const rand = mulberry32(7);
    const n = 4000;
    const X = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      const a = 3 * gaussian(rand);
      const b = gaussian(rand);
      X[i * 2] = 10 + a * 0.6 - b * 0.8;
      X[i * 2 + 1] = -5 + a * 0.8 + b * 0.6;
    }
    const { components, explained, coords } = pca(X, n, 2);
    assert.ok(Math.abs(Math.abs(components[0] * 0.6 + components[1] * 0.8) - 1) < 1e-3, "first ≈ ±u");
    assert.ok(Math.abs(Math.abs(components[2] * -0.8 + components[3] * 0.6) - 1) < 1e-3, "second ≈ ±w");
    assert.ok(Math.abs(explained[0] - 0.9) < 0.01, `explained[0] ${explained[0]}`);
    assert.ok(Math.abs(explained[0] + explained[1] - 1) < 1e-9, "two components of 2-D data explain all");
    // Coordinates are centered projections.
    const meanX = coords.filter((_, i) => i % 2 === 0).reduce((s, v) => s + v, 0) / n;
    assert.ok(Math.abs(meanX) < 1e-9);
  });

  test("an exact answer: points on a line in 3-D are one component; the second explains 0", () => {
    const X = Float64Array.from([0, 0, 0, 1, 2, 2, 2, 4, 4, 3, 6, 6]);
    const { components, explained, coords } = pca(X, 4, 3);
    const u = [1 / 3, 2 / 3, 2 / 3];
    const cos = components[0] * u[0] + components[1] * u[1] + components[2] * u[2];
    assert.ok(Math.abs(Math.abs(cos) - 1) < 1e-9, "the line's direction");
    assert.ok(Math.abs(explained[0] - 1) < 1e-9);
    assert.ok(explained[1] < 1e-9);
    // Projections of 0..3 steps of length 3, centered on 1.5 steps: ±4.5, ±1.5.
    const first = [0, 1, 2, 3].map((i) => Math.abs(coords[i * 2]));
    assert.deepEqual(
      first.map((v) => Math.round(v * 1e9) / 1e9),
      [4.5, 1.5, 1.5, 4.5],
    );
  });

  test("components are orthonormal and the same seed gives the same answer", () => {
    const rand = mulberry32(3);
    const n = 200;
    const d = 16;
    const X = Float64Array.from({ length: n * d }, () => gaussian(rand));
    const a = pca(X, n, d, { seed: 1 });
    const b = pca(X, n, d, { seed: 1 });
    assert.deepEqual(a.coords, b.coords);
    const c = a.components;
    const dot = (p: number, q: number) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += c[p * d + j] * c[q * d + j];
      return s;
    };
    assert.ok(Math.abs(dot(0, 0) - 1) < 1e-9 && Math.abs(dot(1, 1) - 1) < 1e-9);
    assert.ok(Math.abs(dot(0, 1)) < 1e-6);
    assert.ok(a.explained[0] >= a.explained[1]);
  });

  test("constant data: zero components, nothing explained; a bad shape names X", () => {
    const { explained, coords } = pca(new Float64Array(12).fill(2), 4, 3);
    assert.deepEqual(explained, [0, 0]);
    assert.ok(coords.every((v) => v === 0));
    assert.throws(() => pca(new Float64Array(5), 2, 3), /X has 5 values/);
  });
});
