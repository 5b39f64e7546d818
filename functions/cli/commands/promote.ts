import type { Command } from "commander";
import { context, output } from "../context.ts";

export function registerPromote(program: Command): void {
  program
    .command("promote")
    .description("point an alias (default live) at a head version")
    .argument("<head>")
    .argument("<version>")
    .option("--alias <alias>", "alias to move", "live")
    .option("--expect <version>", "only if the alias currently points here (compare-and-swap)")
    .action(async (head: string, version: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      await platform.promote(head, version, opts.expect, opts.alias);
      output(json, { head, alias: opts.alias, version }, `${head}:${opts.alias} → ${version}`);
    });
}
