import type { Command } from "commander";
import type { RunShardsResult } from "../../../shared/embed/run.ts";
import type { Platform } from "../../../shared/platform.ts";
import {
  BACKBONES_HELP,
  backbonesOption,
  context,
  DEFAULT_BACKBONE_HELP,
  type Embedded,
  embeddedLine,
  failureLines,
  intOption,
  output,
  refuseBoth,
} from "../context.ts";

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
    .option("--backbones <ids>", BACKBONES_HELP, backbonesOption)
    .option("--no-embed", "only validate and store; embed later with `headstart embed`")
    .option("--shard-size <n>", "items per cache shard", intOption("shard-size"))
    .action(async (path: string, opts, cmd: Command) => {
      const { platform, progress, json } = context(cmd);
      refuseBoth(opts);
      const status = await platform.upload(opts.dataset, path);
      let embedding: unknown;
      let embeddings: Embedded[] | undefined;
      if (opts.embed) {
        try {
          if (opts.backbones) embeddings = await platform.embedAll(opts.dataset, opts.backbones, opts);
          else
            embedding = await platform.embed(opts.dataset, {
              backbone: opts.backbone,
              shardSize: opts.shardSize,
            });
        } finally {
          progress.stop();
        }
      }
      const results = embeddings ?? (embedding ? [embedding as Embedded] : []);
      const lines = [
        ...ingestLines(status, undefined),
        ...results.flatMap(({ job, result }) => [
          ...(embeddings ? [embeddedLine(job, result)] : []),
          ...failureLines(result),
        ]),
      ];
      output(json, embeddings ? { status, embeddings } : { status, embedding }, lines.join("\n"));
    });
}

type Uploaded = Awaited<ReturnType<Platform["upload"]>>;

/** What was accepted, rejected and skipped, at most 20 lines of each (then what failed to embed). */
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
