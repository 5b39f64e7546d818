/** Multinomial logistic regression as a head type (see logreg.ts for the maths). */
import type { GraphBuilder } from "../onnx/writer.ts";
import { CLASS_WEIGHT_MODES, type ClassWeightMode, classSampleWeights } from "./class-weight.ts";
import type { HeadKind } from "./estimator.ts";
import {
  fitLogRegAsync,
  type LogRegModel,
  logRegFromJson,
  logRegToJson,
  predictProbaLogReg,
} from "./logreg.ts";
import { expectTask } from "./numeric.ts";
import { enumParam, numberParam, rejectUnknownParams } from "./params.ts";

export interface LogRegParams {
  [key: string]: number | string;
  /** Inverse L2 strength, scikit-learn's C (on standardized inputs). */
  C: number;
  classWeight: ClassWeightMode;
}

const PARAMS = ["C", "classWeight"] as const;

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
    return [0.01, 0.1, 1, 10].map((C) => ({ C, classWeight: "none" as const }));
  },
  async fit(X, n, d, target, params) {
    expectTask(target, "multiclass", "logreg");
    const sampleWeight = classSampleWeights(target.y, target.k, params.classWeight, target.sampleWeight);
    let total = n;
    if (sampleWeight) {
      total = 0;
      for (const w of sampleWeight) total += w;
    }
    return fitLogRegAsync(X, n, d, target.y, target.k, {
      l2: 1 / (params.C * total),
      ...(sampleWeight ? { sampleWeight } : {}),
    });
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
