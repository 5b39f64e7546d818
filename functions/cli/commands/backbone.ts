import type { Command } from "commander";
import { context, output } from "../context.ts";

export function registerBackbone(program: Command): void {
  const backbone = program
    .command("backbone")
    .description("manage backbones (built-in or your own ONNX model)");
  backbone
    .command("add")
    .description("publish a directory holding backbone.json, the ONNX model and its assets")
    .argument("<dir>")
    .action(async (dir: string, _opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const spec = await platform.addBackbone(dir);
      output(
        json,
        spec,
        `backbone ${spec.id} (${spec.modality}, ${spec.dim}-d, sha256 ${spec.sha256.slice(0, 12)}) added`,
      );
    });
  backbone
    .command("publish")
    .description(
      "build built-in backbones here and publish them to the store (a deployed stack's Lambdas only read them from there)",
    )
    .argument("[ids...]", "built-in backbone ids (default: all)")
    .action(async (ids: string[], _opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const specs = await platform.publishBuiltIns(ids.length ? ids : undefined);
      output(
        json,
        specs,
        specs
          .map((s) => `backbone ${s.id} (${s.dim}-d, sha256 ${s.sha256.slice(0, 12)}) published`)
          .join("\n"),
      );
    });
  backbone
    .command("list")
    .description("backbones in the store")
    .action(async (_opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const specs = await platform.listBackbones();
      output(
        json,
        specs,
        specs.map((s) => `${s.id}\t${s.modality}\t${s.dim}\t${s.sha256.slice(0, 12)}`).join("\n") || "(none)",
      );
    });
}
