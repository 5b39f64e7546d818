/**
 * Where a training request runs when it should not block the caller: behind API Gateway a
 * request is cut off after ~30 s, so the API hands training to the train Lambda and answers
 * 202; the new version appears under `GET /v1/heads/{head}` when it is done. The AWS
 * implementation is `aws/lambda-train-dispatcher.ts`.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { currentRequestIds } from "../log.ts";
import { type TrainOptions, TrainRequestBody } from "./train-request.ts";

/** What a dispatcher hands over: a training request as the platform takes it. */
export type TrainRequest = TrainOptions;

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
