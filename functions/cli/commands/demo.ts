import type { Command } from "commander";
import { runDemo } from "../../../shared/demo.ts";
import { context, intOption, output, pct } from "../context.ts";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("end to end on the IMDB sample (ingest → embed → train → predict), then exit")
    .option(
      "--limit <n>",
      "reviews per split and label (default 12500: the full dataset)",
      intOption("limit"),
    )
    .option("--retrain", "train a new head version even if one exists", false)
    .action(async (opts, cmd: Command) => {
      const { platform, log, progress, json } = context(cmd);
      try {
        const r = await runDemo(platform, { perBlock: opts.limit, retrain: opts.retrain, log });
        output(json, r, demoSummary(r));
      } finally {
        progress.stop();
      }
    });
}

export function demoSummary(r: Awaited<ReturnType<typeof runDemo>>): string {
  return [
    `IMDB sentiment with ${r.trainRows} training reviews → head ${r.head} (${r.version})`,
    `test accuracy: ${pct(r.accuracy)} (macro-F1 ${pct(r.macroF1)}) on ${r.testRows} official test reviews`,
    `example: "${r.example.text}" → ${r.example.label} (${r.example.score.toFixed(3)})`,
  ].join("\n");
}
