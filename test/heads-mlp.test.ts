import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../shared/errors.ts";
import { logRegKind } from "../shared/learn/logreg-kind.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import {
  fitMlp,
  type MlpHyperParams,
  type MlpModel,
  mlpFromJson,
  mlpKind,
  mlpLossAndGradients,
  mlpToJson,
  mlpValidationSplit,
  predictProbaMlp,
  predictProbaMlpJs,
} from "../shared/learn/mlp.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { assertClose, blobs, onnxHeadOutput } from "./helpers/heads.ts";

/** XOR: four tight clusters at (±2, ±2) plus `noise` irrelevant dims; class = quadrant parity. */
function xor(n: number, noise: number, seed: number) {
  const rand = mulberry32(seed);
  const d = 2 + noise;
  const X = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = i % 2 === 0 ? 1 : -1;
    const b = i % 4 < 2 ? 1 : -1;
    X[i * d] = 2 * a + 0.5 * gaussian(rand);
    X[i * d + 1] = 2 * b + 0.5 * gaussian(rand);
    for (let j = 2; j < d; j++) X[i * d + j] = gaussian(rand);
    y[i] = a * b > 0 ? 1 : 0;
  }
  return { X, y, d };
}

function accuracy(proba: Float64Array, y: Int32Array, k: number): number {
  const pred = argmaxRows(proba, y.length, k);
  let ok = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) ok++;
  return ok / y.length;
}

const FAST: MlpHyperParams = {
  units: 32,
  layers: 1,
  lr: 1e-2,
  batchSize: 64,
  weightDecay: 1e-4,
  dropout: 0,
  validationFraction: 0.1,
  patience: 8,
  maxEpochs: 60,
};

function fit(
  X: Float32Array,
  y: Int32Array,
  d: number,
  k: number,
  over: Partial<MlpHyperParams> = {},
  seed = 1,
) {
  return fitMlp(X, y.length, d, y, k, { ...FAST, ...over, seed });
}

