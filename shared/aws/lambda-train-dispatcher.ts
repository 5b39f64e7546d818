/** `TrainDispatcher` on AWS: an asynchronous invocation of the customer's train Lambda. */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { dispatchIdempotencyKey, type TrainDispatcher, type TrainRequest } from "../heads/train-dispatch.ts";
import { AsyncLambdaInvoker } from "./lambda-invoke.ts";

export class LambdaTrainDispatcher implements TrainDispatcher {
  readonly name = "lambda";
  private readonly invoker: AsyncLambdaInvoker;

  constructor(functionName: string, opts: { region?: string; client?: LambdaClient } = {}) {
    this.invoker = new AsyncLambdaInvoker(functionName, opts);
  }

  dispatch(request: TrainRequest): Promise<void> {
    return this.invoker.invoke({ ...request, idempotencyKey: dispatchIdempotencyKey() });
  }
}
