import type { Command } from "commander";
import type { DoctorReport } from "../../../shared/doctor/report.ts";
import { context, intOption, output } from "../context.ts";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description(
      "verify the store (committed shards, head versions, aliases, datasets' rows, leftovers of killed writes); exit 1 while problems remain",
    )
    .option(
      "--repair",
      "remove stray temporaries older than --grace and leases on committed shards (never data)",
    )
    .option(
      "--grace <seconds>",
      "leave temporaries younger than this alone (a live writer's)",
      intOption("grace"),
      900,
    )
    .action(async (opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const report = await platform.doctor({ repair: Boolean(opts.repair), graceMs: opts.grace * 1000 });
      output(json, report, doctorLines(report));
      if (!report.ok) process.exitCode = 1;
    });
}

/** A doctor report for a person: one line per problem, then the totals. */
function doctorLines(report: DoctorReport): string {
  const problems = Object.entries(report.checks).flatMap(([check, r]) =>
    r.problems.map((p) => `  ${check}: ${p.kind} ${p.key}: ${p.problem}${p.repaired ? " (repaired)" : ""}`),
  );
  const checked = Object.values(report.checks).reduce((n, r) => n + r.checked, 0);
  const s = report.summary;
  return [
    ...problems,
    report.ok && problems.length === 0
      ? `no problems (${checked} objects checked)`
      : `${s.corrupt} corrupt, ${s.missing} missing, ${s.duplicated} duplicated items, ${s.strayTemporaries} stray temporaries, ` +
        `${s.staleLeases} stale leases, ${s.incomplete} incomplete; ${s.repaired} repaired` +
        (report.ok ? "" : report.repair ? "" : " (--repair fixes temporaries and stale leases)"),
  ].join("\n");
}
