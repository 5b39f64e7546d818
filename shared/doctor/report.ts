/**
 * What `headstart doctor` (and `POST /v1/doctor`) answers: per check, how many things it looked
 * at and what was wrong with which key; and the totals a benchmark or a monitor can compare
 * with zero. The format is a contract (docs/formats.md).
 */
import { z } from "zod";

export const ProblemKind = z.enum([
  /** Bytes that do not match what their commit marker, version or schema says. */
  "corrupt",
  /** An object something committed refers to, and that is not there. */
  "missing",
  /** Items committed in more than one shard of the same cache. */
  "duplicated",
  /** A leftover of an interrupted write (FsStore's `.~tmp-…`, `.~lock`) older than the grace period. */
  "strayTemporary",
  /** A shard lease left on a committed shard (its holder died between commit and release). */
  "staleLease",
  /** Written first by something that did not finish (a `report.json` without its `head.json`): invisible, harmless, kept. */
  "incomplete",
]);
export type ProblemKind = z.infer<typeof ProblemKind>;

export const Problem = z.object({
  /** The storage key concerned (never a filesystem path or URL). */
  key: z.string(),
  kind: ProblemKind,
  problem: z.string(),
  /** Present with `repair`: whether this problem was repaired. */
  repaired: z.boolean().optional(),
});
export type Problem = z.infer<typeof Problem>;

export const CheckResult = z.object({
  /** How many objects (or files) the check looked at. */
  checked: z.number().int(),
  problems: z.array(Problem),
});
export type CheckResult = z.infer<typeof CheckResult>;

export const CHECKS = ["datasets", "shards", "leases", "jobs", "heads", "aliases", "temporaries"] as const;
export type CheckName = (typeof CHECKS)[number];

export const DoctorSummary = z.object({
  /** Corrupt objects (problems of kind `corrupt`). */
  corrupt: z.number().int(),
  missing: z.number().int(),
  /** Items (not shards) committed more than once. */
  duplicated: z.number().int(),
  strayTemporaries: z.number().int(),
  staleLeases: z.number().int(),
  /** Notes, not problems: see `incomplete`. */
  incomplete: z.number().int(),
  repaired: z.number().int(),
});
export type DoctorSummary = z.infer<typeof DoctorSummary>;

export const DoctorReport = z.object({
  /** True when no problem remains (repaired ones and `incomplete` notes do not count). */
  ok: z.boolean(),
  repair: z.boolean(),
  /** Temporaries younger than this are left alone: a live writer may be using them. */
  graceSeconds: z.number(),
  checks: z.object(
    Object.fromEntries(CHECKS.map((c) => [c, CheckResult])) as Record<CheckName, typeof CheckResult>,
  ),
  summary: DoctorSummary,
  checkedAt: z.string(),
});
export type DoctorReport = z.infer<typeof DoctorReport>;

/** Collects one check's findings. */
export class CheckLog {
  checked = 0;
  readonly problems: Problem[] = [];
  /** Per `duplicated` problem, how many items it stands for. */
  readonly duplicateItems = new Map<Problem, number>();

  add(key: string, kind: ProblemKind, problem: string): Problem {
    const p: Problem = { key, kind, problem };
    this.problems.push(p);
    return p;
  }

  result(): CheckResult {
    return { checked: this.checked, problems: this.problems };
  }
}

export function summarize(logs: Record<CheckName, CheckLog>): { summary: DoctorSummary; ok: boolean } {
  const summary: DoctorSummary = {
    corrupt: 0,
    missing: 0,
    duplicated: 0,
    strayTemporaries: 0,
    staleLeases: 0,
    incomplete: 0,
    repaired: 0,
  };
  let remaining = 0;
  for (const log of Object.values(logs)) {
    for (const p of log.problems) {
      if (p.repaired) summary.repaired++;
      else if (p.kind !== "incomplete") remaining++;
      if (p.kind === "corrupt") summary.corrupt++;
      else if (p.kind === "missing") summary.missing++;
      else if (p.kind === "duplicated") summary.duplicated += log.duplicateItems.get(p) ?? 1;
      else if (p.kind === "strayTemporary") summary.strayTemporaries++;
      else if (p.kind === "staleLease") summary.staleLeases++;
      else summary.incomplete++;
    }
  }
  return { summary, ok: remaining === 0 };
}
