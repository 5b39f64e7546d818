/**
 * The contract every head type implements. `train.ts` and `--type auto` only talk to heads through
 * this, so a new head type is one module plus one registry line (`learn/registry.ts`).
 *
 * Inputs are always row-major float32 matrices of cached embeddings (n × d). Outputs:
 * - multiclass: n × k class probabilities (rows sum to 1);
 * - multilabel: n × k independent per-label probabilities (sigmoids);
 * - regression: n predicted values.
 */
import type { GraphBuilder } from "../onnx/writer.ts";
import type { HeadTask } from "./task.ts";

export type { HeadTask } from "./task.ts";

export type Target =
  | {
      task: "multiclass";
      /** Class index per row, 0..k-1. */
      y: Int32Array;
      k: number;
      /** Optional non-negative per-row weights (class weighting is expressed through these). */
      sampleWeight?: Float64Array;
    }
  | {
      task: "multilabel";
      /** n × k row-major, 1 where the row carries the label. */
      Y: Uint8Array;
      k: number;
    }
  | { task: "regression"; y: Float64Array };

export interface FitContext {
  /** Every random choice (init, shuffles, validation splits) derives from this. */
  seed: number;
  /**
   * centroid only: a d-vector subtracted from every unit row before the cosine, kept in the model
   * (zero-shot heads center on their dataset's mean unit vector; others leave it out).
   */
  center?: Float32Array;
  /**
   * A model of this kind fitted on overlapping rows with the same params (cross-validation folds
   * get the model of every training row): iterative solvers may start from it. Only kinds whose
   * optimum does not depend on the start use it (logreg); the others ignore it.
   */
  warmStart?: unknown;
  /**
   * fitFolds only: a start per fold, in the order of its `folds`, in place of `warmStart` (each
   * fold's model at a neighbouring parameter value, as a regularization path visits them).
   */
  foldWarmStarts?: readonly unknown[];
}

export interface FitInfo {
  iterations?: number;
  epochs?: number;
  converged?: boolean;
}

export type HeadParams = Record<string, number | string | boolean>;

export interface HeadKind<M = unknown, P extends HeadParams = HeadParams> {
  readonly type: string;
  readonly task: HeadTask;
  /** One line for `--help` and the API docs. */
  readonly description: string;
  /**
   * User-supplied hyper-parameters → a full parameter set (defaults filled in, which may depend on
   * the data size). Unknown keys and bad values throw a ValidationError naming the field (and, for
   * unknown keys, the valid ones).
   */
  resolveParams(input: Record<string, unknown>, n: number, d: number): P;
  /** Candidates `--type auto` tries by cross-validation, small and ordered from simple to complex. */
  grid(n: number, d: number): P[];
  /**
   * Training this type with the parameters that matter most on small data left unset (`input` is
   * the request's): the candidates cross-validation chooses among for n rows × d dims, in order
   * along one parameter (the search stops once the score falls: heads/cv-search.ts). Undefined
   * when the defaults stand: the request set them, or the search would not be cheap at this size.
   */
  smallDataGrid?(input: Record<string, unknown>, n: number, d: number): P[] | undefined;
  fit(X: Float32Array, n: number, d: number, target: Target, params: P, ctx: FitContext): Promise<M>;
  /**
   * Cross-validation's fits at once, one model per entry of `folds` (the rows of X each trains on),
   * sharing passes over the data; undefined when that would not pay at this size, and the folds are
   * then fitted one by one with `fit`.
   */
  fitFolds?(
    X: Float32Array,
    n: number,
    d: number,
    target: Target,
    params: P,
    folds: readonly Int32Array[],
    ctx: FitContext,
  ): Promise<M[] | undefined>;
  /** Async because large problems run their products in onnxruntime (see ort-graph.ts). */
  predict(model: M, X: Float32Array, n: number): Promise<Float64Array>;
  toJson(model: M): Record<string, unknown>;
  /** Parses a stored model; throws a ValidationError on anything malformed. */
  fromJson(json: unknown): M;
  /**
   * Appends ONNX nodes that map `input` (float32 [N, d]) to the head's output: float32 [N, k]
   * probabilities (multiclass/multilabel) or [N, 1] values (regression). Returns the output name.
   */
  toOnnx(model: M, g: GraphBuilder, input: string): string;
  info?(model: M): FitInfo;
  /**
   * Multilabel heads: which labels are on (n × k, 1 = on) given `predict`'s probabilities, and the
   * per-label thresholds behind that decision (for reports and exports).
   */
  decide?(model: M, proba: Float64Array, n: number): Uint8Array;
  thresholds?(model: M): number[];
}
