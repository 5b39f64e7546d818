import type { Command } from "commander";
import { context, DEFAULT_BACKBONE_HELP, output } from "../context.ts";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("a dataset's ingest result and embedding progress")
    .argument("<dataset>")
    .option("--backbone <id>", `backbone (default: ${DEFAULT_BACKBONE_HELP})`)
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform } = context(cmd);
      const info = await platform.datasetInfo(dataset, opts.backbone);
      output(true, info, "");
    });
}
