/** Multinomial logistic regression as a head type (see logreg.ts for the maths). */
import type { GraphBuilder } from "../onnx/writer.ts";
import { CLASS_WEIGHT_MODES, type ClassWeightMode, classSampleWeights } from "./class-weight.ts";
import type { HeadKind } from "./estimator.ts";
import {
  fitLogRegAsync,
  type LogRegModel,
  logRegFromJson,
  logRegToJson,
  ONNX_FIT_MIN_WORK,
  predictProbaLogReg,
} from "./logreg.ts";
import { fitLogRegFolds } from "./logreg-folds.ts";
import { expectTask } from "./numeric.ts";
import { enumParam, numberParam, rejectUnknownParams } from "./params.ts";

export interface LogRegParams {
  [key: string]: number | string;
  /** Inverse L2 strength, scikit-learn's C (on standardized inputs). */
  C: number;
  classWeight: ClassWeightMode;
}

const PARAMS = ["C", "classWeight"] as const;
/** The C values `auto` and the small-data search try, strongest regularization first. */
const C_GRID = [0.01, 0.1, 1, 10] as const;
/**
 * The training sets on which a C left unset is chosen by cross-validation along C_GRID: from
 * minRows (below it the folds are too small to tell the values apart: on 10-shot and 600-image
 * sets the search lost as often as it won) to maxRows and maxWork rows × dims (past them C matters
 * less and the search costs more than the fit). docs/heads.md, "Regularization on small data";
 * measured by `npm run bench:images -- --compare-fixed`.
 */
export const SMALL_DATA = { minRows: 1_000, maxRows: 10_000, maxWork: 10_000 * 512 } as const;

/** The fit's row weights (class weights × sample weights) and its L2 strength, 1 / (C · Σw). */
function weighting(y: Int32Array, k: number, params: LogRegParams, base: Float64Array | undefined) {
  const sampleWeight = classSampleWeights(y, k, params.classWeight, base);
  let total = y.length;
  if (sampleWeight) {
    total = 0;
    for (const w of sampleWeight) total += w;
  }
  return { sampleWeight, l2: 1 / (params.C * total) };
}

export const logRegKind: HeadKind<LogRegModel, LogRegParams> = {
  type: "logreg",
  task: "multiclass",
  description: "multinomial logistic regression, L2-regularized (C), optional balanced class weights",
  resolveParams(input) {
    rejectUnknownParams("logreg", input, PARAMS);
    return {
      C: numberParam(input, "C", 1, { exclusiveMin: 0 }),
      classWeight: enumParam(input, "classWeight", CLASS_WEIGHT_MODES, "none"),
    };
  },
  grid() {
    return C_GRID.map((C) => ({ C, classWeight: "none" as const }));
  },
  smallDataGrid(input, n, d) {
    if (input.C !== undefined || n < SMALL_DATA.minRows || n > SMALL_DATA.maxRows) return undefined;
    if (n * d > SMALL_DATA.maxWork) return undefined;
    return C_GRID.map((C) => logRegKind.resolveParams({ ...input, C }, n, d));
  },
  async fit(X, n, d, target, params, ctx) {
    expectTask(target, "multiclass", "logreg");
    const { sampleWeight, l2 } = weighting(target.y, target.k, params, target.sampleWeight);
    return fitLogRegAsync(X, n, d, target.y, target.k, {
      l2,
      ...(sampleWeight ? { sampleWeight } : {}),
      ...(ctx?.warmStart ? { init: ctx.warmStart as LogRegModel } : {}),
    });
  },
  async fitFolds(X, n, d, target, params, folds, ctx) {
    expectTask(target, "multiclass", "logreg");
    const smallest = Math.min(...folds.map((rows) => rows.length));
    // Below the onnxruntime engine's threshold each fold fits faster alone (logreg.ts).
    if (target.k < 3 || smallest * d * target.k < ONNX_FIT_MIN_WORK) return undefined;
    const { y, k } = target;
    const specs = folds.map((rows, f) => {
      const base = target.sampleWeight ? Float64Array.from(rows, (i) => target.sampleWeight![i]) : undefined;
      const w = weighting(
        Int32Array.from(rows, (i) => y[i]),
        k,
        params,
        base,
      );
      const start = ctx.foldWarmStarts?.[f] as LogRegModel | undefined;
      return {
        rows,
        l2: w.l2,
        ...(w.sampleWeight ? { sampleWeight: w.sampleWeight } : {}),
        ...(start ? { init: start } : {}),
      };
    });
    const init = ctx.warmStart as LogRegModel | undefined;
    return fitLogRegFolds(X, n, d, y, k, specs, init ? { init } : {});
  },
  async predict(model, X, n) {
    return predictProbaLogReg(model, X, n);
  },
  toJson: (model) => logRegToJson(model) as unknown as Record<string, unknown>,
  fromJson: logRegFromJson,
  toOnnx(model, g: GraphBuilder, input) {
    // weights are k×d row-major: Gemm with transB gives x · Wᵀ + b.
    const w = g.initializer(g.fresh("logreg_w"), "float32", [model.k, model.d], model.weights);
    const b = g.initializer(g.fresh("logreg_b"), "float32", [model.k], model.bias);
    const [logits] = g.node("Gemm", [input, w, b], 1, { transB: 1 });
    const [proba] = g.node("Softmax", [logits], 1, { axis: 1 });
    return proba;
  },
  info: (model) => ({ iterations: model.iterations, converged: model.converged }),
};
