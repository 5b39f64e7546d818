/**
 * Regularization chosen on small data: a logreg training that leaves C unset walks C's grid by
 * cross-validation (heads/choose-estimator.ts, the kind's `smallDataGrid`), each fold warm-started
 * from its model at the previous C; a set C, or a large training set, keeps the defaults.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { EmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { chooseEstimator } from "../shared/heads/choose-estimator.ts";
import { crossValidate } from "../shared/heads/cross-validate.ts";
import { buildTrainingSet } from "../shared/heads/problem.ts";
import type { TrainOptions } from "../shared/heads/train-request.ts";
import type { LogRegModel } from "../shared/learn/logreg.ts";
import { SMALL_DATA } from "../shared/learn/logreg-kind.ts";
import { headKind } from "../shared/learn/registry.ts";
import { assertClose, blobs } from "./helpers/heads.ts";

const GRID = [0.01, 0.1, 1, 10];

/** An in-memory embedded dataset: `X` (n × d) with class labels `c<y>`, all training rows. */
function dataset(X: Float32Array, y: Int32Array, d: number): EmbeddedDataset {
  return {
    dataset: "small",
    version: "v1",
    dim: d,
    rows: Array.from(y, (c, i) => ({ id: `r${i}`, line: i + 1, label: `c${c}` })),
    vectors: X,
    unsupported: 0,
    failed: [],
  };
}

async function choose(data: EmbeddedDataset, params?: Record<string, unknown>) {
  const opts: TrainOptions = { dataset: "small", head: "small", ...(params ? { params } : {}) };
  const set = buildTrainingSet(opts, data);
  return { set, choice: await chooseEstimator(opts, set, [{ specs: [], data }], undefined) };
}

describe("logreg's C on small training sets", () => {
  // The fewest rows the search runs on, in many noisy dimensions: the penalty matters.
  const d = 60;
  const { X, y } = blobs(SMALL_DATA.minRows, d, 4, 0.2, 3);
  const data = dataset(X, y, d);

  test("left unset, C is chosen by a walk along the grid that stops at the first drop", async () => {
    const { choice } = await choose(data);
    const search = choice.search;
    assert.ok(search, "the choice carries its search");
    const tried = search.candidates.map((c) => c.params.C);
    assert.deepEqual(tried, GRID.slice(0, tried.length), "a prefix of the grid, in order");
    assert.ok(tried.length >= 2);
    const scores = search.candidates.map((c) => c.score);
    // Every step but the last improved or held; a walk that stopped early ended on a drop.
    for (let i = 1; i < scores.length - 1; i++) assert.ok(scores[i] >= scores[i - 1], `step ${i} fell`);
    if (tried.length < GRID.length) assert.ok(scores.at(-1)! < scores.at(-2)!, "stopped without a drop");
    const chosen = search.candidates.filter((c) => c.chosen);
    assert.equal(chosen.length, 1);
    assert.equal(chosen[0].score, Math.max(...scores));
    assert.equal(choice.params.C, chosen[0].params.C);
    assert.equal(choice.params.classWeight, "none");
    assert.ok(choice.oof, "the chosen candidate's out-of-fold outputs are kept for calibration");
  });

  test("other params the request sets are kept for every candidate", async () => {
    const { choice } = await choose(data, { classWeight: "balanced" });
    assert.ok(choice.search);
    for (const c of choice.search.candidates) assert.equal(c.params.classWeight, "balanced");
  });

  test("a C the request sets, any value, turns the search off", async () => {
    for (const C of [1, 0.5]) {
      const { choice } = await choose(data, { C });
      assert.equal(choice.search, undefined);
      assert.equal(choice.params.C, C);
    }
  });

  test("outside the size range (too few rows, too many, too many rows × dims) C stays 1 without a search", async () => {
    const few = blobs(SMALL_DATA.minRows - 1, d, 4, 0.2, 3);
    const many = blobs(SMALL_DATA.maxRows + 1, 2, 2, 3, 1);
    const wideD = Math.floor(SMALL_DATA.maxWork / SMALL_DATA.minRows) + 1;
    const wide = blobs(SMALL_DATA.minRows, wideD, 2, 3, 2);
    const sets = [dataset(few.X, few.y, d), dataset(many.X, many.y, 2), dataset(wide.X, wide.y, wideD)];
    for (const big of sets) {
      const { choice } = await choose(big);
      assert.equal(choice.search, undefined);
      assert.equal(choice.params.C, 1);
    }
  });

  test("a warm start from each fold's model at another C reaches the same out-of-fold outputs", async () => {
    // Well posed (many rows for few dims), so the solver's tolerance is far below what is compared.
    const wellPosed = blobs(600, 8, 4, 0.8, 4);
    const { set } = await choose(dataset(wellPosed.X, wellPosed.y, 8), { C: 1 });
    const kind = headKind("logreg");
    const params = (C: number) => kind.resolveParams({ C }, set.trainPos.length, 8);
    const from = await crossValidate(set.problem, kind, params(0.1), set);
    assert.equal(from.models.length, set.folds);
    const cold = await crossValidate(set.problem, kind, params(1), set);
    const warm = await crossValidate(set.problem, kind, params(1), set, { perFold: from.models });
    // The same optimum per fold (as heads-logreg's warm-start test: equal loss, probabilities within
    // the solver's tolerance).
    warm.models.forEach((m, f) => {
      const [w, c] = [(m as LogRegModel).loss, (cold.models[f] as LogRegModel).loss];
      assert.ok(Math.abs(w - c) < 1e-5 * Math.max(1, c), `fold ${f}: loss ${w} vs ${c}`);
    });
    assertClose(warm.out, cold.out, 1e-2, "warm vs cold out-of-fold probabilities");
    assert.ok(
      cold.out.some((v, i) => Math.abs(v - from.out[i]) > 5e-2),
      "C = 0.1 and C = 1 differ, so the warm start had somewhere to go",
    );
  });
});
