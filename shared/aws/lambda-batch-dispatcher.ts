/**
 * `BatchDispatcher` (`predictions/dispatch.ts`) on AWS: an asynchronous invocation of the
 * customer's job-complete Lambda with `{batchJob}`, the event that Lambda's handler parses as
 * `BatchRunEvent`. (This adapter sits beside `predictions/` in the map, so it matches the
 * interface by shape instead of importing it.)
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { AsyncLambdaInvoker } from "./lambda-invoke.ts";

export class LambdaBatchDispatcher {
  readonly name = "lambda";
  private readonly invoker: AsyncLambdaInvoker;

  constructor(functionName: string, opts: { region?: string; client?: LambdaClient } = {}) {
    this.invoker = new AsyncLambdaInvoker(functionName, opts);
  }

  dispatch(job: string): Promise<void> {
    return this.invoker.invoke({ batchJob: job });
  }
}
