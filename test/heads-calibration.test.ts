import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import {
  applyTemperature,
  eceFromBins,
  expectedCalibrationError,
  fitTemperature,
  MAX_TEMPERATURE,
  MIN_TEMPERATURE,
  reliabilityBins,
  temperatureLoss,
} from "../shared/learn/calibration.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

function softmaxRows(logits: Float64Array, n: number, k: number, scale = 1): Float64Array {
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[i * k + c] * scale);
    let s = 0;
    for (let c = 0; c < k; c++) {
      out[i * k + c] = Math.exp(logits[i * k + c] * scale - max);
      s += out[i * k + c];
    }
    for (let c = 0; c < k; c++) out[i * k + c] /= s;
  }
  return out;
}

/**
 * Rows whose true class probabilities are softmax(logits); labels are drawn from them, so the true
 * probabilities are perfectly calibrated and softmax(logits / plantedT) is miscalibrated by plantedT.
 */
function synthetic(n: number, k: number, seed: number, plantedT: number) {
  const rand = mulberry32(seed);
  const logits = Float64Array.from({ length: n * k }, () => 1.5 * gaussian(rand));
  const truth = softmaxRows(logits, n, k);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rand();
    let acc = 0;
    let c = 0;
    for (; c < k - 1; c++) {
      acc += truth[i * k + c];
      if (r < acc) break;
    }
    y[i] = c;
  }
  return { truth, y, model: softmaxRows(logits, n, k, 1 / plantedT) };
}

describe("reliability bins and ECE", () => {
  it("match a hand computation", () => {
    // Top-label confidences 0.9 (correct), 0.8 (wrong), 0.58 (correct), 0.55 (wrong), 1.0 (correct).
    const proba = Float64Array.from([0.9, 0.1, 0.2, 0.8, 0.58, 0.42, 0.45, 0.55, 1, 0]);
    const y = Int32Array.from([0, 0, 0, 0, 0]);
    const bins = reliabilityBins(proba, y, 2, 5);
    assert.equal(bins.length, 5);
    assert.deepEqual(
      bins.map((b) => b.count),
      [0, 0, 2, 0, 3],
    );
    assert.ok(Math.abs(bins[2].lower - 0.4) < 1e-12 && Math.abs(bins[2].upper - 0.6) < 1e-12);
    assert.ok(Math.abs(bins[2].confidence - 0.565) < 1e-12);
    assert.equal(bins[2].accuracy, 0.5);
    // 0.8 falls in [0.8, 1.0) and 1.0 is in the last bin too.
    assert.ok(Math.abs(bins[4].confidence - 0.9) < 1e-12);
    assert.ok(Math.abs(bins[4].accuracy - 2 / 3) < 1e-12);
    assert.deepEqual(bins[0], { lower: 0, upper: 0.2, count: 0, confidence: 0, accuracy: 0 });
    const ece = (2 / 5) * Math.abs(0.5 - 0.565) + (3 / 5) * Math.abs(2 / 3 - 0.9);
    assert.ok(Math.abs(expectedCalibrationError(proba, y, 2, 5) - ece) < 1e-12);
    assert.ok(Math.abs(eceFromBins(bins) - ece) < 1e-12);
  });

  it("uses 15 bins by default and puts confidence 1 in the last", () => {
    const bins = reliabilityBins(Float64Array.from([0, 1, 0]), Int32Array.from([1]), 3);
    assert.equal(bins.length, 15);
    assert.equal(bins[14].count, 1);
    assert.equal(bins[14].accuracy, 1);
    assert.equal(expectedCalibrationError(Float64Array.from([0, 1, 0]), Int32Array.from([1]), 3), 0);
  });

  it("is 0 with no rows and 1 for confident, always wrong predictions", () => {
    assert.equal(expectedCalibrationError(new Float64Array(0), new Int32Array(0), 3), 0);
    assert.equal(expectedCalibrationError(Float64Array.from([1, 0, 1, 0]), Int32Array.from([1, 1]), 2), 1);
  });

  it("reject bad input with the field named", () => {
    const bad = (fn: () => unknown, field: string) =>
      assert.throws(fn, (e: unknown) => e instanceof ValidationError && e.field === field);
    bad(() => reliabilityBins(Float64Array.from([0.5, 0.5]), Int32Array.from([2]), 2), "y");
    bad(() => reliabilityBins(Float64Array.from([0.5, 0.5, 1]), Int32Array.from([0]), 2), "proba");
    bad(() => reliabilityBins(Float64Array.from([Number.NaN, 0.5]), Int32Array.from([0]), 2), "proba");
    bad(() => reliabilityBins(Float64Array.from([0.5, 0.5]), Int32Array.from([0]), 2, 0), "bins");
    bad(() => reliabilityBins(Float64Array.from([0.5, 0.5]), Int32Array.from([0]), 0), "k");
  });
});

