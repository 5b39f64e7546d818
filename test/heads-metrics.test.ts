import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import { classificationMetrics, LOG_LOSS_EPS, logLoss } from "../shared/learn/metrics.ts";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe("classificationMetrics", () => {
  it("matches a hand-checked example with a class that is never predicted", () => {
    // labels: cat=0, dog=1, eel=2 (eel occurs twice but is never predicted)
    const yTrue = Int32Array.from([0, 0, 0, 1, 1, 2, 2, 0]);
    const yPred = Int32Array.from([0, 0, 1, 1, 0, 1, 0, 0]);
    const m = classificationMetrics(yTrue, yPred, ["cat", "dog", "eel"]);
    assert.equal(m.n, 8);
    assert.deepEqual(m.confusion, [
      [3, 1, 0],
      [1, 1, 0],
      [1, 1, 0],
    ]);
    close(m.accuracy, 4 / 8);
    // cat: tp 3, predicted 5, support 4 -> P 3/5, R 3/4, F1 2*3/(4+5) = 2/3
    close(m.perClass.cat.precision, 0.6);
    close(m.perClass.cat.recall, 0.75);
    close(m.perClass.cat.f1, 2 / 3);
    assert.equal(m.perClass.cat.support, 4);
    // dog: tp 1, predicted 3, support 2 -> P 1/3, R 1/2, F1 2/5
    close(m.perClass.dog.precision, 1 / 3);
    close(m.perClass.dog.recall, 0.5);
    close(m.perClass.dog.f1, 0.4);
    // eel: never predicted -> precision 0 (not NaN), recall 0, F1 0
    assert.deepEqual(m.perClass.eel, { precision: 0, recall: 0, f1: 0, support: 2 });
    close(m.macroF1, (2 / 3 + 0.4 + 0) / 3);
  });

  it("leaves labels absent from both yTrue and yPred out of the macro average (sklearn default)", () => {
    const m = classificationMetrics(Int32Array.from([0, 1, 1]), Int32Array.from([0, 1, 0]), [
      "a",
      "b",
      "unused",
    ]);
    assert.deepEqual(m.perClass.unused, { precision: 0, recall: 0, f1: 0, support: 0 });
    // a: P 1/2 R 1 F1 2/3; b: P 1 R 1/2 F1 2/3
    close(m.macroF1, 2 / 3);
  });

  it("handles empty input without NaN", () => {
    const m = classificationMetrics(new Int32Array(0), new Int32Array(0), ["a", "b"]);
    assert.equal(m.accuracy, 0);
    assert.equal(m.macroF1, 0);
    assert.equal(m.n, 0);
  });

  it("rejects mismatched lengths, out-of-range ids and duplicate labels", () => {
    assert.throws(
      () => classificationMetrics(Int32Array.from([0]), Int32Array.from([0, 1]), ["a", "b"]),
      ValidationError,
    );
    assert.throws(
      () => classificationMetrics(Int32Array.from([2]), Int32Array.from([0]), ["a", "b"]),
      ValidationError,
    );
    assert.throws(
      () => classificationMetrics(Int32Array.from([0]), Int32Array.from([-1]), ["a", "b"]),
      ValidationError,
    );
    assert.throws(
      () => classificationMetrics(Int32Array.from([0]), Int32Array.from([0]), ["a", "a"]),
      ValidationError,
    );
  });
});

describe("logLoss", () => {
  it("is the mean negative log-probability of the true class", () => {
    const p = Float64Array.from([0.7, 0.2, 0.1, 0.1, 0.1, 0.8]);
    close(logLoss(Int32Array.from([0, 2]), p, 3), -(Math.log(0.7) + Math.log(0.8)) / 2);
  });

  it("clips zero probabilities instead of returning Infinity", () => {
    const v = logLoss(Int32Array.from([1]), Float64Array.from([1, 0]), 2);
    close(v, -Math.log(LOG_LOSS_EPS), 1e-9);
    assert.ok(Number.isFinite(v));
  });

  it("validates shapes", () => {
    assert.throws(() => logLoss(Int32Array.from([0]), Float64Array.from([1, 0, 0]), 2), ValidationError);
    assert.throws(() => logLoss(Int32Array.from([3]), Float64Array.from([1, 0]), 2), ValidationError);
  });
});
