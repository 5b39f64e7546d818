import { type Command, Option } from "commander";
import { type LabelIssuesResult, RANK_BY } from "../../../shared/quality/label-issues.ts";
import { context, intOption, output, pct } from "../context.ts";

/** Lines the human output lists; `--json` has every issue. */
const SHOWN = 20;

export function registerLabelIssues(program: Command): void {
  program
    .command("label-issues")
    .description(
      "labelled rows that are probably labelled wrong, most suspect first (confident learning over out-of-fold probabilities)",
    )
    .argument("<dataset>")
    .option(
      "--backbone <id>",
      "backbone or a+b set whose cached vectors are read (default: as train picks it)",
    )
    .option("--folds <n>", "cross-validation folds, 2..20", intOption("folds"), 5)
    .addOption(
      new Option("--rank-by <how>", "order of the issues").choices([...RANK_BY]).default("self-confidence"),
    )
    .option("--seed <n>", "seed for the folds and fits", intOption("seed"))
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const result = await platform.labelIssues(dataset, {
        backbone: opts.backbone,
        folds: opts.folds,
        rankBy: opts.rankBy,
        seed: opts.seed,
      });
      output(json, result, human(result));
    });
}

function human(r: LabelIssuesResult): string {
  const head =
    `${r.issues.length} of ${r.rows} labelled rows look mislabelled ` +
    `(estimated noise rate ${pct(r.estimatedNoiseRate)}; ${r.type}, ${r.folds} folds, ${r.backbone})`;
  const lines = r.issues
    .slice(0, SHOWN)
    .map((i) => `  ${i.score.toFixed(3)}  ${i.id}: ${i.givenLabel} → ${i.suggestedLabel}?`);
  if (r.issues.length > SHOWN) lines.push(`  … ${r.issues.length - SHOWN} more (--json lists all)`);
  return [head, ...lines].join("\n");
}
