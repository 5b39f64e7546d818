/**
 * Drift-check Lambda, run by an EventBridge schedule (infra/drift-check.ts; every 6 hours unless
 * the customer's `settings.driftCheckHours` says otherwise): one round of the scheduled drift check
 * (quality/drift-schedule.ts, the round the local server's `--drift-check-minutes` timer runs).
 * Every head capturing all its inputs, with 50 or more captured in the window (7 days, or
 * HEADSTART_DRIFT_WINDOW_DAYS), is tested against its training data: its captured texts are
 * embedded here with the head's own backbone (fetched from the store into /tmp like the API's),
 * and `drift.detected` goes to the webhooks and the customer's bus when drift is news. Lambda may
 * run a scheduled event twice: the per-head record's compare-and-swap lets one of them emit.
 */
import type { Context } from "aws-lambda";
import { bootstrap } from "../../shared/bootstrap.ts";
import { instrument } from "../../shared/lambda.ts";
import { logDriftRound, type ScheduledCheck } from "../../shared/quality/drift-schedule.ts";

const { platform, log, metrics } = bootstrap("headstart-drift-check");

export interface DriftRoundSummary {
  /** Heads tested, of which found drifting, of which were news (`drift.detected` emitted). */
  checked: number;
  drift: number;
  emitted: number;
  /** Heads with too few inputs in the window, and heads whose check failed (logged). */
  skipped: number;
  failed: number;
}

/** Time kept back from the function's timeout: no head's check starts within it. */
export const ROUND_MARGIN_MS = 180_000;

export const handler = instrument({ log, metrics }, async (_event: unknown, context?: Context) => {
  const remaining = context?.getRemainingTimeInMillis?.();
  const deadlineMs = remaining === undefined ? undefined : Date.now() + remaining - ROUND_MARGIN_MS;
  const round = await platform.checkCapturingHeads({ deadlineMs });
  logDriftRound(log, round);
  const summary = summarize(round);
  log.info("drift round done", { ...summary });
  return summary;
});

function summarize(round: readonly ScheduledCheck[]): DriftRoundSummary {
  const checked = round.filter((c) => c.result);
  return {
    checked: checked.length,
    drift: checked.filter((c) => c.result?.drift).length,
    emitted: checked.filter((c) => c.emitted).length,
    skipped: round.filter((c) => c.skipped).length,
    failed: round.filter((c) => c.error).length,
  };
}
