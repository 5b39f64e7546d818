/**
 * The scheduled drift check's memory, one record per head (`heads/<head>/drift-state.json`): the
 * last check's outcome and when `drift.detected` was last emitted. A drift that persists is news
 * once, not on every tick: the round emits when a head goes from no drift (or no record, or
 * another live version) to drift, and again only while it persists `remindAfterHours` (24 h by
 * default) after the last event. Changed only by compare-and-swap, and only the writer that wins
 * emits: a duplicate invocation of the same round (Lambda's at-least-once delivery) that loses the
 * race leaves the winner's record and emits nothing.
 */
import { z } from "zod";
import { PreconditionFailedError } from "../errors.ts";
import { keys } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import type { DriftResult } from "./drift.ts";

/** While drift persists, `drift.detected` again this long after the last one. */
export const DRIFT_REMIND_HOURS = 24;

export const DriftState = z.object({
  head: z.string(),
  /** The live version the check measured against. */
  version: z.string(),
  drift: z.boolean(),
  checkedAt: z.string(),
  pValue: z.number(),
  score: z.number(),
  n: z.object({ reference: z.number(), current: z.number() }),
  /** The first check of the drift that persists now; absent without drift. */
  driftSince: z.string().optional(),
  /** When this head's last scheduled `drift.detected` was emitted. */
  emittedAt: z.string().optional(),
});
export type DriftState = z.infer<typeof DriftState>;

export async function readDriftState(store: ObjectStore, head: string): Promise<DriftState | undefined> {
  return (await getJson(store, keys.headDriftState(head), DriftState))?.value;
}

/** Whether a check's outcome is news against the head's previous record. */
export function isNews(
  prev: DriftState | undefined,
  next: { drift: boolean; version: string },
  now: Date,
  remindAfterHours: number,
): boolean {
  if (!next.drift) return false;
  if (!prev?.drift || prev.version !== next.version || !prev.emittedAt) return true;
  return now.getTime() - Date.parse(prev.emittedAt) >= remindAfterHours * 3_600_000;
}

/**
 * Records one check of `head` (its result at `checkedAt`) and answers whether this caller should
 * emit `drift.detected`. `emit: false` also when another writer changed the record since it was
 * read: that one checked the same head in the same round and decided for both.
 */
export async function recordDriftCheck(
  store: ObjectStore,
  head: string,
  result: Pick<DriftResult, "drift" | "pValue" | "score" | "n" | "head">,
  checkedAt: Date,
  remindAfterHours = DRIFT_REMIND_HOURS,
): Promise<{ emit: boolean; state: DriftState }> {
  const key = keys.headDriftState(head);
  const read = await getJson(store, key, DriftState);
  const prev = read?.value;
  const version = result.head?.version ?? "";
  const at = checkedAt.toISOString();
  const emit = isNews(prev, { drift: result.drift, version }, checkedAt, remindAfterHours);
  const persists = result.drift && prev?.drift && prev.version === version;
  const state: DriftState = {
    head,
    version,
    drift: result.drift,
    checkedAt: at,
    pValue: result.pValue,
    score: result.score,
    n: result.n,
    ...(result.drift ? { driftSince: persists ? (prev.driftSince ?? prev.checkedAt) : at } : {}),
    ...(emit ? { emittedAt: at } : prev?.emittedAt ? { emittedAt: prev.emittedAt } : {}),
  };
  try {
    await putJson(store, key, state, read ? { ifMatch: read.etag } : { ifNoneMatch: "*" });
  } catch (err) {
    if (err instanceof PreconditionFailedError)
      return { emit: false, state: (await readDriftState(store, head)) ?? state };
    throw err;
  }
  return { emit, state };
}