function allFinite(m: MlpModel): boolean {
  return [...m.weights, ...m.biases].every((a) => a.every(Number.isFinite));
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/**
 * Reference objective in float64, written independently of the graph: weighted mean cross-entropy
 * of the batch plus (wd / 2) · Σ ||W||², with inverted-dropout masks applied after each ReLU.
 */
function referenceLoss(
  W: Float64Array[],
  b: Float64Array[],
  dims: [number, number][],
  Z: Float32Array,
  y: Int32Array,
  sw: Float64Array,
  wd: number,
  masks?: Float32Array[],
): { loss: number; pattern: string } {
  const n = y.length;
  let loss = 0;
  let total = 0;
  let pattern = "";
  for (let i = 0; i < n; i++) {
    let h = Array.from(Z.subarray(i * dims[0][0], (i + 1) * dims[0][0]));
    for (let l = 0; l < dims.length; l++) {
      const [fin, fout] = dims[l];
      const next = new Array<number>(fout).fill(0);
      for (let o = 0; o < fout; o++) {
        let s = b[l][o];
        for (let p = 0; p < fin; p++) s += h[p] * W[l][p * fout + o];
        next[o] = s;
      }
      if (l < dims.length - 1) {
        for (let o = 0; o < fout; o++) {
          pattern += next[o] > 0 ? "1" : "0";
          next[o] = Math.max(0, next[o]) * (masks ? masks[l][i * fout + o] : 1);
        }
      }
      h = next;
    }
    const zmax = Math.max(...h);
    const lse = Math.log(h.reduce((s, v) => s + Math.exp(v - zmax), 0)) + zmax;
    loss += sw[i] * (lse - h[y[i]]);
    total += sw[i];
  }
  let pen = 0;
  for (const w of W) for (const v of w) pen += v * v;
  return { loss: loss / total + 0.5 * wd * pen, pattern };
}

describe("mlp training graph", () => {
  const cases = [
    { layers: 1, dropout: false },
    { layers: 2, dropout: false },
    { layers: 2, dropout: true },
  ];
  for (const { layers, dropout } of cases) {
    it(`gradients match central finite differences (${layers} layer${layers > 1 ? "s" : ""}, sample weights, weight decay${dropout ? ", dropout mask" : ""})`, async () => {
      const B = 9;
      const d = 4;
      const units = 6;
      const k = 3;
      const wd = 0.03;
      const rand = mulberry32(11 + layers);
      const dims: [number, number][] = [];
      for (let l = 0; l <= layers; l++) dims.push([l === 0 ? d : units, l === layers ? k : units]);
      // Parameters are float32 values, so the graph (float32) and the reference (float64) see the same point.
      const weights = dims.map(([fi, fo]) =>
        Float32Array.from({ length: fi * fo }, () => gaussian(rand) * 0.8),
      );
      const biases = dims.map(([, fo]) => Float32Array.from({ length: fo }, () => gaussian(rand) * 0.3));
      const Z = Float32Array.from({ length: B * d }, () => gaussian(rand));
      const y = Int32Array.from({ length: B }, (_, i) => (i * 5) % k);
      const sw = Float64Array.from({ length: B }, () => 0.2 + 2 * rand());
      const total = sw.reduce((a, v) => a + v, 0);
      const t = new Float32Array(B * k);
      for (let i = 0; i < B; i++) t[i * k + y[i]] = sw[i] / total;
      const masks = dropout
        ? Array.from({ length: layers }, () =>
            Float32Array.from({ length: B * units }, () => (rand() < 0.3 ? 0 : Math.fround(1 / 0.7))),
          )
        : undefined;

      const net = { d, k, units, layers, weights, biases };
      const got = await mlpLossAndGradients(net, Z, t, B, wd, masks);

      const W64 = weights.map((w) => Float64Array.from(w));
      const b64 = biases.map((v) => Float64Array.from(v));
      const ref = referenceLoss(W64, b64, dims, Z, y, sw, wd, masks);
      assert.ok(
        Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss),
        `loss ${got.loss} vs ${ref.loss}`,
      );

      // Both gated and open units, so the check covers the ReLU gradient gate.
      assert.match(ref.pattern, /0/);
      assert.match(ref.pattern, /1/);
      const h = 1e-5;
      let checked = 0;
      const groups: [Float64Array[], Float32Array[]][] = [
        [W64, got.gradWeights],
        [b64, got.gradBiases],
      ];
      for (const [params, grads] of groups) {
        for (let l = 0; l < params.length; l++) {
          for (let q = 0; q < params[l].length; q++) {
            const keep = params[l][q];
            params[l][q] = keep + h;
            const plus = referenceLoss(W64, b64, dims, Z, y, sw, wd, masks);
            params[l][q] = keep - h;
            const minus = referenceLoss(W64, b64, dims, Z, y, sw, wd, masks);
            params[l][q] = keep;
            // A difference across a ReLU kink would not be a derivative: no unit may switch.
            assert.equal(plus.pattern, ref.pattern);
            assert.equal(minus.pattern, ref.pattern);
            const fd = (plus.loss - minus.loss) / (2 * h);
            const g = grads[l][q];
            // float32 graph vs float64 differences: observed errors are below 2e-7 absolute; a wrong
            // gradient term would be off by about its own size.
            assert.ok(
              Math.abs(g - fd) <= 1e-6 + 2e-5 * Math.abs(fd),
              `layer ${l} param ${q}: graph ${g} vs fd ${fd}`,
            );
            checked++;
          }
        }
      }
      assert.ok(checked > 50);
    });
  }
});

