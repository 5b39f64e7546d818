/**
 * Webhook-retry Lambda, run every minute by an EventBridge schedule (infra/webhook-retry.ts):
 * continues the webhook deliveries that are still `pending` (their first attempts ran within the
 * 5 s an emitting Lambda may spend; `events/delivery.ts` keeps the backoff schedule in each
 * record), so an endpoint that was down gets its events later without anyone running
 * `headstart webhooks retry`. They are found by their pending markers, at most `RETRY_LIMIT` per
 * run (the rest wait for the next minute), within `RETRY_BUDGET_MS`.
 */
import { bootstrap } from "../../shared/bootstrap.ts";
import { instrument } from "../../shared/lambda.ts";

/** Deliveries one run continues at most (oldest due first). */
export const RETRY_LIMIT = 200;
/** One run's time for attempts: the function's timeout (90 s) less a margin for the store. */
export const RETRY_BUDGET_MS = 60_000;

const { platform, log, metrics } = bootstrap("headstart-webhook-retry", process.env, {
  notifications: { budgetMs: RETRY_BUDGET_MS },
});

export const handler = instrument({ log, metrics }, async () => {
  const summary = await platform.notifier.retryPending({ limit: RETRY_LIMIT });
  if (summary.retried > 0) log.info("webhook deliveries retried", { ...summary });
  return summary;
});
