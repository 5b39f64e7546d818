/**
 * `jobs/<embed job>/waiters/<batch job>.json`: which batch-prediction jobs wait for an embedding
 * job that runs elsewhere (a SageMaker Processing job), so the end of that job finds them with one
 * listing of its own folder, never a scan of `predictions/`. A marker is written create-only
 * before the embedding job is submitted (so its end cannot come before the marker), and deleted
 * once the batch job no longer waits for it. A marker left behind is harmless: the continuation
 * reads the batch job's record and does nothing unless it still waits (`predictions/run.ts`).
 */
import { z } from "zod";
import { PreconditionFailedError } from "../errors.ts";
import { keys, parseKey } from "../layout.ts";
import { putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

export const Waiter = z.object({
  embedJob: z.string(),
  batchJob: z.string(),
  createdAt: z.string(),
});
export type Waiter = z.infer<typeof Waiter>;

/** Records that `batchJob` waits for `embedJob`; a marker that exists already is kept as it is. */
export async function addWaiter(store: ObjectStore, embedJob: string, batchJob: string): Promise<void> {
  const waiter: Waiter = { embedJob, batchJob, createdAt: new Date().toISOString() };
  try {
    await putJson(store, keys.jobWaiter(embedJob, batchJob), waiter, { ifNoneMatch: "*" });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
}

/** The batch jobs waiting for `embedJob`, from one listing of its waiters folder. */
export async function waitersOf(store: ObjectStore, embedJob: string): Promise<string[]> {
  const out: string[] = [];
  for (const o of await store.list(keys.jobWaitersPrefix(embedJob))) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "jobWaiter") out.push(parsed.batchJob);
  }
  return out;
}

export function removeWaiter(store: ObjectStore, embedJob: string, batchJob: string): Promise<void> {
  return store.delete(keys.jobWaiter(embedJob, batchJob));
}
