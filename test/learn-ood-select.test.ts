/**
 * The per-head scorer choice (`learn/ood-select.ts`): seen classes stand in, in turn, for an unseen
 * one. Far-apart clusters that a linear head answers confidently everywhere make a distance scorer
 * win; an oracle classifier whose probabilities already expose the stand-in class keeps msp (a
 * near-tie goes to the free scorer); two classes keep msp.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ProbaFitter, selectOodMethod } from "../shared/learn/ood-select.ts";
import { headKind } from "../shared/learn/registry.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

const DIM = 6;

/**
 * `perClass` rows of each of `k` classes, every 4th row of each class for validation. `line`: class c
 * centred 8c units along axis 0, so a linear head answers the classes beyond the ends confidently;
 * else 6 units along axis c.
 */
function clusters(k: number, perClass: number, seed: number, line = false) {
  const rand = mulberry32(seed);
  const n = k * perClass;
  const X = new Float32Array(n * DIM);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % k;
    for (let j = 0; j < DIM; j++) X[i * DIM + j] = gaussian(rand);
    if (line) X[i * DIM] += 8 * y[i];
    else X[i * DIM + y[i]] += 6;
  }
  const validation = Uint8Array.from({ length: n }, (_, i) => (Math.floor(i / k) % 4 === 0 ? 1 : 0));
  return { X, n, d: DIM, y, k, validation };
}

const logreg: ProbaFitter = async (X, n, d, y, k) => {
  const kind = headKind("logreg");
  const model = await kind.fit(X, n, d, { task: "multiclass", y, k }, kind.resolveParams({}, n, d), {
    seed: 1,
  });
  return (Xq, m) => kind.predict(model, Xq, m);
};

/** Knows the classes it was fitted on by their axis: any other row gets uniform probabilities. */
const oracle: ProbaFitter = async (X, n, d, y, k) => {
  const axisOf = new Map<number, number>();
  for (let i = 0; i < n; i++) axisOf.set(argmax(X, i * d, d), y[i]);
  return async (Xq, m) => {
    const out = new Float64Array(m * k).fill(1 / k);
    for (let i = 0; i < m; i++) {
      const c = axisOf.get(argmax(Xq, i * d, d));
      if (c === undefined) continue;
      out.fill(0, i * k, (i + 1) * k);
      out[i * k + c] = 1;
    }
    return out;
  };
};

function argmax(X: Float32Array, off: number, d: number): number {
  let best = 0;
  for (let j = 1; j < d; j++) if (X[off + j] > X[off + best]) best = j;
  return best;
}

describe("selectOodMethod", () => {
  it("keeps a distance scorer when a linear head is confident on the stand-in class", async () => {
    const s = await selectOodMethod(clusters(5, 80, 1, true), logreg, { seed: 3 });
    assert.notEqual(s.method, "msp", s.reason);
    assert.equal(s.standIns.length, 4);
    assert.equal(new Set(s.standIns).size, 4);
    assert.ok(s.auroc![s.method] > 0.95, `${s.method}: ${s.auroc![s.method]}`);
    assert.ok(s.auroc![s.method] - s.auroc!.msp >= 0.02);
    assert.match(s.reason, new RegExp(s.method));
  });

  it("keeps msp on a near-tie: it is free to store and to score", async () => {
    const s = await selectOodMethod(clusters(4, 60, 2), oracle, { seed: 1, turns: 2 });
    assert.equal(s.method, "msp", s.reason);
    assert.equal(s.auroc!.msp, 1);
    assert.equal(s.standIns.length, 2);
  });

  it("keeps msp for two classes without fitting anything", async () => {
    let fits = 0;
    const counting: ProbaFitter = async (...args) => {
      fits++;
      return logreg(...args);
    };
    const s = await selectOodMethod(clusters(2, 50, 3), counting);
    assert.deepEqual([s.method, s.standIns, fits], ["msp", [], 0]);
    assert.match(s.reason, /two classes/);
  });

  it("skips classes too small to stand in, and says so when none can", async () => {
    const s = await selectOodMethod(clusters(3, 4, 4), logreg);
    assert.equal(s.method, "msp");
    assert.equal(s.auroc, undefined);
    assert.match(s.reason, /too few rows/);
  });

  it("is deterministic for a seed", async () => {
    const a = await selectOodMethod(clusters(5, 40, 5), logreg, { seed: 9, turns: 2 });
    const b = await selectOodMethod(clusters(5, 40, 5), logreg, { seed: 9, turns: 2 });
    assert.deepEqual(a, b);
  });
});
