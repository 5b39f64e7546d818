/**
 * The Lambda bundles as `npm run build` makes them, built once per test process (≈10 s): the
 * infra tests synthesize from them and the bundle tests run them.
 */
import { LAMBDA_NAMES } from "../../infra/bundles.ts";
import { type BuiltFunction, buildFunction, buildFunctions } from "../../scripts/build.ts";

let built: Promise<BuiltFunction[]> | undefined;

export function buildLambdaBundles(): Promise<BuiltFunction[]> {
  built ??= buildFunctions(LAMBDA_NAMES);
  return built;
}

let embedBatch: Promise<BuiltFunction> | undefined;

/** The SageMaker container's bundle, which the SageMaker stand-in runs as the image would. */
export function buildEmbedBatchBundle(): Promise<BuiltFunction> {
  embedBatch ??= buildFunction("embed-batch");
  return embedBatch;
}
