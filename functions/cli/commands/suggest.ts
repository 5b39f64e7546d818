import type { Command } from "commander";
import {
  DEFAULT_STRATEGY,
  DEFAULT_SUGGEST_K,
  MAX_SUGGEST_K,
  STRATEGIES,
  type Suggestions,
} from "../../../shared/quality/suggest.ts";
import { context, intOption, output } from "../context.ts";

export function registerSuggest(program: Command): void {
  program
    .command("suggest")
    .description("which unlabelled rows of a dataset to label next (active learning)")
    .argument("<dataset>", "the dataset whose rows without a label to rank")
    .option(
      "--head <head>",
      "head, head@version or head:alias whose uncertainty to use (none: a diverse seed set)",
    )
    .option(
      "--k <n>",
      `how many rows to suggest, 1..${MAX_SUGGEST_K} (default ${DEFAULT_SUGGEST_K})`,
      intOption("k"),
    )
    .option(
      "--strategy <name>",
      `${STRATEGIES.join(", ")} (default ${DEFAULT_STRATEGY}: typical rows of the regions the head is least sure of; with no head and no labels, typical rows of the whole dataset)`,
    )
    .option("--backbone <id>", "without --head: whose embeddings to read (default: the dataset's backbone)")
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const r = await platform.suggest(dataset, {
        head: opts.head,
        k: opts.k,
        strategy: opts.strategy,
        backbone: opts.backbone,
      });
      output(json, r, suggestionLines(r));
    });
}

function suggestionLines(r: Suggestions): string {
  const by = r.head ? `${r.head}@${r.version}` : "no head: a diverse seed set";
  const head = `${r.items.length} of ${r.unlabelled} unlabelled rows of ${r.dataset} by ${r.strategy} (${by}; ${r.labelled} labelled)`;
  return [head, ...r.items.map((i) => `${i.id}\t${i.score.toFixed(4)}\t${i.reason}`)].join("\n");
}
