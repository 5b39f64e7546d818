import type { Command } from "commander";
import { context, output } from "../context.ts";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("a dataset's ingest result and embedding progress")
    .argument("<dataset>")
    .option(
      "--backbone <id>",
      "backbone (default: the dataset's modality's, glove-100d for text, mobilenet-v2-1280 for images)",
    )
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform } = context(cmd);
      const info = await platform.datasetInfo(dataset, opts.backbone);
      output(true, info, "");
    });
}
