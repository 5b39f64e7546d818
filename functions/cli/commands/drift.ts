import type { Command } from "commander";
import { ValidationError } from "../../../shared/errors.ts";
import { MMD_DEFAULTS } from "../../../shared/learn/mmd.ts";
import type { DriftResult } from "../../../shared/quality/drift.ts";
import { context, intOption, output, pct } from "../context.ts";

export function registerDrift(program: Command): void {
  program
    .command("drift")
    .description(
      "test whether current data still looks like the reference: MMD on the embeddings with a permutation p-value (drift when p < --alpha), plus the head's predicted-label shift; a check about a head that finds drift emits drift.detected",
    )
    .requiredOption(
      "--reference <dataset|head>",
      "a dataset (dataset:<d>) or a head (head:<h>, head@version): its training data; a bare name is a head if one exists",
    )
    .requiredOption(
      "--current <dataset|capture:head>",
      "a dataset, or capture:<head> for the head's captured inputs",
    )
    .option("--backbone <id>", "for a dataset reference: the backbone (or a+b); default: the dataset's")
    .option("--alpha <p>", "drift when the p-value is below this", probability, MMD_DEFAULTS.alpha)
    .option(
      "--permutations <n>",
      "permutations of the test",
      intOption("permutations"),
      MMD_DEFAULTS.permutations,
    )
    .option(
      "--max-items <n>",
      "rows drawn from each side at most",
      intOption("max-items"),
      MMD_DEFAULTS.maxPerSide,
    )
    .option("--seed <n>", "seed of the subsample and the permutations", intOption("seed"), MMD_DEFAULTS.seed)
    .action(async (opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const result = await platform.checkDrift({
        reference: opts.reference,
        current: opts.current,
        backbone: opts.backbone,
        alpha: opts.alpha,
        permutations: opts.permutations,
        maxItems: opts.maxItems,
        seed: opts.seed,
      });
      output(json, result, summary(result));
    });
}

function probability(value: string): number {
  const p = Number(value);
  if (!(p > 0 && p < 1))
    throw new ValidationError(`--alpha must be in (0, 1), got ${JSON.stringify(value)}`, { field: "alpha" });
  return p;
}

function summary(r: DriftResult): string {
  const side = (s: DriftResult["reference"], n: number) => `${s.kind} ${s.name} (${n} rows)`;
  const lines = [
    `${r.drift ? "drift" : "no drift"}: p = ${r.pValue.toFixed(4)} ${r.drift ? "<" : "≥"} ${r.alpha}, MMD² ${r.score.toExponential(3)}`,
    `reference ${side(r.reference, r.n.reference)}, current ${side(r.current, r.n.current)}, backbone ${r.backbone}`,
  ];
  if (r.labelShift) {
    const labels = [
      ...new Set([...Object.keys(r.labelShift.reference), ...Object.keys(r.labelShift.current)]),
    ].sort();
    lines.push(`predicted labels (total variation ${r.labelShift.distance.toFixed(3)}):`);
    for (const l of labels)
      lines.push(`  ${l}: ${pct(r.labelShift.reference[l] ?? 0)} → ${pct(r.labelShift.current[l] ?? 0)}`);
  }
  return lines.join("\n");
}
