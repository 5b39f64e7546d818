import type { Command } from "commander";
import { context, DEFAULT_BACKBONE_HELP, output } from "../context.ts";

export function registerExport(program: Command): void {
  program
    .command("export")
    .description("write a dataset's embeddings as embeddings.npy + rows.jsonl")
    .argument("<dataset>")
    .requiredOption("--out <dir>", "output directory")
    .option("--backbone <id>", `backbone whose cache to export (default: ${DEFAULT_BACKBONE_HELP})`)
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const r = await platform.export(dataset, opts.out, opts.backbone);
      output(json, r, `exported ${r.rows} × ${r.dim} to ${r.files.embeddings} and ${r.files.rows}`);
    });
}