describe("temperature loss", () => {
  for (const weighted of [false, true]) {
    it(`derivatives match central finite differences${weighted ? " with sample weights" : ""}`, () => {
      const { model, y } = synthetic(40, 4, 3, 0.5);
      const rand = mulberry32(11);
      const sw = weighted ? Float64Array.from({ length: 40 }, () => 0.1 + 2 * rand()) : undefined;
      const h = 1e-5;
      for (const u of [-1.5, -0.3, 0, 0.7, 2]) {
        const at = temperatureLoss(model, y, 4, u, sw);
        const plus = temperatureLoss(model, y, 4, u + h, sw);
        const minus = temperatureLoss(model, y, 4, u - h, sw);
        const fdGrad = (plus.value - minus.value) / (2 * h);
        const fdHess = (plus.grad - minus.grad) / (2 * h);
        assert.ok(
          Math.abs(at.grad - fdGrad) < 1e-6 * (1 + Math.abs(fdGrad)),
          `grad at ${u}: ${at.grad} vs ${fdGrad}`,
        );
        assert.ok(
          Math.abs(at.hess - fdHess) < 1e-5 * (1 + Math.abs(fdHess)),
          `hess at ${u}: ${at.hess} vs ${fdHess}`,
        );
      }
    });
  }

  it("at T = 1 is the plain mean log-loss", () => {
    const proba = Float64Array.from([0.7, 0.2, 0.1, 0.25, 0.25, 0.5]);
    const y = Int32Array.from([0, 2]);
    const expected = -(Math.log(0.7) + Math.log(0.5)) / 2;
    assert.ok(Math.abs(temperatureLoss(proba, y, 3, 0).value - expected) < 1e-12);
  });
});

