import type { Command } from "commander";
import {
  BACKBONES_HELP,
  backbonesOption,
  context,
  DEFAULT_BACKBONE_HELP,
  embeddedLine,
  failureLines,
  intOption,
  output,
  refuseBoth,
} from "../context.ts";

export function registerEmbed(program: Command): void {
  program
    .command("embed")
    .description("run (or resume) the batch embedding stage for a dataset's current version")
    .argument("<dataset>")
    .option("--backbone <id>", `backbone to embed with (default: ${DEFAULT_BACKBONE_HELP})`)
    .option("--backbones <ids>", BACKBONES_HELP, backbonesOption)
    .option("--shard-size <n>", "items per cache shard", intOption("shard-size"))
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform, progress, json } = context(cmd);
      refuseBoth(opts);
      if (opts.backbones) {
        try {
          const all = await platform.embedAll(dataset, opts.backbones, { shardSize: opts.shardSize });
          const lines = all.flatMap(({ job, result }) => [
            embeddedLine(job, result),
            ...failureLines(result),
          ]);
          output(json, { embeddings: all }, lines.join("\n"));
        } finally {
          progress.stop();
        }
        return;
      }
      try {
        const { job, result } = await platform.embed(dataset, {
          backbone: opts.backbone,
          shardSize: opts.shardSize,
        });
        output(json, { job, result }, [embeddedLine(job, result), ...failureLines(result)].join("\n"));
      } finally {
        progress.stop();
      }
    });
}
