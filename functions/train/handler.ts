/**
 * Train Lambda, invoked asynchronously with `{head, dataset, …}` (the body of
 * `POST /v1/heads/{head}/train` plus the head name). A request the caller got wrong is
 * answered, not retried; anything else is thrown so Lambda retries and dead-letters it.
 */
import { zodIssueToError } from "../../shared/api/errors.ts";
import { bootstrap } from "../../shared/bootstrap.ts";
import { isUserError } from "../../shared/errors.ts";
import { TrainEvent } from "../../shared/heads/train-dispatch.ts";

const { platform, log } = bootstrap("headstart-train");

export async function handler(event: unknown) {
  try {
    const parsed = TrainEvent.safeParse(event);
    if (!parsed.success) throw zodIssueToError(parsed.error, "event");
    const result = await platform.train(parsed.data);
    log.info("head trained", {
      head: result.head,
      version: result.version,
      type: result.type,
      ...(result.metrics ? { accuracy: result.metrics.accuracy } : {}),
    });
    return result;
  } catch (err) {
    if (!isUserError(err)) throw err;
    log.warn("training request rejected", { error: (err as Error).message });
    return { error: err.toJSON() };
  }
}