describe("fitTemperature", () => {
  it("recovers a planted over-confidence and lowers ECE", () => {
    const planted = 0.3;
    const { model, truth, y } = synthetic(20000, 5, 42, planted);
    const T = fitTemperature(model, y, 5);
    // softmax(z / 0.3) needs T = 1 / 0.3 to undo; the MLE on 20k rows lands within a few percent.
    assert.ok(Math.abs(T - 1 / planted) / (1 / planted) < 0.05, `T = ${T}`);
    const before = expectedCalibrationError(model, y, 5);
    const after = expectedCalibrationError(applyTemperature(model, 20000, 5, T), y, 5);
    const oracle = expectedCalibrationError(truth, y, 5);
    assert.ok(before > 0.1, `before ${before}`);
    assert.ok(after < 0.02, `after ${after}`);
    assert.ok(after < before / 5);
    assert.ok(Math.abs(after - oracle) < 0.01, `after ${after} vs oracle ${oracle}`);
    // The fitted T is a stationary point of the loss plus the one-row prior on log T.
    const u = Math.log(T);
    assert.ok(Math.abs(temperatureLoss(model, y, 5, u).grad + u / 20000) < 1e-8);
  });

  it("recovers an under-confident model (T < 1) and leaves a calibrated one near 1", () => {
    const timid = synthetic(20000, 3, 7, 2.5);
    const T = fitTemperature(timid.model, timid.y, 3);
    assert.ok(Math.abs(T - 1 / 2.5) / (1 / 2.5) < 0.05, `T = ${T}`);
    const calibrated = synthetic(20000, 3, 8, 1);
    const T1 = fitTemperature(calibrated.model, calibrated.y, 3);
    assert.ok(Math.abs(T1 - 1) < 0.05, `T = ${T1}`);
  });

  it("honours sample weights: weight 2 equals a duplicated row", () => {
    const { model, y } = synthetic(300, 3, 5, 0.6);
    const sw = Float64Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? 2 : 1));
    const dupRows: number[] = [];
    for (let i = 0; i < 300; i++) for (let r = 0; r < sw[i]; r++) dupRows.push(i);
    const dupP = new Float64Array(dupRows.length * 3);
    const dupY = new Int32Array(dupRows.length);
    dupRows.forEach((i, j) => {
      dupP.set(model.subarray(i * 3, i * 3 + 3), j * 3);
      dupY[j] = y[i];
    });
    const weighted = fitTemperature(model, y, 3, sw);
    const duplicated = fitTemperature(dupP, dupY, 3);
    assert.ok(Math.abs(weighted - duplicated) < 1e-8, `${weighted} vs ${duplicated}`);
    assert.ok(Math.abs(weighted - fitTemperature(model, y, 3)) > 1e-4, "weights must matter");
  });

  it("returns 1 for degenerate data", () => {
    assert.equal(fitTemperature(Float64Array.from([0.9, 0.1]), Int32Array.from([0]), 2), 1);
    assert.equal(fitTemperature(new Float64Array(0), new Int32Array(0), 2), 1);
    assert.equal(
      fitTemperature(Float64Array.from([0.9, 0.1, 0.3, 0.7, 0.6, 0.4]), Int32Array.from([0, 0, 0]), 2),
      1,
    );
    assert.equal(fitTemperature(Float64Array.from([1, 1, 1]), Int32Array.from([0, 0, 0]), 1), 1);
    // Two classes, but only one row carries weight.
    const sw = Float64Array.from([1, 0]);
    assert.equal(fitTemperature(Float64Array.from([0.9, 0.1, 0.3, 0.7]), Int32Array.from([0, 1]), 2, sw), 1);
  });

  it("stays moderate on separable or hopeless data instead of running to a bound", () => {
    // Every prediction right: the likelihood alone would sharpen without limit; the prior stops it.
    const right = Float64Array.from([0.9, 0.1, 0.2, 0.8, 0.7, 0.3]);
    const sharp = fitTemperature(right, Int32Array.from([0, 1, 0]), 2);
    assert.ok(sharp < 1 && sharp > 0.1, `T = ${sharp}`);
    // Many rows, none wrong: sharper, but a 60/40 row must not become 0/1.
    const n = 400;
    const easy = new Float64Array(2 * n);
    const yEasy = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      yEasy[i] = i % 2;
      easy[2 * i + yEasy[i]] = 0.6 + (0.35 * ((i * 7) % 10)) / 10;
      easy[2 * i + 1 - yEasy[i]] = 1 - easy[2 * i + yEasy[i]];
    }
    const tEasy = fitTemperature(easy, yEasy, 2);
    const [p60] = applyTemperature(Float64Array.from([0.6, 0.4]), 1, 2, tEasy);
    assert.ok(tEasy > MIN_TEMPERATURE && p60 < 0.999, `T = ${tEasy}, 0.6 becomes ${p60}`);
    // Every prediction wrong: flatter, but not to the upper bound.
    const flat = fitTemperature(right, Int32Array.from([1, 0, 1]), 2);
    assert.ok(flat > 1 && flat < MAX_TEMPERATURE, `T = ${flat}`);
    // Hard zeros (clamped to 1e-15) stay finite.
    const hard = Float64Array.from([1, 0, 0, 1, 1, 0, 0, 1]);
    const T = fitTemperature(hard, Int32Array.from([0, 1, 1, 1]), 2);
    assert.ok(Number.isFinite(T) && T >= MIN_TEMPERATURE && T <= MAX_TEMPERATURE);
  });

  it("rejects bad weights and labels", () => {
    const p = Float64Array.from([0.9, 0.1, 0.3, 0.7]);
    const y = Int32Array.from([0, 1]);
    assert.throws(
      () => fitTemperature(p, y, 2, Float64Array.from([1, -1])),
      (e: unknown) => e instanceof ValidationError && e.field === "sampleWeight",
    );
    assert.throws(
      () => fitTemperature(p, y, 2, Float64Array.from([1])),
      (e: unknown) => e instanceof ValidationError && e.field === "sampleWeight",
    );
    assert.throws(
      () => fitTemperature(p, Int32Array.from([0, -1]), 2),
      (e: unknown) => e instanceof ValidationError && e.field === "y",
    );
  });
});

