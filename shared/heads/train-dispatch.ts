/**
 * Where a training request runs when it should not block the caller: behind API Gateway a
 * request is cut off after ~30 s, so the API hands training to the train Lambda and answers
 * 202; the new version appears under `GET /v1/heads/{head}` when it is done.
 */
import { randomUUID } from "node:crypto";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { z } from "zod";
import { HeadstartError } from "../errors.ts";
import { currentRequestIds } from "../log.ts";
import type { TrainOptions } from "./train.ts";
import { TrainRequestBody } from "./train-request.ts";

export type TrainRequest = TrainOptions & { backbone?: string };

/**
 * The train Lambda's event: the train request (`train-request.ts`, the API's train body), the
 * head name, and the key that makes a repeated delivery of the same request train once (see
 * `functions/train/handler.ts`).
 */
export const TrainEvent = TrainRequestBody.extend({
  head: z.string(),
  idempotencyKey: z.string().min(1).max(128).optional(),
});
export type TrainEvent = z.infer<typeof TrainEvent>;

/**
 * The client's `Idempotency-Key` when it sent one (its retries of the call then train once),
 * else the request's correlation id (API Gateway's request id), else a fresh id.
 */
export function dispatchIdempotencyKey(): string {
  const ids = currentRequestIds();
  return ids?.idempotencyKey ?? ids?.correlationId ?? randomUUID();
}

export interface TrainDispatcher {
  readonly name: string;
  dispatch(request: TrainRequest): Promise<void>;
}

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
