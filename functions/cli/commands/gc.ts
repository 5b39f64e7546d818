import { type Command, Option } from "commander";
import { ValidationError } from "../../../shared/errors.ts";
import {
  collectGarbage,
  DEFAULT_KEEP_VERSIONS,
  DEFAULT_MIN_AGE_MS,
  type GcResult,
} from "../../../shared/lifecycle/gc.ts";
import { context, intOption, output } from "../context.ts";

export function registerGc(program: Command): void {
  program
    .command("gc")
    .description(
      "remove what nothing refers to: old head versions (aliases' and the last --keep-versions kept), unused rows versions, cache shards and batch inputs, stale plans and leases, expired idempotency records; --dry-run lists them with sizes",
    )
    .option("--dry-run", "only list what would be removed")
    .option(
      "--keep-versions <n>",
      "versions kept per head besides those an alias or a running batch job needs",
      intOption("keep-versions"),
      DEFAULT_KEEP_VERSIONS,
    )
    .addOption(
      new Option(
        "--min-age <duration>",
        "leave objects younger than this alone (work in progress): 0, 90s, 30m, 1h, 2d",
      )
        .argParser(durationMs)
        .default(DEFAULT_MIN_AGE_MS, "1h"),
    )
    .action(async (opts: { dryRun?: boolean; keepVersions: number; minAge: number }, cmd: Command) => {
      const { platform, json } = context(cmd);
      if (opts.keepVersions < 0)
        throw new ValidationError("--keep-versions must be 0 or more", { field: "keep-versions" });
      const result = await collectGarbage(platform.store, {
        dryRun: Boolean(opts.dryRun),
        keepVersions: opts.keepVersions,
        minAgeMs: opts.minAge,
      });
      output(json, result, summary(result, Boolean(opts.dryRun)));
    });
}

const UNITS: Record<string, number> = { "": 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `1h`, `2d` or plain seconds, in milliseconds. */
function durationMs(value: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
  if (!m)
    throw new ValidationError(
      `--min-age must look like 0, 90s, 30m, 1h or 2d, got ${JSON.stringify(value)}`,
      {
        field: "min-age",
      },
    );
  return Number(m[1]) * UNITS[m[2] ?? ""];
}

function summary(r: GcResult, dryRun: boolean): string {
  const lines = r.removed.map((e) => `${e.bytes.toString().padStart(12)}  ${e.key}`);
  const verb = dryRun ? "would remove" : "removed";
  return [...lines, `${verb} ${r.removed.length} objects, ${r.bytes} bytes`].join("\n");
}