describe("applyTemperature", () => {
  it("returns an identical copy at T = 1", () => {
    const p = Float64Array.from([0.7, 0.2, 0.1, 0, 0.5, 0.5]);
    const out = applyTemperature(p, 2, 3, 1);
    assert.notEqual(out, p);
    assert.deepEqual(out, p);
  });

  it("equals softmax(log p / T) with normalized rows", () => {
    const p = Float64Array.from([0.7, 0.2, 0.1]);
    const out = applyTemperature(p, 1, 3, 2);
    const s = Math.sqrt(0.7) + Math.sqrt(0.2) + Math.sqrt(0.1);
    assert.ok(Math.abs(out[0] - Math.sqrt(0.7) / s) < 1e-12);
    assert.ok(Math.abs(out[2] - Math.sqrt(0.1) / s) < 1e-12);
    // Zeros are clamped, not NaN.
    const z = applyTemperature(Float64Array.from([1, 0]), 1, 2, 5);
    assert.ok(z.every((v) => Number.isFinite(v)) && Math.abs(z[0] + z[1] - 1) < 1e-12 && z[0] > z[1]);
  });

  it("never changes the arg-max, even for near ties and extreme temperatures", () => {
    const { model } = synthetic(2000, 6, 9, 0.7);
    const before = argmaxRows(model, 2000, 6);
    for (const T of [MIN_TEMPERATURE, 0.3, 3, MAX_TEMPERATURE, 1e6]) {
      const out = applyTemperature(model, 2000, 6, T);
      assert.deepEqual(argmaxRows(out, 2000, 6), before, `T = ${T}`);
      for (let i = 0; i < 2000; i++) {
        let s = 0;
        for (let c = 0; c < 6; c++) s += out[i * 6 + c];
        assert.ok(Math.abs(s - 1) < 1e-9);
      }
    }
    // One ulp apart, with the winner second: rounding at a huge T would otherwise tie them.
    const a = 0.45;
    const b = 0.45000000000000007;
    const near = Float64Array.from([a, b, 1 - a - b]);
    for (const T of [20, 1e6, 1e12]) {
      assert.equal(argmaxRows(applyTemperature(near, 1, 3, T), 1, 3)[0], 1, `T = ${T}`);
    }
    // Exact ties keep the first index.
    assert.equal(argmaxRows(applyTemperature(Float64Array.from([0.4, 0.4, 0.2]), 1, 3, 7), 1, 3)[0], 0);
  });

  it("rejects a bad temperature", () => {
    for (const T of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => applyTemperature(Float64Array.from([0.5, 0.5]), 1, 2, T),
        (e: unknown) => e instanceof ValidationError && e.field === "temperature",
      );
    }
  });
});
