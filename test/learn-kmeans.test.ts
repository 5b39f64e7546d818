/** k-means and its medoids (shared/learn/kmeans.ts) on small generated clusters. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { kMeans, medoids } from "../shared/learn/kmeans.ts";
import { mulberry32 } from "../shared/learn/split.ts";

/** `clusters` blobs of `per` 4-D points around well-separated centres, row-major; row r is in blob ⌊r/per⌋. */
function blobs(clusters: number, per: number, seed = 1): Float32Array {
  const rand = mulberry32(seed);
  const dim = 4;
  const out = new Float32Array(clusters * per * dim);
  for (let c = 0; c < clusters; c++) {
    for (let i = 0; i < per; i++) {
      for (let j = 0; j < dim; j++)
        out[(c * per + i) * dim + j] = (j === c % dim ? 10 * (1 + Math.floor(c / dim)) : 0) + rand() - 0.5;
    }
  }
  return out;
}

const all = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("k-means", () => {
  test("recovers well-separated blobs, whatever the order of the rows", () => {
    const per = 15;
    const vectors = blobs(5, per);
    const rows = all(5 * per).reverse();
    const { assign, sizes } = kMeans({ vectors, dim: 4, rows, k: 5, seed: 3 });
    assert.deepEqual([...sizes].sort(), [per, per, per, per, per]);
    rows.forEach((r, i) => {
      const first = rows.findIndex((q) => Math.floor(q / per) === Math.floor(r / per));
      assert.equal(assign[i], assign[first], `row ${r} is with its blob`);
    });
  });

  test("clusters only the rows it is given", () => {
    const vectors = blobs(3, 10);
    const rows = [0, 1, 2, 20, 21, 22];
    const { assign, sizes } = kMeans({ vectors, dim: 4, rows, k: 2 });
    assert.equal(assign.length, 6);
    assert.deepEqual([...sizes].sort(), [3, 3]);
    assert.notEqual(assign[0], assign[3]);
  });

  test("the same clusters for the same seed", () => {
    const vectors = blobs(4, 20, 9);
    const input = { vectors, dim: 4, rows: all(80), k: 7, seed: 5 };
    assert.deepEqual(kMeans(input).assign, kMeans(input).assign);
  });

  test("refuses k below 1 and an empty set of rows", () => {
    const vectors = blobs(1, 3);
    assert.throws(() => kMeans({ vectors, dim: 4, rows: [0, 1], k: 0 }), /k ≥ 1/);
    assert.throws(() => kMeans({ vectors, dim: 4, rows: [], k: 2 }), /k ≥ 1/);
  });
});

describe("medoids", () => {
  test("one row per cluster, the member nearest its mean, largest cluster first", () => {
    const vectors = blobs(2, 5);
    // Blob 0 gets a row exactly at its members' mean (so it must be the medoid); blob 1 keeps 3 rows.
    const mean = [0, 1, 2, 3].map((j) => [0, 1, 2, 3].reduce((a, r) => a + vectors[r * 4 + j], 0) / 4);
    vectors.set(mean, 4 * 4);
    const rows = [0, 1, 2, 3, 4, 5, 6, 7];
    const picks = medoids({ vectors, dim: 4, rows, k: 2 });
    assert.deepEqual(picks[0], { row: 4, clusterSize: 5 });
    assert.equal(picks[1].clusterSize, 3);
    assert.ok([5, 6, 7].includes(picks[1].row));
  });

  test("every row when k is at least the number of rows", () => {
    const vectors = blobs(2, 3);
    const picks = medoids({ vectors, dim: 4, rows: [5, 1, 3], k: 10 });
    assert.deepEqual(picks.map((p) => p.row).sort(), [1, 3, 5]);
    assert.ok(picks.every((p) => p.clusterSize === 1));
  });

  test("duplicate rows still give k distinct picks", () => {
    const vectors = new Float32Array(6 * 4);
    for (let r = 0; r < 4; r++) vectors.set([1, 0, 0, 0], r * 4); // four identical rows
    vectors.set([0, 1, 0, 0], 16);
    vectors.set([0, 0, 1, 0], 20);
    const picks = medoids({ vectors, dim: 4, rows: all(6), k: 4 });
    assert.equal(new Set(picks.map((p) => p.row)).size, 4);
  });
});
