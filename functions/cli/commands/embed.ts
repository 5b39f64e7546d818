import type { Command } from "commander";
import { context, DEFAULT_BACKBONE_HELP, failureLines, intOption, output } from "../context.ts";

export function registerEmbed(program: Command): void {
  program
    .command("embed")
    .description("run (or resume) the batch embedding stage for a dataset's current version")
    .argument("<dataset>")
    .option("--backbone <id>", `backbone to embed with (default: ${DEFAULT_BACKBONE_HELP})`)
    .option("--shard-size <n>", "items per cache shard", intOption("shard-size"))
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform, progress, json } = context(cmd);
      try {
        const { job, result } = await platform.embed(dataset, {
          backbone: opts.backbone,
          shardSize: opts.shardSize,
        });
        output(
          json,
          { job, result },
          [
            `job ${job.job} ${job.state}: ${result.itemsEmbedded} items embedded into ${result.shardsCommitted} shards, ` +
              `${result.shardsSkipped} shards already committed, ${job.items.cached} rows already cached`,
            ...failureLines(result),
          ].join("\n"),
        );
      } finally {
        progress.stop();
      }
    });
}
