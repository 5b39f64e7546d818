/** The active-learning scorers of shared/learn/active.ts on small hand-made matrices. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  COMMITTEE_SIZE,
  committeeProbabilities,
  entropyUncertainty,
  HYBRID_POOL,
  hybridPicks,
  kCenterGreedy,
  marginUncertainty,
  SEED_DISTANCE,
  topIndices,
  typicalPicks,
  unitRows,
} from "../shared/learn/active.ts";
import { mulberry32 } from "../shared/learn/split.ts";

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} ≉ ${b}`);

/** Three tight clusters of `per` unit-ish points in 3-D around the axes, row-major. */
function clusters(per: number, seed = 7): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(3 * per * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < per; i++) {
      const row = (c * per + i) * 3;
      for (let j = 0; j < 3; j++) out[row + j] = (j === c ? 1 : 0) + (rand() - 0.5) * 0.02;
    }
  }
  return unitRows(out, 3 * per, 3);
}

describe("uncertainty", () => {
  test("margin: the row nearest the decision boundary scores highest", () => {
    const probs = Float64Array.from([0.99, 0.01, 0.51, 0.49, 0.7, 0.3, 0.5, 0.5]);
    const u = marginUncertainty({ probs, n: 4, k: 2, exclusive: true });
    close(u[0], 0.02);
    close(u[1], 0.98);
    close(u[3], 1);
    assert.deepEqual(topIndices(u, 4), [3, 1, 2, 0]);
  });

  test("margin over three classes looks at the top two only", () => {
    // Row 0: top two tied (0.45, 0.45); row 1: one clear winner (0.8).
    const probs = Float64Array.from([0.45, 0.1, 0.45, 0.1, 0.8, 0.1]);
    const u = marginUncertainty({ probs, n: 2, k: 3, exclusive: true });
    close(u[0], 1);
    close(u[1], 0.3);
  });

  test("margin for independent labels: the least decided label counts", () => {
    const probs = Float64Array.from([0.99, 0.02, 0.99, 0.55]);
    const u = marginUncertainty({ probs, n: 2, k: 2, exclusive: false });
    close(u[0], 1 - 0.96);
    close(u[1], 1 - 0.1);
  });

  test("entropy is 1 for a uniform row and 0 for a certain one, whatever k", () => {
    const probs = Float64Array.from([1 / 3, 1 / 3, 1 / 3, 1, 0, 0, 0.6, 0.2, 0.2]);
    const u = entropyUncertainty({ probs, n: 3, k: 3, exclusive: true });
    close(u[0], 1);
    close(u[1], 0);
    assert.ok(u[2] > 0 && u[2] < 1);
    const labels = entropyUncertainty({ probs: [0.5, 0.5, 1, 0], n: 2, k: 2, exclusive: false });
    close(labels[0], 1);
    close(labels[1], 0);
  });
});

describe("k-center greedy", () => {
  test("cold start spreads one pick to each cluster, never two near-duplicates", () => {
    const per = 10;
    const candidates = clusters(per);
    const picks = kCenterGreedy({ candidates, covered: new Float32Array(0), dim: 3, k: 3 });
    assert.equal(picks[0].distance, SEED_DISTANCE);
    const clustersHit = new Set(picks.map((p) => Math.floor(p.index / per)));
    assert.equal(clustersHit.size, 3, `picks ${picks.map((p) => p.index)} cover every cluster`);
    for (const p of picks.slice(1)) assert.ok(p.distance > 1, `pick ${p.index} is far (${p.distance})`);
    // A 4th pick can only go back into a cluster: it is near something already picked.
    const four = kCenterGreedy({ candidates, covered: new Float32Array(0), dim: 3, k: 4 });
    assert.ok(four[3].distance < 0.1);
  });

  test("covered rows repel: with clusters 0 and 1 labelled, the first pick is in cluster 2", () => {
    const per = 5;
    const candidates = clusters(per);
    const covered = Float32Array.from([1, 0, 0, 0, 1, 0]);
    const picks = kCenterGreedy({ candidates, covered, dim: 3, k: 1 });
    assert.equal(Math.floor(picks[0].index / per), 2);
    close(picks[0].distance, Math.SQRT2, 0.05);
  });

  test("`among` restricts the picks; k beyond the pool picks the whole pool once", () => {
    const candidates = clusters(4);
    const picks = kCenterGreedy({
      candidates,
      covered: new Float32Array(0),
      dim: 3,
      k: 10,
      among: [1, 5, 9],
    });
    assert.deepEqual(
      picks.map((p) => p.index).sort((a, b) => a - b),
      [1, 5, 9],
    );
  });
});

