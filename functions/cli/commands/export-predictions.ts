import type { Command } from "commander";
import { context, output } from "../context.ts";

export function registerExportPredictions(program: Command): void {
  program
    .command("export-predictions")
    .description("write a finished batch job's predictions.jsonl and errors.jsonl into a directory")
    .argument("<job>", "the batch job (from batch-predict)")
    .requiredOption("--out <dir>", "the directory to write into")
    .action(async (job: string, opts: { out: string }, cmd: Command) => {
      const { platform, json } = context(cmd);
      const r = await platform.exportPredictions(job, opts.out);
      output(json, r, `${r.predictions} (${r.counts.succeeded} rows)\n${r.errors} (${r.counts.failed} rows)`);
    });
}
