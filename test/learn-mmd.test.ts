import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { labelShares, mmdTest, sampleIndices, totalVariation } from "../shared/learn/mmd.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

const DIM = 16;

/** n rows around `center` (a unit direction scaled by 3) with unit Gaussian noise. */
function cloud(n: number, center: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const x = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < DIM; j++) x[i * DIM + j] = gaussian(rand) + (j === center ? 3 : 0);
  }
  return x;
}

/** A mixture: the first `share` of rows from cluster `b`, the rest from `a`, all noise seeded. */
function mixture(n: number, a: number, b: number, share: number, seed: number): Float32Array {
  const k = Math.round(n * share);
  const x = new Float32Array(n * DIM);
  x.set(cloud(k, b, seed + 1), 0);
  x.set(cloud(n - k, a, seed + 2), k * DIM);
  return x;
}

describe("mmdTest", () => {
  it("finds no drift between samples of one distribution, over several seeds", () => {
    let alarms = 0;
    const trials = 20;
    for (let s = 0; s < trials; s++) {
      const ref = mixture(120, 0, 1, 0.5, 100 + s * 7);
      const cur = mixture(80, 0, 1, 0.5, 5000 + s * 7);
      const r = mmdTest(ref, 120, cur, 80, DIM, { seed: s, permutations: 100 });
      assert.ok(r.pValue > 0 && r.pValue <= 1, `p-value ${r.pValue} in (0, 1]`);
      if (r.pValue < 0.05) alarms++;
    }
    // At α = 0.05 the expected count is 1; 4 or more of 20 would be a broken test statistic.
    assert.ok(alarms <= 3, `${alarms} false alarms of ${trials}`);
  });

  it("detects a 30% mix-in of another cluster", () => {
    for (let s = 0; s < 5; s++) {
      const ref = mixture(150, 0, 1, 0.5, 200 + s);
      const cur = mixture(150, 0, 1, 0.2, 900 + s); // the share of cluster 1 fell from 50% to 20%
      const shifted = new Float32Array(cur);
      shifted.set(cloud(45, 2, 7000 + s), 0); // and 30% of the rows come from a third cluster
      const r = mmdTest(ref, 150, shifted, 150, DIM, { seed: s, permutations: 100 });
      assert.ok(r.pValue < 0.05, `seed ${s}: p = ${r.pValue}`);
      assert.ok(r.mmd2 > 0);
    }
  });

  it("is deterministic for a seed, and subsamples each side to the cap", () => {
    const ref = cloud(300, 0, 1);
    const cur = cloud(250, 1, 2);
    const a = mmdTest(ref, 300, cur, 250, DIM, { seed: 9, permutations: 50, maxPerSide: 100 });
    const b = mmdTest(ref, 300, cur, 250, DIM, { seed: 9, permutations: 50, maxPerSide: 100 });
    assert.deepEqual(a, b);
    assert.deepEqual(a.used, { reference: 100, current: 100 });
    assert.deepEqual(a.n, { reference: 300, current: 250 });
    assert.equal(a.pValue, 1 / 51, "clearly different clouds: no permutation reaches the observed MMD²");
    assert.ok(a.bandwidth > 0 && a.bandwidth <= 2, "unit rows are at most 2 apart");
  });

  it("ignores the rows' lengths (it compares directions)", () => {
    const ref = cloud(60, 0, 3);
    const scaled = ref.map((v) => v * 7);
    const r = mmdTest(ref, 60, scaled, 60, DIM, { permutations: 50 });
    assert.ok(Math.abs(r.mmd2) < 0.05, `MMD² ${r.mmd2}`);
    assert.ok(r.pValue > 0.5);
  });

  it("refuses too few rows and a wrong shape, naming the side", () => {
    assert.throws(
      () => mmdTest(new Float32Array(DIM), 1, cloud(5, 0, 1), 5, DIM),
      /reference needs at least 2 rows/,
    );
    assert.throws(() => mmdTest(cloud(5, 0, 1), 5, new Float32Array(7), 2, DIM), /current has 7 values/);
    assert.throws(
      () => mmdTest(cloud(5, 0, 1), 5, cloud(5, 0, 1), 5, DIM, { permutations: 0 }),
      /permutations/,
    );
  });
});

describe("label shift", () => {
  it("shares sum to one and the total variation is half the L1 distance", () => {
    const p = labelShares(["a", "a", "b", "c"]);
    assert.deepEqual({ ...p }, { a: 0.5, b: 0.25, c: 0.25 });
    const q = labelShares(["a", "d"]);
    assert.equal(totalVariation(p, q), (0 + 0.25 + 0.25 + 0.5) / 2);
    assert.equal(totalVariation(p, p), 0);
  });

  it("sampleIndices draws distinct sorted indices", () => {
    const s = sampleIndices(50, 10, mulberry32(1));
    assert.equal(new Set(s).size, 10);
    assert.ok(s.every((v, i) => i === 0 || v > s[i - 1]));
    assert.equal(sampleIndices(5, 10, mulberry32(1)).length, 5);
  });
});
