/**
 * `headstart doctor`: a read-only walk over the store's layout that checks what the platform
 * promises (committed shards match their markers, versions load, aliases point at versions,
 * datasets' current rows exist, no leftovers of killed writes), and with `repair` fixes only
 * what is provably safe: temporaries older than the grace period and leases on committed
 * shards. Committed data is never touched. Used by the CLI, `POST /v1/doctor`, the fault and
 * kill tests and the reliability benchmark:
 *
 *   const report = await runDoctor(store, { repair: true });
 *   report.summary; // { corrupt, missing, duplicated, strayTemporaries, staleLeases, incomplete, repaired }
 */
import type { ObjectStore } from "../store/types.ts";
import { checkJobs, checkLeases, checkShards } from "./cache.ts";
import { checkDatasets } from "./datasets.ts";
import { checkHeads } from "./heads.ts";
import { CHECKS, CheckLog, type CheckName, type DoctorReport, summarize } from "./report.ts";

export type { DoctorReport } from "./report.ts";

/**
 * Far longer than any one write takes (a put renames its temporary within the call; a lock
 * lives for one compare-and-swap and is broken by other writers at 30 s).
 */
export const DEFAULT_GRACE_MS = 15 * 60_000;

export interface DoctorOptions {
  repair?: boolean;
  /** Temporaries younger than this are a live writer's and left alone. */
  graceMs?: number;
}

async function checkTemporaries(store: ObjectStore, log: CheckLog, repair: boolean, graceMs: number) {
  if (!store.temporaries) return; // S3: every write is one PUT, nothing is left half-written
  for (const t of await store.temporaries()) {
    log.checked++;
    if (t.ageMs < graceMs) continue;
    const p = log.add(
      t.key,
      "strayTemporary",
      `left by an interrupted write ${Math.round(t.ageMs / 1000)} s ago`,
    );
    if (repair && store.removeTemporary) p.repaired = await store.removeTemporary(t.key, graceMs);
  }
}

export async function runDoctor(store: ObjectStore, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const repair = opts.repair ?? false;
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const logs = Object.fromEntries(CHECKS.map((c) => [c, new CheckLog()])) as Record<CheckName, CheckLog>;
  await checkDatasets(store, logs.datasets);
  const cache = await store.list("cache/");
  await checkShards(store, logs.shards, cache);
  await checkLeases(store, logs.leases, cache, repair);
  await checkJobs(store, logs.jobs, cache);
  await checkHeads(store, logs.heads, logs.aliases);
  await checkTemporaries(store, logs.temporaries, repair, graceMs);
  const { summary, ok } = summarize(logs);
  return {
    ok,
    repair,
    graceSeconds: graceMs / 1000,
    checks: Object.fromEntries(CHECKS.map((c) => [c, logs[c].result()])) as DoctorReport["checks"],
    summary,
    checkedAt: new Date().toISOString(),
  };
}
