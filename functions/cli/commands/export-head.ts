import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { context, output } from "../context.ts";

export function registerExportHead(program: Command): void {
  program
    .command("export-head")
    .description("write a head version as an ONNX model (alone, or fused with its backbone)")
    .argument("<head>", "head, head@version or head:alias")
    .requiredOption("--out <file>", "output .onnx file")
    .option("--fused", "put the head's backbone in front: the model then takes token ids, not embeddings")
    .action(async (head: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const r = await platform.exportHead(head, { fused: Boolean(opts.fused) });
      await writeFile(opts.out, r.bytes);
      output(
        json,
        { head: r.head, version: r.version, fused: r.fused, out: opts.out, bytes: r.bytes.byteLength },
        `${r.head}@${r.version}${r.fused ? " (fused)" : ""} → ${opts.out} (${r.bytes.byteLength} bytes)`,
      );
    });
}
