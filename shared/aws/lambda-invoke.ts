/** An asynchronous (`Event`) invocation of one of the customer's Lambdas: the dispatchers' hand-off. */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { HeadstartError } from "../errors.ts";

export class AsyncLambdaInvoker {
  private client?: LambdaClient;

  constructor(
    readonly functionName: string,
    private readonly opts: { region?: string; client?: LambdaClient } = {},
  ) {
    this.client = opts.client;
  }

  /** Queues `payload` for the function; resolves once Lambda accepted it (202). */
  async invoke(payload: unknown): Promise<void> {
    // The Lambda SDK loads on the first hand-off, not at the caller's every cold start.
    const { InvokeCommand, LambdaClient } = await import("@aws-sdk/client-lambda");
    this.client ??= new LambdaClient(this.opts.region ? { region: this.opts.region } : {});
    const out = await this.client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: "Event",
        Payload: new TextEncoder().encode(JSON.stringify(payload)),
      }),
    );
    if (out.StatusCode !== 202) {
      throw new HeadstartError(
        "internal",
        `function ${this.functionName} did not accept the request (${out.StatusCode})`,
      );
    }
  }
}
