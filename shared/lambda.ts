/**
 * Per-invocation observability for Lambda handlers, without middy: the invocation's context on
 * every log line (cold_start, function_request_id, function_name), the cold-start metric, and
 * one EMF document with the invocation's metrics, flushed when it ends (returned or thrown).
 */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import type { Context } from "aws-lambda";
import type { Logger } from "./log.ts";

export type LambdaHandler<E, R> = (event: E, context?: Context) => Promise<R>;

export function instrument<E, R>(
  obs: { log: Logger; metrics: Metrics },
  handler: (event: E, context?: Context) => Promise<R>,
): LambdaHandler<E, R> {
  return async (event, context) => {
    // Tests and local invocations may have no context; Lambda always passes one.
    if (context) obs.log.addContext(context);
    obs.metrics.captureColdStartMetric(context?.functionName);
    try {
      return await handler(event, context);
    } finally {
      // An invocation that recorded nothing prints nothing (Powertools would warn instead).
      if (obs.metrics.hasStoredMetrics()) obs.metrics.publishStoredMetrics();
      obs.log.resetKeys();
    }
  };
}

/** How long an attempt is presumed alive: the rest of this invocation, or 15 minutes without a context. */
export function attemptSeconds(context?: Context): number {
  const ms = context?.getRemainingTimeInMillis?.();
  return ms ? Math.ceil(ms / 1000) + 5 : 900;
}