describe("mlp fit", () => {
  it("learns XOR, which logistic regression cannot", async () => {
    const { X, y, d } = xor(800, 2, 3);
    const test = xor(400, 2, 4);
    const model = await fit(X, y, d, 2, { maxEpochs: 100 });
    const mlpAcc = accuracy(await predictProbaMlp(model, test.X, 400), test.y, 2);
    const lr = await logRegKind.fit(
      X,
      800,
      d,
      { task: "multiclass", y, k: 2 },
      logRegKind.resolveParams({}, 800, d),
      {
        seed: 1,
      },
    );
    const lrAcc = accuracy(await logRegKind.predict(lr, test.X, 400), test.y, 2);
    assert.ok(mlpAcc >= 0.95, `mlp accuracy ${mlpAcc}`);
    assert.ok(lrAcc <= 0.65, `logreg accuracy ${lrAcc}`);
  });

  it("is bit-identical for the same seed and differs across seeds (with dropout)", async () => {
    const { X, y } = blobs(300, 6, 3, 1.5, 5);
    const over = { dropout: 0.2, layers: 2, maxEpochs: 15 };
    const a = await fit(X, y, 6, 3, over, 42);
    const b = await fit(X, y, 6, 3, over, 42);
    const c = await fit(X, y, 6, 3, over, 43);
    assert.equal(a.epochs, b.epochs);
    assert.equal(a.steps, b.steps);
    for (let l = 0; l <= 2; l++) {
      assert.ok(sameBits(a.weights[l], b.weights[l]), `weights[${l}] differ for the same seed`);
      assert.ok(sameBits(a.biases[l], b.biases[l]), `biases[${l}] differ for the same seed`);
      assert.ok(!sameBits(a.weights[l], c.weights[l]), `weights[${l}] equal across seeds`);
    }
    assert.deepEqual(a.validationHistory, b.validationHistory);
  });

  it("stops early on an easy problem", async () => {
    const { X, y } = blobs(600, 8, 3, 4, 6);
    const model = await fit(X, y, 8, 3, { maxEpochs: 200, patience: 5 });
    assert.equal(model.earlyStopping, true);
    assert.equal(model.converged, true);
    assert.ok(model.epochs < 200, `ran ${model.epochs} epochs`);
    assert.equal(model.validationHistory.length, model.epochs);
    assert.deepEqual(mlpKind.info!(model), {
      epochs: model.epochs,
      iterations: model.steps,
      converged: true,
    });
    assert.ok(accuracy(await predictProbaMlp(model, X, 600), y, 3) > 0.98);
  });

  it("keeps the best-validation-loss weights, not the last ones", async () => {
    // Overlapping classes, a wide net, a large step and no decay: it overfits and the validation loss turns up.
    const { X, y } = blobs(400, 10, 2, 0.3, 7);
    const model = await fit(X, y, 10, 2, {
      units: 128,
      lr: 3e-2,
      weightDecay: 0,
      patience: 6,
      maxEpochs: 100,
    });
    const h = model.validationHistory;
    const best = Math.min(...h);
    assert.ok(model.converged);
    assert.equal(model.validationLoss, best);
    assert.equal(h[model.bestEpoch - 1], best);
    assert.ok(h[h.length - 1] > best + 1e-3, "the last epoch is worse than the best one");
    // Recompute the validation loss of the returned weights on the rows the fit held out.
    const split = mlpValidationSplit(y, 2, FAST.validationFraction, 1);
    assert.ok(split);
    const rows = split.validation;
    const Xv = new Float32Array(rows.length * 10);
    for (let r = 0; r < rows.length; r++) Xv.set(X.subarray(rows[r] * 10, rows[r] * 10 + 10), r * 10);
    const p = await predictProbaMlp(model, Xv, rows.length);
    let ce = 0;
    for (let r = 0; r < rows.length; r++) ce -= Math.log(p[r * 2 + y[rows[r]]]);
    ce /= rows.length;
    assert.ok(Math.abs(ce - best) <= 1e-5, `recomputed ${ce} vs best ${best}`);
  });

  it("holds out a stratified validation split", () => {
    const y = Int32Array.from({ length: 200 }, (_, i) => (i < 150 ? 0 : 1));
    const split = mlpValidationSplit(y, 2, 0.1, 9);
    assert.ok(split);
    const counts = [0, 0];
    for (const i of split.validation) counts[y[i]]++;
    assert.deepEqual(counts, [15, 5]);
    assert.equal(split.train.length + split.validation.length, 200);
    assert.equal(mlpValidationSplit(Int32Array.from([0, 0, 1, 1, 2, 2]), 3, 0.1, 9), null);
  });

  it("fits 2 examples per class without a validation split", async () => {
    const { X, y } = blobs(6, 5, 3, 3, 8);
    const model = await mlpKind.fit(
      X,
      6,
      5,
      { task: "multiclass", y, k: 3 },
      mlpKind.resolveParams({}, 6, 5),
      {
        seed: 3,
      },
    );
    assert.equal(model.earlyStopping, false);
    assert.equal(model.converged, false);
    assert.equal(model.validationLoss, null);
    assert.ok(model.epochs >= 10 && model.epochs <= 200);
    assert.equal(mlpKind.info!(model).converged, false);
    const p = await mlpKind.predict(model, X, 6);
    assert.equal(accuracy(p, y, 3), 1);
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2] - 1) < 1e-12);
  });

  it("supports balanced class weights", async () => {
    // 9:1 imbalance with overlap: balanced weights must raise recall on the rare class.
    const rand = mulberry32(12);
    const n = 500;
    const X = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 10 === 0 ? 1 : 0;
      X[i * 2] = (y[i] ? 1 : -0.2) + gaussian(rand);
      X[i * 2 + 1] = gaussian(rand);
    }
    const recall = async (classWeight: string) => {
      const params = mlpKind.resolveParams({ ...FAST, classWeight }, n, 2);
      const m = await mlpKind.fit(X, n, 2, { task: "multiclass", y, k: 2 }, params, { seed: 1 });
      const pred = argmaxRows(await mlpKind.predict(m, X, n), n, 2);
      let hit = 0;
      for (let i = 0; i < n; i++) if (y[i] === 1 && pred[i] === 1) hit++;
      return hit / 50;
    };
    const plain = await recall("none");
    const balanced = await recall("balanced");
    assert.ok(balanced > plain + 0.2, `recall none ${plain}, balanced ${balanced}`);
  });
});

