/**
 * Which estimator a training fits, and fitting it: no storage, so benchmarks can run exactly what
 * `train` runs on vectors they hold.
 */
import type { TrainLimits } from "../learn/budget.ts";
import { checkTrainMemory, estimateTrainBytes } from "../learn/budget.ts";
import type { HeadParams } from "../learn/estimator.ts";
import { headKind } from "../learn/registry.ts";
import { autoSelect, selectByCv } from "./auto-select.ts";
import type { AnyKind } from "./cross-validate.ts";
import type { Choice } from "./cv-search.ts";
import { requestedType, type TrainingSet } from "./problem.ts";
import type { BackboneInput } from "./train-inputs.ts";
import type { TrainOptions } from "./train-request.ts";

/**
 * `auto`: the best candidate by cross-validation. Otherwise the requested (or the task's default)
 * type, its params resolved against the training rows, within the memory budget; on a small
 * training set, the parameters the request left unset that matter most there are chosen by
 * cross-validation (the kind's `smallDataGrid`).
 */
export async function chooseEstimator(
  opts: TrainOptions,
  set: TrainingSet,
  inputs: readonly BackboneInput[],
  limits: TrainLimits | undefined,
): Promise<Choice> {
  const datasetBytes = inputs.reduce((t, i) => t + i.data.vectors.byteLength, 0);
  if (opts.type === "auto") return autoSelect(opts, set, inputs, datasetBytes, limits);
  const { trainPos, problem } = set;
  const d = inputs[0].data.dim;
  const kind = headKind(requestedType(opts, set.task)) as AnyKind;
  const params: HeadParams = kind.resolveParams(opts.params ?? {}, trainPos.length, d);
  checkTrainMemory(
    limits,
    `a ${kind.type} head on ${trainPos.length} rows × ${d} dims`,
    datasetBytes,
    estimateTrainBytes(kind.type, trainPos.length, d, problem.width, params),
  );
  const grid = kind.smallDataGrid?.(opts.params ?? {}, trainPos.length, d);
  const tuned =
    grid && grid.length > 1
      ? await selectByCv(set, [{ input: inputs[0], kind, grid, path: true }], false)
      : undefined;
  return tuned ?? { kind, params, input: inputs[0], problem };
}

/** The chosen estimator fitted on every training row. */
export function fitChoice(
  { kind, params, problem }: Choice,
  { trainPos, seed }: TrainingSet,
): Promise<unknown> {
  return kind.fit(problem.X(trainPos), trainPos.length, problem.data.dim, problem.target(trainPos), params, {
    seed,
  });
}
