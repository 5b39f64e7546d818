/**
 * Train Lambda, invoked asynchronously with `{head, dataset, …, idempotencyKey}` (the body of
 * `POST /v1/heads/{head}/train` plus the head name and the API's key). A request the caller
 * got wrong is answered, not retried; anything else is thrown so Lambda retries and
 * dead-letters it. Async events may arrive twice: the same event trains once, and a repeat
 * gets the stored result (or, while the first still runs, is refused and retried by Lambda).
 */
import type { Context } from "aws-lambda";
import { zodIssueToError } from "../../shared/api/errors.ts";
import { bootstrap } from "../../shared/bootstrap.ts";
import { isUserError } from "../../shared/errors.ts";
import { TrainEvent } from "../../shared/heads/train-dispatch.ts";
import { idempotent } from "../../shared/idempotency.ts";
import { attemptSeconds, instrument } from "../../shared/lambda.ts";
import { addMetric } from "../../shared/metrics.ts";

const { platform, log, metrics } = bootstrap("headstart-train");

export const handler = instrument({ log, metrics }, async (event: unknown, context?: Context) => {
  const parsed = TrainEvent.safeParse(event);
  if (!parsed.success) return rejected(zodIssueToError(parsed.error, "event"));
  const { idempotencyKey, ...request } = parsed.data;
  if (idempotencyKey) log.appendKeys({ idempotency_key: idempotencyKey });
  // Keyed by the whole event: the same key with another body is another request.
  const { result, replayed } = await idempotent(
    platform.store,
    "train",
    parsed.data,
    () => train(request, context),
    { inProgressSeconds: attemptSeconds(context) },
  );
  if (replayed) log.info("repeated training request: returning the stored result", { head: request.head });
  return result;
});

async function train(request: Omit<TrainEvent, "idempotencyKey">, context?: Context) {
  try {
    const started = performance.now();
    // Stop (storing nothing) 30 s before Lambda would kill the invocation, whatever the budget says.
    const remainingMs = context?.getRemainingTimeInMillis?.();
    const maxSeconds = remainingMs ? Math.max(1, remainingMs / 1000 - 30) : undefined;
    const result = await platform.train(request, { maxSeconds });
    addMetric(metrics, "trainingTime", (performance.now() - started) / 1000);
    addMetric(metrics, "headsTrained", 1);
    log.info("head trained", {
      head: result.head,
      version: result.version,
      type: result.type,
      ...(result.metrics ? { accuracy: result.metrics.accuracy } : {}),
    });
    return result;
  } catch (err) {
    if (!isUserError(err)) throw err;
    return rejected(err);
  }
}

function rejected(err: Error & { toJSON(): unknown }) {
  log.warn("training request rejected", { error: err.message });
  return { error: err.toJSON() };
}