describe("mlp input edge cases", () => {
  it("rejects NaN and Inf in X naming the cell", async () => {
    const { X, y } = blobs(20, 3, 2, 2, 1);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const Xb = X.slice();
      Xb[1 * 3 + 2] = bad;
      await assert.rejects(fit(Xb, y, 3, 2), (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.equal(e.field, "X");
        assert.match(e.message, /X\[1, 2\]/);
        return true;
      });
    }
    const model = await fit(X, y, 3, 2, { maxEpochs: 2 });
    const Xb = new Float32Array(6);
    Xb[4] = Number.NaN;
    await assert.rejects(predictProbaMlp(model, Xb, 2), ValidationError);
  });

  it("keeps weights finite with zero rows and constant features", async () => {
    const { X, y } = blobs(120, 4, 2, 2, 2);
    for (let i = 0; i < 120; i++) X[i * 4 + 3] = 7; // constant feature
    for (let i = 0; i < 120; i += 10) X.fill(0, i * 4, i * 4 + 4); // zero vectors
    const model = await fit(X, y, 4, 2);
    assert.ok(allFinite(model));
    const p = await predictProbaMlp(model, new Float32Array(8), 2);
    assert.ok(p.every(Number.isFinite));
    assert.ok(accuracy(await predictProbaMlp(model, X, 120), y, 2) > 0.8);
  });

  it("trains a sane model on features scaled by 1e6", async () => {
    const { X, y } = blobs(300, 6, 3, 2, 3);
    const big = Float32Array.from(X, (v) => v * 1e6);
    const model = await fit(big, y, 6, 3);
    const ref = await fit(X, y, 6, 3);
    assert.ok(allFinite(model));
    const accBig = accuracy(await predictProbaMlp(model, big, 300), y, 3);
    const accRef = accuracy(await predictProbaMlp(ref, X, 300), y, 3);
    assert.ok(accBig > 0.9 && Math.abs(accBig - accRef) < 0.03, `accuracy ${accBig} vs unscaled ${accRef}`);
  });
});

describe("mlp params", () => {
  const expectField = (input: Record<string, unknown>, field: string, message?: RegExp) => {
    assert.throws(
      () => mlpKind.resolveParams(input, 100, 4),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError, String(e));
        assert.equal(e.field, field);
        if (message) assert.match(e.message, message);
        return true;
      },
    );
  };

  it("fills defaults", () => {
    assert.deepEqual(mlpKind.resolveParams({}, 100, 4), {
      units: 256,
      layers: 1,
      lr: 1e-3,
      batchSize: 256,
      weightDecay: 1e-4,
      dropout: 0,
      validationFraction: 0.1,
      patience: 8,
      maxEpochs: 200,
      classWeight: "none",
    });
  });

  it("rejects bad values naming params.<name>", () => {
    expectField({ units: 0 }, "params.units");
    expectField({ units: 12.5 }, "params.units");
    expectField({ layers: 3 }, "params.layers");
    expectField({ lr: 0 }, "params.lr");
    expectField({ batchSize: "many" }, "params.batchSize");
    expectField({ weightDecay: -1 }, "params.weightDecay");
    expectField({ dropout: 1 }, "params.dropout");
    expectField({ validationFraction: 0.9 }, "params.validationFraction");
    expectField({ patience: 0 }, "params.patience");
    expectField({ maxEpochs: Number.POSITIVE_INFINITY }, "params.maxEpochs");
    expectField({ classWeight: "auto" }, "params.classWeight");
  });

  it("rejects unknown params naming the valid ones", () => {
    expectField({ hidden: 3 }, "params.hidden", /units.*layers.*dropout.*validationFraction/);
  });

  it("offers 2-4 valid grid candidates", () => {
    for (const n of [200, 50_000]) {
      const grid = mlpKind.grid(n, 384);
      assert.ok(grid.length >= 2 && grid.length <= 4);
      for (const p of grid) assert.deepEqual(mlpKind.resolveParams(p, n, 384), p);
      assert.equal(new Set(grid.map((p) => JSON.stringify(p))).size, grid.length);
    }
  });
});

