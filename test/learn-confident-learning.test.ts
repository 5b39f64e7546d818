/**
 * Confident learning on probabilities small enough to follow by hand: the thresholds, the confident
 * joint, the calibrated joint's noise rate, which rows pruning flags and in which order.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import {
  calibratedJoint,
  confidentJoint,
  confidentLearning,
  labelQuality,
  perClassThresholds,
} from "../shared/learn/confident-learning.ts";

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} ≉ ${b}`);

// Six rows, two classes: r2 is labelled 0 but looks like 1; r5 is labelled 1 but leans to 0.
const labels = Int32Array.from([0, 0, 0, 1, 1, 1]);
const probs = Float64Array.from([0.9, 0.1, 0.8, 0.2, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4]);

describe("confident learning", () => {
  test("thresholds are each class's mean self-confidence", () => {
    const t = perClassThresholds(probs, labels, 2);
    close(t[0], (0.9 + 0.8 + 0.1) / 3); // 0.6
    close(t[1], (0.8 + 0.7 + 0.4) / 3); // 0.633…
  });

  test("the confident joint counts each row toward its most probable class above threshold", () => {
    const t = perClassThresholds(probs, labels, 2);
    const { joint, confident } = confidentJoint(probs, labels, 2, t);
    // r5's p0 = 0.6 sits exactly on t0 and counts; its p1 = 0.4 is under t1.
    assert.deepEqual([...confident], [0, 0, 1, 1, 1, 0]);
    assert.deepEqual([...joint], [2, 1, 1, 2]);
  });

  test("the calibrated joint sums to 1 and its off-diagonal mass is the noise rate", () => {
    const q = calibratedJoint(Int32Array.from([2, 1, 1, 2]), labels, 2);
    for (const [i, v] of [1 / 3, 1 / 6, 1 / 6, 1 / 3].entries()) close(q[i], v);
    close(confidentLearning(probs, labels, 2).noiseRate, 1 / 3);
  });

  test("pruning flags round(n·Q[i][j]) rows per cell by margin, most suspect first", () => {
    const { issues } = confidentLearning(Float32Array.from(probs), labels, 2);
    assert.deepEqual(
      issues.map(({ row, given, suggested }) => ({ row, given, suggested })),
      [
        { row: 2, given: 0, suggested: 1 },
        { row: 5, given: 1, suggested: 0 },
      ],
    );
    close(issues[0].score, 0.9, 1e-6); // 1 − p_given
    close(issues[1].score, 0.6, 1e-6);
  });

  test("self-confidence and normalized margin can order rows differently", () => {
    const three = Float64Array.from([0.2, 0.4, 0.4, 0.3, 0.7, 0]);
    const given = Int32Array.from([0, 0]);
    const sc = labelQuality(three, given, 3, "self-confidence");
    const nm = labelQuality(three, given, 3, "normalized-margin");
    close(sc[0], 0.2);
    close(sc[1], 0.3); // row 0 is more suspect by self-confidence …
    close(nm[0], 0.4);
    close(nm[1], 0.3); // … row 1 by margin: 0.7 against 0.3 is a clearer vote than 0.4 against 0.2.
  });

  test("clean, confident probabilities give no issues and a zero noise rate", () => {
    const clean = Float64Array.from([0.95, 0.05, 0.9, 0.1, 0.1, 0.9, 0.2, 0.8]);
    const r = confidentLearning(clean, Int32Array.from([0, 0, 1, 1]), 2);
    assert.equal(r.issues.length, 0);
    assert.equal(r.noiseRate, 0);
  });

  test("a row pruning picks whose most probable class is its label is dropped", () => {
    // Class 0: A is confidently a 1, C a clean 0, B and D unsure (under every threshold) yet most
    // probably 0. Calibration doubles A's cell to n·Q[0][1] = 2, so pruning takes A and D (the two
    // largest p1 − p0); D's most probable class is its label, so only A is an issue.
    const p = Float64Array.from([
      ...[0.05, 0.9, 0.05, 0.4, 0.3, 0.3, 0.98, 0.01, 0.01, 0.4, 0.35, 0.25], // A B C D, labelled 0
      ...[0.05, 0.9, 0.05, 0.05, 0.9, 0.05, 0.05, 0.9, 0.05], // labelled 1
      ...[0.05, 0.05, 0.9, 0.05, 0.05, 0.9, 0.05, 0.05, 0.9], // labelled 2
    ]);
    const y = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
    const r = confidentLearning(p, y, 3);
    close(r.noiseRate, 0.2);
    assert.deepEqual(
      r.issues.map((i) => [i.row, i.suggested]),
      [[0, 1]],
    );
  });

  test("a class nobody is labelled with has an infinite threshold", () => {
    const t = perClassThresholds(Float64Array.from([0.8, 0.1, 0.1]), Int32Array.from([0]), 3);
    assert.equal(t[1], Number.POSITIVE_INFINITY);
  });

  test("bad inputs are refused naming the argument", () => {
    assert.throws(
      () => confidentLearning(Float64Array.from([0.5, 0.5, 1]), Int32Array.from([0, 1]), 2),
      (e: unknown) => e instanceof ValidationError && e.field === "probs",
    );
    assert.throws(
      () => confidentLearning(Float64Array.from([0.5, 0.5]), Int32Array.from([2]), 2),
      (e: unknown) => e instanceof ValidationError && e.field === "labels",
    );
    assert.throws(
      () => confidentLearning(Float64Array.from([Number.NaN, 1]), Int32Array.from([0]), 2),
      (e: unknown) => e instanceof ValidationError && e.field === "probs",
    );
  });
});