describe("hybrid", () => {
  test("keeps the most uncertain rows and takes one typical row per group: no near-duplicates", () => {
    const per = 4;
    const candidates = clusters(per);
    // Cluster 0 is all uncertain (it would fill a pure margin batch); clusters 1 and 2 hold one
    // uncertain row each; the rest is certain.
    const uncertainty = new Float64Array(3 * per).fill(0.05);
    for (let i = 0; i < per; i++) uncertainty[i] = 0.95 - i * 0.001;
    uncertainty[per + 1] = 0.8;
    uncertainty[2 * per + 2] = 0.7;
    const k = 3;
    const picks = hybridPicks(uncertainty, { candidates, dim: 3, k }, 2);
    // The pool (2·3 = 6 rows): cluster 0, then the two uncertain rows of clusters 1 and 2.
    assert.deepEqual(
      picks.map((p) => p.index).sort((a, b) => a - b),
      [nearestToMean(candidates, [0, 1, 2, 3]), per + 1, 2 * per + 2],
    );
    assert.deepEqual(
      picks.map((p) => p.groupSize),
      [4, 1, 1],
      "largest group first",
    );
    close(picks[1].uncertainty, uncertainty[picks[1].index]);
    // Pure margin would have taken three near-duplicates of cluster 0.
    assert.deepEqual(topIndices(uncertainty, k), [0, 1, 2]);
  });

  test("picks a typical uncertain row, not the outlier among them", () => {
    const per = 4;
    const candidates = clusters(per);
    // The most uncertain row is alone in cluster 2; four uncertain rows of cluster 0 come next.
    const uncertainty = new Float64Array(3 * per).fill(0.05);
    uncertainty[2 * per] = 0.99;
    for (let i = 0; i < per; i++) uncertainty[i] = 0.9 - i * 0.001;
    const picks = hybridPicks(uncertainty, { candidates, dim: 3, k: 1 });
    assert.equal(HYBRID_POOL, 5);
    assert.equal(picks.length, 1);
    assert.ok(picks[0].index < per, `picked ${picks[0].index}, the outlier is ${2 * per}`);
    assert.equal(picks[0].groupSize, 5);
  });

  test("the pool is poolFactor·k rows: a narrower one keeps the batch among the most uncertain", () => {
    const per = 4;
    const candidates = clusters(per);
    const uncertainty = new Float64Array(3 * per).fill(0.05);
    for (let i = 0; i < per; i++) uncertainty[i] = 0.95 - i * 0.001;
    uncertainty[per + 1] = 0.8;
    const input = { candidates, dim: 3, k: 2 };
    // 2·2 = 4 rows: all of cluster 0, so both picks come from it.
    assert.ok(hybridPicks(uncertainty, input, 2).every((p) => p.index < per));
    // 3·2 = 6 rows reach cluster 1: its uncertain row, and by index a certain one (0.05), which
    // stays out, being under half the top uncertainty.
    const wider = hybridPicks(uncertainty, input, 3);
    assert.ok(wider[0].index < per);
    assert.equal(wider[1].index, per + 1);
    assert.deepEqual(
      wider.map((p) => p.groupSize),
      [4, 1],
    );
  });

  test("rows the head is sure of do not take picks from the uncertain ones", () => {
    const per = 4;
    const candidates = clusters(per);
    // Only cluster 0 is uncertain; clusters 1 and 2 are sure, and far from it.
    const uncertainty = new Float64Array(3 * per).fill(0.02);
    for (let i = 0; i < per; i++) uncertainty[i] = 0.9 - i * 0.01;
    const picks = hybridPicks(uncertainty, { candidates, dim: 3, k: 2 });
    assert.ok(
      picks.every((p) => p.index < per),
      JSON.stringify(picks),
    );
    assert.equal(new Set(picks.map((p) => p.index)).size, 2);
  });

  test("no candidates, no picks", () => {
    assert.deepEqual(hybridPicks(new Float64Array(0), { candidates: new Float32Array(0), dim: 3, k: 5 }), []);
  });

  test("the same batch for the same seed", () => {
    const candidates = clusters(10, 3);
    const uncertainty = Float64Array.from({ length: 30 }, (_, i) => ((i * 7) % 30) / 30);
    const a = hybridPicks(uncertainty, { candidates, dim: 3, k: 4 });
    const b = hybridPicks(uncertainty, { candidates, dim: 3, k: 4 });
    assert.deepEqual(a, b);
  });
});

