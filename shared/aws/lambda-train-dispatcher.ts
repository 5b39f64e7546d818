/** `TrainDispatcher` on AWS: an asynchronous invocation of the customer's train Lambda. */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { HeadstartError } from "../errors.ts";
import { dispatchIdempotencyKey, type TrainDispatcher, type TrainRequest } from "../heads/train-dispatch.ts";

export class LambdaTrainDispatcher implements TrainDispatcher {
  readonly name = "lambda";
  private client?: LambdaClient;

  constructor(
    private readonly functionName: string,
    private readonly opts: { region?: string; client?: LambdaClient } = {},
  ) {
    this.client = opts.client;
  }

  async dispatch(request: TrainRequest): Promise<void> {
    // The Lambda SDK loads on the first hand-off, not at the API's every cold start.
    const { InvokeCommand, LambdaClient } = await import("@aws-sdk/client-lambda");
    this.client ??= new LambdaClient(this.opts.region ? { region: this.opts.region } : {});
    const out = await this.client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: "Event",
        Payload: new TextEncoder().encode(
          JSON.stringify({ ...request, idempotencyKey: dispatchIdempotencyKey() }),
        ),
      }),
    );
    if (out.StatusCode !== 202) {
      throw new HeadstartError(
        "internal",
        `train function ${this.functionName} did not accept the request (${out.StatusCode})`,
      );
    }
  }
}
