/**
 * The scheduled drift check: every head whose live version captures all its online inputs
 * (`capture: all`) is checked against its training data (`reference: head:<h>`, `current:
 * capture:<h>`) once it has `minCaptures` of them; a check that finds drift emits
 * `drift.detected` (Platform.checkDrift). Heads capturing only `uncertain` inputs are skipped:
 * those are the head's close calls by design, unlike its training data whatever the world does.
 * The local server runs it on a timer (`serve --drift-check-minutes`); in AWS it is not scheduled yet.
 */
import { readHeadVersion } from "../heads/version.ts";
import { keys } from "../layout.ts";
import { listHeads } from "../lifecycle/list.ts";
import type { ObjectStore } from "../store/types.ts";
import type { DriftRequest, DriftResult } from "./drift.ts";

/** Fewer captured inputs than this are too few to judge: the head is skipped until it has them. */
export const MIN_CAPTURES_FOR_DRIFT = 50;

export interface ScheduledCheck {
  head: string;
  /** The check's outcome, or why it did not run or failed. */
  result?: DriftResult;
  skipped?: string;
  error?: string;
}

/** One round over every head; a head's failure is its entry's `error`, never the round's. */
export async function checkCapturingHeads(
  store: ObjectStore,
  check: (req: DriftRequest) => Promise<DriftResult>,
  opts: { minCaptures?: number } = {},
): Promise<ScheduledCheck[]> {
  const min = opts.minCaptures ?? MIN_CAPTURES_FOR_DRIFT;
  const out: ScheduledCheck[] = [];
  for (const { head, live } of await listHeads(store)) {
    if (live === undefined) continue;
    try {
      const { head: doc } = await readHeadVersion(store, head, live);
      if (doc.capture !== "all") continue;
      const captured = (await store.list(keys.headCapturePrefix(head))).length;
      if (captured < min) {
        out.push({ head, skipped: `${captured} captured inputs, fewer than ${min}` });
        continue;
      }
      out.push({ head, result: await check({ reference: `head:${head}`, current: `capture:${head}` }) });
    } catch (err) {
      out.push({ head, error: (err as Error).message });
    }
  }
  return out;
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