describe("mlp export and storage", () => {
  for (const layers of [1, 2]) {
    it(`toOnnx reproduces predict within 1e-5 (${layers} layer${layers > 1 ? "s" : ""})`, async () => {
      const d = 12;
      const { X, y } = blobs(300, d, 4, 1.5, 20 + layers);
      const model = await fit(X, y, d, 4, { layers, maxEpochs: 30 });
      const rand = mulberry32(5);
      const n = 40;
      const Xt = new Float32Array(n * d);
      for (let t = 0; t < n * d; t++) Xt[t] = 3 * gaussian(rand);
      Xt.fill(0, 0, d); // a zero vector
      Xt.set(X.subarray(0, d), d); // a training row
      for (let j = 0; j < d; j++) Xt[2 * d + j] = 1e3 * (j % 2 ? 1 : -1); // far outside the data
      const want = await predictProbaMlp(model, Xt, n);
      const got = await onnxHeadOutput(mlpKind, model, Xt, n, d, model.k);
      assertClose(got, want, 1e-5, "onnx vs predict");
    });
  }

  it("predicts the same through onnxruntime (large n) and JS (small n)", async () => {
    const d = 16;
    const { X, y } = blobs(400, d, 3, 1.5, 30);
    const model = await fit(X, y, d, 3, { units: 64, layers: 2, maxEpochs: 20 });
    // 4000 rows × (16·64 + 64·64 + 64·3) multiply-adds is over the JS threshold.
    const rand = mulberry32(8);
    const n = 4000;
    const Xt = Float32Array.from({ length: n * d }, () => 2 * gaussian(rand));
    const ort = await predictProbaMlp(model, Xt, n);
    const js = predictProbaMlpJs(model, Xt, n);
    let maxDiff = 0;
    for (let t = 0; t < ort.length; t++) maxDiff = Math.max(maxDiff, Math.abs(ort[t] - js[t]));
    assert.ok(maxDiff <= 1e-5, `max difference ${maxDiff}`);
  });

  it("round-trips through JSON text with identical predictions", async () => {
    const { X, y } = blobs(200, 7, 3, 1.5, 40);
    const model = await fit(X, y, 7, 3, { layers: 2, maxEpochs: 10 });
    const json = mlpKind.toJson(model);
    assert.equal(typeof (json.weights as unknown[])[0], "string");
    const back = mlpKind.fromJson(JSON.parse(JSON.stringify(json)));
    assert.deepEqual(back, model);
    assert.deepEqual(await predictProbaMlp(back, X, 200), await predictProbaMlp(model, X, 200));
    assert.deepEqual(mlpFromJson(JSON.stringify(mlpToJson(model))), model);
  });

  it("rejects malformed stored models", async () => {
    const { X, y } = blobs(60, 3, 2, 2, 41);
    const good = mlpToJson(await fit(X, y, 3, 2, { maxEpochs: 3 }));
    const bad = (patch: Record<string, unknown>, field: string) => {
      assert.throws(
        () => mlpFromJson({ ...good, ...patch }),
        (e: unknown) => e instanceof ValidationError && e.field === field,
        JSON.stringify(patch).slice(0, 80),
      );
    };
    bad({ type: "logreg" }, "type");
    bad({ version: 2 }, "version");
    bad({ layers: 3 }, "layers");
    bad({ mean: [0, Number.NaN, 0] }, "mean");
    bad({ scale: [1, 0, 1] }, "scale");
    bad({ weights: ["!!!!", ...(good.weights as string[]).slice(1)] }, "weights[0]");
    bad(
      { weights: [Buffer.alloc(8).toString("base64"), ...(good.weights as string[]).slice(1)] },
      "weights[0]",
    );
    const nanBias = Buffer.from(new Float32Array([Number.NaN, 0]).buffer).toString("base64");
    bad({ biases: [(good.biases as string[])[0], nanBias] }, "biases[1]");
    bad({ weights: (good.weights as string[]).slice(1) }, "weights");
    bad({ converged: "yes" }, "converged");
    bad({ validationLoss: "low" }, "validationLoss");
  });
});
