import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import { foldIndices, mulberry32, shuffleInPlace, stratifiedKFold } from "../shared/learn/split.ts";

describe("mulberry32", () => {
  it("is deterministic per seed and differs across seeds", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const sa = Array.from({ length: 5 }, a);
    assert.deepEqual(sa, Array.from({ length: 5 }, b));
    assert.notDeepEqual(sa, Array.from({ length: 5 }, c));
  });

  it("produces values in [0, 1) with a roughly uniform mean", () => {
    const r = mulberry32(1);
    let sum = 0;
    for (let i = 0; i < 100000; i++) {
      const v = r();
      assert.ok(v >= 0 && v < 1);
      sum += v;
    }
    // Standard error of the mean is 0.29/sqrt(1e5) ≈ 9e-4; 5e-3 is > 5 sigma.
    assert.ok(Math.abs(sum / 100000 - 0.5) < 5e-3);
  });

  it("shuffles into a permutation", () => {
    const a = Int32Array.from({ length: 50 }, (_, i) => i);
    shuffleInPlace(a, mulberry32(3));
    assert.deepEqual(
      Array.from(a).sort((x, y) => x - y),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.notDeepEqual(
      Array.from(a),
      Array.from({ length: 50 }, (_, i) => i),
    );
  });
});

describe("stratifiedKFold", () => {
  it("spreads every class evenly over the folds and balances fold sizes", () => {
    const counts = [17, 5, 40, 3];
    const y = Int32Array.from(counts.flatMap((m, c) => new Array<number>(m).fill(c)));
    // Interleave so the order of y is not grouped by class.
    shuffleInPlace(y, mulberry32(9));
    const folds = 4;
    const f = stratifiedKFold(y, 4, folds, 123);
    assert.equal(f.length, y.length);
    const per = Array.from({ length: 4 }, () => new Array<number>(folds).fill(0));
    const sizes = new Array<number>(folds).fill(0);
    for (let i = 0; i < y.length; i++) {
      assert.ok(f[i] >= 0 && f[i] < folds);
      per[y[i]][f[i]]++;
      sizes[f[i]]++;
    }
    for (let c = 0; c < 4; c++) {
      assert.ok(Math.max(...per[c]) - Math.min(...per[c]) <= 1, `class ${c}: ${per[c]}`);
      assert.equal(
        per[c].reduce((a, b) => a + b),
        counts[c],
      );
    }
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes}`);
  });

  it("is deterministic for a seed and changes with the seed", () => {
    const y = Int32Array.from({ length: 100 }, (_, i) => i % 3);
    assert.deepEqual(Array.from(stratifiedKFold(y, 3, 5, 1)), Array.from(stratifiedKFold(y, 3, 5, 1)));
    assert.notDeepEqual(Array.from(stratifiedKFold(y, 3, 5, 1)), Array.from(stratifiedKFold(y, 3, 5, 2)));
  });

  it("foldIndices partitions the rows", () => {
    const y = Int32Array.from({ length: 23 }, (_, i) => i % 2);
    const f = stratifiedKFold(y, 2, 3, 7);
    const seen = new Set<number>();
    for (let k = 0; k < 3; k++) {
      const { train, test } = foldIndices(f, k);
      assert.equal(train.length + test.length, 23);
      for (const i of test) {
        assert.equal(f[i], k);
        assert.ok(!seen.has(i));
        seen.add(i);
      }
      for (const i of train) assert.notEqual(f[i], k);
    }
    assert.equal(seen.size, 23);
  });

  it("rejects folds < 2, too few rows and out-of-range labels", () => {
    const y = Int32Array.from([0, 1, 0, 1]);
    assert.throws(() => stratifiedKFold(y, 2, 1, 0), ValidationError);
    assert.throws(() => stratifiedKFold(y, 2, 2.5, 0), ValidationError);
    assert.throws(() => stratifiedKFold(y, 2, 5, 0), /some fold would be empty/);
    assert.throws(() => stratifiedKFold(Int32Array.from([0, 2, 0]), 2, 2, 0), ValidationError);
  });
});
