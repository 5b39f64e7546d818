/**
 * The scheduled drift check: every head whose live version captures all its online inputs
 * (`capture: all`) is checked against its training data (`reference: head:<h>`, `current:
 * capture:<h>`), on the inputs captured within the last `windowDays` (7 by default), once it has
 * `minCaptures` of them there. Each outcome is recorded per head (`drift-state.ts`), and
 * `drift.detected` is emitted when drift is news: a head that drifts after it did not, or still
 * drifts a day after the last event (`remindAfterHours`). Heads capturing only `uncertain` inputs
 * are skipped: those are the head's close calls by design, unlike its training data whatever the
 * world does. The local server runs it on a timer (`serve --drift-check-minutes`), AWS on an
 * EventBridge schedule (functions/drift-check/, infra/drift-check.ts); both call this.
 */
import { readHeadVersion } from "../heads/version.ts";
import { keys } from "../layout.ts";
import { listHeads } from "../lifecycle/list.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../store/types.ts";
import type { DriftRequest, DriftResult } from "./drift.ts";
import { isCapturedSince } from "./drift-sources.ts";
import { DRIFT_REMIND_HOURS, readDriftState, recordDriftCheck } from "./drift-state.ts";

/** Fewer captured inputs than this (within the window) are too few to judge: the head is skipped. */
export const MIN_CAPTURES_FOR_DRIFT = 50;
/** Only inputs captured within this many days are the current sample. */
export const DRIFT_WINDOW_DAYS = 7;

export interface ScheduleOptions {
  minCaptures?: number;
  windowDays?: number;
  remindAfterHours?: number;
  /** The round's clock (tests). */
  now?: () => Date;
  /**
   * No head's check starts after this (ms since the epoch): the rest are `skipped` and come first
   * in the next round, which takes the heads checked longest ago first (a Lambda's timeout).
   */
  deadlineMs?: number;
}

export interface ScheduledCheck {
  head: string;
  /** The check's outcome, or why it did not run or failed. */
  result?: DriftResult;
  /** Whether this round emitted `drift.detected` for the head (drift that is news). */
  emitted?: boolean;
  skipped?: string;
  error?: string;
}

/** What the round needs of the platform: a check that emits nothing, and the event's emission. */
export interface ScheduleDeps {
  check: (req: DriftRequest) => Promise<DriftResult>;
  emit: (result: DriftResult, checkedAt: string) => Promise<void>;
}

/** One round over every head; a head's failure is its entry's `error`, never the round's. */
export async function checkCapturingHeads(
  store: ObjectStore,
  deps: ScheduleDeps,
  opts: ScheduleOptions = {},
): Promise<ScheduledCheck[]> {
  const out: ScheduledCheck[] = [];
  for (const head of await capturingHeads(store, out)) {
    if (opts.deadlineMs !== undefined && Date.now() >= opts.deadlineMs) {
      out.push({ head, skipped: "no time left in this round: first in the next" });
      continue;
    }
    try {
      out.push(await checkHead(store, head, deps, opts));
    } catch (err) {
      out.push({ head, error: (err as Error).message });
    }
  }
  return out;
}

/** Heads whose live version captures all inputs, checked longest ago (or never) first. */
async function capturingHeads(store: ObjectStore, failures: ScheduledCheck[]): Promise<string[]> {
  const found: Array<{ head: string; checkedAt: string }> = [];
  for (const { head, live } of await listHeads(store)) {
    if (live === undefined) continue;
    try {
      const { head: doc } = await readHeadVersion(store, head, live);
      if (doc.capture !== "all") continue;
      found.push({ head, checkedAt: (await readDriftState(store, head))?.checkedAt ?? "" });
    } catch (err) {
      failures.push({ head, error: (err as Error).message });
    }
  }
  return found.sort((a, b) => a.checkedAt.localeCompare(b.checkedAt)).map((h) => h.head);
}

async function checkHead(
  store: ObjectStore,
  head: string,
  deps: ScheduleDeps,
  opts: ScheduleOptions,
): Promise<ScheduledCheck> {
  const min = opts.minCaptures ?? MIN_CAPTURES_FOR_DRIFT;
  const windowDays = opts.windowDays ?? DRIFT_WINDOW_DAYS;
  const sinceMs = (opts.now?.() ?? new Date()).getTime() - windowDays * 86_400_000;
  const listed = await store.list(keys.headCapturePrefix(head));
  const captured = listed.filter((o) => isCapturedSince(o, sinceMs)).length;
  if (captured < min) {
    return { head, skipped: `${captured} inputs captured in the last ${windowDays} days, fewer than ${min}` };
  }
  const result = await deps.check({
    reference: `head:${head}`,
    current: `capture:${head}`,
    capturedSinceMs: sinceMs,
  });
  const checkedAt = opts.now?.() ?? new Date();
  const { emit } = await recordDriftCheck(
    store,
    head,
    result,
    checkedAt,
    opts.remindAfterHours ?? DRIFT_REMIND_HOURS,
  );
  if (emit) await deps.emit(result, checkedAt.toISOString());
  return { head, result, emitted: emit };
}

/** Each head's outcome of a scheduled round, one line each: the local server's log, the Lambda's. */
export function logDriftRound(log: Pick<Logger, "info" | "warn">, round: readonly ScheduledCheck[]): void {
  for (const c of round) {
    if (c.error) log.warn("drift check failed", { head: c.head, error: c.error });
    else if (c.skipped) log.info("drift check skipped", { head: c.head, reason: c.skipped });
    else if (c.result)
      log.info("drift check", {
        head: c.head,
        drift: c.result.drift,
        pValue: c.result.pValue,
        n: c.result.n,
        emitted: c.emitted,
      });
  }
}

/**
 * Runs `round` every `everyMs` (the next one `everyMs` after the previous ended, so rounds never
 * overlap) until the returned stop is called. The timer does not keep the process alive.
 */
export function every(everyMs: number, round: () => Promise<unknown>): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(async () => {
      await round().catch(() => {}); // a round reports its own failures
      schedule();
    }, everyMs);
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
