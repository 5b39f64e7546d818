import type { Command } from "commander";
import { context, output } from "../context.ts";

export function registerRollback(program: Command): void {
  program
    .command("rollback")
    .description("move an alias (default live) back to the version it pointed to before")
    .argument("<head>")
    .option("--alias <alias>", "alias to move back", "live")
    .action(async (head: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const r = await platform.rollback(head, opts.alias);
      output(json, { head, alias: opts.alias, ...r }, `${head}:${opts.alias} ${r.from} → ${r.to}`);
    });
}
