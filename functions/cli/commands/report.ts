import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { renderReportHtml } from "../../../shared/heads/report-html.ts";
import { context, output } from "../context.ts";

export function registerReport(program: Command): void {
  program
    .command("report")
    .description("write a head version's evaluation report as a self-contained HTML page (or its JSON)")
    .argument("<head>", "head, head@version or head:alias")
    .requiredOption("--out <file>", "output .html (or .json with --json-report)")
    .option("--json-report", "write report.json instead of the HTML page")
    .action(async (head: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const { head: doc, report } = await platform.headReport(head);
      await writeFile(
        opts.out,
        opts.jsonReport ? `${JSON.stringify(report, null, 2)}\n` : renderReportHtml(report, doc),
      );
      output(
        json,
        { head: doc.head, version: doc.version, out: opts.out },
        `${doc.head}@${doc.version} report → ${opts.out}`,
      );
    });
}
