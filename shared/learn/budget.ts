/**
 * A training's limits: a wall-clock budget, a memory budget checked up front from an estimate, and
 * the caller's cancellation (an HTTP client that went away). The budget travels with the training
 * in AsyncLocalStorage, so the loops that can run long (MLP minibatches, L-BFGS iterations,
 * cross-validation folds, `auto`'s candidates) check it without every head type's signature
 * carrying it; a check outside any training does nothing.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { UnsupportedError } from "../errors.ts";

export interface TrainLimits {
  /** Wall-clock seconds a training may run before it stops (nothing is stored). */
  maxSeconds: number;
  /** Bytes the training's estimated peak may take (see `estimateTrainBytes`). */
  maxMemoryBytes: number;
  /** Aborted when the caller no longer waits for the answer (a closed HTTP connection). */
  signal?: AbortSignal;
}

/** The variables that set the budgets, named by the errors so an operator knows what to raise. */
export const TIME_BUDGET_FIELD = "HEADSTART_TRAIN_MAX_SECONDS";
export const MEMORY_BUDGET_FIELD = "HEADSTART_TRAIN_MAX_MEMORY_MB";

/** A training stopped before it stored anything: over its budget, or its caller went away. */
export class TrainingStoppedError extends UnsupportedError {}

interface ActiveBudget {
  deadline: number;
  limits: TrainLimits;
}

const current = new AsyncLocalStorage<ActiveBudget>();

/** Runs `fn` (one training) under `limits`; `checkTrainingBudget` inside it enforces them. */
export function withTrainingBudget<T>(limits: TrainLimits, fn: () => Promise<T>): Promise<T> {
  return current.run({ deadline: performance.now() + limits.maxSeconds * 1000, limits }, fn);
}

/**
 * Throws TrainingStoppedError when the running training is past its wall-clock budget or its
 * caller cancelled it. Cheap (a clock read), so loops may call it every iteration; it reads the
 * clock rather than waiting for a timer, because a synchronous optimizer loop never lets one fire.
 */
export function checkTrainingBudget(): void {
  const active = current.getStore();
  if (!active) return;
  const { signal, maxSeconds } = active.limits;
  if (signal?.aborted) {
    throw new TrainingStoppedError("training cancelled: the caller went away before it finished", {
      field: "request",
    });
  }
  if (performance.now() > active.deadline) {
    throw new TrainingStoppedError(
      `training stopped after its wall-clock budget of ${maxSeconds} s (${TIME_BUDGET_FIELD}); ` +
        "nothing was stored: train on fewer rows, a smaller head or fewer auto candidates, or raise the budget",
      { field: TIME_BUDGET_FIELD },
    );
  }
}

/** The budget of the running training, if any (for checks that need the figures). */
export function activeTrainLimits(): TrainLimits | undefined {
  return current.getStore()?.limits;
}

/**
 * The most weights an MLP may have: 4096 units in two layers (16.8 M) is refused, one layer of
 * 4096 on a 2048-dim backbone (8.4 M) is not. Adam keeps two float64 moments per weight and the
 * graph its gradients, so the cap bounds memory and per-step time alike.
 */
export const MAX_MLP_WEIGHTS = 10_000_000;

/** Weights of an MLP with `layers` hidden layers of `units` on `d` inputs and `k` outputs. */
export function mlpWeights(d: number, units: number, layers: number, k: number): number {
  return d * units + (layers - 1) * units * units + units * k;
}

/**
 * Peak bytes a training of `type` is estimated to take beyond the loaded dataset (`rows` training
 * rows of `d` float32 dims, `k` outputs): the copies each type makes of its training matrix, times
 * a factor measured on the onnxruntime paths (multinomial logreg peaks at ~2.3×), plus what its
 * model holds while fitting.
 */
export function estimateTrainBytes(
  type: string,
  rows: number,
  d: number,
  k: number,
  params: Record<string, unknown> = {},
): number {
  const matrix = rows * d * 4;
  switch (type) {
    case "logreg":
    case "multilabel":
      return 3 * matrix + 8 * 4 * d * k;
    case "ridge":
      return 2 * matrix + 3 * 8 * d * d;
    case "mlp": {
      const units = Number(params.units ?? 256);
      const layers = Number(params.layers ?? 1);
      // Standardized copy + minibatch copies; per weight: float32 value, best copy, gradient, two float64 moments.
      return 2 * matrix + 28 * mlpWeights(d, units, layers, k);
    }
    case "knn":
      // The vectors are kept and written as base64 JSON (~5.3 characters a value, copied twice).
      return 2 * matrix + rows * d * 16;
    default:
      return 2 * matrix;
  }
}

/** Refuses a training whose estimated peak is over the memory budget, before it fits anything. */
export function checkTrainMemory(
  limits: TrainLimits | undefined,
  what: string,
  datasetBytes: number,
  trainBytes: number,
): void {
  if (!limits) return;
  const need = datasetBytes + trainBytes;
  if (need <= limits.maxMemoryBytes) return;
  const mb = (b: number) => Math.ceil(b / 2 ** 20);
  throw new UnsupportedError(
    `${what} needs an estimated ${mb(need)} MB (dataset ${mb(datasetBytes)} MB + training ${mb(trainBytes)} MB), ` +
      `over the memory budget of ${mb(limits.maxMemoryBytes)} MB (${MEMORY_BUDGET_FIELD}); ` +
      "train on fewer rows or a smaller head, or raise the budget",
    { field: MEMORY_BUDGET_FIELD },
  );
}
