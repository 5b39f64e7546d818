import type { Command } from "commander";
import { context, output } from "../context.ts";

export function registerImportEmbeddings(program: Command): void {
  program
    .command("import-embeddings")
    .description(
      "bring your own embeddings: vectors computed elsewhere become the dataset's rows and its cache under an external backbone",
    )
    .argument("<dataset>")
    .requiredOption(
      "--npy <file.npy>",
      "float32 (or float64) [rows, dim] matrix; row i is the vector of line i",
    )
    .requiredOption(
      "--rows <rows.jsonl>",
      'one {"id", "label"?, "split"?, "text"?} per line, in the .npy\'s row order',
    )
    .requiredOption(
      "--backbone <name>",
      "a name for the model that made the vectors (train with --backbone <name>)",
    )
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const r = await platform.importEmbeddings(dataset, {
        backbone: opts.backbone,
        npyPath: opts.npy,
        rowsPath: opts.rows,
      });
      output(
        json,
        r,
        `dataset ${r.dataset}: ${r.rows} rows imported as ${r.dim}-d embeddings of ${r.backbone.id} ` +
          `(${r.dtype}; ${r.vectors.written} vectors written, ${r.vectors.reused} already cached); ` +
          `train with \`headstart train ${r.dataset} --head <name> --backbone ${r.backbone.id}\``,
      );
    });
}