/** The row among `rows` nearest their mean. */
function nearestToMean(vectors: Float32Array, rows: number[]): number {
  const mean = [0, 1, 2].map((j) => rows.reduce((a, r) => a + vectors[r * 3 + j], 0) / rows.length);
  const d = (r: number) => mean.reduce((a, m, j) => a + (vectors[r * 3 + j] - m) ** 2, 0);
  return rows.reduce((best, r) => (d(r) < d(best) ? r : best));
}

describe("typical picks (a cold start)", () => {
  test("one medoid per cluster, largest first", () => {
    const candidates = clusters(5, 4);
    const picks = typicalPicks({ candidates, dim: 3, k: 3 });
    assert.deepEqual(picks.map((p) => Math.floor(p.index / 5)).sort(), [0, 1, 2]);
    assert.ok(picks.every((p) => p.groupSize === 5 && p.grouped === 15));
    for (const p of picks) {
      const c = Math.floor(p.index / 5);
      assert.equal(
        p.index,
        nearestToMean(
          candidates,
          [0, 1, 2, 3, 4].map((i) => c * 5 + i),
        ),
      );
    }
  });

  test("beyond the sample size, a seeded sample is grouped", () => {
    const candidates = clusters(10, 2);
    const a = typicalPicks({ candidates, dim: 3, k: 3 }, 12, 1);
    assert.ok(a.every((p) => p.grouped === 12));
    assert.equal(new Set(a.map((p) => p.index)).size, 3);
    assert.deepEqual(typicalPicks({ candidates, dim: 3, k: 3 }, 12, 1), a);
    assert.deepEqual(typicalPicks({ candidates: new Float32Array(0), dim: 3, k: 3 }), []);
  });
});

describe("committee", () => {
  test("the mean of its members' probabilities, each fitted on a bootstrap resample of two classes or more", async () => {
    // Nine rows of class 0, one of class 1: many resamples miss class 1 and are drawn again.
    const y = Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    const seen: Int32Array[] = [];
    // Two candidates; each member says "class 1" with the share of class-1 draws in its resample.
    const fitPredict = async (rows: Int32Array) => {
      seen.push(rows);
      const share = rows.reduce((a, r) => a + y[r], 0) / rows.length;
      return Float64Array.from([1 - share, share, share, 1 - share]);
    };
    const mean = await committeeProbabilities(y, fitPredict);
    assert.equal(seen.length, COMMITTEE_SIZE);
    for (const rows of seen) {
      assert.equal(rows.length, y.length);
      assert.ok(rows.some((r) => y[r] === 1) && rows.some((r) => y[r] === 0), `${rows}`);
    }
    const shares = seen.map((rows) => rows.reduce((a, r) => a + y[r], 0) / rows.length);
    const expected = shares.reduce((a, b) => a + b, 0) / shares.length;
    close(mean[1], expected);
    close(mean[0] + mean[1], 1);
    close(mean[2], expected);
    // The same seed draws the same resamples; another seed others.
    const again: Int32Array[] = [];
    await committeeProbabilities(y, async (rows) => {
      again.push(rows);
      return new Float64Array(4);
    });
    assert.deepEqual(again, seen);
    const other: Int32Array[] = [];
    await committeeProbabilities(
      y,
      async (rows) => {
        other.push(rows);
        return new Float64Array(4);
      },
      3,
      1,
    );
    assert.equal(other.length, 3);
    assert.notDeepEqual(other[0], seen[0]);
  });

  test("labelled rows of one class are refused", async () => {
    await assert.rejects(
      committeeProbabilities(Int32Array.from([2, 2, 2]), async () => new Float64Array(2)),
      /at least two classes/,
    );
  });
});
