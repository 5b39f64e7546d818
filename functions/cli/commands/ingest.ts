import type { Command } from "commander";
import type { RunShardsResult } from "../../../shared/embed/run.ts";
import type { Platform } from "../../../shared/platform.ts";
import { context, DEFAULT_BACKBONE_HELP, failureLines, intOption, output } from "../context.ts";

export function registerIngest(program: Command): void {
  program
    .command("ingest")
    .description(
      "upload a manifest (or a directory with manifest + files/) as a dataset, validate it, and embed it",
    )
    .argument(
      "<manifest|dir>",
      "manifest.jsonl / manifest.csv, a directory holding one and files/, or a folder of images or audio files as <label>/<file> (test/<label>/<file> for the test split)",
    )
    .requiredOption("--dataset <name>", "dataset name")
    .option("--backbone <id>", `backbone to embed with (default: ${DEFAULT_BACKBONE_HELP})`)
    .option("--no-embed", "only validate and store; embed later with `headstart embed`")
    .option("--shard-size <n>", "items per cache shard", intOption("shard-size"))
    .action(async (path: string, opts, cmd: Command) => {
      const { platform, progress, json } = context(cmd);
      const status = await platform.upload(opts.dataset, path);
      let embedding: unknown;
      if (opts.embed) {
        try {
          embedding = await platform.embed(opts.dataset, {
            backbone: opts.backbone,
            shardSize: opts.shardSize,
          });
        } finally {
          progress.stop();
        }
      }
      const failures = (embedding as { result?: RunShardsResult } | undefined)?.result;
      output(json, { status, embedding }, ingestLines(status, failures).join("\n"));
    });
}

type Uploaded = Awaited<ReturnType<Platform["upload"]>>;

/** What was accepted, rejected, skipped and left unembedded, at most 20 lines of each. */
function ingestLines(status: Uploaded, failures: RunShardsResult | undefined): string[] {
  const skipped = status.skipped ?? [];
  return [
    `dataset ${status.dataset}: ${status.rows.accepted} rows accepted, ${status.rows.rejected} rejected (of ${status.rows.total})`,
    ...status.rejected.slice(0, 20).map((r) => `  line ${r.line}: ${r.reason}`),
    ...(status.rows.rejected > 20
      ? [`  … and ${status.rows.rejected - 20} more in ${status.dataset}/_status.json`]
      : []),
    ...(skipped.length ? [`${skipped.length} folder entries not uploaded:`] : []),
    ...skipped.slice(0, 20).map((e) => `  ${e.path}: ${e.reason}`),
    ...(skipped.length > 20 ? [`  … and ${skipped.length - 20} more (--json lists all)`] : []),
    ...(failures ? failureLines(failures) : []),
  ];
}
